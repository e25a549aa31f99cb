"""fastoptim.NAdam, as torch.optim.NAdam."""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, Optional, Tuple

import numpy as np

from . import _core
from ._common import check_unsupported, learning_rate, nonneg
from .adamax import _betas
from .optimizer import Optimizer, _flag, _real, _scalar

__all__ = ["NAdam"]


class NAdam(Optimizer):
    r"""NAdam (Dozat, 2016, "Incorporating Nesterov Momentum into Adam"), with decoupled weight decay
    (Loshchilov & Hutter, 2019) as an option. Matches ``torch.optim.NAdam`` (torch 2.13) step for step::

        g = -grad if maximize else grad
        p = p * (1 - lr * weight_decay)          if decoupled_weight_decay
        g = g + weight_decay * p                 otherwise
        mu_t = beta1 * (1 - 0.5 * 0.96**(t * momentum_decay));  mu_product = mu_product * mu_t
        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
        denom = sqrt(v / (1 - beta2**t)) + eps
        p = p - lr * (1 - mu_t) / (1 - mu_product) * g / denom
        p = p - lr * mu_{t+1} / (1 - mu_product * mu_{t+1}) * m / denom

    State per parameter: ``step``, ``mu_product``, ``exp_avg``, ``exp_avg_sq``. As in torch, ``mu_product``
    is a 0-d float32 array (torch's default dtype; each update rounds to it). torch's ``load_state_dict``
    casts it to the parameter's dtype, which changes the roundings of a float64 run after a reload; ours
    keeps the dtype it is given (float32 or float64), so a reload resumes bit for bit, and a torch state
    dict resumes exactly as the torch optimizer that saved it would have continued.

    Example (two steps on the same gradient)::

        >>> import numpy as np, fastoptim
        >>> w = np.array([1.0, -2.0])
        >>> opt = fastoptim.NAdam([w], lr=0.1)
        >>> for _ in range(2):
        ...     opt.step([np.array([0.5, -4.0])])
        >>> w
        array([ 0.81598..., -1.81598...])
        >>> sorted(opt.state[0])
        ['exp_avg', 'exp_avg_sq', 'mu_product', 'step']
    """

    _low_precision = True
    _state_keys = ("exp_avg", "exp_avg_sq")
    _scalar_state_keys = ("mu_product",)  # 0-d, with its own dtype (fastoptim.save/load need to know)
    _kernel = staticmethod(_core.nadam_step)
    _drive = staticmethod(_core.nadam_drive)

    def __init__(
        self,
        params: Iterable,
        lr: float = 2e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: Optional[bool] = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        state_dtype: Any = None,
        master_weights: bool = False,
        stochastic_rounding: bool = False,
        rounding_seed: int = 0,
    ) -> None:
        defaults: Dict[str, Any] = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
            capturable=capturable, differentiable=differentiable,
        )
        self._hyper(defaults)
        super().__init__(
            params, defaults, state_dtype=state_dtype, master_weights=master_weights,
            stochastic_rounding=stochastic_rounding, rounding_seed=rounding_seed,
        )

    def _hyper(self, group: Dict[str, Any], stepping: bool = False) -> tuple:
        lr = learning_rate(group, stepping)
        eps = nonneg(group, "eps", "epsilon value")
        beta1, beta2 = _betas(group, stepping)
        weight_decay = nonneg(group, "weight_decay", "weight_decay value")
        momentum_decay = nonneg(group, "momentum_decay", "momentum_decay value")
        decoupled = _flag(group["decoupled_weight_decay"], "decoupled_weight_decay")
        maximize = _flag(group["maximize"], "maximize")
        check_unsupported(group)
        return (lr, beta1, beta2, eps, weight_decay, momentum_decay, decoupled, maximize)

    def _item(self, index, group_index, p, g, state, added, group):
        step = self._next_step(state, index)
        mu_product = state.get("mu_product")
        if mu_product is None:  # before the buffers: torch's key order
            mu_product = added["mu_product"] = np.ones((), np.float32)
        exp_avg = self._buffer(state, added, "exp_avg", p)
        exp_avg_sq = self._buffer(state, added, "exp_avg_sq", p)
        # The kernel call validates it and advances it in place, as torch's `mu_product *= mu`.
        return (index, group_index, p, g, exp_avg, exp_avg_sq, mu_product, step), step

    def _load_entry(self, entry: Any, p: np.ndarray, index: int) -> Dict[str, Any]:
        if not isinstance(entry, dict) or "mu_product" not in entry:
            return super()._load_entry(entry, p, index)
        rest = {k: v for k, v in entry.items() if k != "mu_product"}
        out = super()._load_entry(rest, p, index)
        # torch's load_state_dict casts every state tensor but 'step' to the parameter's dtype
        out["mu_product"] = _mu_product(entry["mu_product"], index, p.dtype)
        return out


def _mu_product(value: Any, index: int, param_dtype: np.dtype) -> np.ndarray:
    """A loaded mu_product as our 0-d array, of the parameter's dtype as torch's load_state_dict casts it
    (float32 for 16-bit parameters, whose kernels take a float32 one)."""
    where = f"state 'mu_product' of parameter {index}"
    if isinstance(value, str):
        raise TypeError(f"{where} must be a number, got str")
    dtype: Any = np.float64 if param_dtype == np.float64 else np.float32
    mu_product = _real(_scalar(value, where), where)
    with np.errstate(over="ignore"):
        arr = np.array(mu_product, dtype=dtype)
    if not np.isfinite(arr):  # a float past float32's range would be inf there
        raise ValueError(f"{where} must be finite in {arr.dtype}, got {mu_product}")
    return arr
