"""Learning-rate schedulers with torch.optim.lr_scheduler's names, arguments and semantics.

The state machines are C++ (``cpp/include/fastoptim/lr_scheduler/``); these classes move values between
them and ``optimizer.param_groups``. Call ``scheduler.step()`` after ``optimizer.step()``.
"""

from ._base import LRScheduler
from ._compose import SWALR, ChainedScheduler, SequentialLR
from ._cyclic import CosineAnnealingLR, CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR
from ._plateau import PlateauEvent, ReduceLROnPlateau
from ._preview import SchedulePreview, preview
from ._simple import ConstantLR, ExponentialLR, LambdaLR, LinearLR, MultiplicativeLR, MultiStepLR, PolynomialLR
from ._step import StepLR

__all__ = [
    "LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR",
    "PolynomialLR", "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR", "SequentialLR",
    "ChainedScheduler", "ReduceLROnPlateau", "PlateauEvent", "SWALR", "preview", "SchedulePreview",
]
