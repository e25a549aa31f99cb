"""fastoptim.Lion: Chen et al. 2023, not in torch.optim."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Tuple

from . import _core
from ._betas import check_betas
from ._common import check_unsupported, learning_rate, nonneg
from .optimizer import Optimizer, _flag

__all__ = ["Lion"]


class Lion(Optimizer):
    r"""Lion (Chen et al., 2023): the sign of an interpolated momentum, a step of exactly lr per element.

    EvoLved Sign Momentum, from "Symbolic Discovery of Optimization Algorithms", arXiv:2302.06675,
    Algorithm 2. Follows the lion-pytorch reference implementation step for step, with
    ``maximize`` added::

        g = -grad if maximize else grad
        p = p * (1 - lr * weight_decay)
        c = beta1 * m + (1 - beta1) * g
        p = p - lr * sign(c)
        m = beta2 * m + (1 - beta2) * g

    Every element moves by exactly ``lr`` (or not at all where ``c == 0``), so Lion wants a learning rate
    3-10x smaller than AdamW's and a weight decay 3-10x larger. State per parameter: ``exp_avg`` (no step
    count: nothing is bias-corrected). ``betas`` may include 1, as the reference allows.

    Example::

        >>> import numpy as np, fastoptim
        >>> w = np.array([1.0, -2.0])
        >>> opt = fastoptim.Lion([w], lr=0.1)
        >>> opt.step([np.array([0.5, -4.0])])
        >>> w                                     # every element moves by exactly lr
        array([ 0.9, -1.9])
        >>> opt.state[0]["exp_avg"]               # (1 - beta2) * g
        array([ 0.005, -0.04 ])
    """

    _low_precision = True
    _state_keys = ("exp_avg",)
    _kernel = staticmethod(_core.lion_step)
    _drive = staticmethod(_core.lion_drive)

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-4,
        betas: Tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        state_dtype: Any = None,
        master_weights: bool = False,
        stochastic_rounding: bool = False,
        rounding_seed: int = 0,
    ) -> None:
        defaults: Dict[str, Any] = dict(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize)
        self._hyper(defaults)
        defaults["betas"] = tuple(defaults["betas"])
        super().__init__(
            params, defaults, state_dtype=state_dtype, master_weights=master_weights,
            stochastic_rounding=stochastic_rounding, rounding_seed=rounding_seed,
        )

    def _hyper(self, group: Dict[str, Any], stepping: bool = False) -> tuple:
        lr = learning_rate(group, stepping)
        beta1, beta2 = check_betas(group, 2, closed=True)
        weight_decay = nonneg(group, "weight_decay", "weight_decay value")
        maximize = _flag(group["maximize"], "maximize")
        check_unsupported(group)
        return (lr, beta1, beta2, weight_decay, maximize)

    def _item(self, index, group_index, p, g, state, added, group):
        exp_avg = self._buffer(state, added, "exp_avg", p)
        return (index, group_index, p, g, exp_avg), None
