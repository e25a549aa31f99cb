"""``python -m fastoptim demo``: a two-layer MLP in numpy (forward and backward by hand) trained on
scikit-learn's bundled digits, a fastoptim optimizer stepping per batch and a scheduler (by default
ReduceLROnPlateau on the validation loss, per epoch).

Per epoch it prints train loss, validation loss and accuracy, the learning rate after the scheduler's
step, the plateau patience counter and what the scheduler did. ``--compare torch`` replays the same run
(same initial parameters, same batches, same numpy gradients) with torch.optim and torch's scheduler, so
the difference it reports is the optimizer's and scheduler's alone.

Without scikit-learn the demo says so and trains on generated data (two interleaved spirals) instead.
"""

from __future__ import annotations

import inspect
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

import fastoptim

from . import _core
from . import lr_scheduler as fls
from .lr_scheduler._preview import _parse_args

# Tuned on digits so the default run (Adam, ReduceLROnPlateau) improves, plateaus and cuts the LR.
EPOCHS = 30
BATCH_SIZE = 32
HIDDEN = 64
PLATEAU_ARGS = dict(mode="min", factor=0.5, patience=2, threshold=0.01)

# Learning rates for this problem (torch's defaults train too slowly in 30 epochs); anything not listed
# uses the optimizer's own defaults, and --opt-arg overrides these.
OPTIMIZER_ARGS: Dict[str, Dict[str, Any]] = {
    "SGD": dict(lr=0.05, momentum=0.9, nesterov=True),
    "Adam": dict(lr=5e-3),
    "AdamW": dict(lr=5e-3),
    "RMSprop": dict(lr=1e-3),
    "Adagrad": dict(lr=0.05),
}

PER_BATCH = {"OneCycleLR", "CyclicLR"}  # torch's docs: step these after every batch
# These take other schedulers or Python callables, which a command line cannot spell.
NOT_FROM_CLI = {"SequentialLR", "ChainedScheduler", "LambdaLR", "MultiplicativeLR"}

# --compare torch: parity means the parameters stay within PARITY_ULPS_FLOOR ulps of torch's (an ulp: the
# spacing of the parameter's largest magnitude, as in tests/parity.py), or within PARITY_SPREAD_FACTOR
# times torch's own spread, whichever is larger. Each step agrees with torch to a rounding (README,
# Numerics), and those roundings propagate along the trajectory; torch's own spread is how far torch
# drifts from itself when every gradient moves by one ulp (one rounding per step, the other way).
# Measured over the default 30 epochs (float32 and float64, Adam, AdamW, RMSprop, Adagrad, seeds 0-2):
# ours 7-38 ulps from torch, torch's spread 8-71 ulps, torch's fused Adam/AdamW/Adagrad 7-38 ulps from
# its single-tensor path (SGD: ours bit-identical, torch's fused 5-9 ulps off). Ours reached 2.8x the
# spread in one case, hence the floor. A wrong update rule lands thousands of ulps away or more.
PARITY_ULPS_FLOOR = 128.0
PARITY_SPREAD_FACTOR = 4.0
# Where one-ulp nudges move torch's own parameters by more than this (relative), the run is chaotic
# (a learning rate too high to converge): any two implementations diverge and the deviation says little.
CHAOTIC_SPREAD = 1e-3


def optimizer_classes() -> Dict[str, type]:
    """Every optimizer fastoptim exports, by name (new ones appear here without an edit)."""
    return {name: obj for name in fastoptim.__all__
            if isinstance(obj := getattr(fastoptim, name), type)
            and issubclass(obj, fastoptim.Optimizer) and obj is not fastoptim.Optimizer}


def scheduler_classes() -> Dict[str, type]:
    """Every scheduler of fastoptim.lr_scheduler that can be built from command-line arguments."""
    return {name: obj for name in fls.__all__
            if isinstance(obj := getattr(fls, name), type) and hasattr(obj, "step")
            and obj is not fls.LRScheduler and name not in NOT_FROM_CLI}


