"""fastoptim.Adafactor, as torch.optim.Adafactor."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Tuple

import numpy as np

from . import _core
from ._common import check_unsupported
from .optimizer import Optimizer, _flag, _real

__all__ = ["Adafactor"]


class Adafactor(Optimizer):
    r"""Adafactor (Shazeer & Stern, 2018, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost",
    https://arxiv.org/abs/1804.04235). Matches ``torch.optim.Adafactor`` (torch 2.13) step for step, including
    its departures from the paper (lr caps the relative step size and scales decoupled weight decay; eps1 is
    applied to the variance estimate, not to the squared gradient)::

        g = -grad if maximize else grad;  t += 1
        w = t ** beta2_decay                       # 1 - beta2_t
        rho = min(lr, 1 / sqrt(t));  alpha = max(eps2, RMS(p)) * rho
        p = p * (1 - lr * weight_decay)
        p.ndim >= 2 (factored over the last two dimensions):
            row_var = lerp(row_var, mean(g * g, dim=-1), w);  col_var = lerp(col_var, mean(g * g, dim=-2), w)
            V = row_var @ col_var / max(mean(row_var, dim=-2), eps1)
        otherwise:
            variance = lerp(variance, g * g, w);  V = variance
        U = g / sqrt(max(V, eps1 ** 2))
        p = p - alpha / max(1, RMS(U) / d) * U

    ``eps=(eps1, eps2)``; ``eps1=None`` means ``numpy.finfo(dtype).eps`` of the group's first parameter
    stepped (as torch's single-tensor loop). State per parameter: ``step``, and ``row_var`` (shape
    ``p.shape[:-1] + (1,)``) and ``col_var`` (``p.shape[:-2] + (1, p.shape[-1])``) for parameters of two or
    more dimensions, ``variance`` (``p.shape``) otherwise -- torch's keys and shapes.

    The norms and means are sums computed in double in an order fixed by each parameter's shape (blocks and
    tiles, see ``cpp/include/fastoptim/adafactor/adafactor_kernel.hpp``), so results do not depend on the
    thread count. torch's own summation order depends on its vector width and thread count; the deviation
    this causes is within the spread of torch's own implementations (tests/parity.py).

    A parameter with no elements cannot be stepped (torch divides by its element count and raises
    ZeroDivisionError; so do we, before anything is modified). torch's ``foreach`` is accepted and ignored.

    Example (a 2-D parameter keeps a row and a column second moment instead of a full one)::

        >>> import numpy as np, fastoptim
        >>> w = np.ones((2, 3))
        >>> opt = fastoptim.Adafactor([w], lr=0.1)
        >>> opt.step([np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])])
        >>> w.round(4)
        array([[0.9382, 0.9053, 0.886 ],
               [0.8945, 0.8991, 0.9028]])
        >>> opt.state[0]["row_var"].shape, opt.state[0]["col_var"].shape
        ((2, 1), (1, 3))
    """

    _state_keys = ("row_var", "col_var", "variance")
    _kernel = staticmethod(_core.adafactor_step)
    _drive = staticmethod(_core.adafactor_drive)  # the same step with _item's bookkeeping in C++

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-2,
        beta2_decay: float = -0.8,
        eps: Tuple[Optional[float], float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        foreach: Optional[bool] = None,
        maximize: bool = False,
    ) -> None:
        defaults: Dict[str, Any] = dict(
            lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay, foreach=foreach,
            maximize=maximize,
        )
        self._hyper(defaults)
        super().__init__(params, defaults)

    def _hyper(self, group: Dict[str, Any], stepping: bool = False) -> tuple:
        # torch's checks, order and messages (its step() checks nothing: there only a NaN lr is refused).
        lr = _real(group["lr"], "lr")
        if (lr != lr) if stepping else not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {group['lr']}")
        beta2_decay = _real(group["beta2_decay"], "beta2_decay")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"beta2_decay should be <= 0 but is: {group['beta2_decay']}")
        eps = group["eps"]
        if not isinstance(eps, (tuple, list)) or len(eps) != 2:
            raise TypeError(f"eps must be a pair (eps1 or None, eps2), got {eps!r}")
        eps1 = None if eps[0] is None else _real(eps[0], "eps[0]")
        if eps1 is not None and not 0.0 <= eps1:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        eps2 = _real(eps[1], "eps[1]")
        if not 0.0 <= eps2:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        d = _real(group["d"], "d")
        if not 1.0 <= d:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {group['d']}")
        weight_decay = _real(group["weight_decay"], "weight_decay")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay should be >= 0 but is: {group['weight_decay']}")
        maximize = _flag(group["maximize"], "maximize")
        check_unsupported(group)
        return (lr, beta2_decay, eps1, eps2, d, weight_decay, maximize)

    @staticmethod
    def _state_shape(key: str, p: np.ndarray) -> Optional[tuple]:
        if p.ndim >= 2:
            return {"row_var": p.shape[:-1] + (1,), "col_var": p.shape[:-2] + (1, p.shape[-1])}.get(key)
        return p.shape if key == "variance" else None

    def _item(self, index, group_index, p, g, state, added, group):
        if isinstance(g, tuple):
            raise RuntimeError("Adafactor does not support sparse gradients")
        if p.size == 0:
            raise ZeroDivisionError(
                f"parameter {index} has no elements: Adafactor divides by the element count "
                "(torch raises ZeroDivisionError too); pass None as its gradient"
            )
        step = self._next_step(state, index)
        if p.ndim >= 2:
            bufs = []
            for key in ("row_var", "col_var"):
                buf = state.get(key)
                if buf is None:
                    buf = added[key] = np.zeros(self._state_shape(key, p), dtype=p.dtype)
                bufs.append(buf)
            return (index, group_index, p, g, bufs[0], bufs[1], None, step), step
        variance = self._buffer(state, added, "variance", p)
        return (index, group_index, p, g, None, None, variance, step), step
