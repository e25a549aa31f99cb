"""ReduceLROnPlateau, with a readable record of what each step did."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._base import GroupSync, _ls, check_optimizer, integer, per_group, real

__all__ = ["ReduceLROnPlateau", "PlateauEvent"]


@dataclass(frozen=True)
class PlateauEvent:
    """What one ``ReduceLROnPlateau.step`` did.

    ``kind`` is one of ``"improved"``, ``"no_improvement"`` (``num_bad_epochs`` of ``patience``),
    ``"reduced"`` (``old_lrs`` → ``new_lrs``), ``"cooldown"`` (``cooldown_counter`` steps left) or
    ``"at_min_lr"`` (a reduction was due, but every group is already at its ``min_lr``).
    """

    kind: str
    epoch: int
    metric: float
    best: float
    num_bad_epochs: int
    patience: int
    cooldown_counter: int
    old_lrs: Tuple[float, ...]
    new_lrs: Tuple[float, ...]

    def __str__(self) -> str:
        if self.kind == "improved":
            return f"improved (best {self.best:.6g})"
        if self.kind == "no_improvement":
            return f"no improvement ({self.num_bad_epochs} of patience {self.patience})"
        if self.kind == "reduced":
            changes = ", ".join(f"{a:.6g} → {b:.6g}" for a, b in zip(self.old_lrs, self.new_lrs))
            return f"LR reduced {changes}"
        if self.kind == "cooldown":
            return f"cooldown ({self.cooldown_counter} left)"
        return "at min_lr (no reduction possible)"


class ReduceLROnPlateau:
    r"""Reduce the learning rate when a metric has stopped improving, as
    ``torch.optim.lr_scheduler.ReduceLROnPlateau``.

    Each ``step(metric)`` compares the metric with the best seen so far (``mode="min"``: better means below
    ``best * (1 - threshold)`` in ``"rel"`` mode, ``best - threshold`` in ``"abs"`` mode; mirrored for
    ``"max"``). After more than ``patience`` steps without improvement every group's learning rate becomes
    ``max(lr * factor, min_lr)`` (changes smaller than ``eps`` are skipped), then ``cooldown`` steps pass
    before bad epochs count again. A NaN metric is never an improvement.

    ``last_event`` (and the optional ``on_event`` callback) tells what the step did, see
    :class:`PlateauEvent`.

    >>> import numpy as np, fastoptim
    >>> opt = fastoptim.SGD([np.zeros(1)], lr=0.1)
    >>> sched = fastoptim.lr_scheduler.ReduceLROnPlateau(opt, patience=2, factor=0.5)
    >>> for val_loss in [0.88, 0.81, 0.81, 0.80, 0.80, 0.80, 0.80]:
    ...     sched.step(val_loss)
    ...     print(sched.last_event)
    improved (best 0.88)
    improved (best 0.81)
    no improvement (1 of patience 2)
    improved (best 0.8)
    no improvement (1 of patience 2)
    no improvement (2 of patience 2)
    LR reduced 0.1 → 0.05
    """

    def __init__(
        self,
        optimizer: Any,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: Any = 0,
        eps: float = 1e-8,
        *,
        on_event: Optional[Callable[[PlateauEvent], None]] = None,
    ) -> None:
        check_optimizer(optimizer)
        factor = real(factor, "factor")
        if factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        if mode not in ("min", "max"):
            raise ValueError(f"mode {mode} is unknown!")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold mode {threshold_mode} is unknown!")
        patience, cooldown = integer(patience, "patience"), integer(cooldown, "cooldown")
        if patience < 0 or cooldown < 0:
            raise ValueError("patience and cooldown must be >= 0")
        n = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != n:
                raise ValueError(f"expected {n} min_lrs, got {len(min_lr)}")
            self.default_min_lr: Optional[float] = None
            min_lrs = per_group(list(min_lr), n, "min_lr")
        else:
            self.default_min_lr = real(min_lr, "min_lr")
            min_lrs = []
        self.optimizer = optimizer
        self.factor, self.patience, self.cooldown, self.eps = factor, patience, cooldown, real(eps, "eps")
        self.mode, self.threshold, self.threshold_mode = mode, real(threshold, "threshold"), threshold_mode
        self.on_event = on_event
        self._sync = GroupSync(optimizer)
        self._sync.pull()
        self._core = _ls.ReduceLROnPlateau(self._sync.values, mode, factor, patience, self.threshold,
                                           threshold_mode, cooldown, self.default_min_lr, min_lrs, self.eps)
        self.last_event: Optional[PlateauEvent] = None

    def step(self, metrics: Any) -> None:
        """One epoch's metric (e.g. validation loss); may cut the learning rates."""
        current = float(metrics)
        self._sync.pull()
        self._core.step(current)
        self._sync.push()
        e = self._core.last_event
        self.last_event = PlateauEvent(e.kind, e.epoch, e.metric, e.best, e.num_bad_epochs, e.patience,
                                       e.cooldown_counter, tuple(e.old_lrs), tuple(e.new_lrs))
        if self.on_event is not None:
            self.on_event(self.last_event)

    @property
    def best(self) -> float:
        return self._core.best

    @property
    def num_bad_epochs(self) -> int:
        return self._core.num_bad_epochs

    @property
    def cooldown_counter(self) -> int:
        return self._core.cooldown_counter

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    @property
    def last_epoch(self) -> int:
        return self._core.last_epoch

    @property
    def min_lrs(self) -> List[float]:
        return list(self._core.min_lrs)

    @property
    def mode_worse(self) -> float:
        return math.inf if self.mode == "min" else -math.inf

    def get_last_lr(self) -> List[float]:
        return list(self._core.get_last_lr())

    def state_dict(self) -> Dict[str, Any]:
        """torch's keys and order."""
        return {
            "factor": self.factor, "default_min_lr": self.default_min_lr, "min_lrs": self.min_lrs,
            "patience": self.patience, "cooldown": self.cooldown, "eps": self.eps, "last_epoch": self.last_epoch,
            "_last_lr": self.get_last_lr(), "mode_worse": self.mode_worse, "mode": self.mode,
            "threshold": self.threshold, "threshold_mode": self.threshold_mode, "best": self.best,
            "cooldown_counter": self.cooldown_counter, "num_bad_epochs": self.num_bad_epochs,
        }

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Loads ours or torch's; checks everything, then rebuilds the state machine at that state."""
        sd = dict(state_dict)
        mode, threshold_mode = sd.get("mode", self.mode), sd.get("threshold_mode", self.threshold_mode)
        if mode not in ("min", "max"):
            raise ValueError(f"mode {mode} is unknown!")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold mode {threshold_mode} is unknown!")
        factor = real(sd.get("factor", self.factor), "factor")
        if factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        patience = integer(sd.get("patience", self.patience), "patience")
        cooldown = integer(sd.get("cooldown", self.cooldown), "cooldown")
        eps, threshold = real(sd.get("eps", self.eps), "eps"), real(sd.get("threshold", self.threshold), "threshold")
        default_min_lr = sd.get("default_min_lr", self.default_min_lr)
        min_lrs = [real(v, "min_lrs") for v in sd.get("min_lrs", self.min_lrs)]
        best = real(sd.get("best", self.best), "best")
        num_bad = integer(sd.get("num_bad_epochs", self.num_bad_epochs), "num_bad_epochs")
        cooldown_counter = integer(sd.get("cooldown_counter", self.cooldown_counter), "cooldown_counter")
        last_epoch = integer(sd.get("last_epoch", self.last_epoch), "last_epoch")
        last_lr = [real(v, "_last_lr") for v in sd.get("_last_lr", self.get_last_lr())]
        if default_min_lr is not None:
            default_min_lr = real(default_min_lr, "default_min_lr")
        elif len(min_lrs) != len(self.optimizer.param_groups):
            raise ValueError(f"expected {len(self.optimizer.param_groups)} min_lrs, got {len(min_lrs)}")
        core = _ls.ReduceLROnPlateau(self._sync.values, mode, factor, patience, threshold, threshold_mode, cooldown,
                                     default_min_lr, [] if default_min_lr is not None else min_lrs, eps)
        core.load_state(best, num_bad, cooldown_counter, last_epoch, min_lrs, last_lr)
        self._core = core
        self.mode, self.threshold_mode, self.factor, self.patience, self.cooldown = (
            mode, threshold_mode, factor, patience, cooldown)
        self.eps, self.threshold = eps, threshold
        self.default_min_lr = default_min_lr
