"""CosineAnnealingLR, CosineAnnealingWarmRestarts, CyclicLR and OneCycleLR."""

from __future__ import annotations

import math
import types
from typing import Any, Callable, Dict, List, Optional, Union

from ._base import LRScheduler, _ls, check_optimizer, check_resume, integer, param_property, per_group, real

__all__ = ["CosineAnnealingLR", "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR"]


def _has_momentum(optimizer: Any) -> bool:
    defaults = getattr(optimizer, "defaults", None)
    if isinstance(defaults, dict):
        return "momentum" in defaults or "betas" in defaults
    return all("momentum" in g or "betas" in g for g in optimizer.param_groups)


_NO_MOMENTUM = "optimizer must support momentum or beta1 with `cycle_momentum` option enabled"


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from each group's initial lr to ``eta_min`` over ``T_max`` epochs (no restarts).

    Closed form: ``eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``; like torch, step()
    applies the recursive (chainable) form

    .. math::
        \eta_{t} = \eta_{min} + (\eta_{t-1} - \eta_{min})
        \frac{1 + \cos(\pi t / T_{max})}{1 + \cos(\pi (t-1) / T_{max})},

    so other edits of the learning rate carry through. As ``torch.optim.lr_scheduler.CosineAnnealingLR``.

    >>> import numpy as np, fastoptim
    >>> opt = fastoptim.SGD([np.zeros(1)], lr=0.1)
    >>> sched = fastoptim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    >>> lrs = []
    >>> for epoch in range(4):
    ...     opt.step([np.ones(1)])
    ...     sched.step()
    ...     lrs.append(round(sched.get_last_lr()[0], 6))
    >>> lrs
    [0.085355, 0.05, 0.014645, 0.0]
    """

    _params = ("T_max", "eta_min")

    def __init__(self, optimizer: Any, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        self._T_max = integer(T_max, "T_max")
        self._eta_min = real(eta_min, "eta_min")
        super().__init__(optimizer, last_epoch)

    def _make_core(self, groups, last_epoch):
        return _ls.CosineAnnealingLR(groups, self._T_max, self._eta_min, last_epoch)

    def _check_params(self, params: Dict[str, Any]) -> None:
        if "T_max" in params:
            integer(params["T_max"], "T_max")
        if "eta_min" in params:
            real(params["eta_min"], "eta_min")

    def _get_closed_form_lr(self) -> List[float]:
        return list(self._core.closed_form_lr())

    T_max = param_property("T_max")
    eta_min = param_property("eta_min")


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""Cosine annealing with warm restarts (SGDR).

    .. math::
        \eta_t = \eta_{min} + \frac{1}{2}(\eta_{max} - \eta_{min})\left(1 + \cos\left(\frac{T_{cur}}{T_i}\pi\right)\right)

    where ``eta_max`` is the group's initial lr, ``T_cur`` the epochs since the last restart and ``T_i`` the
    current period (``T_0``, multiplied by ``T_mult`` at every restart). ``step(epoch)`` jumps to a possibly
    fractional epoch (e.g. ``epoch + i / iters`` per batch). As
    ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts``.

    >>> import numpy as np, fastoptim
    >>> opt = fastoptim.SGD([np.zeros(1)], lr=0.1)
    >>> sched = fastoptim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2)
    >>> lrs = []
    >>> for epoch in range(6):
    ...     opt.step([np.ones(1)])
    ...     sched.step()
    ...     lrs.append(round(sched.get_last_lr()[0], 6))
    >>> lrs
    [0.05, 0.1, 0.085355, 0.05, 0.014645, 0.1]
    """

    _params = ("T_0", "T_i", "T_mult", "eta_min", "T_cur")

    def __init__(self, optimizer: Any, T_0: int, T_mult: int = 1, eta_min: float = 0.0, last_epoch: int = -1) -> None:
        if isinstance(T_0, bool) or not isinstance(T_0, int) or T_0 <= 0:
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if isinstance(T_mult, bool) or not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if not isinstance(eta_min, (float, int)):
            raise ValueError(f"Expected float or int eta_min, but got {eta_min} of type {type(eta_min)}")
        self._args = (int(T_0), int(T_mult), float(eta_min))
        super().__init__(optimizer, last_epoch)

    def _make_core(self, groups, last_epoch):
        return _ls.CosineAnnealingWarmRestarts(groups, *self._args, last_epoch)

    def step(self, epoch: Optional[float] = None) -> None:
        """Advance one epoch, or with ``epoch`` jump to that (possibly fractional) epoch."""
        if epoch is not None:
            epoch = real(epoch, "epoch")
            # torch's math.floor(epoch) raises for NaN; the C++ core keeps epochs below 2**53.
            if math.isnan(epoch):
                raise ValueError("cannot convert float NaN to integer")
            if not abs(epoch) < 2**53:
                raise ValueError(f"Expected a finite epoch below 2**53, but got {epoch}")
            if epoch < 0:
                raise ValueError(f"Expected non-negative epoch, but got {epoch}")
        self._sync.pull()
        if epoch is None:
            self._core.step()
        else:
            self._core.step_to(epoch)
        self._push()

    def _get_param(self, key: str) -> Any:
        value = getattr(self._core.params, key)
        if key == "T_cur" and float(value).is_integer():
            return int(value)
        return value

    def _set_param(self, key: str, value: Any) -> None:
        setattr(self._core.params, key, float(value) if key in ("T_cur", "eta_min") else int(value))

    def _check_params(self, params: Dict[str, Any]) -> None:
        for key in ("T_0", "T_i", "T_mult"):
            if key in params:
                integer(params[key], key)
        if "T_0" in params and params["T_0"] <= 0:
            raise ValueError(f"Expected positive integer T_0, but got {params['T_0']}")
        if "T_i" in params and params["T_i"] <= 0:
            raise ValueError(f"Expected positive integer T_i, but got {params['T_i']}")
        if "T_mult" in params and params["T_mult"] < 1:
            raise ValueError(f"Expected integer T_mult >= 1, but got {params['T_mult']}")
        for key in ("eta_min", "T_cur"):
            if key in params:
                real(params[key], key)

    T_0 = param_property("T_0")
    T_mult = param_property("T_mult")
    T_i = param_property("T_i")
    eta_min = param_property("eta_min")
    T_cur = param_property("T_cur")


