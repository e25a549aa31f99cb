"""fastoptim.ASGD, as torch.optim.ASGD."""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from . import _core
from ._common import check_unsupported, learning_rate, nonneg
from .optimizer import Optimizer, _flag, _real, _scalar, serialized

__all__ = ["ASGD"]

# Per-parameter scalars that torch keeps as 0-d float32 tensors (besides "step").
_SCALAR_KEYS = ("eta", "mu")


class ASGD(Optimizer):
    r"""Averaged SGD (Polyak & Juditsky, 1992, "Acceleration of Stochastic Approximation by Averaging").
    Matches ``torch.optim.ASGD`` (torch 2.13) step for step::

        g = -grad if maximize else grad;  g = g + weight_decay * p
        p = p * (1 - lambd * eta);  p = p - eta * g
        ax = ax + (p - ax) * mu   if mu != 1,   ax = p   otherwise
        eta = lr / (1 + lambd * lr * t) ** alpha;  mu = 1 / max(1, t - t0)

    ``ax``, the average of the iterates since step ``t0``, is what ASGD offers as its solution. State per
    parameter: ``step``, ``eta``, ``mu`` (0-d float32 arrays, as torch's tensors, computed in Python floats and
    rounded to float32 as torch does; loading a state dict casts them to the parameter's dtype, as torch does)
    and ``ax``. ``eta`` starts at the group's ``lr`` when the parameter's state is created.

    Where ``1 + lambd * lr * t`` is negative (a negative ``lambd``) and ``alpha`` is not an integer, ``eta`` is
    complex; torch keeps its real part with a warning, we raise ``ValueError`` and change nothing.

    Example (two steps on the same gradient)::

        >>> import numpy as np, fastoptim
        >>> w = np.array([1.0, -2.0])
        >>> opt = fastoptim.ASGD([w], lr=0.1)
        >>> for _ in range(2):
        ...     opt.step([np.array([0.5, -4.0])])
        >>> w
        array([ 0.89998..., -1.19996...])
        >>> sorted(opt.state[0])
        ['ax', 'eta', 'mu', 'step']
    """

    _low_precision = True
    _state_keys = ("ax",)
    _scalar_state_keys = _SCALAR_KEYS  # 0-d state besides "step" (checkpoints store them as scalars)
    _kernel = staticmethod(_core.asgd_step)
    _drive = staticmethod(_core.asgd_drive)

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach: Optional[bool] = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
            *,
        state_dtype: Any = None,
        master_weights: bool = False,
        stochastic_rounding: bool = False,
        rounding_seed: int = 0,
    ) -> None:
        defaults = dict(
            lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, foreach=foreach,
            maximize=maximize, differentiable=differentiable, capturable=capturable,
        )
        self._hyper(defaults)
        self._pending: List[Tuple[Dict[str, Any], str, float]] = []
        super().__init__(
            params, defaults, state_dtype=state_dtype, master_weights=master_weights,
            stochastic_rounding=stochastic_rounding, rounding_seed=rounding_seed,
        )

    def _hyper(self, group: Dict[str, Any], stepping: bool = False) -> tuple:
        lr = learning_rate(group, stepping)
        weight_decay = nonneg(group, "weight_decay", "weight_decay value")
        lambd = _real(group["lambd"], "lambd")
        alpha = _real(group["alpha"], "alpha")
        t0 = _real(group["t0"], "t0")
        maximize = _flag(group["maximize"], "maximize")
        check_unsupported(group)
        return (lr, lambd, alpha, t0, weight_decay, maximize)

    @serialized
    def step(self, grads: Sequence[Optional[np.ndarray]]) -> None:
        """Updates every parameter in place from ``grads``, as :meth:`fastoptim.Optimizer.step`."""
        # eta and mu move on once the kernel has run, in place as torch's copy_ (a failed step changes nothing).
        self._pending = []
        try:
            super().step(grads)
            for state, key, value in self._pending:
                _set_scalar(state, key, value)
        finally:
            self._pending = []

    def _item(self, index, group_index, p, g, state, added, group):
        step = self._next_step(state, index)
        lr = _real(group["lr"], "lr")
        if "eta" not in state:  # torch's lazy initialisation: eta = lr, mu = 1, ax = 0
            added["eta"] = np.array(lr, dtype=np.float32)
            added["mu"] = np.array(1.0, dtype=np.float32)
        eta = _scalar_state(added.get("eta", state.get("eta")), "eta", index)
        mu = _scalar_state(added.get("mu", state.get("mu")), "mu", index)
        ax = self._buffer(state, added, "ax", p)
        new_eta, new_mu = _next_eta_mu(lr, _real(group["lambd"], "lambd"), _real(group["alpha"], "alpha"),
                                       _real(group["t0"], "t0"), step, index)
        self._pending.append((state, "eta", new_eta))
        self._pending.append((state, "mu", new_mu))
        return (index, group_index, p, g, ax, eta, mu), step

    def _load_entry(self, entry: Any, p: np.ndarray, index: int) -> Dict[str, Any]:
        if not isinstance(entry, dict):
            return super()._load_entry(entry, p, index)  # raises
        out = super()._load_entry({k: v for k, v in entry.items() if k not in _SCALAR_KEYS}, p, index)
        for key in _SCALAR_KEYS:
            if key in entry:
                # torch's load_state_dict casts every state tensor but 'step' to the parameter's dtype.
                with np.errstate(over="ignore"):
                    out[key] = np.array(_scalar_state(entry[key], key, index), dtype=p.dtype)
                if not np.isfinite(out[key]):  # past float32's range
                    raise ValueError(f"state '{key}' of parameter {index} must be finite in {p.dtype}, "
                                     f"got {entry[key]}")
        return out


