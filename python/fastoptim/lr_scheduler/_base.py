"""The scheduler base: moves values between ``optimizer.param_groups`` and a C++ state machine.

Around every C++ step, ``_pull`` copies each group's ``lr``, ``initial_lr`` and momentum (``betas[0]`` for
the Adam family, else ``momentum``) into a ``GroupValues``; ``_push`` writes back what the scheduler
changed. Subclasses build their C++ core in ``_make_core`` and list the attributes that make up their
state dict (torch's keys) in ``_params``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from .. import _core
from .._common import zero_division

_ls = _core.lr_scheduler

__all__: List[str] = []  # LRScheduler is exported by the package itself

ORDER_WARNING = (
    "Detected call of `lr_scheduler.step()` before `optimizer.step()`. "
    "In PyTorch 1.1.0 and later, you should call them in the opposite order: "
    "`optimizer.step()` before `lr_scheduler.step()`.  Failure to do this "
    "will result in PyTorch skipping the first value of the learning rate schedule. "
    "See more details at "
    "https://pytorch.org/docs/stable/optim.html#how-to-adjust-learning-rate"
)

EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being "
    "deprecated where possible. Please use `scheduler.step()` to step the "
    "scheduler. During the deprecation, if epoch is different from None, the "
    "closed form is used instead of the new chainable form, where available. "
    "Please open an issue if you are unable to replicate your use case: "
    "https://github.com/pytorch/pytorch/issues/new/choose."
)



def check_optimizer(optimizer: Any) -> None:
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, list) or not all(isinstance(g, dict) and "lr" in g for g in groups):
        raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")


def check_resume(optimizer: Any, last_epoch: int) -> None:
    """torch's KeyError (same message) when resuming (``last_epoch != -1``) without ``initial_lr`` in a group."""
    if last_epoch != -1:
        for i, group in enumerate(optimizer.param_groups):
            if "initial_lr" not in group:
                raise KeyError(
                    f"param 'initial_lr' is not specified in param_groups[{i}] when resuming scheduler with "
                    "last_epoch >= 0.\n"
                    "This typically happens when:\n"
                    "1. You're trying to resume training from a checkpoint but haven't properly loaded the "
                    "optimizer state\n"
                    "2. You're using last_epoch >= 0 for a fresh training run (not recommended)"
                )


GET_LR_WARNING = "To get the last learning rate computed by the scheduler, please use `get_last_lr()`."


def real(value: Any, name: str) -> float:
    """A number, or a 0-d real numpy array (the optimizers take one as lr, as torch takes a 0-d tensor)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        if not (isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "fi"):
            raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


def integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if not -2**63 <= value < 2**63:  # the C++ cores count in int64
        raise ValueError(f"{name} must fit in a 64-bit integer, got {value}")
    return value


def per_group(value: Any, n: int, name: str) -> List[float]:
    """A scalar or one value per param group (torch's _format_param)."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} must have the same length as optimizer.param_groups. "
                             f"{name} has {len(value)} values, param_groups has {n}.")
        return [real(v, name) for v in value]
    return [real(value, name)] * n


class GroupSync:
    """The values of ``optimizer.param_groups`` a scheduler reads and writes, as a C++ GroupValues."""

    def __init__(self, optimizer: Any) -> None:
        self.optimizer = optimizer
        self.values = _ls.GroupValues()

    def pull(self) -> None:
        lrs: List[float] = []
        initial: List[Optional[float]] = []
        momenta: List[Optional[float]] = []
        betas: List[bool] = []
        for i, group in enumerate(self.optimizer.param_groups):
            lrs.append(real(group["lr"], f"param_groups[{i}]['lr']"))
            init = group.get("initial_lr")
            initial.append(None if init is None else real(init, f"param_groups[{i}]['initial_lr']"))
            if "betas" in group:
                momenta.append(float(group["betas"][0]))
                betas.append(True)
            elif "momentum" in group:
                momenta.append(float(group["momentum"]))
                betas.append(False)
            else:
                momenta.append(None)
                betas.append(False)
        self.values.set_all(lrs, initial, momenta, betas)

    def push(self, momentum: bool = False) -> None:
        lrs, initial, momenta = self.values.get_all()
        for group, lr, init, mom in zip(self.optimizer.param_groups, lrs, initial, momenta):
            current = group["lr"]
            if isinstance(current, np.ndarray) and current.ndim == 0 and current.flags.writeable:
                current[()] = lr  # an array lr stays the same array, as torch fills a tensor lr in place
            else:
                group["lr"] = lr
            if init is not None:
                group["initial_lr"] = init
            if momentum and mom is not None:
                if "betas" in group:
                    group["betas"] = (mom, *tuple(group["betas"])[1:])
                elif "momentum" in group:
                    group["momentum"] = mom


