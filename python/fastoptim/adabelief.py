"""fastoptim.AdaBelief: Zhuang et al. 2020, not in torch.optim."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Tuple

from . import _core
from ._betas import check_betas
from ._common import check_unsupported, learning_rate, nonneg
from .optimizer import Optimizer, _flag

__all__ = ["AdaBelief"]


class AdaBelief(Optimizer):
    r"""AdaBelief (Zhuang et al., 2020): Adam with the variance of g around its average in the denominator.

    From "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed Gradients", NeurIPS 2020,
    arXiv:2010.07468, Algorithm 2. Follows the adabelief-pytorch reference (0.2.x)
    step for step, defaults included, with ``maximize`` added. With ``t`` the parameter's step count::

        g = -grad if maximize else grad
        p = p * (1 - lr * weight_decay)      if weight_decouple (fixed_decay: p * (1 - weight_decay))
        g = g + weight_decay * p             otherwise
        m = beta1 * m + (1 - beta1) * g
        s = beta2 * s + (1 - beta2) * (g - m)**2 + eps     the "belief": variance of g around m
        s_max = max(s_max, s)                if amsgrad
        p = p - lr / (1 - beta1**t) * m / (sqrt(s or s_max) / sqrt(1 - beta2**t) + eps)

    With ``rectify`` (the default, as the reference) the last line is RAdam's (Liu et al., 2020):
    with ``rho_inf = 2 / (1 - beta2) - 1`` and ``rho_t = rho_inf - 2 t beta2**t / (1 - beta2**t)``::

        rho_t >= 5:  p = p - lr * r_t / (1 - beta1**t) * m / (sqrt(s) + eps),
                     r_t = sqrt((1 - beta2**t) (rho_t - 4) (rho_t - 2) rho_inf / ((rho_inf - 4) (rho_inf - 2) rho_t))
        otherwise:   p = p - lr / (1 - beta1**t) * m   if degenerated_to_sgd, else no update

    As the reference, ``eps`` is added to ``s`` in place every step, and with ``rectify`` the ``s_max`` of
    amsgrad is kept but not used. Unlike the reference, the flags are per param group and nothing is
    printed. State per parameter: ``step``, ``exp_avg``, ``exp_avg_var``, ``max_exp_avg_var`` (amsgrad).

    Example::

        >>> import numpy as np, fastoptim
        >>> w = np.array([1.0, -2.0])
        >>> opt = fastoptim.AdaBelief([w], lr=0.1)
        >>> opt.step([np.array([0.5, -4.0])])
        >>> w                                     # rectified: the first steps are SGD steps
        array([ 0.95, -1.6 ])
        >>> w = np.array([1.0, -2.0])
        >>> fastoptim.AdaBelief([w], lr=0.1, rectify=False).step([np.array([0.5, -4.0])])
        >>> w                                     # lr / (1 - beta1) * sign(g): s is the belief in m, not g**2
        array([ 0.88888889, -1.88888889])
    """

    _low_precision = True
    _state_keys = ("exp_avg", "exp_avg_var", "max_exp_avg_var")
    _kernel = staticmethod(_core.adabelief_step)
    _drive = staticmethod(_core.adabelief_drive)

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-16,
        weight_decay: float = 0,
        amsgrad: bool = False,
        weight_decouple: bool = True,
        fixed_decay: bool = False,
        rectify: bool = True,
        degenerated_to_sgd: bool = True,
        *,
        maximize: bool = False,
        state_dtype: Any = None,
        master_weights: bool = False,
        stochastic_rounding: bool = False,
        rounding_seed: int = 0,
    ) -> None:
        defaults: Dict[str, Any] = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
            weight_decouple=weight_decouple, fixed_decay=fixed_decay, rectify=rectify,
            degenerated_to_sgd=degenerated_to_sgd, maximize=maximize,
        )
        self._hyper(defaults)
        defaults["betas"] = tuple(defaults["betas"])
        super().__init__(
            params, defaults, state_dtype=state_dtype, master_weights=master_weights,
            stochastic_rounding=stochastic_rounding, rounding_seed=rounding_seed,
        )

    def _hyper(self, group: Dict[str, Any], stepping: bool = False) -> tuple:
        lr = learning_rate(group, stepping)
        eps = nonneg(group, "eps", "epsilon value")
        beta1, beta2 = check_betas(group, 2)
        weight_decay = nonneg(group, "weight_decay", "weight_decay value")
        flags = tuple(_flag(group[k], k) for k in ("amsgrad", "weight_decouple", "fixed_decay", "rectify",
                                                   "degenerated_to_sgd", "maximize"))
        check_unsupported(group)
        return (lr, beta1, beta2, eps, weight_decay) + flags

    def _item(self, index, group_index, p, g, state, added, group):
        step = self._next_step(state, index)
        exp_avg = self._buffer(state, added, "exp_avg", p)
        exp_avg_var = self._buffer(state, added, "exp_avg_var", p)
        max_var = self._buffer(state, added, "max_exp_avg_var", p) if group["amsgrad"] else None
        return (index, group_index, p, g, exp_avg, exp_avg_var, max_var, step), step