def _next_eta_mu(lr: float, lambd: float, alpha: float, t0: float, step: float, index: int) -> Tuple[float, float]:
    """torch's ``lr / ((1 + lambd * lr * step) ** alpha)`` and ``1 / max(1, step - t0)``: Python floats, the
    same operations in the same order, then rounded to float32 (``torch.as_tensor`` of a float)."""
    try:
        power = (1 + lambd * lr * step) ** alpha
        eta = lr / power
    except (ZeroDivisionError, OverflowError) as e:
        raise ValueError(
            f"ASGD cannot compute eta = lr / (1 + lambd * lr * step) ** alpha for parameter {index} at step "
            f"{step:g} (lr={lr}, lambd={lambd}, alpha={alpha}): {e}"
        ) from None
    if isinstance(power, complex):
        raise ValueError(
            f"ASGD's eta = lr / (1 + lambd * lr * step) ** alpha is complex for parameter {index} at step "
            f"{step:g} (lr={lr}, lambd={lambd}, alpha={alpha}): 1 + lambd * lr * step is negative"
        )
    mu = 1 / max(1, step - t0)
    with np.errstate(over="ignore"):
        return float(np.float32(eta)), float(np.float32(mu))


def _scalar_state(value: Any, key: str, index: int) -> float:
    """A state scalar (0-d array or number) as a float, checked finite."""
    where = f"state '{key}' of parameter {index}"
    if isinstance(value, str):
        raise TypeError(f"{where} must be a number, got str")
    v = _real(_scalar(value, where), where)
    if not math.isfinite(v):
        raise ValueError(f"{where} must be finite, got {v}")
    return v


def _set_scalar(state: Dict[str, Any], key: str, value: float) -> None:
    """Writes a state scalar in place when it is a 0-d float array of its own (torch copies into its tensor),
    else installs a new 0-d array: of the current one's dtype when that is float32 or float64 (a view, e.g. of
    a torch tensor, keeps its dtype as torch's tensor does), else float32."""
    current = state.get(key)
    if (type(current) is np.ndarray and current.shape == () and current.dtype.kind == "f"
            and current.flags.writeable and current.flags.owndata):
        current[()] = value
    else:
        dtype = current.dtype.newbyteorder("=") if isinstance(current, np.ndarray) else None
        state[key] = np.array(value, dtype=dtype if dtype in (np.float32, np.float64) else np.float32)