class LRScheduler:
    """Base class, as ``torch.optim.lr_scheduler.LRScheduler``.

    Construction records ``initial_lr`` in every param group (or requires it when ``last_epoch >= 0``)
    and performs the initial step; ``step()`` advances ``last_epoch`` and sets each group's ``lr``.
    """

    # torch's state-dict keys of the subclass's own arguments, in torch's order.
    _params: Sequence[str] = ()
    # Whether the schedule also writes momentum / betas[0] (CyclicLR, OneCycleLR).
    _cycles_momentum_attr: Optional[str] = None

    def __init__(self, optimizer: Any, last_epoch: int = -1) -> None:
        check_optimizer(optimizer)
        last_epoch = integer(last_epoch, "last_epoch")
        check_resume(optimizer, last_epoch)
        self.optimizer = optimizer
        self._sync = GroupSync(optimizer)
        self._sync.pull()
        with zero_division():
            self._core = self._make_core(self._sync.values, last_epoch)
        self._push()

    # -- subclass hook
    def _make_core(self, groups: Any, last_epoch: int) -> Any:
        raise NotImplementedError

    def _push(self) -> None:
        momentum = bool(self._cycles_momentum_attr and getattr(self, self._cycles_momentum_attr))
        self._sync.push(momentum=momentum)

    def _prepare_step(self) -> None:
        """Reads what the subclass's schedule takes from the param groups at every step (after the pull)."""

    # -- torch's API
    def step(self, epoch: Optional[int] = None) -> None:
        """Advance one epoch (or batch, for per-batch schedules). Call after ``optimizer.step()``.

        ``epoch`` (deprecated, as in torch) sets ``last_epoch`` to it and applies the closed form where the
        scheduler has one, else the chainable form; it warns.
        """
        if self._core.step_count == 1 and not getattr(self.optimizer, "_opt_called", False):
            warnings.warn(ORDER_WARNING, UserWarning, stacklevel=2)
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
            epoch = integer(epoch, "epoch")
        self._sync.pull()
        self._prepare_step()
        if epoch is None:
            self._run(self._core.step)
        else:
            self._run(self._core.step_epoch, epoch)
        self._push()

    def _run(self, advance: Callable[..., None], *args: Any) -> None:
        """Runs one of the core's steps; when it raises (an lr_lambda that raises, a division by zero) the
        core's counters are put back, so a failed step changes nothing (the groups are written only after)."""
        core = self._core
        saved = (list(core.base_lrs), core.last_epoch, core.step_count, list(core.get_last_lr()))
        try:
            with zero_division():
                advance(*args)
        except BaseException:
            core.load_base_state(*saved)
            raise

    def _initial_step(self) -> None:
        """torch's ``_initial_step``: ``_step_count = 0``, then a step in ``_initial_mode`` (the chainable
        forms of ExponentialLR, MultiplicativeLR, LinearLR, PolynomialLR and CosineAnnealingLR keep the
        current lrs). SequentialLR calls it on the scheduler that runs at epoch 0."""
        self._sync.pull()
        self._prepare_step()
        self._run(self._core.initial_step)
        self._push()

    def _update_lr(self, epoch: int) -> None:
        """torch's ``_update_lr(epoch)``: jump to ``epoch`` (closed form where the scheduler has one)."""
        self._sync.pull()
        self._prepare_step()
        self._run(self._core.update_lr, epoch)
        self._push()

    def get_last_lr(self) -> List[float]:
        return list(self._core.get_last_lr())

    def get_lr(self) -> List[float]:
        """The learning rates for the current ``last_epoch`` computed from the groups' current values.

        Called from outside ``step()`` (always, here: steps use the C++ core), so it warns as torch's does:
        the chainable forms would apply the last step's change a second time."""
        warnings.warn(GET_LR_WARNING, UserWarning, stacklevel=2)
        self._sync.pull()
        self._prepare_step()
        with zero_division():
            return list(self._core.get_lr())

    @property
    def last_epoch(self) -> int:
        return self._core.last_epoch

    @last_epoch.setter
    def last_epoch(self, value: int) -> None:
        self._core.last_epoch = integer(value, "last_epoch")

    # torch's plain attributes; assigning one takes effect at the next step.
    @property
    def base_lrs(self) -> List[float]:
        return list(self._core.base_lrs)

    @base_lrs.setter
    def base_lrs(self, value: Sequence[float]) -> None:
        self._load_base(base_lrs=self._group_list(value, "base_lrs"))

    @property
    def _step_count(self) -> int:
        return self._core.step_count

    @_step_count.setter
    def _step_count(self, value: int) -> None:
        self._load_base(step_count=integer(value, "_step_count"))

    @property
    def _last_lr(self) -> List[float]:
        return self.get_last_lr()

    @_last_lr.setter
    def _last_lr(self, value: Sequence[float]) -> None:
        self._load_base(last_lr=self._group_list(value, "_last_lr"))

    def _group_list(self, value: Any, name: str) -> List[float]:
        n = len(self.optimizer.param_groups)
        if not isinstance(value, (list, tuple)) or len(value) != n:
            raise ValueError(f"{name} must be a list of {n} values, one per param group")
        return [real(v, name) for v in value]

    def _load_base(self, **changes: Any) -> None:
        core = self._core
        state = dict(base_lrs=list(core.base_lrs), last_epoch=core.last_epoch, step_count=core.step_count,
                     last_lr=list(core.get_last_lr()))
        state.update(changes)
        core.load_base_state(**state)

    def state_dict(self) -> Dict[str, Any]:
        """torch's layout: the scheduler's arguments and base_lrs, last_epoch, _step_count, _last_lr."""
        out: Dict[str, Any] = {key: self._get_param(key) for key in self._params}
        out.update(
            base_lrs=self.base_lrs,
            last_epoch=self.last_epoch,
            _step_count=self._step_count,
            _is_initial=False,
            _get_lr_called_within_step=False,
            _last_lr=self.get_last_lr(),
        )
        return out

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Loads a state dict from ``state_dict()`` or from torch; everything is checked before anything is set."""
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        missing = [k for k in ("base_lrs", "last_epoch", "_step_count", "_last_lr") if k not in state_dict]
        if missing:
            raise KeyError(f"state_dict is missing {missing}")
        n = len(self.optimizer.param_groups)
        base_lrs = [real(v, "base_lrs") for v in state_dict["base_lrs"]]
        last_lr = [real(v, "_last_lr") for v in state_dict["_last_lr"]]
        if len(base_lrs) != n or len(last_lr) != n:
            raise ValueError(f"state_dict is for {len(base_lrs)} param groups, the optimizer has {n}")
        last_epoch = integer(state_dict["last_epoch"], "last_epoch")
        step_count = integer(state_dict["_step_count"], "_step_count")
        params = {k: state_dict[k] for k in self._params if k in state_dict}
        self._check_params(params)
        # Setting an argument can still fail (a type the core refuses): then the ones set go back.
        saved = {k: self._get_param(k) for k in params}
        try:
            for key, value in params.items():
                self._set_param(key, value)
            self._core.load_base_state(base_lrs, last_epoch, step_count, last_lr)
        except BaseException:
            for key, value in saved.items():
                self._set_param(key, value)
            raise

    # -- how _params map onto the core (override when names differ)
    def _get_param(self, key: str) -> Any:
        return getattr(self._core.params, key)

    def _set_param(self, key: str, value: Any) -> None:
        setattr(self._core.params, key, value)

    def _check_params(self, params: Dict[str, Any]) -> None:
        """Validates loaded arguments; raise before anything is set."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={self._get_param(k)!r}" for k in self._params)
        return f"{type(self).__name__}({args}, last_epoch={self.last_epoch})"


def param_property(key: str) -> property:
    """One of torch's plain attributes that the C++ core holds (a ``_params`` key): assigning it checks the
    value as loading a state dict does, and takes effect at the next step."""

    def fget(self: Any) -> Any:
        return self._get_param(key)

    def fset(self: Any, value: Any) -> None:
        self._check_params({key: value})
        self._set_param(key, value)

    return property(fget, fset)


def is_finite(x: float) -> bool:
    return math.isfinite(x)
