"""MultiStepLR, ConstantLR, LinearLR, ExponentialLR, PolynomialLR, LambdaLR and MultiplicativeLR."""

from __future__ import annotations

import collections
import numbers
import types
import weakref
from typing import Any, Callable, Dict, List

from ._base import LRScheduler, _ls, check_optimizer, integer, param_property, real

__all__ = ["MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR", "LambdaLR",
           "MultiplicativeLR"]


def _milestone_list(value: Any) -> List[int]:
    """Milestones as a list with repeats: an iterable of epochs, or a Counter/mapping epoch -> count."""
    if isinstance(value, collections.Counter):
        items = list(value.elements())
    elif isinstance(value, dict):
        items = [k for k, c in value.items() for _ in range(integer(c, "milestones count"))]
    else:
        try:
            items = list(value)
        except TypeError:
            raise TypeError(f"milestones must be an iterable of integers, got {type(value).__name__}") from None
    return [integer(m, "milestones") for m in items]


class MultiStepLR(LRScheduler):
    r"""Multiply each group's learning rate by ``gamma`` at every milestone.

    ``lr_epoch = lr_{epoch-1} * gamma ** count(epoch)`` where ``count(epoch)`` is how many times ``epoch``
    appears in ``milestones`` (so ``base_lr * gamma ** (number of milestones <= epoch)`` unless something
    else edits the learning rate). As ``torch.optim.lr_scheduler.MultiStepLR``; the state dict holds the
    milestones as a ``collections.Counter``, as torch's does.

    >>> import numpy as np, fastoptim
    >>> opt = fastoptim.SGD([np.zeros(1)], lr=1.0)
    >>> sched = fastoptim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4, 4], gamma=0.5)
    >>> lrs = []
    >>> for epoch in range(5):
    ...     opt.step([np.ones(1)])
    ...     sched.step()
    ...     lrs.append(sched.get_last_lr()[0])
    >>> lrs
    [1.0, 0.5, 0.5, 0.125, 0.125]
    """

    _params = ("milestones", "gamma")

    def __init__(self, optimizer: Any, milestones: Any, gamma: float = 0.1, last_epoch: int = -1) -> None:
        self._milestones = _milestone_list(milestones)
        self._gamma = real(gamma, "gamma")
        super().__init__(optimizer, last_epoch)

    def _make_core(self, groups, last_epoch):
        return _ls.MultiStepLR(groups, self._milestones, self._gamma, last_epoch)

    def _check_params(self, params: Dict[str, Any]) -> None:
        if "milestones" in params:
            _milestone_list(params["milestones"])
        if "gamma" in params:
            real(params["gamma"], "gamma")

    def _get_param(self, key: str) -> Any:
        if key == "milestones":
            return collections.Counter(self._core.params.milestones)
        return super()._get_param(key)

    def _set_param(self, key: str, value: Any) -> None:
        if key == "milestones":
            value = _milestone_list(value)
        super()._set_param(key, value)

    milestones = param_property("milestones")  # a Counter, as torch's; a list or a Counter can be assigned
    gamma = param_property("gamma")


def _check_constant(params: Dict[str, Any]) -> None:
    if "factor" in params:
        factor = real(params["factor"], "factor")
        if factor > 1.0 or factor < 0:
            raise ValueError("Constant multiplicative factor expected to be between 0 and 1.")
    if "total_iters" in params:
        integer(params["total_iters"], "total_iters")


