"""fastoptim.Adadelta, as torch.optim.Adadelta."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional

from . import _core
from ._common import check_unsupported, learning_rate, nonneg
from .optimizer import Optimizer, _flag, _real

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler, 2012, "ADADELTA: An Adaptive Learning Rate Method"). Matches
    ``torch.optim.Adadelta`` (torch 2.13) step for step::

        g = -grad if maximize else grad;  g = g + weight_decay * p
        v = rho * v + (1 - rho) * g * g
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta
        p = p - lr * delta

    State per parameter: ``step``, ``square_avg`` (v), ``acc_delta`` (u).

    Example (two steps on the same gradient; Adadelta's first steps are about sqrt(eps))::

        >>> import numpy as np, fastoptim
        >>> w = np.array([1.0, -2.0])
        >>> opt = fastoptim.Adadelta([w], lr=1.0)
        >>> for _ in range(2):
        ...     opt.step([np.array([0.5, -4.0])])
        >>> w
        array([ 0.99359..., -1.99359...])
        >>> sorted(opt.state[0])
        ['acc_delta', 'square_avg', 'step']
    """

    _low_precision = True
    _state_keys = ("square_avg", "acc_delta")
    _kernel = staticmethod(_core.adadelta_step)
    _drive = staticmethod(_core.adadelta_drive)

    def __init__(
        self,
        params: Iterable,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: Optional[bool] = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
        state_dtype: Any = None,
        master_weights: bool = False,
        stochastic_rounding: bool = False,
        rounding_seed: int = 0,
    ) -> None:
        defaults = dict(
            lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize, capturable=capturable,
            foreach=foreach, differentiable=differentiable,
        )
        self._hyper(defaults)
        super().__init__(
            params, defaults, state_dtype=state_dtype, master_weights=master_weights,
            stochastic_rounding=stochastic_rounding, rounding_seed=rounding_seed,
        )

    def _hyper(self, group: Dict[str, Any], stepping: bool = False) -> tuple:
        lr = learning_rate(group, stepping)
        rho = _real(group["rho"], "rho")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {group['rho']}")
        eps = nonneg(group, "eps", "epsilon value")
        weight_decay = nonneg(group, "weight_decay", "weight_decay value")
        maximize = _flag(group["maximize"], "maximize")
        check_unsupported(group)
        return (lr, rho, eps, weight_decay, maximize)

    def _item(self, index, group_index, p, g, state, added, group):
        step = self._next_step(state, index)
        square_avg = self._buffer(state, added, "square_avg", p)
        acc_delta = self._buffer(state, added, "acc_delta", p)
        return (index, group_index, p, g, square_avg, acc_delta), step
