"""fastoptim: torch.optim's optimizers as fused C++ kernels that update numpy arrays in place.

    import numpy as np, fastoptim
    w = np.zeros(10, np.float32)
    opt = fastoptim.Adam([w], lr=1e-3)
    opt.step([grad_of_w])          # w is updated in place
"""

from . import _core
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__version__ = _core.__version__

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "__version__"]
