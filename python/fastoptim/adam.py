"""fastoptim.Adam and fastoptim.AdamW, as torch.optim.Adam and torch.optim.AdamW."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Tuple

import numpy as np

from . import _core
from ._common import check_fused_foreach, check_unsupported, learning_rate, nonneg
from .adamax import _betas
from .optimizer import Optimizer, _flag, _real

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), with AMSGrad (Reddi et al., 2018) and decoupled weight decay
    (Loshchilov & Hutter, 2019) as options. Matches ``torch.optim.Adam`` (torch 2.13) step for step::

        g = -grad if maximize else grad
        p = p * (1 - lr * weight_decay)          if decoupled_weight_decay
        g = g + weight_decay * p                 otherwise
        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g;  v_max = max(v_max, v)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v or v_max) / sqrt(1 - beta2**t) + eps)

    Note that ``eps`` is added after the bias correction of ``sqrt(v)``, as torch does (optax adds it
    before). State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (amsgrad).

    Example (Adam's first step moves every coordinate by about ``lr``, whatever the gradient's scale)::

        >>> import numpy as np, fastoptim
        >>> w = np.array([1.0, -2.0])
        >>> opt = fastoptim.Adam([w], lr=0.1)
        >>> opt.step([np.array([0.5, -4.0])])
        >>> w
        array([ 0.9, -1.9])
        >>> sorted(opt.state[0])
        ['exp_avg', 'exp_avg_sq', 'step']
    """

    _low_precision = True
    _state_keys = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _kernel = staticmethod(_core.adam_step)
    _drive = staticmethod(_core.adam_drive)

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: Optional[bool] = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: Optional[bool] = None,
        decoupled_weight_decay: bool = False,
        state_dtype: Any = None,
        master_weights: bool = False,
        stochastic_rounding: bool = False,
        rounding_seed: int = 0,
    ) -> None:
        defaults: Dict[str, Any] = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
            foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        self._hyper(defaults)
        _check_beta_types(defaults["betas"], foreach)
        defaults["betas"] = tuple(defaults["betas"])
        super().__init__(
            params, defaults, state_dtype=state_dtype, master_weights=master_weights,
            stochastic_rounding=stochastic_rounding, rounding_seed=rounding_seed,
        )
        check_fused_foreach(fused, foreach)

    def _hyper(self, group: Dict[str, Any], stepping: bool = False) -> tuple:
        lr = learning_rate(group, stepping)
        eps = nonneg(group, "eps", "epsilon value")
        beta1, beta2 = _betas(group, stepping)
        weight_decay = nonneg(group, "weight_decay", "weight_decay value")
        amsgrad = _flag(group["amsgrad"], "amsgrad")
        maximize = _flag(group["maximize"], "maximize")
        decoupled = _flag(group["decoupled_weight_decay"], "decoupled_weight_decay")
        check_unsupported(group)
        return (lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled)

    def _item(self, index, group_index, p, g, state, added, group):
        step = self._next_step(state, index)
        exp_avg = self._buffer(state, added, "exp_avg", p)
        exp_avg_sq = self._buffer(state, added, "exp_avg_sq", p)
        max_sq = self._buffer(state, added, "max_exp_avg_sq", p) if group["amsgrad"] else None
        return (index, group_index, p, g, exp_avg, exp_avg_sq, max_sq, step), step


def _check_beta_types(betas: Any, foreach: Any) -> None:
    """torch's Adam and AdamW constructors (only): both betas Python floats, or both tensors (0-d arrays
    here; with foreach=True torch refuses those, capturable being unsupported here)."""
    arrays = isinstance(betas[0], np.ndarray) and isinstance(betas[1], np.ndarray)
    if not (arrays or (isinstance(betas[0], float) and isinstance(betas[1], float))):
        raise ValueError("betas must be either both floats or both Tensors")
    if arrays and foreach:
        raise ValueError("betas[0] as a Tensor is not supported for capturable=False and foreach=True")


class AdamW(Adam):
    r"""AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay, default ``weight_decay=1e-2``.

    As ``torch.optim.AdamW`` in torch 2.13, this is Adam with ``decoupled_weight_decay=True`` always.

    Example (the decay ``p *= 1 - lr * weight_decay`` comes before the Adam step)::

        >>> import numpy as np, fastoptim
        >>> w = np.array([1.0, -2.0])
        >>> opt = fastoptim.AdamW([w], lr=0.1, weight_decay=0.5)
        >>> opt.step([np.array([0.5, -4.0])])
        >>> w
        array([ 0.85, -1.8 ])
    """

    _forced = {"decoupled_weight_decay": True}

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: Optional[bool] = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: Optional[bool] = None,
        state_dtype: Any = None,
        master_weights: bool = False,
        stochastic_rounding: bool = False,
        rounding_seed: int = 0,
    ) -> None:
        super().__init__(
            params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
            capturable=capturable, differentiable=differentiable, fused=fused, decoupled_weight_decay=True,
            state_dtype=state_dtype, master_weights=master_weights, stochastic_rounding=stochastic_rounding,
            rounding_seed=rounding_seed,
        )
