"""fastoptim: torch.optim's optimizers as fused C++ kernels that update numpy arrays in place.

    import numpy as np, fastoptim
    w = np.zeros(10, np.float32)
    opt = fastoptim.Adam([w], lr=1e-3)
    opt.step([grad_of_w])          # w is updated in place
"""

import numbers

from . import _core
from .adabelief import AdaBelief
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .adan import Adan
from .asgd import ASGD
from .checkpoint import load, save
from .lamb import LAMB
from .lbfgs import LBFGS
from .lion import Lion
from .muon import Muon
from .nadam import NAdam
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .schedulefree import ScheduleFreeAdamW
from .sgd import SGD
from .sparse_adam import SparseAdam

__version__ = _core.__version__


def cpu_capability() -> str:
    """The kernel tier in use: "baseline", "avx2" or "avx512" (lower it with FASTOPTIM_CPU_CAPABILITY)."""
    return _core.cpu_capability()


def get_num_threads() -> int:
    """Threads used for large arrays (OpenMP; honours OMP_NUM_THREADS). Results never depend on it."""
    return _core.max_threads()


def set_num_threads(n: int) -> None:
    """Sets the number of threads used for large arrays (an integer >= 1, as ``torch.set_num_threads``)."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"set_num_threads expects an int, got {type(n).__name__}")
    if not 1 <= int(n) < 2**31:
        raise ValueError(f"Number of threads must be >= 1 and fit in an int, got {int(n)}")
    _core.set_num_threads(int(n))


from . import functional, lr_scheduler  # noqa: E402

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "ASGD", "Rprop", "Adamax", "NAdam",
           "RAdam", "Adafactor", "SparseAdam", "LBFGS", "Muon", "Lion", "LAMB", "Adan", "AdaBelief", "ScheduleFreeAdamW",
           "functional", "lr_scheduler", "save", "load", "cpu_capability",
           "get_num_threads", "set_num_threads", "__version__"]
