"""fastoptim.RAdam, as torch.optim.RAdam."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Tuple

from . import _core
from ._common import check_unsupported, learning_rate, nonneg
from .adamax import _betas
from .optimizer import Optimizer, _flag

__all__ = ["RAdam"]


class RAdam(Optimizer):
    r"""RAdam (Liu et al., 2020, "On the Variance of the Adaptive Learning Rate and Beyond"), with
    decoupled weight decay (Loshchilov & Hutter, 2019) as an option. Matches ``torch.optim.RAdam``
    (torch 2.13) step for step::

        g = -grad if maximize else grad
        p = p * (1 - lr * weight_decay)          if decoupled_weight_decay
        g = g + weight_decay * p                 otherwise
        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g * g
        rho_inf = 2 / (1 - beta2) - 1;  rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)
        if rho_t > 5:  p = p - lr * m / (1 - beta1**t) * sqrt(1 - beta2**t) / (sqrt(v) + eps) * r_t,
                       r_t = sqrt((rho_t - 4) (rho_t - 2) rho_inf / ((rho_inf - 4) (rho_inf - 2) rho_t))
        else:          p = p - lr * m / (1 - beta1**t)

    The switch on rho_t > 5 is torch's (the paper's is rho_t > 4): with the default beta2 = 0.999 the
    first five steps are momentum SGD. State per parameter: ``step``, ``exp_avg``, ``exp_avg_sq``.

    Example (two steps on the same gradient; rectification starts at step 6, before it RAdam is SGD with momentum)::

        >>> import numpy as np, fastoptim
        >>> w = np.array([1.0, -2.0])
        >>> opt = fastoptim.RAdam([w], lr=0.1)
        >>> for _ in range(2):
        ...     opt.step([np.array([0.5, -4.0])])
        >>> w
        array([ 0.9, -1.2])
        >>> sorted(opt.state[0])
        ['exp_avg', 'exp_avg_sq', 'step']
    """

    _low_precision = True
    _state_keys = ("exp_avg", "exp_avg_sq")
    _kernel = staticmethod(_core.radam_step)
    _drive = staticmethod(_core.radam_drive)

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
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
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize, foreach=foreach,
            capturable=capturable, decoupled_weight_decay=decoupled_weight_decay, differentiable=differentiable,
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
        decoupled = _flag(group["decoupled_weight_decay"], "decoupled_weight_decay")
        maximize = _flag(group["maximize"], "maximize")
        check_unsupported(group)
        return (lr, beta1, beta2, eps, weight_decay, decoupled, maximize)

    def _item(self, index, group_index, p, g, state, added, group):
        step = self._next_step(state, index)
        exp_avg = self._buffer(state, added, "exp_avg", p)
        exp_avg_sq = self._buffer(state, added, "exp_avg_sq", p)
        return (index, group_index, p, g, exp_avg, exp_avg_sq, step), step
