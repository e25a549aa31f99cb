"""``preview``: the learning rates (and momenta) a scheduler would produce, computed on a throwaway
optimizer, so a schedule can be inspected (or plotted) before training."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

__all__ = ["preview", "SchedulePreview"]

_KINDS = {
    "sgd": ("SGD", dict(momentum=0.9)),
    "adam": ("Adam", {}),
    "adamw": ("AdamW", {}),
    "rmsprop": ("RMSprop", dict(momentum=0.9)),
}


@dataclass
class SchedulePreview:
    """Per-step values: ``step[k]`` is the number of scheduler steps taken (0: after construction);
    ``lr[k]`` and ``momentum[k]`` hold one value per param group (momentum: ``betas[0]`` for the Adam
    family, ``momentum`` otherwise, None when the group has neither)."""

    step: List[int] = field(default_factory=list)
    lr: List[List[float]] = field(default_factory=list)
    momentum: List[List[Optional[float]]] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        return {"step": list(self.step), "lr": [list(r) for r in self.lr],
                "momentum": [list(r) for r in self.momentum]}

    def __len__(self) -> int:
        return len(self.step)


def _throwaway(optimizer: Any, lr: float) -> Any:
    import fastoptim

    if isinstance(optimizer, str):
        key = optimizer.lower()
        if key not in _KINDS:
            raise ValueError(f"optimizer must be one of {sorted(_KINDS)} or a fastoptim optimizer, got {optimizer!r}")
        name, extra = _KINDS[key]
        return getattr(fastoptim, name)([np.zeros(1)], lr=lr, **extra)
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, list):
        raise TypeError(f"optimizer must be a name or a fastoptim optimizer, got {type(optimizer).__name__}")
    # Same class and group hyperparameters, fresh one-element parameters: the real optimizer is untouched.
    clone_groups = []
    for g in groups:
        clone = {k: copy.deepcopy(v) for k, v in g.items() if k != "params"}
        clone["params"] = [np.zeros(1)]
        clone_groups.append(clone)
    return type(optimizer)(clone_groups)


def _values(optimizer: Any):
    lrs: List[float] = []
    moms: List[Optional[float]] = []
    for g in optimizer.param_groups:
        lrs.append(float(g["lr"]))
        if "betas" in g:
            moms.append(float(g["betas"][0]))
        elif "momentum" in g:
            moms.append(float(g["momentum"]))
        else:
            moms.append(None)
    return lrs, moms


def preview(scheduler_factory: Callable[[Any], Any], steps: int, metrics: Optional[Sequence[float]] = None,
            optimizer: Any = "sgd", lr: float = 0.1) -> SchedulePreview:
    """Runs ``scheduler_factory(opt)`` on a throwaway optimizer for ``steps`` steps and returns every
    group's lr and momentum after construction and after each step.

    ``optimizer`` is ``"sgd"`` (momentum 0.9), ``"adam"``, ``"adamw"``, ``"rmsprop"`` (all with one group at
    ``lr``) or a fastoptim optimizer whose class and param-group settings are copied (never stepped).
    ``metrics`` (one per step) are passed to ``step`` (ReduceLROnPlateau).

    >>> from fastoptim.lr_scheduler import StepLR, preview
    >>> p = preview(lambda opt: StepLR(opt, step_size=2, gamma=0.5), steps=4, lr=1.0)
    >>> [row[0] for row in p.lr]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if metrics is not None:
        metrics = list(metrics)
        if len(metrics) < steps:
            raise ValueError(f"metrics has {len(metrics)} values, need one per step ({steps})")
    opt = _throwaway(optimizer, lr)
    zeros = [np.zeros(1) for g in opt.param_groups for _ in g["params"]]
    sched = scheduler_factory(opt)
    out = SchedulePreview()

    def record(k: int) -> None:
        lrs, moms = _values(opt)
        out.step.append(k)
        out.lr.append(lrs)
        out.momentum.append(moms)

    record(0)
    for t in range(steps):
        opt.step(zeros)
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[t])
        record(t + 1)
    return out


# ------------------------------------------------------------------------------------ command line

PLOT_SIZE = (8.0, 4.5)  # inches, at PLOT_DPI: an 800 x 450 PNG
PLOT_DPI = 100


def _literal(text: str) -> Any:
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _parse_args(parser: Any, pairs: Sequence[str]) -> Dict[str, Any]:
    kwargs: Dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            parser.error(f"--arg expects KEY=VALUE, got {pair!r}")
        kwargs[key] = _literal(value)
    return kwargs


def _format(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.8g}"


def cli(parser: Any, args: Any) -> int:
    """``python -m fastoptim schedule``: prints step, lr and momentum (one column per group)."""
    import sys

    from .. import lr_scheduler as fls

    name = args.name
    cls: Any = getattr(fls, name, None) if name in fls.__all__ else None
    if cls is None or name in ("LRScheduler", "SchedulePreview", "PlateauEvent", "preview"):
        choices = sorted(n for n in fls.__all__ if n not in ("LRScheduler", "SchedulePreview", "PlateauEvent",
                                                             "preview", "SequentialLR", "ChainedScheduler"))
        parser.error(f"unknown scheduler {name!r}; choose one of {', '.join(choices)}")
    if name in ("SequentialLR", "ChainedScheduler"):
        parser.error(f"{name} composes other schedulers; use fastoptim.lr_scheduler.preview from Python")
    if args.steps < 0:
        parser.error("--steps must be >= 0")
    kwargs = _parse_args(parser, args.arg)
    metrics = None
    if args.metric_file:
        try:
            with open(args.metric_file, encoding="utf-8") as f:
                metrics = [float(x) for x in f.read().split()]
        except (OSError, ValueError) as exc:
            parser.error(f"cannot read --metric-file: {exc}")
    elif name == "ReduceLROnPlateau":
        parser.error("ReduceLROnPlateau needs --metric-file (one metric per step)")
    try:
        result = preview(lambda opt: cls(opt, **kwargs), args.steps, metrics=metrics, optimizer=args.optimizer,
                         lr=args.lr)
    except (TypeError, ValueError, KeyError) as exc:
        print(f"error: {name}: {exc}", file=sys.stderr)
        return 2

    n = len(result.lr[0]) if result.lr else 1
    lr_cols = ["lr"] if n == 1 else [f"lr[{i}]" for i in range(n)]
    mom_cols = ["momentum"] if n == 1 else [f"momentum[{i}]" for i in range(n)]
    header = ["step", *lr_cols, *mom_cols]
    rows = [[str(k), *(_format(v) for v in lrs), *(_format(m) for m in moms)]
            for k, lrs, moms in zip(result.step, result.lr, result.momentum)]
    widths = [max(len(header[c]), *(len(r[c]) for r in rows)) for c in range(len(header))]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    for r in rows:
        print("  ".join(v.rjust(w) for v, w in zip(r, widths)))

    if args.plot:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("error: --plot needs matplotlib: pip install 'fastoptim[plot]' (or pip install matplotlib)",
                  file=sys.stderr)
            return 3
        fig, ax = plt.subplots(figsize=PLOT_SIZE, dpi=PLOT_DPI)
        for i in range(n):
            ax.plot(result.step, [row[i] for row in result.lr], label=lr_cols[i])
        ax.set_xlabel("step")
        ax.set_ylabel("learning rate")
        args_text = ", ".join(args.arg)
        ax.set_title(f"{name}({args_text})" if args_text else name)
        if n > 1:
            ax.legend()
        ax.grid(True, alpha=0.3)
        fig.savefig(args.plot, dpi=PLOT_DPI)
        plt.close(fig)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