class ConstantLR(LRScheduler):
    r"""Multiply each group's learning rate by ``factor`` until epoch ``total_iters``.

    ``lr_0 = lr * factor``; ``lr_epoch = lr_{epoch-1} / factor`` (as ``* (1.0 / factor)``) at
    ``epoch == total_iters``; else unchanged (so ``base_lr * factor`` before ``total_iters`` and
    ``base_lr`` from then on). As ``torch.optim.lr_scheduler.ConstantLR``.

    >>> import numpy as np, fastoptim
    >>> opt = fastoptim.SGD([np.zeros(1)], lr=1.0)
    >>> sched = fastoptim.lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=3)
    >>> lrs = [sched.get_last_lr()[0]]
    >>> for epoch in range(4):
    ...     opt.step([np.ones(1)])
    ...     sched.step()
    ...     lrs.append(sched.get_last_lr()[0])
    >>> lrs
    [0.5, 0.5, 0.5, 1.0, 1.0]
    """

    _params = ("factor", "total_iters")

    def __init__(self, optimizer: Any, factor: float = 1.0 / 3, total_iters: int = 5, last_epoch: int = -1) -> None:
        self._factor = real(factor, "factor")
        self._total_iters = integer(total_iters, "total_iters")
        _check_constant({"factor": self._factor})
        super().__init__(optimizer, last_epoch)

    def _make_core(self, groups, last_epoch):
        return _ls.ConstantLR(groups, self._factor, self._total_iters, last_epoch)

    def _check_params(self, params: Dict[str, Any]) -> None:
        _check_constant(params)

    factor = param_property("factor")
    total_iters = param_property("total_iters")


def _check_linear(params: Dict[str, Any]) -> None:
    if "start_factor" in params:
        start = real(params["start_factor"], "start_factor")
        if start > 1.0 or start <= 0:
            raise ValueError("Starting multiplicative factor expected to be greater than 0 and less or equal to 1.")
    if "end_factor" in params:
        end = real(params["end_factor"], "end_factor")
        if end > 1.0 or end < 0:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")
    if "total_iters" in params:
        integer(params["total_iters"], "total_iters")


class LinearLR(LRScheduler):
    r"""Scale each group's learning rate by a factor moving linearly from ``start_factor`` to ``end_factor``
    over ``total_iters`` epochs.

    ``lr_0 = lr * start_factor``; for ``1 <= epoch <= total_iters``,
    ``lr_epoch = lr_{epoch-1} * (1 + (end - start) / (total_iters * start + (epoch - 1) * (end - start)))``;
    unchanged after (so ``base_lr * (start + (end - start) * min(total_iters, epoch) / total_iters)``).
    As ``torch.optim.lr_scheduler.LinearLR``.

    >>> import numpy as np, fastoptim
    >>> opt = fastoptim.SGD([np.zeros(1)], lr=1.0)
    >>> sched = fastoptim.lr_scheduler.LinearLR(opt, start_factor=0.25, end_factor=1.0, total_iters=3)
    >>> lrs = [sched.get_last_lr()[0]]
    >>> for epoch in range(4):
    ...     opt.step([np.ones(1)])
    ...     sched.step()
    ...     lrs.append(sched.get_last_lr()[0])
    >>> lrs
    [0.25, 0.5, 0.75, 1.0, 1.0]
    """

    _params = ("start_factor", "end_factor", "total_iters")

    def __init__(self, optimizer: Any, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1) -> None:
        self._start = real(start_factor, "start_factor")
        self._end = real(end_factor, "end_factor")
        self._total_iters = integer(total_iters, "total_iters")
        _check_linear({"start_factor": self._start, "end_factor": self._end})
        super().__init__(optimizer, last_epoch)

    def _make_core(self, groups, last_epoch):
        return _ls.LinearLR(groups, self._start, self._end, self._total_iters, last_epoch)

    def _check_params(self, params: Dict[str, Any]) -> None:
        _check_linear(params)

    start_factor = param_property("start_factor")
    end_factor = param_property("end_factor")
    total_iters = param_property("total_iters")


