"""fastoptim.RMSprop, as torch.optim.RMSprop."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional

from . import _core
from ._common import check_unsupported, learning_rate, nonneg
from .optimizer import Optimizer, _flag

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop (Hinton, Lecture 6e), centered variant as Graves (2013). Matches ``torch.optim.RMSprop``
    (torch 2.13) step for step::

        g = -grad if maximize else grad;  g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        avg = sqrt(v - ga * ga) + eps  with ga = lerp(ga, g, 1 - alpha)   if centered
        avg = sqrt(v) + eps                                               otherwise
        buf = momentum * buf + g / avg;  p = p - lr * buf                 if momentum > 0
        p = p - lr * g / avg                                              otherwise

    State per parameter: ``step``, ``square_avg``, ``momentum_buffer`` (momentum > 0), ``grad_avg``
    (centered).

    Example::

        >>> import numpy as np, fastoptim
        >>> w = np.array([1.0, -2.0])
        >>> opt = fastoptim.RMSprop([w], lr=0.01)
        >>> opt.step([np.array([0.5, -4.0])])
        >>> w                                     # lr * g / sqrt((1 - alpha) * g * g): 10 * lr per coordinate
        array([ 0.9..., -1.9...])
    """

    _low_precision = True
    _state_keys = ("square_avg", "momentum_buffer", "grad_avg")
    _kernel = staticmethod(_core.rmsprop_step)
    _drive = staticmethod(_core.rmsprop_drive)

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: Optional[bool] = None,
        maximize: bool = False,
        differentiable: bool = False,
            *,
        state_dtype: Any = None,
        master_weights: bool = False,
        stochastic_rounding: bool = False,
        rounding_seed: int = 0,
    ) -> None:
        defaults = dict(
            lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered, weight_decay=weight_decay,
            capturable=capturable, foreach=foreach, maximize=maximize, differentiable=differentiable,
        )
        self._hyper(defaults)
        super().__init__(
            params, defaults, state_dtype=state_dtype, master_weights=master_weights,
            stochastic_rounding=stochastic_rounding, rounding_seed=rounding_seed,
        )

    def _hyper(self, group: Dict[str, Any], stepping: bool = False) -> tuple:
        lr = learning_rate(group, stepping)
        eps = nonneg(group, "eps", "epsilon value")
        momentum = nonneg(group, "momentum", "momentum value")
        weight_decay = nonneg(group, "weight_decay", "weight_decay value")
        alpha = nonneg(group, "alpha", "alpha value")
        centered = _flag(group["centered"], "centered")
        maximize = _flag(group["maximize"], "maximize")
        check_unsupported(group)
        return (lr, alpha, eps, weight_decay, momentum, centered, maximize)

    def _item(self, index, group_index, p, g, state, added, group):
        step = self._next_step(state, index)
        square_avg = self._buffer(state, added, "square_avg", p)
        # momentum_buffer before grad_avg: torch's key order
        momentum_buffer = self._buffer(state, added, "momentum_buffer", p) if group["momentum"] > 0 else None
        grad_avg = self._buffer(state, added, "grad_avg", p) if group["centered"] else None
        return (index, group_index, p, g, square_avg, grad_avg, momentum_buffer), step
