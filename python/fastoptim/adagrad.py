"""fastoptim.Adagrad, as torch.optim.Adagrad."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional

import numpy as np

from . import _core
from ._common import check_fused_foreach, check_unsupported, learning_rate, nonneg
from .optimizer import Optimizer, _flag, _real

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad (Duchi, Hazan & Singer, 2011). Matches ``torch.optim.Adagrad`` (torch 2.13) step for step::

        g = -grad if maximize else grad;  g = g + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        sum = sum + g * g
        p = p - clr * g / (sqrt(sum) + eps)

    State per parameter: ``step``, ``sum`` (starts at ``initial_accumulator_value``; as torch, the value
    given to the constructor, whatever a group says). As torch, the state of the constructor's parameters
    exists from construction (``step`` 0); a group added later gets its state at its first step.

    Example::

        >>> import numpy as np, fastoptim
        >>> w = np.array([1.0, -2.0])
        >>> opt = fastoptim.Adagrad([w], lr=0.1)
        >>> opt.step([np.array([0.5, -4.0])])
        >>> w                                     # lr * g / sqrt(g * g): a step of lr per coordinate
        array([ 0.9, -1.9])
        >>> opt.state[0]["sum"]
        array([ 0.25, 16.  ])
    """

    _low_precision = True
    _state_keys = ("sum",)
    _kernel = staticmethod(_core.adagrad_step)
    _drive = staticmethod(_core.adagrad_drive)

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: Optional[bool] = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: Optional[bool] = None,
        state_dtype: Any = None,
        master_weights: bool = False,
        stochastic_rounding: bool = False,
        rounding_seed: int = 0,
    ) -> None:
        defaults = dict(
            lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value, foreach=foreach, maximize=maximize,
            differentiable=differentiable, fused=fused,
        )
        self._hyper(defaults)
        super().__init__(
            params, defaults, state_dtype=state_dtype, master_weights=master_weights,
            stochastic_rounding=stochastic_rounding, rounding_seed=rounding_seed,
        )
        check_fused_foreach(fused, foreach)
        # As torch, every parameter's state exists from construction (step 0, sum filled), so the state dict
        # has it before the first step; parameters of groups added later get theirs at their first step.
        init = self.defaults["initial_accumulator_value"]
        index = 0
        for group in self.param_groups:
            for p in group["params"]:
                self.state[index] = {"step": np.array(0.0, dtype=np.float32),
                                     "sum": np.full(p.shape, init, dtype=self._state_dtype_of(p))}
                index += 1

    def _hyper(self, group: Dict[str, Any], stepping: bool = False) -> tuple:
        lr = learning_rate(group, stepping)
        lr_decay = nonneg(group, "lr_decay", "lr_decay value")
        weight_decay = nonneg(group, "weight_decay", "weight_decay value")
        nonneg(group, "initial_accumulator_value", "initial_accumulator_value value")
        eps = nonneg(group, "eps", "epsilon value")
        maximize = _flag(group["maximize"], "maximize")
        check_unsupported(group)
        # Element 5 fills a new 'sum' in the C++ driver (the kernel reads the first five): as _item, the
        # defaults' value (while __init__ validates the defaults, self.defaults is not set yet).
        init = getattr(self, "defaults", group)["initial_accumulator_value"]
        return (lr, lr_decay, weight_decay, eps, maximize, _real(init, "initial_accumulator_value"))

    def _item(self, index, group_index, p, g, state, added, group):
        step = self._next_step(state, index)
        acc = state.get("sum")
        if acc is None:
            acc = added["sum"] = np.full(p.shape, self.defaults["initial_accumulator_value"], dtype=self._state_dtype_of(p))
        return (index, group_index, p, g, acc, step), step
