"""Learning-rate schedulers with torch.optim.lr_scheduler's names, arguments and semantics.

The state machines are C++ (``cpp/include/fastoptim/lr_scheduler/``); these classes move values between
them and ``optimizer.param_groups``. Call ``scheduler.step()`` after ``optimizer.step()``.

Every module of this package that defines ``__all__`` contributes its names here, so a new scheduler
needs no edit of this file.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from ._base import LRScheduler

__all__ = ["LRScheduler"]

for _info in sorted(_pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name == "_base":
        continue
    _module = _importlib.import_module(f"{__name__}.{_info.name}")
    for _name in getattr(_module, "__all__", ()):
        globals()[_name] = getattr(_module, _name)
        __all__.append(_name)
del _importlib, _pkgutil, _info, _module, _name