# ------------------------------------------------------------------------------------------ data

@dataclass
class Dataset:
    name: str  # for the header
    short_name: str  # for the plot's title
    x_train: np.ndarray
    y_train: np.ndarray  # class indices
    x_val: np.ndarray
    y_val: np.ndarray
    n_classes: int


def make_spirals(n: int, rng: np.random.Generator):
    """Two interleaved spirals (not linearly separable, so the hidden layer has to learn), 5% labels flipped."""
    t = np.sqrt(rng.random(n)) * 2 * np.pi
    label = rng.integers(0, 2, n)
    r = t / (2 * np.pi)
    angle = t + np.pi * label
    x = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1) + rng.normal(0, 0.02, (n, 2))
    flip = rng.random(n) < 0.05  # label noise: the validation loss has a floor, so it plateaus
    return x, np.where(flip, 1 - label, label)


def load_data(rng: np.random.Generator, dtype, notes: List[str]) -> Dataset:
    """Digits (8x8 images, 10 classes, bundled with scikit-learn), 80/20 split, standardized with the
    training set's statistics; two spirals when scikit-learn is missing."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        notes.append(f"scikit-learn is not available ({exc}); training on generated data (two spirals) "
                     "instead of the digits. For the digits: pip install \"fastoptim[demo]\"")
        x, y = make_spirals(2560, rng)
        name, short_name = "two spirals (generated, as scikit-learn is missing; 5% labels flipped)", "two spirals"
    else:
        digits = load_digits()
        x, y = digits.data, digits.target
        name, short_name = "digits (scikit-learn, 8x8 images)", "digits"
    order = rng.permutation(len(x))
    x, y = x[order], y[order]
    n_train = int(0.8 * len(x))
    mean, std = x[:n_train].mean(0), x[:n_train].std(0)
    x = (x - mean) / np.where(std > 0, std, 1.0)  # digits has pixels that are 0 in every image
    x = x.astype(dtype)
    y = y.astype(np.int64)
    return Dataset(name, short_name, x[:n_train], y[:n_train], x[n_train:], y[n_train:], int(y.max()) + 1)


# ----------------------------------------------------------------------------------------- model
# Parameters in param-group order: weights (w1, w2), then biases (b1, b2), which get no weight decay.

def init_params(n_in: int, hidden: int, n_out: int, rng: np.random.Generator, dtype) -> List[np.ndarray]:
    w1 = rng.normal(0, 1, (n_in, hidden)) / np.sqrt(n_in)
    w2 = rng.normal(0, 1, (hidden, n_out)) / np.sqrt(hidden)
    return [a.astype(dtype) for a in (w1, w2, np.zeros(hidden), np.zeros(n_out))]


def _forward(params: Sequence[np.ndarray], x: np.ndarray):
    """Hidden activations and log-probabilities (tanh: smooth, so tiny differences stay tiny)."""
    w1, w2, b1, b2 = params
    h = np.tanh(x @ w1 + b1)
    z = h @ w2 + b2
    z = z - z.max(axis=1, keepdims=True)
    return h, z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def loss_and_grads(params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray):
    """Mean cross-entropy and its gradients, by hand: d(loss)/d(logits) = softmax - onehot."""
    w1, w2, b1, b2 = params
    h, log_prob = _forward(params, x)
    n = len(x)
    rows = np.arange(n)
    loss = -float(np.sum(log_prob[rows, y])) / n
    dz = np.exp(log_prob)
    dz[rows, y] -= 1
    dz /= n
    dh = (dz @ w2.T) * (1 - h * h)
    return loss, [x.T @ dh, h.T @ dz, dh.sum(0), dz.sum(0)]


def evaluate(params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray):
    _, log_prob = _forward(params, x)
    loss = -float(np.mean(log_prob[np.arange(len(x)), y]))
    return loss, float(np.mean(log_prob.argmax(1) == y))


# -------------------------------------------------------------------------------------- progress

class _SimpleBar:
    """A one-line bar for when tqdm is not installed; redrawn at most every 50 ms, erased at the end."""

    def __init__(self, total: int, desc: str, file: Any) -> None:
        self.total, self.desc, self.file, self.n, self.drawn = total, desc, file, 0, 0.0
        self.loss: Optional[float] = None

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self.drawn < 0.05 and self.n < self.total:
            return
        self.drawn = now
        filled = 30 * self.n // self.total
        loss = "" if self.loss is None else f"  loss {self.loss:.4f}"
        self.file.write(f"\r{self.desc} [{'#' * filled}{'.' * (30 - filled)}] {self.n}/{self.total}{loss}")
        self.file.flush()

    def set_postfix(self, loss: float, refresh: bool = True) -> None:
        self.loss = loss

    def close(self) -> None:
        self.file.write("\r\033[K")  # back to the line's start, erase it: the table row goes there
        self.file.flush()


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, loss: float, refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _SimpleBar(total, desc, sys.stdout)
    return tqdm(total=total, desc=desc, file=sys.stdout, leave=False, unit="batch", mininterval=0.05)


# -------------------------------------------------------------------------------------- training

@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    val_acc: float
    lr: float
    patience: str
    event: str
    seconds: float


@dataclass
class Run:
    records: List[EpochRecord] = field(default_factory=list)
    step_lrs: List[float] = field(default_factory=list)  # group 0's lr at each optimizer step
    step_seconds: List[float] = field(default_factory=list)  # optimizer.step (and a per-batch scheduler)
    snapshots: List[List[np.ndarray]] = field(default_factory=list)  # parameters after each epoch
    seconds: float = 0.0


def describe(sched: Any, kind: str, lr_before: float, lr_after: float) -> str:
    event = getattr(sched, "last_event", None)  # fastoptim's ReduceLROnPlateau says what it did
    if event is not None and event.kind == "reduced" and len(set(zip(event.old_lrs, event.new_lrs))) == 1:
        return f"LR reduced {event.old_lrs[0]:.6g} → {event.new_lrs[0]:.6g}"  # once, not once per group
    if event is not None:
        return str(event)
    if lr_after != lr_before:
        return f"LR {lr_before:.6g} → {lr_after:.6g}" + (" (per batch)" if kind == "batch" else "")
    return ""


def train(params: List[np.ndarray], optimizer: Any, step: Callable[[List[np.ndarray]], None], sched: Any,
          kind: str, data: Dataset, orders: Sequence[np.ndarray], batch_size: int, progress: bool = False,
          on_epoch: Optional[Callable[[EpochRecord], None]] = None) -> Run:
    """Trains in place. ``step(grads)`` steps the optimizer; ``kind`` says when ``sched`` steps:
    "batch", "epoch", "plateau" (per epoch, with the validation loss) or "none"."""
    run = Run()
    start = time.perf_counter()
    group = optimizer.param_groups[0]
    for epoch, order in enumerate(orders, 1):
        epoch_start = time.perf_counter()
        n_batches = -(-len(order) // batch_size)
        bar = progress_bar(n_batches, f"epoch {epoch}/{len(orders)}", progress)
        lr_before = group["lr"]
        total = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            loss, grads = loss_and_grads(params, data.x_train[idx], data.y_train[idx])
            total += loss * len(idx)
            run.step_lrs.append(group["lr"])
            t0 = time.perf_counter()
            step(grads)
            if kind == "batch":
                sched.step()
            run.step_seconds.append(time.perf_counter() - t0)
            bar.set_postfix(loss=loss, refresh=False)
            bar.update()
        bar.close()
        val_loss, val_acc = evaluate(params, data.x_val, data.y_val)
        if kind == "plateau":
            sched.step(val_loss)
        elif kind == "epoch":
            sched.step()
        patience = f"{sched.num_bad_epochs}/{sched.patience}" if kind == "plateau" else "-"
        record = EpochRecord(epoch, total / len(order), val_loss, val_acc, group["lr"], patience,
                             describe(sched, kind, lr_before, group["lr"]), time.perf_counter() - epoch_start)
        run.records.append(record)
        run.snapshots.append([p.copy() for p in params])
        if on_epoch is not None:
            on_epoch(record)
    run.seconds = time.perf_counter() - start
    return run


def param_groups(params: Sequence[Any], weight_decay: bool) -> List[Dict[str, Any]]:
    if not weight_decay:
        return [{"params": list(params[:2])}, {"params": list(params[2:])}]
    return [{"params": list(params[:2])}, {"params": list(params[2:]), "weight_decay": 0.0}]


def _required(cls: type) -> List[str]:
    """The arguments a scheduler class needs besides the optimizer."""
    return [p.name for p in list(inspect.signature(cls).parameters.values())[1:]
            if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


@dataclass
class Config:
    optimizer: str
    opt_args: Dict[str, Any]
    scheduler: str  # "none" for none
    sched_args: Dict[str, Any]
    kind: str
    epochs: int
    batch_size: int
    seed: int
    dtype: str


def _torch_run(cfg: Config, params0: List[np.ndarray], data: Dataset, orders: Sequence[np.ndarray],
               nudge_seed: Optional[int] = None) -> Run:
    """The same run with torch.optim and torch's scheduler: parameters are torch tensors whose numpy views
    the same numpy model reads, and the same gradients are handed over as ``.grad``. With ``nudge_seed``
    every gradient element first moves one ulp up or down (at random): torch's own spread."""
    import torch

    tensors = [torch.from_numpy(p.copy()).requires_grad_(True) for p in params0]
    views = [t.detach().numpy() for t in tensors]  # shares memory: torch's in-place updates show here
    wd = "weight_decay" in inspect.signature(getattr(torch.optim, cfg.optimizer)).parameters
    opt = getattr(torch.optim, cfg.optimizer)(param_groups(tensors, wd), **cfg.opt_args)
    sched = None
    if cfg.scheduler != "none":
        sched = getattr(torch.optim.lr_scheduler, cfg.scheduler)(opt, **cfg.sched_args)
    nudge = None if nudge_seed is None else np.random.default_rng(nudge_seed)

    def step(grads: List[np.ndarray]) -> None:
        for t, g in zip(tensors, grads):
            if nudge is not None:
                g = np.nextafter(g, np.where(nudge.random(g.shape) < 0.5, -np.inf, np.inf).astype(g.dtype))
            t.grad = torch.from_numpy(g)
        opt.step()

    return train(views, opt, step, sched, cfg.kind, data, orders, cfg.batch_size)


