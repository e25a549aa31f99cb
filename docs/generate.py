"""Generates the reference pages in docs/ from the installed package: one page per optimizer and per
scheduler (its signature and docstring, which carries the update rule, the example and the notes on how
frameworks differ), and for every scheduler a rendered LR curve from ``fastoptim.lr_scheduler.preview``.

    python docs/generate.py            # rewrites docs/optimizers/*.md, docs/schedulers/*.{md,png}, docs/index.md
    python docs/generate.py --out DIR  # somewhere else (the tests do this)
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import textwrap
from typing import Any, Callable, Dict, List, Optional, Tuple

import fastoptim
import fastoptim.lr_scheduler as fls

# One representative configuration per scheduler for its figure: (factory, steps, metrics, optimizer kind).
Factory = Callable[[Any], Any]


def _plateau_metrics(steps: int) -> List[float]:
    # a loss that improves, then plateaus (the seed's story), then improves a little again
    return [max(0.8, 1.0 - 0.04 * t) + (0.0 if t < 40 else -0.002 * (t - 40)) for t in range(steps)]


EXAMPLES: Dict[str, Tuple[str, Factory, int, Optional[List[float]], str]] = {
    "LambdaLR": ("LambdaLR(opt, lr_lambda=lambda epoch: 0.95 ** epoch)",
                 lambda o: fls.LambdaLR(o, lr_lambda=lambda e: 0.95 ** e), 60, None, "sgd"),
    "MultiplicativeLR": ("MultiplicativeLR(opt, lr_lambda=lambda epoch: 0.97)",
                         lambda o: fls.MultiplicativeLR(o, lr_lambda=lambda e: 0.97), 60, None, "sgd"),
    "StepLR": ("StepLR(opt, step_size=15, gamma=0.5)", lambda o: fls.StepLR(o, step_size=15, gamma=0.5), 60, None,
               "sgd"),
    "MultiStepLR": ("MultiStepLR(opt, milestones=[20, 35, 50], gamma=0.3)",
                    lambda o: fls.MultiStepLR(o, milestones=[20, 35, 50], gamma=0.3), 60, None, "sgd"),
    "ConstantLR": ("ConstantLR(opt, factor=0.25, total_iters=20)",
                   lambda o: fls.ConstantLR(o, factor=0.25, total_iters=20), 60, None, "sgd"),
    "LinearLR": ("LinearLR(opt, start_factor=0.1, total_iters=30)",
                 lambda o: fls.LinearLR(o, start_factor=0.1, total_iters=30), 60, None, "sgd"),
    "ExponentialLR": ("ExponentialLR(opt, gamma=0.95)", lambda o: fls.ExponentialLR(o, gamma=0.95), 60, None, "sgd"),
    "PolynomialLR": ("PolynomialLR(opt, total_iters=50, power=2.0)",
                     lambda o: fls.PolynomialLR(o, total_iters=50, power=2.0), 60, None, "sgd"),
    "CosineAnnealingLR": ("CosineAnnealingLR(opt, T_max=30, eta_min=0.01)",
                          lambda o: fls.CosineAnnealingLR(o, T_max=30, eta_min=0.01), 90, None, "sgd"),
    "CosineAnnealingWarmRestarts": ("CosineAnnealingWarmRestarts(opt, T_0=10, T_mult=2, eta_min=0.005)",
                                    lambda o: fls.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=2, eta_min=0.005),
                                    70, None, "sgd"),
    "CyclicLR": ("CyclicLR(opt, base_lr=0.01, max_lr=0.1, step_size_up=10, mode='triangular2')",
                 lambda o: fls.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=10, mode="triangular2"), 80, None,
                 "sgd"),
    "OneCycleLR": ("OneCycleLR(opt, max_lr=0.1, total_steps=100)",
                   lambda o: fls.OneCycleLR(o, max_lr=0.1, total_steps=100), 99, None, "sgd"),
    "SequentialLR": ("SequentialLR(opt, [LinearLR(opt, start_factor=0.1, total_iters=10), "
                     "CosineAnnealingLR(opt, T_max=50)], milestones=[10])",
                     lambda o: fls.SequentialLR(o, [fls.LinearLR(o, start_factor=0.1, total_iters=10),
                                                    fls.CosineAnnealingLR(o, T_max=50)], milestones=[10]),
                     60, None, "sgd"),
    "ChainedScheduler": ("ChainedScheduler([ConstantLR(opt, factor=0.5, total_iters=10), ExponentialLR(opt, "
                         "gamma=0.97)])",
                         lambda o: fls.ChainedScheduler([fls.ConstantLR(o, factor=0.5, total_iters=10),
                                                         fls.ExponentialLR(o, gamma=0.97)]), 60, None, "sgd"),
    "ReduceLROnPlateau": ("ReduceLROnPlateau(opt, patience=2, factor=0.5), stepped with a loss that plateaus",
                          lambda o: fls.ReduceLROnPlateau(o, patience=2, factor=0.5), 60, _plateau_metrics(60),
                          "sgd"),
    "SWALR": ("SWALR(opt, swa_lr=0.02, anneal_epochs=15, anneal_strategy='cos')",
              lambda o: fls.SWALR(o, swa_lr=0.02, anneal_epochs=15, anneal_strategy="cos"), 40, None, "sgd"),
}


def public_optimizers() -> List[type]:
    return [getattr(fastoptim, n) for n in fastoptim.__all__
            if inspect.isclass(getattr(fastoptim, n)) and issubclass(getattr(fastoptim, n), fastoptim.Optimizer)
            and getattr(fastoptim, n) is not fastoptim.Optimizer]


def public_schedulers() -> List[type]:
    """Every scheduler class fastoptim.lr_scheduler exports (each needs an entry in EXAMPLES)."""
    helpers = {"LRScheduler", "PlateauEvent", "SchedulePreview"}
    return [getattr(fls, n) for n in fls.__all__ if n not in helpers and inspect.isclass(getattr(fls, n))]


def _page(cls: type, kind: str, extra: str = "") -> str:
    sig = str(inspect.signature(cls.__init__)).replace("(self, ", "(", 1)
    doc = inspect.cleandoc(cls.__doc__ or "")
    torch_name = f"torch.optim.{cls.__name__}" if kind == "optimizer" else f"torch.optim.lr_scheduler.{cls.__name__}"
    has_torch = kind == "scheduler" or cls.__name__ in TORCH_OPTIMIZERS
    lines = [f"# {cls.__name__}", "", f"```python\n{cls.__module__.split('.')[0]}.{'lr_scheduler.' if kind == 'scheduler' else ''}"
             f"{cls.__name__}{sig}\n```", ""]
    if has_torch:
        lines += [f"Drop-in for `{torch_name}` (torch 2.13): same arguments, defaults, semantics and state_dict.", ""]
    else:
        lines += ["Not in torch.optim; see the reference in the docstring below.", ""]
    lines += ["```text", doc, "```", ""]
    if extra:
        lines += [extra, ""]
    return "\n".join(lines)


TORCH_OPTIMIZERS = {"SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam", "ASGD",
                    "Rprop", "Adafactor", "SparseAdam", "LBFGS", "Muon"}


def _plot(name: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    text, factory, steps, metrics, kind = EXAMPLES[name]
    result = fls.preview(factory, steps, metrics=metrics, optimizer=kind, lr=0.1)
    lrs = [row[0] for row in result.lr]
    moms = [row[0] for row in result.momentum]
    cycles_momentum = len({m for m in moms if m is not None}) > 1
    fig, ax = plt.subplots(figsize=(7.0, 3.2), dpi=100)
    ax.plot(result.step, lrs, color="tab:blue", label="lr")
    ax.set_xlabel("scheduler.step() calls")
    ax.set_ylabel("learning rate")
    ax.set_title(text if len(text) < 90 else text[:87] + "...", fontsize=8)
    if cycles_momentum:
        ax2 = ax.twinx()
        ax2.plot(result.step, moms, color="tab:orange", linestyle="--", label="momentum")
        ax2.set_ylabel("momentum", color="tab:orange")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def generate(out: str) -> List[str]:
    written = []
    os.makedirs(os.path.join(out, "optimizers"), exist_ok=True)
    os.makedirs(os.path.join(out, "schedulers"), exist_ok=True)
    index = ["# fastoptim reference", "",
             "Generated by `python docs/generate.py` from the installed package's docstrings.", "",
             "## Optimizers", ""]
    for cls in public_optimizers():
        path = os.path.join(out, "optimizers", f"{cls.__name__}.md")
        with open(path, "w", encoding="utf-8") as f:
            f.write(_page(cls, "optimizer"))
        written.append(path)
        summary = inspect.cleandoc(cls.__doc__ or "").split("\n")[0]
        index.append(f"- [{cls.__name__}](optimizers/{cls.__name__}.md): {summary}")
    index += ["", "## Learning-rate schedulers", ""]
    for cls in public_schedulers():
        png = os.path.join(out, "schedulers", f"{cls.__name__}.png")
        _plot(cls.__name__, png)
        written.append(png)
        figure = f"![{cls.__name__}: {EXAMPLES[cls.__name__][0]}]({cls.__name__}.png)\n\n" \
                 f"The figure: `{EXAMPLES[cls.__name__][0]}` on SGD(lr=0.1, momentum=0.9)."
        path = os.path.join(out, "schedulers", f"{cls.__name__}.md")
        with open(path, "w", encoding="utf-8") as f:
            f.write(_page(cls, "scheduler", figure))
        written.append(path)
        summary = inspect.cleandoc(cls.__doc__ or "").split("\n")[0]
        index.append(f"- [{cls.__name__}](schedulers/{cls.__name__}.md): {summary}")
    path = os.path.join(out, "index.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(index) + "\n")
    written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = parser.parse_args()
    for path in generate(args.out):
        print(path)


if __name__ == "__main__":
    main()
