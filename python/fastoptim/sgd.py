"""fastoptim.SGD: stochastic gradient descent, as torch.optim.SGD."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional

import numpy as np

from . import _core
from ._common import check_fused_foreach, check_unsupported, learning_rate, nonneg
from .optimizer import Optimizer, _flag, _real

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay.

    Matches ``torch.optim.SGD`` (torch 2.13) step for step::

        g = -grad if maximize else grad
        g = g + weight_decay * p
        buf = g  (first step)  |  momentum * buf + (1 - dampening) * g
        g = g + momentum * buf  if nesterov else buf
        p = p - lr * g

    State per parameter: ``momentum_buffer`` (only when ``momentum != 0``).

    Example (two steps of heavy-ball momentum; the first step's buffer is the gradient itself, as in torch)::

        >>> import numpy as np, fastoptim
        >>> w = np.array([1.0, -2.0])
        >>> opt = fastoptim.SGD([w], lr=0.1, momentum=0.9)
        >>> for _ in range(2):
        ...     opt.step([np.array([0.5, 0.5])])   # w is updated in place
        >>> w
        array([ 0.855, -2.145])
        >>> opt.state[0]["momentum_buffer"]       # 0.9 * 0.5 + 0.5
        array([0.95, 0.95])
    """

    _low_precision = True
    _state_keys = ("momentum_buffer",)
    _kernel = staticmethod(_core.sgd_step)
    _drive = staticmethod(_core.sgd_drive)

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: Optional[bool] = None,
        differentiable: bool = False,
        fused: Optional[bool] = None,
        state_dtype: Any = None,
        master_weights: bool = False,
        stochastic_rounding: bool = False,
        rounding_seed: int = 0,
    ) -> None:
        defaults = dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
            maximize=maximize, foreach=foreach, differentiable=differentiable, fused=fused,
        )
        self._hyper(defaults)
        super().__init__(
            params, defaults, state_dtype=state_dtype, master_weights=master_weights,
            stochastic_rounding=stochastic_rounding, rounding_seed=rounding_seed,
        )
        check_fused_foreach(fused, foreach)

    def _hyper(self, group: Dict[str, Any], stepping: bool = False) -> tuple:
        lr = learning_rate(group, stepping)
        momentum = nonneg(group, "momentum", "momentum value")
        dampening = _real(group["dampening"], "dampening")
        weight_decay = nonneg(group, "weight_decay", "weight_decay value")
        nesterov = _flag(group["nesterov"], "nesterov")
        maximize = _flag(group["maximize"], "maximize")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        check_unsupported(group)
        return (lr, momentum, dampening, weight_decay, nesterov, maximize)

    def _item(self, index, group_index, p, g, state, added, group):
        buf = None
        init = False
        if group["momentum"] != 0:
            buf = state.get("momentum_buffer")
            if buf is None:  # torch clones the first gradient into the buffer
                buf = added["momentum_buffer"] = np.empty(p.shape, dtype=self._state_dtype_of(p))
                init = True
        return (index, group_index, p, g, buf, init), None