def ulp_deviation(run: Run, ref: Run) -> float:
    """Largest |run - ref| over epochs and elements, in ulps of each parameter's largest |ref| at that epoch."""
    worst = 0.0
    for mine, theirs in zip(run.snapshots, ref.snapshots):
        for a, b in zip(mine, theirs):
            if not np.all(np.isfinite(a) == np.isfinite(b)):
                return float("inf")
            ulp = float(np.spacing(np.max(np.abs(b))))
            worst = max(worst, float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) / ulp)
    return worst


def compare_torch(cfg: Config, ours: Run, params0: List[np.ndarray], data: Dataset,
                  orders: Sequence[np.ndarray]) -> Dict[str, Any]:
    """Replays the run with torch, and once more with one-ulp gradient nudges (torch's own spread).
    Returns the deviations in ulps, the bound, the largest absolute parameter difference, the largest
    relative learning-rate difference and both runs."""
    import torch

    # One thread: these tensors are far below torch's parallel grain anyway, and on a busy machine its
    # idle OpenMP workers added milliseconds per step (measured: 4.3 s of steps instead of 0.26 s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        # torch's first optimizer step imports torch._dynamo (~1.7 s): pay it before the clock starts.
        warm = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        warm.grad = torch.zeros(1, dtype=torch.float64)
        torch.optim.SGD([warm], lr=0.1).step()
        theirs = _torch_run(cfg, params0, data, orders)
        nudged = _torch_run(cfg, params0, data, orders, nudge_seed=cfg.seed + 1)
    finally:
        torch.set_num_threads(threads)
    deviation, spread = ulp_deviation(ours, theirs), ulp_deviation(nudged, theirs)
    bound = max(PARITY_ULPS_FLOOR, PARITY_SPREAD_FACTOR * spread)
    max_abs = max(float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
                  for mine, ref in zip(ours.snapshots, theirs.snapshots) for a, b in zip(mine, ref))
    lr_diff = max(abs(a - b) / abs(b) if b else abs(a) for a, b in zip(ours.step_lrs, theirs.step_lrs))
    chaotic = spread * float(np.finfo(params0[0].dtype).eps) > CHAOTIC_SPREAD
    return dict(ulps=deviation, spread_ulps=spread, bound_ulps=bound, within=deviation <= bound,
                chaotic=chaotic, max_abs=max_abs, lr_rel_diff=lr_diff, ours=ours, torch=theirs)