class ExponentialLR(LRScheduler):
    r"""Multiply each group's learning rate by ``gamma`` every epoch.

    ``lr_epoch = lr_{epoch-1} * gamma`` (so ``base_lr * gamma ** epoch``). As
    ``torch.optim.lr_scheduler.ExponentialLR``.

    >>> import numpy as np, fastoptim
    >>> opt = fastoptim.SGD([np.zeros(1)], lr=1.0)
    >>> sched = fastoptim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    >>> lrs = [sched.get_last_lr()[0]]
    >>> for epoch in range(3):
    ...     opt.step([np.ones(1)])
    ...     sched.step()
    ...     lrs.append(sched.get_last_lr()[0])
    >>> lrs
    [1.0, 0.5, 0.25, 0.125]
    """

    _params = ("gamma",)

    def __init__(self, optimizer: Any, gamma: float, last_epoch: int = -1) -> None:
        self._gamma = real(gamma, "gamma")
        super().__init__(optimizer, last_epoch)

    def _make_core(self, groups, last_epoch):
        return _ls.ExponentialLR(groups, self._gamma, last_epoch)

    def _check_params(self, params: Dict[str, Any]) -> None:
        if "gamma" in params:
            real(params["gamma"], "gamma")

    gamma = param_property("gamma")


class PolynomialLR(LRScheduler):
    r"""Decay each group's learning rate polynomially to zero over ``total_iters`` epochs.

    For ``1 <= epoch <= total_iters``,
    ``lr_epoch = lr_{epoch-1} * ((1 - epoch / total_iters) / (1 - (epoch - 1) / total_iters)) ** power``;
    unchanged otherwise (so ``base_lr * (1 - min(total_iters, epoch) / total_iters) ** power``). As
    ``torch.optim.lr_scheduler.PolynomialLR``.

    >>> import numpy as np, fastoptim
    >>> opt = fastoptim.SGD([np.zeros(1)], lr=1.0)
    >>> sched = fastoptim.lr_scheduler.PolynomialLR(opt, total_iters=4, power=1.0)
    >>> lrs = [sched.get_last_lr()[0]]
    >>> for epoch in range(5):
    ...     opt.step([np.ones(1)])
    ...     sched.step()
    ...     lrs.append(sched.get_last_lr()[0])
    >>> lrs
    [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """

    _params = ("total_iters", "power")

    def __init__(self, optimizer: Any, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1) -> None:
        self._total_iters = integer(total_iters, "total_iters")
        self._power = real(power, "power")
        super().__init__(optimizer, last_epoch)

    def _make_core(self, groups, last_epoch):
        return _ls.PolynomialLR(groups, self._total_iters, self._power, last_epoch)

    def _check_params(self, params: Dict[str, Any]) -> None:
        if "total_iters" in params:
            integer(params["total_iters"], "total_iters")
        if "power" in params:
            real(params["power"], "power")

    total_iters = param_property("total_iters")
    power = param_property("power")


def _factor(value: Any) -> float:
    """An lr_lambda's result as a float; torch's arithmetic raises TypeError for None, strings and the like."""
    if isinstance(value, numbers.Real):
        return float(value)
    if value is None or isinstance(value, (str, bytes)) or not hasattr(value, "__float__"):
        raise TypeError(f"lr_lambda must return a real number, got {type(value).__name__}")
    return float(value)  # a 0-d array or tensor


def _lambda_callers(owner: Any, n: int) -> List[Callable[[int], float]]:
    """What the C++ core calls for group i: ``owner.lr_lambdas[i]`` looked up at every call (torch reads the
    attribute at every step, so assigning or editing ``lr_lambdas`` takes effect). A weak reference, so the
    core (which Python's garbage collector cannot see into) does not keep its owner alive."""
    ref = weakref.ref(owner)

    def caller(i: int) -> Callable[[int], float]:
        def call(epoch: int) -> float:
            scheduler = ref()
            if scheduler is None:
                raise ReferenceError("the scheduler of this lr_lambda no longer exists")
            return _factor(scheduler.lr_lambdas[i](epoch))
        return call

    return [caller(i) for i in range(n)]


