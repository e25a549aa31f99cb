"""fastoptim.ScheduleFreeAdamW: Defazio et al. 2024, not in torch.optim."""

from __future__ import annotations

import math
import numbers
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

from . import _core
from ._betas import check_betas
from ._common import check_unsupported, learning_rate, nonneg
from .optimizer import Optimizer, _flag, _real, serialized

__all__ = ["ScheduleFreeAdamW"]


def _count(group: Dict[str, Any], key: str) -> int:
    value = group[key]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{key} must be a non-negative integer, got {type(value).__name__}")
    value = int(value)
    if not 0 <= value <= 2**53:  # as the C++ library: each step adds to the count, taken as a double
        raise ValueError(f"Invalid {key} value: {value}")
    return value


class ScheduleFreeAdamW(Optimizer):
    r"""Schedule-Free AdamW (Defazio et al., 2024): AdamW steps whose iterates are averaged, with no schedule.

    From "The Road Less Scheduled", arXiv:2405.15682, Algorithm 1. Follows the reference ``AdamWScheduleFree``
    of facebookresearch/schedulefree (1.4) step for step, group keys and train/eval switch included, with
    ``maximize`` added. No learning-rate schedule is needed: the iterate that is evaluated, x, is an average of
    the base sequence z, and gradients are taken at y, an interpolation of the two. Per param group, with ``k``
    the group's step count before this step::

        lr_k = lr * min(1, (k + 1) / warmup_steps);    lr_max = max(lr_max, lr_k)
        w = (k + 1)**r * lr_max**weight_lr_power;      weight_sum += w;    c = w / weight_sum
        g = -grad if maximize else grad
        v = beta2 * v + (1 - beta2) * g * g
        u = g / (sqrt(v / (1 - beta2**(k + 1))) + eps) + weight_decay * y
        y = lerp(y, z, c) + lr_k * (beta1 * (1 - c) - 1) * u      (x = lerp(x, z, c) rewritten in terms of y)
        z = z - lr_k * u

    The parameters hold y while training and x for evaluation: call ``train()`` before training steps and
    ``eval()`` before evaluating or saving a checkpoint. As the reference, the optimizer starts in eval mode
    and ``step()`` raises outside train mode. The schedule lives in each param group (``k``, ``lr_max``,
    ``weight_sum``, ``scheduled_lr``, ``train_mode``, as the reference's keys). State per parameter: ``z``
    (starts at the parameter), ``exp_avg_sq``.

    Example::

        >>> import numpy as np, fastoptim
        >>> w = np.array([1.0, -2.0])
        >>> opt = fastoptim.ScheduleFreeAdamW([w], lr=0.1)
        >>> opt.train()                           # w holds y
        >>> for _ in range(2):
        ...     opt.step([np.array([0.5, -4.0])])
        >>> w
        array([ 0.845, -1.845])
        >>> opt.eval()                            # w holds x, the average to evaluate
        >>> w
        array([ 0.85, -1.85])
    """

    _state_keys = ("z", "exp_avg_sq")
    _kernel = staticmethod(_core.schedulefree_adamw_step)
    _drive = staticmethod(_core.schedulefree_adamw_drive)

    def __init__(
        self,
        params: Iterable,
        lr: float = 0.0025,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        foreach: Optional[bool] = None,
        *,
        maximize: bool = False,
    ) -> None:
        defaults: Dict[str, Any] = dict(
            lr=lr, betas=betas, eps=eps, r=r, k=0, warmup_steps=warmup_steps, train_mode=False, weight_sum=0.0,
            lr_max=-1.0, scheduled_lr=0.0, weight_lr_power=weight_lr_power, weight_decay=weight_decay,
            foreach=foreach, maximize=maximize,
        )
        self._next: Dict[int, Tuple[int, float, float, float]] = {}
        self._hyper(defaults)
        defaults["betas"] = tuple(defaults["betas"])
        super().__init__(params, defaults)

    def _hyper(self, group: Dict[str, Any], stepping: bool = False) -> tuple:
        lr = learning_rate(group, stepping)
        # beta1 = 0 would make x unrecoverable from y (eval() divides by beta1).
        beta1, beta2 = check_betas(group, 2, positive_first=True)
        eps = nonneg(group, "eps", "epsilon value")
        weight_decay = nonneg(group, "weight_decay", "weight_decay value")
        warmup_steps = _count(group, "warmup_steps")
        r = _real(group["r"], "r")
        if not math.isfinite(r):
            raise ValueError(f"Invalid r value: {group['r']}")
        weight_lr_power = nonneg(group, "weight_lr_power", "weight_lr_power value")
        if not math.isfinite(weight_lr_power):
            raise ValueError(f"Invalid weight_lr_power value: {group['weight_lr_power']}")
        k = _count(group, "k")
        _flag(group["train_mode"], "train_mode")
        weight_sum = nonneg(group, "weight_sum", "weight_sum value")
        if not math.isfinite(weight_sum):
            raise ValueError(f"Invalid weight_sum value: {group['weight_sum']}")
        lr_max = _real(group["lr_max"], "lr_max")
        _real(group["scheduled_lr"], "scheduled_lr")
        maximize = _flag(group["maximize"], "maximize")
        check_unsupported(group)
        if not stepping:
            return ()
        # The reference's schedule, in its Python expressions; committed by step() once the kernel has run.
        sched = (k + 1) / warmup_steps if k < warmup_steps else 1.0
        bias_correction2 = 1 - beta2 ** (k + 1)
        lr = lr * sched
        lr_max = max(lr, lr_max)
        try:
            weight = ((k + 1) ** r) * (lr_max ** weight_lr_power)
        except OverflowError:
            raise ValueError(f"the schedule's weight (k + 1) ** r * lr_max ** weight_lr_power overflows: k={k}, "
                             f"r={r}, lr_max={lr_max}, weight_lr_power={weight_lr_power}") from None
        if isinstance(weight, complex):  # a negative lr_max to a fractional power
            raise ValueError(f"lr_max ** weight_lr_power is not real: lr_max={lr_max}, "
                             f"weight_lr_power={weight_lr_power}")
        weight_sum = weight_sum + weight
        ckp1 = weight / weight_sum if weight_sum != 0 else 0.0
        self._next[id(group)] = (k + 1, lr, lr_max, weight_sum)
        return (lr, ckp1, bias_correction2, beta1, beta2, eps, weight_decay, maximize)

    @serialized
    def step(self, grads: Sequence[Optional[np.ndarray]]) -> None:
        if not self.param_groups[0]["train_mode"]:
            raise RuntimeError("Optimizer was not in train mode when step is called. Please insert .train() and "
                               ".eval() calls on the optimizer. See documentation for details.")
        self._next = {}
        super().step(grads)
        # Only once the kernel has run: a step that raises leaves every group's schedule as it was.
        for group in self.param_groups:
            group["k"], group["scheduled_lr"], group["lr_max"], group["weight_sum"] = self._next[id(group)]

    step.__doc__ = Optimizer.step.__doc__

    def _item(self, index, group_index, p, g, state, added, group):
        z = state.get("z")
        if z is None:
            z = added["z"] = p.copy()  # z starts at the parameter, as the reference's clone
        exp_avg_sq = self._buffer(state, added, "exp_avg_sq", p)
        return (index, group_index, p, g, z, exp_avg_sq), None

    def train(self) -> None:
        """Parameters now hold y = lerp(x, z, 1 - beta1), where gradients are to be taken."""
        self._switch(True)

    def eval(self) -> None:
        """Parameters now hold x = lerp(y, z, 1 - 1 / beta1), the average to evaluate or save."""
        self._switch(False)

    def _switch(self, train: bool) -> None:
        items = []
        index = 0
        for group in self.param_groups:
            move = _flag(group["train_mode"], "train_mode") != train
            beta1 = check_betas(group, 2, positive_first=True)[0]
            weight = 1 - beta1 if train else 1 - 1 / beta1
            for p in group["params"]:
                state = self.state.get(index)
                if move and isinstance(state, dict) and "z" in state:
                    items.append((index, p, state["z"], weight))
                index += 1
        _core.schedulefree_lerp(items)  # validates every array before moving any
        for group in self.param_groups:
            group["train_mode"] = train