# ------------------------------------------------------------------------------------------ plot

PLOT_SIZE = (11.0, 4.0)  # inches, at PLOT_DPI: 1100 x 400
PLOT_DPI = 100


def plot(path: str, run: Run, cfg: Config, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r.epoch for r in run.records]
    fig, (ax_loss, ax_lr) = plt.subplots(1, 2, figsize=PLOT_SIZE, dpi=PLOT_DPI)
    ax_loss.plot(epochs, [r.train_loss for r in run.records], "o-", label="train loss", markersize=3)
    ax_loss.plot(epochs, [r.val_loss for r in run.records], "o-", label="validation loss", markersize=3)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.set_yscale("log")
    ax_acc = ax_loss.twinx()
    ax_acc.plot(epochs, [r.val_acc for r in run.records], "--", color="tab:green", label="validation accuracy")
    ax_acc.set_ylabel("accuracy")
    lines = ax_loss.get_legend_handles_labels()[0] + ax_acc.get_legend_handles_labels()[0]
    ax_loss.legend(lines, [ln.get_label() for ln in lines], loc="lower left")
    ax_loss.grid(True, alpha=0.3)
    steps_per_epoch = len(run.step_lrs) / max(len(run.records), 1)
    ax_lr.step([k / steps_per_epoch for k in range(len(run.step_lrs))], run.step_lrs, where="post")
    for r in run.records:
        if r.event.startswith("LR reduced"):
            ax_lr.axvline(r.epoch, color="tab:red", alpha=0.4, linestyle=":")
    ax_lr.set_xlabel("epoch")
    ax_lr.set_ylabel("learning rate (group 0)")
    ax_lr.set_yscale("log")
    ax_lr.grid(True, alpha=0.3)
    ax_lr.set_title(cfg.scheduler if cfg.scheduler != "none" else "constant LR")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=PLOT_DPI)
    plt.close(fig)


