"""fastoptim.Rprop, as torch.optim.Rprop."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Tuple

import numpy as np

from . import _core
from ._common import check_unsupported, learning_rate
from .optimizer import Optimizer, _flag, _real

__all__ = ["Rprop"]


def _pair(group: Dict[str, Any], key: str) -> Tuple[float, float]:
    value = group[key]
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{key} must be a pair of floats, got {value!r}")
    return _real(value[0], f"{key}[0]"), _real(value[1], f"{key}[1]")


class Rprop(Optimizer):
    r"""Rprop, resilient backpropagation (Riedmiller & Braun, 1993). Matches ``torch.optim.Rprop``
    (torch 2.13) step for step::

        g = -grad if maximize else grad
        f = etaplus if g * prev > 0 else etaminus if g * prev < 0 else 1
        step_size = clamp(step_size * f, *step_sizes)
        g = 0 where f == etaminus               (the gradient changed sign: no move this step)
        p = p - sign(g) * step_size;  prev = g

    The sign is that of the rounded product ``g * prev``, as torch computes it: a product that underflows
    to zero leaves the step size as it is. ``lr`` is the step size a parameter starts with. State per
    parameter: ``step``, ``prev``, ``step_size``. As torch, ``step_sizes`` are not checked.

    Example (two steps on the same gradient; the step size grows by etas[1] while the sign holds)::

        >>> import numpy as np, fastoptim
        >>> w = np.array([1.0, -2.0])
        >>> opt = fastoptim.Rprop([w], lr=0.1)
        >>> for _ in range(2):
        ...     opt.step([np.array([0.5, -4.0])])
        >>> w
        array([ 0.78, -1.78])
        >>> sorted(opt.state[0])
        ['prev', 'step', 'step_size']
    """

    _low_precision = True
    _state_keys = ("prev", "step_size")
    _kernel = staticmethod(_core.rprop_step)
    _drive = staticmethod(_core.rprop_drive)

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-2,
        etas: Tuple[float, float] = (0.5, 1.2),
        step_sizes: Tuple[float, float] = (1e-6, 50),
        *,
        capturable: bool = False,
        foreach: Optional[bool] = None,
        maximize: bool = False,
        differentiable: bool = False,
        state_dtype: Any = None,
        master_weights: bool = False,
        stochastic_rounding: bool = False,
        rounding_seed: int = 0,
    ) -> None:
        defaults = dict(
            lr=lr, etas=etas, step_sizes=step_sizes, foreach=foreach, maximize=maximize,
            differentiable=differentiable, capturable=capturable,
        )
        self._hyper(defaults)
        super().__init__(
            params, defaults, state_dtype=state_dtype, master_weights=master_weights,
            stochastic_rounding=stochastic_rounding, rounding_seed=rounding_seed,
        )

    def _hyper(self, group: Dict[str, Any], stepping: bool = False) -> tuple:
        lr = learning_rate(group, stepping)
        etaminus, etaplus = _pair(group, "etas")
        if not 0.0 < etaminus < 1.0 < etaplus:
            raise ValueError(f"Invalid eta values: {group['etas'][0]}, {group['etas'][1]}")
        step_size_min, step_size_max = _pair(group, "step_sizes")
        maximize = _flag(group["maximize"], "maximize")
        check_unsupported(group)
        return (lr, etaminus, etaplus, step_size_min, step_size_max, maximize)

    def _item(self, index, group_index, p, g, state, added, group):
        step = self._next_step(state, index)
        prev = self._buffer(state, added, "prev", p)
        step_size = state.get("step_size")
        if step_size is None:  # torch's full_like(grad, lr): the group's lr when the state is created
            step_size = added["step_size"] = np.full(p.shape, _real(group["lr"], "lr"), dtype=self._state_dtype_of(p))
        return (index, group_index, p, g, prev, step_size), step
