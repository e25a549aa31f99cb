"""StepLR."""

from __future__ import annotations

from typing import Any, Dict

from ._base import LRScheduler, _ls, integer, param_property, real

__all__ = ["StepLR"]


class StepLR(LRScheduler):
    r"""Multiply each group's learning rate by ``gamma`` every ``step_size`` epochs.

    ``lr_epoch = lr_{epoch-1} * gamma`` when ``epoch`` is a non-zero multiple of ``step_size``, else unchanged
    (so ``base_lr * gamma ** (epoch // step_size)`` unless something else edits the learning rate). As
    ``torch.optim.lr_scheduler.StepLR``.

    >>> import numpy as np, fastoptim
    >>> opt = fastoptim.SGD([np.zeros(1)], lr=0.1)
    >>> sched = fastoptim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    >>> lrs = []
    >>> for epoch in range(5):
    ...     opt.step([np.ones(1)])
    ...     sched.step()
    ...     lrs.append(sched.get_last_lr()[0])
    >>> lrs
    [0.1, 0.05, 0.05, 0.025, 0.025]
    """

    _params = ("step_size", "gamma")

    def __init__(self, optimizer: Any, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        self._step_size = integer(step_size, "step_size")
        self._gamma = real(gamma, "gamma")
        self._check_params({"step_size": self._step_size})
        super().__init__(optimizer, last_epoch)

    def _make_core(self, groups, last_epoch):
        return _ls.StepLR(groups, self._step_size, self._gamma, last_epoch)

    def _check_params(self, params: Dict[str, Any]) -> None:
        if "step_size" in params and integer(params["step_size"], "step_size") <= 0:
            raise ValueError(f"step_size must be a positive integer, got {params['step_size']}")
        if "gamma" in params:
            real(params["gamma"], "gamma")

    step_size = param_property("step_size")
    gamma = param_property("gamma")