# ------------------------------------------------------------------------------------ command line

def add_arguments(parser: Any) -> None:
    optimizers, schedulers = sorted(optimizer_classes()), sorted(scheduler_classes())
    parser.add_argument("--optimizer", default="Adam", choices=optimizers)
    parser.add_argument("--opt-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="an optimizer argument (a Python literal, else a string); repeatable")
    parser.add_argument("--scheduler", default="ReduceLROnPlateau", choices=schedulers + ["none"],
                        help="OneCycleLR and CyclicLR step per batch, ReduceLROnPlateau per epoch on the "
                             "validation loss, the rest per epoch")
    parser.add_argument("--sched-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="a scheduler argument; repeatable. Filled in when absent: CosineAnnealingLR's "
                             "T_max (the epochs), OneCycleLR's total_steps (all batches) and max_lr (the lr)")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help=f"default {EPOCHS}")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"default {BATCH_SIZE}")
    parser.add_argument("--seed", type=int, default=0, help="for the split, the initialization and the batches")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                        help="of the data and the parameters")
    parser.add_argument("--plot", metavar="OUT.png", help="loss, accuracy and LR curves (needs matplotlib)")
    parser.add_argument("--compare", choices=["torch"],
                        help="replay the run with torch.optim and torch's scheduler; print the largest "
                             "parameter difference and both wall times")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (none when stdout is not a TTY)")