class _LambdaBase(LRScheduler):
    """Shared by LambdaLR and MultiplicativeLR: per-group callables and torch's state-dict rule for them
    (an entry is ``None`` for a plain function or lambda, else a copy of the callable object's ``__dict__``)."""

    _core_class: Any = None

    def __init__(self, optimizer: Any, lr_lambda: Any, last_epoch: int = -1) -> None:
        check_optimizer(optimizer)
        n = len(optimizer.param_groups)
        if not isinstance(lr_lambda, (list, tuple)):
            lambdas = [lr_lambda] * n
        else:
            if len(lr_lambda) != n:
                raise ValueError(f"Expected {n} lr_lambdas, but got {len(lr_lambda)}")
            lambdas = list(lr_lambda)
        for fn in lambdas:
            if not callable(fn):
                raise TypeError(f"lr_lambda should be a function, but got {type(fn).__name__}")
        self.lr_lambdas: List[Callable[[int], float]] = lambdas
        super().__init__(optimizer, last_epoch)

    def _make_core(self, groups, last_epoch):
        self._n_callers = len(self.lr_lambdas)
        return type(self)._core_class(groups, _lambda_callers(self, self._n_callers), last_epoch)

    def _prepare_step(self) -> None:
        n = len(self.lr_lambdas)
        if n != self._n_callers:  # lr_lambdas was assigned a list of another length
            self._core.set_lr_lambdas(_lambda_callers(self, n))  # ValueError unless one per param group
            self._n_callers = n

    def state_dict(self) -> Dict[str, Any]:
        out = super().state_dict()
        out["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else fn.__dict__.copy()
                             for fn in self.lr_lambdas]
        return out

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        if "lr_lambdas" not in state_dict:
            raise KeyError("lr_lambdas")
        saved = state_dict["lr_lambdas"]
        if len(saved) != len(self.lr_lambdas):
            raise ValueError(f"Expected {len(self.lr_lambdas)} lr_lambdas, but got {len(saved)}")
        for entry in saved:
            if entry is not None and not isinstance(entry, dict):
                raise TypeError(f"lr_lambdas entries must be None or dicts, got {type(entry).__name__}")
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "lr_lambdas"})
        for fn, entry in zip(self.lr_lambdas, saved):
            if entry is not None:
                fn.__dict__.update(entry)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr_lambdas={self.lr_lambdas!r}, last_epoch={self.last_epoch})"


class LambdaLR(_LambdaBase):
    r"""Set each group's learning rate to its initial lr times a function of the epoch.

    ``lr_epoch = base_lr * lr_lambda(epoch)``, one ``lr_lambda`` for all groups or a list with one per
    group. As ``torch.optim.lr_scheduler.LambdaLR``; ``state_dict()`` saves the ``__dict__`` of callable
    objects (``None`` for functions and lambdas).

    >>> import numpy as np, fastoptim
    >>> opt = fastoptim.SGD([np.zeros(1)], lr=1.0)
    >>> sched = fastoptim.lr_scheduler.LambdaLR(opt, lr_lambda=lambda epoch: 0.5 ** epoch)
    >>> lrs = [sched.get_last_lr()[0]]
    >>> for epoch in range(3):
    ...     opt.step([np.ones(1)])
    ...     sched.step()
    ...     lrs.append(sched.get_last_lr()[0])
    >>> lrs
    [1.0, 0.5, 0.25, 0.125]
    """

    _core_class = _ls.LambdaLR


class MultiplicativeLR(_LambdaBase):
    r"""Multiply each group's learning rate by a function of the epoch, every epoch.

    ``lr_epoch = lr_{epoch-1} * lr_lambda(epoch)`` for ``epoch >= 1``; one ``lr_lambda`` for all groups or a
    list with one per group. As ``torch.optim.lr_scheduler.MultiplicativeLR``; ``state_dict()`` saves the
    ``__dict__`` of callable objects (``None`` for functions and lambdas).

    >>> import numpy as np, fastoptim
    >>> opt = fastoptim.SGD([np.zeros(1)], lr=1.0)
    >>> sched = fastoptim.lr_scheduler.MultiplicativeLR(opt, lr_lambda=lambda epoch: 0.5)
    >>> lrs = [sched.get_last_lr()[0]]
    >>> for epoch in range(3):
    ...     opt.step([np.ones(1)])
    ...     sched.step()
    ...     lrs.append(sched.get_last_lr()[0])
    >>> lrs
    [1.0, 0.5, 0.25, 0.125]
    """

    _core_class = _ls.MultiplicativeLR
