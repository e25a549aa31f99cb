"""fastoptim.Adan: Xie et al. 2022, not in torch.optim."""

from __future__ import annotations

import numbers
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

from . import _core
from ._betas import check_betas
from ._common import check_unsupported, learning_rate, nonneg
from .optimizer import Optimizer, _flag, serialized

__all__ = ["Adan"]


def _group_step(group: Dict[str, Any]) -> int:
    """The group's step count (absent before its first step, as the official implementation)."""
    step = group.get("step", 0)
    if isinstance(step, (bool, np.bool_)) or not isinstance(step, (numbers.Integral, np.integer)):
        raise TypeError(f"param group 'step' must be a non-negative integer, got {type(step).__name__}")
    step = int(step)
    if not 0 <= step <= 2**53:  # as the C++ library: each step adds one, taken as a double
        raise ValueError(f"param group 'step' must be an integer in [0, 2**53], got {step}")
    return step


class Adan(Optimizer):
    r"""Adan (Xie et al., 2022): adaptive Nesterov momentum from averages of gradients and their differences.

    From "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep Models", arXiv:2208.06677,
    Algorithm 1. Follows the official implementation
    (sail-sg/Adan, ``adan.py``) step for step, with ``maximize`` added. With ``t`` the group's step count::

        g = -grad if maximize else grad
        d = g - g_prev                                    (0 on the group's first step)
        m = beta1 * m + (1 - beta1) * g                   exp_avg
        a = beta2 * a + (1 - beta2) * d                   exp_avg_diff
        n = beta3 * n + (1 - beta3) * (g + beta2 * d)**2  exp_avg_sq
        denom = sqrt(n) / sqrt(1 - beta3**t) + eps
        p = p - lr / (1 - beta1**t) * m / denom - lr * beta2 / (1 - beta2**t) * a / denom
        p = p / (1 + lr * weight_decay)                   (no_prox: p * (1 - lr * weight_decay) first instead)

    Note the official betas are the decay rates of the averages (the paper's 1 - beta). As the official
    implementation, the step count belongs to the param group (``group["step"]``, advanced at every
    ``step()`` for every group) and the state keeps ``neg_pre_grad`` = -g for the next difference. State per
    parameter: ``exp_avg``, ``exp_avg_sq``, ``exp_avg_diff``, ``neg_pre_grad``.

    The paper's restart (Algorithm 2) is ``restart_opt()``, the official method: call it when your restart
    condition holds. The official ``max_grad_norm`` global clipping is not provided.

    Example::

        >>> import numpy as np, fastoptim
        >>> w = np.array([1.0, -2.0])
        >>> opt = fastoptim.Adan([w], lr=0.1)
        >>> opt.step([np.array([0.5, -4.0])])
        >>> opt.step([np.array([0.5, -2.0])])
        >>> opt.param_groups[0]["step"], opt.state[0]["exp_avg_diff"]   # (1 - beta2) * (g2 - g1)
        (2, array([0.  , 0.16]))
        >>> w
        array([ 0.8       , -1.82805027])
    """

    _low_precision = True
    _state_keys = ("exp_avg", "exp_avg_sq", "exp_avg_diff", "neg_pre_grad")
    _kernel = staticmethod(_core.adan_step)
    _drive = staticmethod(_core.adan_drive)

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: Tuple[float, float, float] = (0.98, 0.92, 0.99),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        no_prox: bool = False,
        foreach: Optional[bool] = None,
        *,
        maximize: bool = False,
        state_dtype: Any = None,
        master_weights: bool = False,
        stochastic_rounding: bool = False,
        rounding_seed: int = 0,
    ) -> None:
        defaults: Dict[str, Any] = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, no_prox=no_prox,
                                        foreach=foreach, maximize=maximize)
        self._next_steps: Dict[int, int] = {}
        self._hyper(defaults)
        defaults["betas"] = tuple(defaults["betas"])
        super().__init__(
            params, defaults, state_dtype=state_dtype, master_weights=master_weights,
            stochastic_rounding=stochastic_rounding, rounding_seed=rounding_seed,
        )

    def _hyper(self, group: Dict[str, Any], stepping: bool = False) -> tuple:
        lr = learning_rate(group, stepping)
        eps = nonneg(group, "eps", "epsilon value")
        beta1, beta2, beta3 = check_betas(group, 3)
        weight_decay = nonneg(group, "weight_decay", "weight_decay value")
        no_prox = _flag(group["no_prox"], "no_prox")
        maximize = _flag(group["maximize"], "maximize")
        step = _group_step(group)
        check_unsupported(group)
        if stepping:
            self._next_steps[id(group)] = step + 1
        # The last element, the group's step after increment, is the C++ driver's (the kernel reads the first eight).
        return (lr, beta1, beta2, beta3, eps, weight_decay, no_prox, maximize, float(step + 1))

    @serialized
    def step(self, grads: Sequence[Optional[np.ndarray]]) -> None:
        self._next_steps = {}
        super().step(grads)
        # Only once the kernel has run: a step that raises leaves every group's count as it was.
        for group in self.param_groups:
            group["step"] = self._next_steps[id(group)]

    step.__doc__ = Optimizer.step.__doc__

    def _item(self, index, group_index, p, g, state, added, group):
        step = self._next_steps[id(group)]
        first = "neg_pre_grad" not in state or step == 1  # the official reinitialisation of neg_pre_grad
        exp_avg = self._buffer(state, added, "exp_avg", p)
        exp_avg_sq = self._buffer(state, added, "exp_avg_sq", p)
        exp_avg_diff = self._buffer(state, added, "exp_avg_diff", p)
        neg_pre_grad = self._buffer(state, added, "neg_pre_grad", p)
        return (index, group_index, p, g, exp_avg, exp_avg_sq, exp_avg_diff, neg_pre_grad, float(step), first), None

    def restart_opt(self) -> None:
        """Restarts the moments, as the official ``restart_opt``: every group's step goes back to 0 and
        ``exp_avg``, ``exp_avg_sq``, ``exp_avg_diff`` to zeros (in place); ``neg_pre_grad`` is reset from the
        gradient at the next step."""
        for group in self.param_groups:
            group["step"] = 0
        for state in self.state.values():
            for key in ("exp_avg", "exp_avg_sq", "exp_avg_diff"):
                if key in state:
                    state[key][...] = 0