def _config(parser: Any, args: Any, steps_per_epoch: int) -> Config:
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    if args.batch_size < 1:
        parser.error("--batch-size must be >= 1")
    opt_args = dict(OPTIMIZER_ARGS.get(args.optimizer, {}))
    opt_args.update(_parse_args(parser, args.opt_arg, "--opt-arg"))
    name = args.scheduler
    sched_args = dict(PLATEAU_ARGS) if name == "ReduceLROnPlateau" else {}
    sched_args.update(_parse_args(parser, args.sched_arg, "--sched-arg"))
    if name == "CosineAnnealingLR":
        sched_args.setdefault("T_max", args.epochs)
    if name == "OneCycleLR":
        if "epochs" not in sched_args:
            sched_args.setdefault("total_steps", args.epochs * steps_per_epoch)
        lr = opt_args.get("lr", inspect.signature(optimizer_classes()[args.optimizer]).parameters["lr"].default)
        sched_args.setdefault("max_lr", lr)
    if name != "none":
        missing = [k for k in _required(scheduler_classes()[name]) if k not in sched_args]
        if missing:
            parser.error(f"{name} needs {', '.join(missing)}: add --sched-arg " +
                         " --sched-arg ".join(f"{k}=..." for k in missing))
    kind = "none" if name == "none" else "plateau" if name == "ReduceLROnPlateau" else (
        "batch" if name in PER_BATCH else "epoch")
    return Config(args.optimizer, opt_args, name, sched_args, kind, args.epochs, args.batch_size, args.seed,
                  args.dtype)


