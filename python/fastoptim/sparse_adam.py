"""fastoptim.SparseAdam, as torch.optim.SparseAdam."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Tuple

import numpy as np

from . import _core
from ._common import check_unsupported
from .adamax import _betas
from .optimizer import Optimizer, _flag, _real, _step_value, _typename

__all__ = ["SparseAdam"]


class SparseAdam(Optimizer):
    r"""SparseAdam: Adam on the rows that a sparse gradient touches (torch.optim.SparseAdam, torch 2.13; Adam
    is Kingma & Ba, 2015). For embedding tables and other parameters whose gradient holds a few rows of the
    leading dimension.

    Gradients are ``(indices, values)`` pairs, one per parameter (or ``None``)::

        table = np.zeros((10_000, 64), np.float32)
        opt = fastoptim.SparseAdam([table], lr=1e-3)
        rows = np.array([3, 17, 3], np.int64)        # row 3 twice: its two gradient rows are summed
        vals = np.ones((3, 64), np.float32)          # vals[k] is the gradient of row rows[k]
        opt.step([(rows, vals)])

    ``indices`` is a 1-D int64 array (torch's ``grad._indices()[0]``) of rows in ``[0, p.shape[0])``;
    ``values`` has shape ``(len(indices),) + p.shape[1:]``, the parameter's dtype, and is C-contiguous
    (torch's ``grad._values()``). As torch's ``grad.coalesce()``, a row listed more than once gets the sum of
    its values (added in the order torch's CPU ``coalesce()`` sorts them into: the order given for up to 16
    entries); rows not listed keep their parameter and moments untouched. For
    each element of each listed row::

        g = -g if maximize else g
        exp_avg += (g - exp_avg) * (1 - beta1);  exp_avg_sq += (g * g - exp_avg_sq) * (1 - beta2)
        p -= lr * sqrt(1 - beta2**t) / (1 - beta1**t) * exp_avg / (sqrt(exp_avg_sq) + eps)

    A gradient with no rows still advances ``step`` (torch's behaviour). State per parameter: ``step`` (a
    Python int, as torch), ``exp_avg``, ``exp_avg_sq``. A dense array as gradient raises torch's
    RuntimeError; every other bad input (index out of range, wrong dtypes or shapes, overlapping memory)
    raises TypeError or ValueError before anything is modified.

    Example (only the rows the gradient lists move)::

        >>> import numpy as np, fastoptim
        >>> E = np.zeros((4, 2))
        >>> opt = fastoptim.SparseAdam([E], lr=0.1)
        >>> opt.step([(np.array([1, 3]), np.array([[1.0, -1.0], [2.0, 2.0]]))])
        >>> E.round(4)
        array([[ 0. ,  0. ],
               [-0.1,  0.1],
               [ 0. ,  0. ],
               [-0.1, -0.1]])
    """

    _sparse_gradients = True  # step() takes (indices, values) per parameter, not arrays

    _state_keys = ("exp_avg", "exp_avg_sq")
    _kernel = staticmethod(_core.sparse_adam_step)

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        maximize: bool = False,
    ) -> None:
        defaults: Dict[str, Any] = dict(lr=lr, betas=betas, eps=eps, maximize=maximize)
        self._hyper(defaults)
        super().__init__(params, defaults)

    def _hyper(self, group: Dict[str, Any], stepping: bool = False) -> tuple:
        # torch's checks, order and messages: lr and eps strictly positive. step() refuses only a NaN lr.
        lr = _real(group["lr"], "lr")
        if (lr != lr) if stepping else not 0.0 < lr:
            raise ValueError(f"Invalid learning rate: {group['lr']}")
        eps = _real(group["eps"], "eps")
        if not 0.0 < eps:
            raise ValueError(f"Invalid epsilon value: {group['eps']}")
        beta1, beta2 = _betas(group, stepping)
        maximize = _flag(group.get("maximize", False), "maximize")
        check_unsupported(group)  # torch's SparseAdam has none of these flags; a group that sets one is refused
        return (lr, beta1, beta2, eps, maximize)

    def _item(self, index, group_index, p, g, state, added, group):
        if isinstance(g, np.ndarray):
            raise RuntimeError(
                "SparseAdam does not support dense gradients, please consider Adam instead "
                f"(parameter {index}: pass (indices, values))"
            )
        if not isinstance(g, tuple) or len(g) != 2:
            raise TypeError(f"gradient of parameter {index} must be a tuple (indices, values) or None, got {_typename(g)}")
        step = _whole_step(state.get("step", 0), index) + 1
        exp_avg = self._buffer(state, added, "exp_avg", p)
        exp_avg_sq = self._buffer(state, added, "exp_avg_sq", p)
        # torch keeps the count as a Python int; it joins the state with the new buffers once the step succeeded.
        added["step"] = step
        return (index, group_index, p, g[0], g[1], exp_avg, exp_avg_sq, float(step)), None

    def _load_entry(self, entry: Any, p: np.ndarray, index: int) -> Dict[str, Any]:
        if not (isinstance(entry, dict) and "step" in entry):
            return super()._load_entry(entry, p, index)
        step = _whole_step(entry["step"], index)
        return {"step": step, **super()._load_entry({k: v for k, v in entry.items() if k != "step"}, p, index)}


def _whole_step(value: Any, index: int) -> int:
    """A state 'step' as torch's SparseAdam keeps it: a Python int (checked finite, >= 0 and whole)."""
    if type(value) is int and value >= 0:
        return value
    step = _step_value(value, index)
    if not step.is_integer():
        raise ValueError(f"state 'step' of parameter {index} must be a whole number, got {step}")
    return int(step)
