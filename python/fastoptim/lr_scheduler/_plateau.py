"""ReduceLROnPlateau, with a readable record of what each step did."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._base import EPOCH_DEPRECATION_WARNING, GroupSync, LRScheduler, _ls, check_optimizer, integer, per_group, real

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


class ReduceLROnPlateau(LRScheduler):
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
        options = _checked_options(dict(factor=factor, mode=mode, threshold_mode=threshold_mode, patience=patience,
                                        cooldown=cooldown, threshold=threshold, eps=eps))
        n = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != n:
                raise ValueError(f"expected {n} min_lrs, got {len(min_lr)}")
            default_min_lr: Optional[float] = None
            min_lrs = per_group(list(min_lr), n, "min_lr")
        else:
            default_min_lr = real(min_lr, "min_lr")
            min_lrs = [default_min_lr] * n
        self.optimizer = optimizer
        self.on_event = on_event
        self._sync = GroupSync(optimizer)
        self._sync.pull()
        self._options = dict(options, default_min_lr=default_min_lr)
        self._core = self._build(self._options, min_lrs)
        # A plain attribute, as torch's: set from mode at construction and by load_state_dict only.
        self.mode_worse = self._core.best
        self.last_event: Optional[PlateauEvent] = None

    def _build(self, o: Dict[str, Any], min_lrs: List[float]) -> Any:
        default_min_lr = o["default_min_lr"]
        return _ls.ReduceLROnPlateau(self._sync.values, o["mode"], o["factor"], o["patience"], o["threshold"],
                                     o["threshold_mode"], o["cooldown"], default_min_lr,
                                     [] if default_min_lr is not None else min_lrs, o["eps"])

    def _state(self) -> Dict[str, Any]:
        c = self._core
        return dict(best=c.best, num_bad_epochs=c.num_bad_epochs, cooldown_counter=c.cooldown_counter,
                    last_epoch=c.last_epoch, min_lrs=list(c.min_lrs), last_lr=list(c.get_last_lr()))

    def _rebuild(self, options: Dict[str, Any], state: Dict[str, Any]) -> None:
        """A new C++ state machine with these options, at this state (what assignments and loading do)."""
        core = self._build(options, state["min_lrs"])
        core.load_state(state["best"], state["num_bad_epochs"], state["cooldown_counter"], state["last_epoch"],
                        state["min_lrs"], state["last_lr"])
        self._core = core
        self._options = options

    def _set_option(self, key: str, value: Any) -> None:
        options = dict(self._options)
        if key == "default_min_lr":
            options[key] = None if value is None else real(value, "default_min_lr")
        else:
            options.update(_checked_options({key: value}))
        state = self._state()
        if options["default_min_lr"] is None and len(state["min_lrs"]) != len(self.optimizer.param_groups):
            raise ValueError(f"expected {len(self.optimizer.param_groups)} min_lrs, got {len(state['min_lrs'])}")
        self._rebuild(options, state)

    def _set_state(self, key: str, value: Any) -> None:
        state = self._state()
        state[key] = value
        self._core.load_state(state["best"], state["num_bad_epochs"], state["cooldown_counter"], state["last_epoch"],
                              state["min_lrs"], state["last_lr"])

    def step(self, metrics: Any, epoch: Optional[int] = None) -> None:  # type: ignore[override]  # as torch
        """One epoch's metric (e.g. validation loss); may cut the learning rates. ``epoch`` (deprecated, as
        in torch) sets ``last_epoch``; it warns."""
        current = float(metrics)
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
            epoch = integer(epoch, "epoch")
        self._sync.pull()
        if epoch is None:
            self._core.step(current)
        else:
            self._core.step(current, epoch)
        self._sync.push()
        e = self._core.last_event
        self.last_event = PlateauEvent(e.kind, e.epoch, e.metric, e.best, e.num_bad_epochs, e.patience,
                                       e.cooldown_counter, tuple(e.old_lrs), tuple(e.new_lrs))
        if self.on_event is not None:
            self.on_event(self.last_event)

    # torch's plain attributes: assigning one takes effect at the next step (validated as the constructor does).
    mode = property(lambda self: self._options["mode"], lambda self, v: self._set_option("mode", v))
    factor = property(lambda self: self._options["factor"], lambda self, v: self._set_option("factor", v))
    patience = property(lambda self: self._options["patience"], lambda self, v: self._set_option("patience", v))
    threshold = property(lambda self: self._options["threshold"], lambda self, v: self._set_option("threshold", v))
    threshold_mode = property(lambda self: self._options["threshold_mode"],
                              lambda self, v: self._set_option("threshold_mode", v))
    cooldown = property(lambda self: self._options["cooldown"], lambda self, v: self._set_option("cooldown", v))
    eps = property(lambda self: self._options["eps"], lambda self, v: self._set_option("eps", v))
    default_min_lr = property(lambda self: self._options["default_min_lr"],
                              lambda self, v: self._set_option("default_min_lr", v))
    best = property(lambda self: self._core.best,
                    lambda self, v: self._set_state("best", real(v, "best")))
    num_bad_epochs = property(lambda self: self._core.num_bad_epochs,
                              lambda self, v: self._set_state("num_bad_epochs", integer(v, "num_bad_epochs")))
    cooldown_counter = property(lambda self: self._core.cooldown_counter,
                                lambda self, v: self._set_state("cooldown_counter", integer(v, "cooldown_counter")))
    last_epoch = property(lambda self: self._core.last_epoch,
                          lambda self, v: self._set_state("last_epoch", integer(v, "last_epoch")))
    # torch: a list; when its length differs from the param groups, the next reduction resets it to
    # default_min_lr (or raises when min_lr was given per group).
    min_lrs = property(lambda self: list(self._core.min_lrs),
                       lambda self, v: self._set_state("min_lrs", [real(x, "min_lrs") for x in v]))

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def get_last_lr(self) -> List[float]:
        return list(self._core.get_last_lr())

    def get_lr(self) -> List[float]:
        # An LRScheduler (as torch's) without a schedule of its own: torch's base get_lr raises.
        raise NotImplementedError

    @property  # type: ignore[misc]  # read-only here: the lrs come from the core
    def _last_lr(self) -> List[float]:
        return self.get_last_lr()

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
        options = _checked_options({k: sd.get(k, v) for k, v in self._options.items() if k != "default_min_lr"})
        default_min_lr = sd.get("default_min_lr", self.default_min_lr)
        min_lrs = [real(v, "min_lrs") for v in sd.get("min_lrs", self.min_lrs)]
        state = dict(
            best=real(sd.get("best", self.best), "best"),
            num_bad_epochs=integer(sd.get("num_bad_epochs", self.num_bad_epochs), "num_bad_epochs"),
            cooldown_counter=integer(sd.get("cooldown_counter", self.cooldown_counter), "cooldown_counter"),
            last_epoch=integer(sd.get("last_epoch", self.last_epoch), "last_epoch"),
            min_lrs=min_lrs,
            last_lr=[real(v, "_last_lr") for v in sd.get("_last_lr", self.get_last_lr())],
        )
        if default_min_lr is not None:
            default_min_lr = real(default_min_lr, "default_min_lr")
        elif len(min_lrs) != len(self.optimizer.param_groups):
            raise ValueError(f"expected {len(self.optimizer.param_groups)} min_lrs, got {len(min_lrs)}")
        self._rebuild(dict(options, default_min_lr=default_min_lr), state)
        # torch's load_state_dict re-runs _init_is_better, which sets mode_worse from mode.
        self.mode_worse = math.inf if options["mode"] == "min" else -math.inf

    def __repr__(self) -> str:
        return (f"ReduceLROnPlateau(mode={self.mode!r}, factor={self.factor!r}, patience={self.patience!r}, "
                f"threshold={self.threshold!r}, threshold_mode={self.threshold_mode!r}, cooldown={self.cooldown!r}, "
                f"min_lrs={self.min_lrs!r}, eps={self.eps!r}, last_epoch={self.last_epoch})")


def _checked_options(o: Dict[str, Any]) -> Dict[str, Any]:
    """The constructor's checks (torch's messages) of whichever options ``o`` holds, converted."""
    out: Dict[str, Any] = {}
    if "factor" in o:
        out["factor"] = real(o["factor"], "factor")
        if out["factor"] >= 1.0:
            raise ValueError("Factor should be < 1.0.")
    if "mode" in o:
        if o["mode"] not in ("min", "max"):
            raise ValueError(f"mode {o['mode']} is unknown!")
        out["mode"] = o["mode"]
    if "threshold_mode" in o:
        if o["threshold_mode"] not in ("rel", "abs"):
            raise ValueError(f"threshold mode {o['threshold_mode']} is unknown!")
        out["threshold_mode"] = o["threshold_mode"]
    for key in ("patience", "cooldown"):
        if key in o:
            out[key] = integer(o[key], key)
            if out[key] < 0:
                raise ValueError("patience and cooldown must be >= 0")
    for key in ("threshold", "eps"):
        if key in o:
            out[key] = real(o[key], key)
    return out