def _call(args: Dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


def cli(parser: Any, args: Any) -> int:
    # Missing extras are reported before training, not after it.
    import importlib.util

    if args.compare == "torch" and importlib.util.find_spec("torch") is None:
        print("error: --compare torch needs torch: pip install torch==2.13.0", file=sys.stderr)
        return 3
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        print("error: --plot needs matplotlib: pip install \"fastoptim[demo]\" (or pip install matplotlib)",
              file=sys.stderr)
        return 3
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(args.seed)
    notes: List[str] = []
    data = load_data(rng, dtype, notes)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    steps_per_epoch = -(-len(data.x_train) // max(args.batch_size, 1))
    cfg = _config(parser, args, steps_per_epoch)
    params = init_params(data.x_train.shape[1], HIDDEN, data.n_classes, rng, dtype)
    params0 = [p.copy() for p in params]
    orders = [rng.permutation(len(data.x_train)) for _ in range(cfg.epochs)]  # the batches, for both runs

    opt_cls = optimizer_classes()[cfg.optimizer]
    wd = "weight_decay" in inspect.signature(opt_cls).parameters
    try:
        opt = opt_cls(param_groups(params, wd), **cfg.opt_args)
        sched = None if cfg.kind == "none" else scheduler_classes()[cfg.scheduler](opt, **cfg.sched_args)
    except (TypeError, ValueError, KeyError) as exc:
        print(f"error: {cfg.optimizer} / {cfg.scheduler}: {exc}", file=sys.stderr)
        return 2

    n_in, n_out = data.x_train.shape[1], data.n_classes
    print(f"fastoptim demo: {data.name}, {len(data.x_train)} train / {len(data.x_val)} validation; "
          f"MLP {n_in}-{HIDDEN}-{n_out} (tanh, softmax), {args.dtype}, batch {cfg.batch_size}, {cfg.epochs} epochs")
    sched_text = "no scheduler" if cfg.kind == "none" else (
        f"{cfg.scheduler}({_call(cfg.sched_args)}) per {'batch' if cfg.kind == 'batch' else 'epoch'}"
        + (" on the validation loss" if cfg.kind == "plateau" else ""))
    print(f"{cfg.optimizer}({_call(cfg.opt_args)}) per batch, {sched_text}; "
          f"kernels: {_core.cpu_capability()}, {_core.max_threads()} threads")
    print(f"{'epoch':>5} {'train':>8} {'val':>8} {'val acc':>8} {'lr':>10} {'patience':>8} {'time':>8}  scheduler")

    def row(r: EpochRecord) -> None:
        print(f"{r.epoch:>5} {r.train_loss:>8.4f} {r.val_loss:>8.4f} {r.val_acc:>8.3f} {r.lr:>10.4g} "
              f"{r.patience:>8} {1e3 * r.seconds:>6.1f}ms  {r.event}", flush=True)

    progress = sys.stdout.isatty() and not args.no_progress
    run = train(params, opt, lambda grads: opt.step(grads), sched, cfg.kind, data, orders, cfg.batch_size,
                progress, row)
    if not all(np.all(np.isfinite(p)) for p in params):
        print("error: the parameters are no longer finite (learning rate too high?)", file=sys.stderr)
        return 1
    last = run.records[-1]
    best = min(run.records, key=lambda r: r.val_loss)
    print(f"done in {run.seconds:.2f} s: validation accuracy {last.val_acc:.3f} (loss {last.val_loss:.4f}); "
          f"best validation loss {best.val_loss:.4f} at epoch {best.epoch}")

    status = 0
    if args.compare == "torch":
        status = _print_comparison(cfg, run, params0, data, orders)
    if args.plot:
        sched_name = "no scheduler" if cfg.kind == "none" else cfg.scheduler
        plot(args.plot, run, cfg, f"{cfg.optimizer} + {sched_name} on {data.short_name}")
        print(f"wrote {args.plot}")
    return status


def _print_comparison(cfg: Config, run: Run, params0: List[np.ndarray], data: Dataset,
                      orders: Sequence[np.ndarray]) -> int:
    try:
        result = compare_torch(cfg, run, params0, data, orders)
    except (AttributeError, TypeError, ValueError) as exc:
        print(f"error: torch could not run {cfg.optimizer} / {cfg.scheduler} with these arguments: {exc}",
              file=sys.stderr)
        return 2
    sched = "no scheduler" if cfg.scheduler == "none" else f"torch.optim.lr_scheduler.{cfg.scheduler}"
    print(f"compare torch: torch.optim.{cfg.optimizer} and {sched} (1 thread), {cfg.dtype}, from the same "
          "initial parameters with the same batches and numpy gradients")
    for label, r in (("fastoptim", result["ours"]), ("torch.optim", result["torch"])):
        # The median per batch, as the machine may be shared; the wall time includes the numpy model.
        print(f"  {label:<12} wall {r.seconds:6.3f} s; optimizer (+ scheduler) step, median per batch: "
              f"{1e6 * float(np.median(r.step_seconds)):6.1f} us")
    verdict = "within" if result["within"] else "OUTSIDE"
    print(f"  max parameter deviation {result['max_abs']:.3g} = {result['ulps']:.3g} ulps of the largest "
          f"|parameter| ({verdict} the parity bound of {result['bound_ulps']:.3g} ulps: the larger of "
          f"{PARITY_ULPS_FLOOR:g} and {PARITY_SPREAD_FACTOR:g} x torch's own spread, {result['spread_ulps']:.3g} "
          "ulps with one-ulp gradient nudges)")
    print(f"  learning rates: largest relative difference {result['lr_rel_diff']:.3g} over "
          f"{len(run.step_lrs)} steps")
    if result["chaotic"]:
        print("  note: one-ulp gradient nudges move torch's own parameters far apart here: the run is chaotic "
              "(learning rate too high to converge?), so the deviation says little; compare at settings that "
              "converge, e.g. the defaults")
    return 0 if result["within"] else 1