class CyclicLR(LRScheduler):
    r"""Cyclical learning rates (CLR), stepped after every batch, as ``torch.optim.lr_scheduler.CyclicLR``.

    With ``cycle = floor(1 + t / (up + down))``, ``x = 1 + t / (up + down) - cycle`` and
    ``s = x / r`` while ``x <= r`` else ``(x - 1) / (r - 1)`` (``r = up / (up + down)``):

    .. math::
        lr_t = base\_lr + (max\_lr - base\_lr)\, s \cdot f, \qquad
        m_t = max\_momentum - (max\_momentum - base\_momentum)\, s \cdot f

    where ``f`` is 1 (``"triangular"``), ``1 / 2^(cycle - 1)`` (``"triangular2"``), ``gamma^t``
    (``"exp_range"``) or ``scale_fn(cycle)`` / ``scale_fn(t)`` (``scale_mode``). With ``cycle_momentum`` the
    momentum (``betas[0]`` for the Adam family) is cycled inversely; construction writes ``max_momentum``
    into each group, and ``base_lr`` into each group's ``lr``.

    >>> import numpy as np, fastoptim
    >>> opt = fastoptim.SGD([np.zeros(1)], lr=0.1, momentum=0.9)
    >>> sched = fastoptim.lr_scheduler.CyclicLR(opt, base_lr=0.01, max_lr=0.05, step_size_up=2)
    >>> lrs = []
    >>> for batch in range(4):
    ...     opt.step([np.ones(1)])
    ...     sched.step()
    ...     lrs.append(round(sched.get_last_lr()[0], 6))
    >>> lrs, round(opt.param_groups[0]["momentum"], 6)
    ([0.03, 0.05, 0.03, 0.01], 0.9)
    """

    _KEYS = ("max_lrs", "total_size", "step_ratio", "mode", "gamma", "scale_mode", "cycle_momentum")
    _MOMENTUM_KEYS = ("use_beta1", "base_momentums", "max_momentums")
    _params = _KEYS + _MOMENTUM_KEYS
    _cycles_momentum_attr = "cycle_momentum"

    def __init__(
        self,
        optimizer: Any,
        base_lr: Union[float, List[float]],
        max_lr: Union[float, List[float]],
        step_size_up: int = 2000,
        step_size_down: Optional[int] = None,
        mode: str = "triangular",
        gamma: float = 1.0,
        scale_fn: Optional[Callable[[float], float]] = None,
        scale_mode: str = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float = 0.8,
        max_momentum: float = 0.9,
        last_epoch: int = -1,
    ) -> None:
        check_optimizer(optimizer)
        n = len(optimizer.param_groups)
        base_lrs = per_group(base_lr, n, "base_lr")
        max_lrs = per_group(max_lr, n, "max_lr")
        up = real(step_size_up, "step_size_up")
        down = up if step_size_down is None else real(step_size_down, "step_size_down")
        if up + down == 0:
            raise ZeroDivisionError("float division by zero")
        if mode not in ["triangular", "triangular2", "exp_range"] and scale_fn is None:
            raise ValueError("mode is invalid and scale_fn is None")
        if scale_fn is not None and not callable(scale_fn):
            raise TypeError("scale_fn must be callable")
        gamma = real(gamma, "gamma")
        cycle_momentum = bool(cycle_momentum)
        base_m, max_m = [0.8] * n, [0.9] * n
        if cycle_momentum:
            if not _has_momentum(optimizer):
                raise ValueError(_NO_MOMENTUM)
            base_m = per_group(base_momentum, n, "base_momentum")
            max_m = per_group(max_momentum, n, "max_momentum")
        self._scale_fn_custom = scale_fn
        self._args = (base_lrs, max_lrs, up, down, str(mode), gamma, scale_fn, str(scale_mode), cycle_momentum,
                      base_m, max_m)
        super().__init__(optimizer, last_epoch)
        if cycle_momentum and last_epoch == -1:
            for group, m_mom, b_mom in zip(optimizer.param_groups, max_m, base_m):
                group["max_momentum"] = m_mom
                group["base_momentum"] = b_mom

    def _make_core(self, groups, last_epoch):
        return _ls.CyclicLR(groups, *self._args, last_epoch)

    @property
    def cycle_momentum(self) -> bool:
        return self._core.params.cycle_momentum

    def scale_fn(self, x: float) -> float:
        """The scaling policy."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        return self._core.scale_fn(int(x))

    max_lrs = param_property("max_lrs")
    total_size = param_property("total_size")
    step_ratio = param_property("step_ratio")
    mode = property(lambda self: self._core.params.mode)
    gamma = param_property("gamma")
    scale_mode = param_property("scale_mode")
    use_beta1 = property(lambda self: self._core.params.use_beta1)
    base_momentums = property(lambda self: list(self._core.params.base_momentums))
    max_momentums = property(lambda self: list(self._core.params.max_momentums))

    def state_dict(self) -> Dict[str, Any]:
        """torch's layout; ``_scale_fn_custom`` holds a callable object's ``__dict__`` (never a function)."""
        out = {k: self._get_param(k) for k in self._KEYS}
        if self.cycle_momentum:
            out.update({k: self._get_param(k) for k in self._MOMENTUM_KEYS})
        out.update(
            base_lrs=self.base_lrs,
            last_epoch=self.last_epoch,
            _step_count=self._step_count,
            _is_initial=False,
            _get_lr_called_within_step=False,
            _last_lr=self.get_last_lr(),
        )
        fn = self._scale_fn_custom
        out["_scale_fn_custom"] = None
        if fn is not None and not isinstance(fn, types.FunctionType):
            out["_scale_fn_custom"] = fn.__dict__.copy()
        return out

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        fn = state_dict.get("_scale_fn_custom")
        if fn is not None and self._scale_fn_custom is None:
            raise ValueError("state_dict holds a custom scale_fn state but this CyclicLR has no scale_fn")
        super().load_state_dict(state_dict)
        if fn is not None:
            self._scale_fn_custom.__dict__.update(fn)
        self._core.init_scale_fn()

    def _get_param(self, key: str) -> Any:
        value = getattr(self._core.params, key)
        return list(value) if isinstance(value, list) else value

    def _check_params(self, params: Dict[str, Any]) -> None:
        n = len(self.optimizer.param_groups)
        for key in ("max_lrs", "base_momentums", "max_momentums"):
            if key in params:
                if not isinstance(params[key], (list, tuple)) or len(params[key]) != n:
                    raise ValueError(f"{key} must be a list of {n} values")
                [real(v, key) for v in params[key]]
        for key in ("total_size", "step_ratio", "gamma"):
            if key in params:
                real(params[key], key)
        if "mode" in params and params["mode"] not in ("triangular", "triangular2", "exp_range") \
                and self._scale_fn_custom is None:
            raise ValueError("mode is invalid and scale_fn is None")
        if params.get("cycle_momentum") and not _has_momentum(self.optimizer):
            raise ValueError(_NO_MOMENTUM)
        if params.get("cycle_momentum") and not self.cycle_momentum:
            missing = [k for k in ("base_momentums", "max_momentums") if k not in params]
            if missing:
                raise KeyError(f"state_dict is missing {missing}")

    def _set_param(self, key: str, value: Any) -> None:
        if isinstance(value, tuple):
            value = list(value)
        if key in ("max_lrs", "base_momentums", "max_momentums"):
            value = [float(v) for v in value]
        elif key in ("total_size", "step_ratio", "gamma"):
            value = float(value)
        setattr(self._core.params, key, value)


class OneCycleLR(LRScheduler):
    r"""The 1cycle policy, stepped after every batch, as ``torch.optim.lr_scheduler.OneCycleLR``.

    The lr rises from ``initial_lr = max_lr / div_factor`` to ``max_lr`` over the first ``pct_start`` of
    ``total_steps`` (or ``epochs * steps_per_epoch``), then falls to ``min_lr = initial_lr /
    final_div_factor`` (with ``three_phase``: back to ``initial_lr``, then to ``min_lr``). Within a phase
    from ``start`` to ``end`` at fraction ``p``:

    .. math::
        \text{cos: } end + \frac{start - end}{2}(1 + \cos \pi p), \qquad \text{linear: } start + (end - start) p

    Momentum (``betas[0]`` for the Adam family) moves inversely between ``max_momentum`` and
    ``base_momentum``. Construction writes ``initial_lr``, ``max_lr``, ``min_lr``, ``max_momentum`` and
    ``base_momentum`` into each param group (read back at every step, as torch); stepping more than
    ``total_steps`` times raises ``ValueError``.

    >>> import numpy as np, fastoptim
    >>> opt = fastoptim.SGD([np.zeros(1)], lr=0.1, momentum=0.9)
    >>> sched = fastoptim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=5, anneal_strategy="linear")
    >>> lrs = []
    >>> for batch in range(4):
    ...     opt.step([np.ones(1)])
    ...     sched.step()
    ...     lrs.append(round(sched.get_last_lr()[0], 6))
    >>> lrs
    [0.857143, 0.57143, 0.285717, 4e-06]
    """

    _params = ("total_steps", "_schedule_phases", "_anneal_func_type", "cycle_momentum", "use_beta1")
    _cycles_momentum_attr = "cycle_momentum"
    _GROUP_KEYS = (("max_lr", "max_lrs"), ("min_lr", "min_lrs"), ("max_momentum", "max_momentums"),
                   ("base_momentum", "base_momentums"))

    def __init__(
        self,
        optimizer: Any,
        max_lr: Union[float, List[float]],
        total_steps: Optional[int] = None,
        epochs: Optional[int] = None,
        steps_per_epoch: Optional[int] = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: Union[float, List[float]] = 0.85,
        max_momentum: Union[float, List[float]] = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        last_epoch: int = -1,
    ) -> None:
        check_optimizer(optimizer)
        last_epoch = integer(last_epoch, "last_epoch")
        if total_steps is not None:
            if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps <= 0:
                raise ValueError(f"Expected positive integer total_steps, but got {total_steps}")
        elif epochs is not None and steps_per_epoch is not None:
            if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0:
                raise ValueError(f"Expected positive integer epochs, but got {epochs}")
            if isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int) or steps_per_epoch <= 0:
                raise ValueError(f"Expected positive integer steps_per_epoch, but got {steps_per_epoch}")
        else:
            raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
        if not isinstance(pct_start, float) or pct_start < 0 or pct_start > 1:
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        if anneal_strategy not in ["cos", "linear"]:
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        n = len(optimizer.param_groups)
        max_lrs = per_group(max_lr, n, "max_lr")
        div_factor = real(div_factor, "div_factor")
        final_div_factor = real(final_div_factor, "final_div_factor")
        if last_epoch == -1 and n > 0 and (div_factor == 0 or final_div_factor == 0):
            # torch computes max_lr / div_factor / final_div_factor into the groups, before the momentum checks.
            raise ZeroDivisionError("float division by zero")
        cycle_momentum = bool(cycle_momentum)
        max_m, base_m = [0.95] * n, [0.85] * n
        if cycle_momentum:
            if not _has_momentum(optimizer):
                raise ValueError(_NO_MOMENTUM)
            max_m = per_group(max_momentum, n, "max_momentum")
            base_m = per_group(base_momentum, n, "base_momentum")
        min_lrs: List[float] = []
        if last_epoch != -1:
            check_resume(optimizer, last_epoch)  # torch's base constructor checks this before reading max_lr
            # Resuming: like torch, the schedule reads the values the first run stored in the groups.
            groups = optimizer.param_groups
            max_lrs = [real(g["max_lr"], "max_lr") for g in groups]
            min_lrs = [real(g["min_lr"], "min_lr") for g in groups]
            if cycle_momentum:
                max_m = [real(g["max_momentum"], "max_momentum") for g in groups]
                base_m = [real(g["base_momentum"], "base_momentum") for g in groups]
        self._args = (max_lrs, total_steps, epochs, steps_per_epoch, float(pct_start), anneal_strategy,
                      cycle_momentum, base_m, max_m, div_factor, final_div_factor, bool(three_phase))
        self._min_lrs = min_lrs
        super().__init__(optimizer, last_epoch)
        if last_epoch == -1:
            p = self._core.params
            for i, group in enumerate(optimizer.param_groups):
                group["max_lr"] = p.max_lrs[i]
                group["min_lr"] = p.min_lrs[i]
                if cycle_momentum:
                    group["max_momentum"] = p.max_momentums[i]
                    group["base_momentum"] = p.base_momentums[i]

    def _make_core(self, groups, last_epoch):
        return _ls.OneCycleLR(groups, *self._args, last_epoch, self._min_lrs)

    def _prepare_step(self) -> None:
        """torch reads max_lr, min_lr, max_momentum and base_momentum from the param groups at every step."""
        groups = self.optimizer.param_groups
        p = self._core.params
        for key, attr in self._GROUP_KEYS:
            if all(key in g for g in groups):
                values = [real(g[key], key) for g in groups]
                if values != list(getattr(p, attr)):
                    setattr(p, attr, values)

    @property
    def cycle_momentum(self) -> bool:
        return self._core.params.cycle_momentum

    total_steps = param_property("total_steps")
    use_beta1 = property(lambda self: self._core.params.use_beta1)

    def state_dict(self) -> Dict[str, Any]:
        out = super().state_dict()
        if not self.cycle_momentum:
            out.pop("use_beta1")
        return out

    def _get_param(self, key: str) -> Any:
        p = self._core.params
        if key == "_schedule_phases":
            out = []
            phases = p.schedule_phases
            for i, ph in enumerate(phases):
                end = ph.end_step
                if i == len(phases) - 1 and float(end).is_integer():
                    end = int(end)  # torch's last phase ends at the int total_steps - 1
                out.append(dict(end_step=end, start_lr=ph.start_lr, end_lr=ph.end_lr,
                                start_momentum=ph.start_momentum, end_momentum=ph.end_momentum))
            return out
        if key == "_anneal_func_type":
            return p.anneal_func_type
        return getattr(p, key)

    def _check_params(self, params: Dict[str, Any]) -> None:
        names = ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum")
        if "total_steps" in params:
            t = integer(params["total_steps"], "total_steps")
            if t <= 0:
                raise ValueError(f"Expected positive integer total_steps, but got {t}")
        if "_schedule_phases" in params:
            phases = params["_schedule_phases"]
            if not isinstance(phases, (list, tuple)) or not phases:
                raise ValueError("_schedule_phases must be a non-empty list")
            for ph in phases:
                if not isinstance(ph, dict):
                    raise ValueError("_schedule_phases entries must be dicts")
                real(ph["end_step"], "end_step")
                for k in ("start_lr", "end_lr", "start_momentum", "end_momentum"):
                    if ph[k] not in names:
                        raise ValueError(f"unknown schedule value {ph[k]!r}")
        if "_anneal_func_type" in params and params["_anneal_func_type"] not in ("cos", "linear"):
            raise ValueError(f"Unknown _anneal_func_type: {params['_anneal_func_type']}")
        if params.get("cycle_momentum") and not _has_momentum(self.optimizer):
            raise ValueError(_NO_MOMENTUM)

    def _set_param(self, key: str, value: Any) -> None:
        p = self._core.params
        if key == "_schedule_phases":
            p.schedule_phases = [_ls.OneCycleLRPhase(float(ph["end_step"]), ph["start_lr"], ph["end_lr"],
                                                     ph["start_momentum"], ph["end_momentum"]) for ph in value]
        elif key == "_anneal_func_type":
            p.anneal_func_type = value
        else:
            setattr(p, key, value)
