"""The step benchmark behind ``python -m fastoptim bench`` and ``bench/bench_step.py``.

Times ``step()`` (gradients prepared beforehand) after warm-up and reports medians, side by side in one run
(interleaved: every implementation of a case is timed in turn, block after block, see interleaved_medians):
fastoptim, torch's single-tensor / foreach / fused implementations where torch has them, and hand-written
numpy for SGD with momentum, Adam, AdamW, RMSprop and Adagrad. Each row also gets a roofline: a bandwidth
probe (``_core._stream``) run on arrays with the optimizer's own read/write mix (Adam, float32: reads param,
grad and two moments, writes param and both moments: 28 bytes per parameter), taken from the state the
optimizer actually keeps, so lower-precision state moves fewer bytes. Machines are shared and noisy: compare
numbers from one run only; the report records the machine and its load average before and after.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _core
from . import __version__, cpu_capability, get_num_threads, set_num_threads
from . import (ASGD, LAMB, LBFGS, SGD, AdaBelief, Adadelta, Adafactor, Adagrad, Adam, Adamax, AdamW, Adan, Lion,
               Muon, NAdam, RAdam, RMSprop, Rprop, ScheduleFreeAdamW, SparseAdam)

Shape = Tuple[int, ...]

# ------------------------------------------------------------------------------------------------ cases


def transformer_shapes() -> List[Shape]:
    """148 tensors, 1e7 parameters: 12 blocks of d=256 (qkv, proj, fc1, fc2 weights as matrices, their biases,
    two layer norms), a token embedding, a position embedding and a final layer norm."""
    d = 256
    shapes: List[Shape] = []
    for _ in range(12):
        shapes += [(3 * d, d), (3 * d,), (d, d), (d,), (4 * d, d), (4 * d,), (d, 4 * d), (d,), (d,), (d,), (d,), (d,)]
    rest = 10_000_000 - sum(math.prod(s) for s in shapes) - 512 * d - 2 * d
    return shapes + [(rest // 128, 128), (512, d), (d,), (d,)]


# key: (label, shapes). 1e8 only with --big (or named in --cases): ~0.4 GB per float32 array.
CASES: Dict[str, Tuple[str, List[Shape]]] = {
    "1x16": ("1 tensor of 16 (per-call time)", [(16,)]),
    "1x1e5": ("1 tensor of 1e5", [(100_000,)]),
    "1x1e6": ("1 tensor of 1e6", [(1_000_000,)]),
    "1x1e7": ("1 tensor of 1e7", [(10_000_000,)]),
    "1x1e8": ("1 tensor of 1e8", [(100_000_000,)]),
    "148x": ("148 tensors, 1e7 in all (transformer-like)", transformer_shapes()),
    "1000x1e3": ("1000 tensors of 1e3", [(1000,)] * 1000),
}
BIG_CASES = ("1x1e8",)
# --quick (the tests): tiny versions of the same kinds of case.
QUICK_CASES: Dict[str, Tuple[str, List[Shape]]] = {
    "1x16": ("1 tensor of 16 (per-call time)", [(16,)]),
    "1x4096": ("1 tensor of 4096", [(4096,)]),
    "20x": ("20 tensors, 2e3 in all (matrices and vectors)", [(16, 24), (24,), (24, 16), (16,)] * 5),
}

SPARSE_DENSITY = 0.01  # SparseAdam: fraction of the table's rows each gradient touches
LBFGS_MAX_PARAMS = 20_000_000  # LBFGS keeps 2 * history_size vectors of all parameters
MUON_MAX_MATRIX = 1_000_000  # Newton-Schulz costs ~ n^1.5 per matrix


def _near_square(n: int) -> Shape:
    r = int(math.isqrt(n))
    while n % r:
        r -= 1
    return (r, n // r)


def _embedding(n: int) -> Shape:
    cols = next(c for c in (100, 64, 16, 1) if n % c == 0) if n >= 100 else n
    return (n // cols, cols)


# ----------------------------------------------------------------------------------------- optimizers


@dataclass
class Spec:
    """One benchmarked optimizer configuration."""

    label: str
    cls: type
    kwargs: Dict[str, Any]
    torch_name: Optional[str] = None  # torch.optim class with the same rule and arguments
    numpy: Optional[Callable[..., Callable[[], None]]] = None  # hand-written numpy step factory
    kind: str = "dense"  # dense | sparse (SparseAdam) | matrices (Muon) | closure (LBFGS)
    reference: Optional[Dict[str, Any]] = None  # kwargs of a float32-state fastoptim run to compare against
    warmup: int = 2


def numpy_sgd(params, grads, lr=1e-2, momentum=0.9):
    """SGD with momentum as a user would write it in numpy (torch's rule: buf = momentum * buf + g)."""
    bufs = [None] * len(params)

    def step():
        for i, (p, g) in enumerate(zip(params, grads)):
            if bufs[i] is None:
                bufs[i] = g.copy()
            else:
                bufs[i] *= momentum
                bufs[i] += g
            p -= lr * bufs[i]

    return step


def numpy_adam(params, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    """The straightforward numpy Adam (AdamW with ``decoupled``) a user would write."""
    b1, b2 = betas
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = [0]

    def step():
        t[0] += 1
        c1, c2 = 1 - b1 ** t[0], 1 - b2 ** t[0]
        for p, g, mi, vi in zip(params, grads, m, v):
            if decoupled:
                p *= 1 - lr * weight_decay
            elif weight_decay:
                g = g + weight_decay * p
            mi *= b1
            mi += (1 - b1) * g
            vi *= b2
            vi += (1 - b2) * g * g
            p -= (lr / c1) * mi / (np.sqrt(vi / c2) + eps)

    return step


def numpy_adamw(params, grads, lr=1e-3, weight_decay=1e-2):
    return numpy_adam(params, grads, lr=lr, weight_decay=weight_decay, decoupled=True)


def numpy_rmsprop(params, grads, lr=1e-3, alpha=0.99, eps=1e-8):
    sq = [np.zeros_like(p) for p in params]

    def step():
        for p, g, s in zip(params, grads, sq):
            s *= alpha
            s += (1 - alpha) * g * g
            p -= lr * g / (np.sqrt(s) + eps)

    return step


def numpy_adagrad(params, grads, lr=1e-2, eps=1e-10):
    sums = [np.zeros_like(p) for p in params]

    def step():
        for p, g, s in zip(params, grads, sums):
            s += g * g
            p -= lr * g / (np.sqrt(s) + eps)

    return step


SPECS: Dict[str, Spec] = {
    "SGD": Spec("SGD momentum", SGD, dict(lr=1e-2, momentum=0.9), "SGD", numpy_sgd),
    "Adam": Spec("Adam", Adam, dict(lr=1e-3), "Adam", numpy_adam),
    "AdamW": Spec("AdamW", AdamW, dict(lr=1e-3, weight_decay=1e-2), "AdamW", numpy_adamw),
    "RMSprop": Spec("RMSprop", RMSprop, dict(lr=1e-3), "RMSprop", numpy_rmsprop),
    "Adagrad": Spec("Adagrad", Adagrad, dict(lr=1e-2), "Adagrad", numpy_adagrad),
    "Adadelta": Spec("Adadelta", Adadelta, dict(lr=1.0), "Adadelta"),
    "ASGD": Spec("ASGD", ASGD, dict(lr=1e-2), "ASGD"),
    "Rprop": Spec("Rprop", Rprop, dict(lr=1e-2), "Rprop"),
    "Adamax": Spec("Adamax", Adamax, dict(lr=2e-3), "Adamax"),
    "NAdam": Spec("NAdam", NAdam, dict(lr=2e-3), "NAdam"),
    "RAdam": Spec("RAdam", RAdam, dict(lr=1e-3), "RAdam"),
    "Adafactor": Spec("Adafactor", Adafactor, dict(lr=1e-2), "Adafactor"),
    "SparseAdam": Spec(f"SparseAdam ({SPARSE_DENSITY:.0%} of rows)", SparseAdam, dict(lr=1e-3), "SparseAdam",
                       kind="sparse"),
    "LBFGS": Spec("LBFGS (max_iter=1, history 10, quadratic)", LBFGS,
                  dict(lr=1e-2, max_iter=1, history_size=10), "LBFGS", kind="closure", warmup=12),
    "Muon": Spec("Muon (2-D)", Muon, dict(lr=1e-3), "Muon", kind="matrices"),
    "Lion": Spec("Lion", Lion, dict(lr=1e-4)),
    "LAMB": Spec("LAMB", LAMB, dict(lr=1e-3)),
    "Adan": Spec("Adan", Adan, dict(lr=1e-3)),
    "AdaBelief": Spec("AdaBelief", AdaBelief, dict(lr=1e-3)),
    "ScheduleFreeAdamW": Spec("ScheduleFreeAdamW", ScheduleFreeAdamW, dict(lr=2.5e-3)),
    # Lower-precision state (where the optimizer accepts state_dtype=): compared with float32 state in the row.
    "Adam-bf16": Spec("Adam, bfloat16 state", Adam, dict(lr=1e-3, state_dtype="bfloat16"),
                      reference=dict(lr=1e-3)),
    "Adam-f16": Spec("Adam, float16 state", Adam, dict(lr=1e-3, state_dtype="float16"), reference=dict(lr=1e-3)),
    "SGD-bf16": Spec("SGD momentum, bfloat16 state", SGD, dict(lr=1e-2, momentum=0.9, state_dtype="bfloat16"),
                     reference=dict(lr=1e-2, momentum=0.9)),
}


def supported(spec: Spec) -> bool:
    """Whether this fastoptim build accepts the spec's arguments (state_dtype= is newer than the rest)."""
    try:
        spec.cls([np.zeros((2, 2), np.float32)], **spec.kwargs)
    except (TypeError, ValueError):
        return False
    return True


# ------------------------------------------------------------------------------------------- timing


SETTLE_SECONDS = 0.02


def interleaved_medians(fns: Dict[str, Callable[[], Any]], repeat: int, min_time: float = 0.2, budget: float = 5.0,
                        warmups: Optional[Dict[str, int]] = None, rounds: int = 10
                        ) -> Tuple[Dict[str, float], Dict[str, BaseException]]:
    """Median time per call of each function, measured side by side: after warm-up, up to ``rounds`` rounds
    each time every function in turn for a block of calls, so that a busy moment of the shared machine falls
    on all of them alike, not on whichever happened to be running then. Each function gets at least
    ``repeat`` timed calls (more, up to 10x, until ``min_time`` seconds; at least 3 once past ``budget``
    seconds: slow cases), after ``warmups[label]`` untimed calls (2 by default; a single one when it takes
    over a second, unless more are asked for: LBFGS fills its history). A block of a function faster than SETTLE_SECONDS starts with untimed calls for that
    long: the block before may have pushed its arrays out of the caches, and the previous library's idle
    worker threads (an OpenMP team, OpenBLAS's, our pool's) keep spinning for a few milliseconds after its
    last call, taking a core from whichever library runs next (a slower call absorbs that in its own time). Returns (medians, errors): a function that raises one of
    _CAUGHT during its warm-up is left out and its exception returned."""
    warmups = warmups or {}
    estimate: Dict[str, float] = {}
    errors: Dict[str, BaseException] = {}
    for label, fn in fns.items():
        try:
            for i in range(max(1, warmups.get(label, 2))):
                t0 = time.perf_counter()
                fn()
                estimate[label] = time.perf_counter() - t0
                if warmups.get(label, 2) <= 2 and estimate[label] > 1.0:
                    break
        except _CAUGHT as e:
            errors[label] = e
    calls = {}
    for label, t in estimate.items():
        t = max(t, 1e-7)
        n = max(repeat, min(10 * repeat, math.ceil(min_time / t)))
        if n * t > budget:
            n = max(3, min(n, math.floor(budget / t)))
        calls[label] = n
    n_rounds = max(1, min([rounds] + list(calls.values())))
    block = {label: math.ceil(n / n_rounds) for label, n in calls.items()}
    times: Dict[str, List[float]] = {label: [] for label in calls}
    for _ in range(n_rounds):
        for label in calls:
            fn = fns[label]
            settle = time.perf_counter() + SETTLE_SECONDS
            while estimate[label] < SETTLE_SECONDS:  # untimed: see the docstring
                fn()
                if time.perf_counter() >= settle:
                    break
            for _ in range(block[label]):
                t0 = time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - t0)
    return {label: statistics.median(ts) for label, ts in times.items()}, errors


# ------------------------------------------------------------------------------------- one case


def shapes_for(spec: Spec, shapes: List[Shape]) -> Optional[List[Shape]]:
    """The case's tensors as this optimizer takes them, or None where the case does not apply."""
    n = sum(math.prod(s) for s in shapes)
    if spec.kind == "sparse":  # an embedding table; multi-tensor cases do not apply
        return [_embedding(n)] if len(shapes) == 1 else None
    if spec.kind == "matrices":  # Muon takes matrices only: the case's own, or a single tensor made one
        if len(shapes) == 1:
            return [_near_square(n)] if n <= MUON_MAX_MATRIX else None
        mats: List[Shape] = [s for s in shapes if len(s) == 2]
        if any(s[0] * s[1] > MUON_MAX_MATRIX for s in mats):
            mats = [s for s in mats if s[0] * s[1] <= MUON_MAX_MATRIX]
        return mats or [_near_square(math.prod(s)) for s in shapes]
    if spec.kind == "closure" and n > LBFGS_MAX_PARAMS:
        return None
    return shapes


class Problem:
    """The parameters and the gradients of one case (float32), as each implementation consumes them."""

    def __init__(self, spec: Spec, shapes: List[Shape]) -> None:
        rng = np.random.default_rng(0)
        self.kind = spec.kind
        self.params = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
        if self.kind == "sparse":
            self.grads: List[Any] = []
            for p in self.params:
                k = max(1, int(round(p.shape[0] * SPARSE_DENSITY)))
                rows = np.sort(rng.choice(p.shape[0], size=k, replace=False)).astype(np.int64)
                vals = (rng.standard_normal((k,) + p.shape[1:], dtype=np.float32) * 1e-3)
                self.grads.append((rows, vals))
        else:
            self.grads = [rng.standard_normal(s, dtype=np.float32) * np.float32(1e-3) for s in shapes]
        if self.kind == "closure":  # a fixed quadratic 0.5 * sum(c * p * p): its gradient is c * p
            self.curvature = [rng.uniform(0.5, 2.0, s).astype(np.float32) for s in shapes]

    @property
    def numel(self) -> int:
        return sum(p.size for p in self.params)

    def touched(self, i: int) -> int:
        """Elements of parameter i a step reads and writes."""
        if self.kind == "sparse":
            return self.grads[i][1].size
        return self.params[i].size

    def fastoptim_step(self, spec: Spec, kwargs: Dict[str, Any]) -> Tuple[Any, Callable[[], Any], List[np.ndarray]]:
        params = [p.copy() for p in self.params]
        opt = spec.cls(params, **kwargs)
        if hasattr(opt, "train"):  # ScheduleFreeAdamW steps in train mode only
            opt.train()
        if self.kind == "closure":
            grads = [np.empty_like(p) for p in params]

            def closure():
                for p, c, g in zip(params, self.curvature, grads):
                    np.multiply(c, p, out=g)
                return 0.0, grads

            return opt, lambda: opt.step(closure), params
        return opt, lambda: opt.step(self.grads), params

    def torch_step(self, torch: Any, cls: Any, kwargs: Dict[str, Any]) -> Callable[[], Any]:
        tparams = [torch.from_numpy(p.copy()).requires_grad_(True) for p in self.params]
        for p, g in zip(tparams, self.grads):
            if self.kind == "sparse":
                rows, vals = g
                p.grad = torch.sparse_coo_tensor(torch.from_numpy(rows)[None, :], torch.from_numpy(vals), p.shape,
                                                 check_invariants=False)
            else:
                p.grad = torch.from_numpy(g if self.kind != "closure" else np.empty_like(g))
        opt = cls(tparams, **kwargs)
        if hasattr(opt, "train"):
            opt.train()
        if self.kind == "closure":
            curv = [torch.from_numpy(c) for c in self.curvature]

            def closure():
                with torch.no_grad():
                    for p, c in zip(tparams, curv):
                        torch.mul(c, p, out=p.grad)
                return 0.0

            return lambda: opt.step(closure)
        return opt.step


def traffic(opt: Any, prob: Problem, params: List[np.ndarray]) -> Optional[Dict[Tuple, int]]:
    """The optimizer's memory traffic per step as {(param itemsize, grad itemsize, state itemsizes): elements}:
    each step reads the parameter, its gradient and every state array of the parameter's shape, and writes the
    parameter and those state arrays (smaller state, e.g. Adafactor's factored rows and columns, is left out).
    None where one pass over the arrays is not a meaningful bound (LBFGS: its two-loop recursion)."""
    if prob.kind == "closure":
        return None
    mix: Dict[Tuple, int] = {}
    for i, p in enumerate(params):
        entry = opt.state.get(i, {})
        state = tuple(sorted(a.itemsize for a in entry.values() if isinstance(a, np.ndarray) and a.shape == p.shape))
        g = prob.grads[i][1] if prob.kind == "sparse" else prob.grads[i]
        key = (p.itemsize, g.itemsize, state)
        mix[key] = mix.get(key, 0) + prob.touched(i)
    return mix


def _scratch(n: int, itemsize: int) -> np.ndarray:
    """n elements for the probe, page-aligned (numpy's are 16 bytes into a page: vectors straddle cache lines)."""
    raw = np.empty(n * itemsize + 4096, np.uint8)
    start = -raw.ctypes.data % 4096
    a = raw[start:start + n * itemsize].view({2: np.uint16, 4: np.uint32, 8: np.uint64}[itemsize])
    a.fill(1)  # touch every page: untouched pages all map to one zero page and read from cache
    return a


def probe(mix: Dict[Tuple, int]) -> Tuple[Callable[[], Any], int]:
    """(run, bytes): one pass of the bandwidth probe over fresh arrays with the given mix, and the bytes it moves."""
    passes, nbytes = [], 0
    for (p_size, g_size, state), n in mix.items():
        p, g = _scratch(n, p_size), _scratch(n, g_size)
        st = [_scratch(n, s) for s in state]
        passes.append(([p, g] + st, [p] + st))
        nbytes += n * (sum(a.itemsize for a in passes[-1][0]) + sum(a.itemsize for a in passes[-1][1]))

    def run() -> None:
        for reads, writes in passes:
            _core._stream(reads, writes)

    return run, nbytes


def roofline(mix: Dict[Tuple, int], repeat: int, min_time: float) -> Tuple[float, int]:
    """(seconds, bytes): the probe's median time over arrays with the given mix, and the bytes it moves."""
    run, nbytes = probe(mix)
    seconds, _ = interleaved_medians({"probe": run}, repeat, min_time)
    return seconds["probe"], nbytes


TORCH_IMPLS = (("torch single", "foreach", False), ("torch foreach", "foreach", True), ("torch fused", "fused", True))
_CAUGHT = (TypeError, ValueError, RuntimeError, NotImplementedError)


def bench_case(spec: Spec, shapes: List[Shape], repeat: int, min_time: float, torch: Any,
               notes: Dict[str, str]) -> Dict[str, Any]:
    prob = Problem(spec, shapes)
    steps: Dict[str, Callable[[], Any]] = {}
    warmups: Dict[str, int] = {}
    opt, steps["fastoptim"], params = prob.fastoptim_step(spec, spec.kwargs)
    warmups["fastoptim"] = spec.warmup
    steps["fastoptim"]()  # the state exists after one step: its arrays give the traffic
    mix = traffic(opt, prob, params)
    del opt, params
    if spec.reference is not None:
        _, steps["fastoptim float32 state"], _ = prob.fastoptim_step(spec, spec.reference)
        warmups["fastoptim float32 state"] = spec.warmup
    nbytes: Optional[int] = None
    if mix:
        steps["roofline"], nbytes = probe(mix)
    if spec.numpy is not None and prob.kind == "dense":
        steps["numpy"] = spec.numpy([p.copy() for p in prob.params], prob.grads, **spec.kwargs)
    cls = getattr(torch.optim, spec.torch_name, None) if torch is not None and spec.torch_name else None
    if cls is not None:
        import inspect

        accepted = inspect.signature(cls.__init__).parameters
        kwargs = {k: v for k, v in spec.kwargs.items() if k in accepted}
        for label, flag, value in TORCH_IMPLS:
            if flag not in accepted:
                if label != "torch single":
                    continue
                extra: Dict[str, Any] = {}  # torch's only implementation (LBFGS, SparseAdam, Muon)
            else:
                extra = {flag: value}
            try:
                steps[label] = prob.torch_step(torch, cls, {**kwargs, **extra})
                warmups[label] = spec.warmup
            except _CAUGHT as e:
                notes.setdefault(f"{spec.torch_name} {label}", f"{type(e).__name__}: {str(e).splitlines()[0][:120]}")
    seconds, errors = interleaved_medians(steps, repeat, min_time, warmups=warmups)
    for label, err in errors.items():  # e.g. no fused kernel for this optimizer on this device
        if not label.startswith("torch"):
            raise err
        notes.setdefault(f"{spec.torch_name} {label}", f"{type(err).__name__}: {str(err).splitlines()[0][:120]}")
    roof = seconds.pop("roofline", None)
    return {"seconds": seconds, "params": prob.numel, "tensors": len(prob.params),
            "shapes": sorted({str(tuple(p.shape)) for p in prob.params}),
            "roofline_seconds": roof, "bytes": nbytes if roof is not None else None}


def derive(row: Dict[str, Any]) -> None:
    """Adds ns/param, GB/s, % of roofline and the ratios to a result row (in place)."""
    s, n = row["seconds"], row["params"]
    ours = s["fastoptim"]
    row["ns_per_param"] = {k: 1e9 * t / n for k, t in s.items()}
    nbytes = row["bytes"]
    row["bytes_per_param"] = nbytes / n if nbytes else None
    row["gbps"] = {k: nbytes / t / 1e9 for k, t in s.items()} if nbytes else None
    row["roofline_gbps"] = nbytes / row["roofline_seconds"] / 1e9 if nbytes else None
    row["pct_of_roofline"] = 100 * row["roofline_seconds"] / ours if nbytes else None
    row["ratio_torch_fused"] = s["torch fused"] / ours if "torch fused" in s else None
    # The most any one-pass step could beat torch fused by: torch fused's time over the probe's.
    row["ceiling_torch_fused"] = (s["torch fused"] / row["roofline_seconds"]
                                  if nbytes and "torch fused" in s else None)
    torch_times = [t for k, t in s.items() if k.startswith("torch")]
    row["ratio_torch_best"] = min(torch_times) / ours if torch_times else None
    row["ratio_numpy"] = s["numpy"] / ours if "numpy" in s else None
    ref = s.get("fastoptim float32 state")
    row["ratio_float32_state"] = ref / ours if ref is not None else None


# ------------------------------------------------------------------------------------------ machine


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def machine_info(torch: Any) -> Dict[str, Any]:
    info: Dict[str, Any] = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                            "platform": platform.platform(), "python": platform.python_version()}
    cpuinfo = _read("/proc/cpuinfo") or ""
    models = [ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")]
    info["cpu"] = models[0] if models else (platform.processor() or platform.machine())
    cores = set()
    phys = core = None
    for ln in cpuinfo.splitlines():
        if ln.startswith("physical id"):
            phys = ln.split(":", 1)[1].strip()
        elif ln.startswith("core id"):
            core = ln.split(":", 1)[1].strip()
        elif not ln.strip() and core is not None:
            cores.add((phys, core))
            phys = core = None
    if core is not None:
        cores.add((phys, core))
    info["logical_cpus"] = os.cpu_count()
    info["physical_cores"] = len(cores) or None
    info["usable_cpus"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    caches = []
    base = "/sys/devices/system/cpu/cpu0/cache"
    for index in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        get = lambda k: (_read(f"{base}/{index}/{k}") or "").strip()  # noqa: E731
        if get("level"):
            caches.append({"level": int(get("level")), "type": get("type"), "size": get("size"),
                           "shared_cpu_list": get("shared_cpu_list")})
    info["caches"] = caches
    mem = [ln for ln in (_read("/proc/meminfo") or "").splitlines() if ln.startswith("MemTotal")]
    info["memory_gib"] = round(int(mem[0].split()[1]) / 2**20, 1) if mem else None
    info["kernels"] = cpu_capability()
    info["supported_kernels"] = _core.supported_cpu_capabilities()
    info["openmp"] = bool(_core.has_openmp)
    info["default_threads"] = get_num_threads()
    info["versions"] = {"fastoptim": __version__, "numpy": np.__version__,
                        "torch": None if torch is None else torch.__version__}
    info["load_average_before"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return info


def _cache_summary(info: Dict[str, Any]) -> str:
    parts = []
    for c in info.get("caches", []):
        name = f"L{c['level']}" + {"Data": "d", "Instruction": "i"}.get(c["type"], "")
        parts.append(f"{name} {c['size']}")
    return ", ".join(parts) or "unknown"


# --------------------------------------------------------------------------------------------- output

IMPL_ORDER = ("fastoptim", "fastoptim float32 state", "numpy", "torch single", "torch foreach", "torch fused")


def _fmt(x: Optional[float], fmt: str, suffix: str = "") -> str:
    return "–" if x is None else format(x, fmt) + suffix


def table(rows: List[Dict[str, Any]]) -> str:
    """One Markdown table (rows of one optimizer and thread count)."""
    impls = [k for k in IMPL_ORDER if any(k in r["seconds"] for r in rows)]
    has_ref = any(r["ratio_float32_state"] is not None for r in rows)
    has_fused = any(r["ratio_torch_fused"] is not None for r in rows)
    head = ["case", "fastoptim µs/step"] + [f"{k} ns/param" for k in impls] + ["GB/s", "% of roofline", "torch fused / ours"]
    if has_fused:
        head.append("torch fused / roofline")
    head.append("best torch / ours")
    if has_ref:
        head.append("float32 state / ours")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ns = r["ns_per_param"]
        cells = [r["case_label"], _fmt(1e6 * r["seconds"]["fastoptim"], ".1f")] + [_fmt(ns.get(k), ".3f") for k in impls]
        cells += [_fmt(r["gbps"]["fastoptim"] if r["gbps"] else None, ".1f"),
                  _fmt(r["pct_of_roofline"], ".0f", "%"), _fmt(r["ratio_torch_fused"], ".2f", "x")]
        if has_fused:
            cells.append(_fmt(r.get("ceiling_torch_fused"), ".2f", "x"))
        cells.append(_fmt(r["ratio_torch_best"], ".2f", "x"))
        if has_ref:
            cells.append(_fmt(r["ratio_float32_state"], ".2f", "x"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _groups(report: Dict[str, Any]) -> List[Tuple[str, int, List[Dict[str, Any]]]]:
    out: Dict[Tuple[str, int], List[Dict[str, Any]]] = {}
    for r in report["results"]:
        out.setdefault((r["optimizer"], r["threads"]), []).append(r)
    return [(k[0], k[1], v) for k, v in out.items()]


def section(report: Dict[str, Any], key: str, threads: int, rows: List[Dict[str, Any]]) -> str:
    first = rows[0]
    hyper = ", ".join(f"{k}={v}" for k, v in first["hyperparameters"].items())
    return f"### {first['label']} ({hyper}), {threads} thread(s)\n\n{table(rows)}\n"


def markdown(report: Dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# fastoptim step benchmark", "",
        f"`{report['command']}`", "",
        "| machine | |", "|---|---|",
        f"| date (UTC) | {m['date']} |",
        f"| CPU | {m['cpu']} |",
        f"| cores | {m['physical_cores']} physical, {m['logical_cpus']} logical, {m['usable_cpus']} usable |",
        f"| caches (per cpu0) | {_cache_summary(m)} |",
        f"| memory | {m['memory_gib']} GiB |",
        f"| fastoptim kernels | {m['kernels']} (supported: {', '.join(m['supported_kernels'])}); "
        f"OpenMP {'on' if m['openmp'] else 'off'} |",
        f"| threads measured | {', '.join(map(str, report['threads']))} |",
        f"| versions | fastoptim {m['versions']['fastoptim']}, numpy {m['versions']['numpy']}, "
        f"torch {m['versions']['torch']}, Python {m['python']} |",
        f"| platform | {m['platform']} |",
        f"| load average (1, 5, 15 min) | before {_load(m.get('load_average_before'))}, "
        f"after {_load(m.get('load_average_after'))} |",
        "",
        "Median step time in ns per parameter (float32 parameters and gradients, gradients prepared beforehand), "
        "every implementation of a row timed in turn, block after block for up to 10 rounds, so that a busy moment "
        "of the machine falls on all of them alike. "
        "GB/s: the bytes the step must move (parameter, gradient and the state arrays of the parameter's shape, "
        "read; parameter and state, written) over fastoptim's time. Roofline: the same bytes moved by a "
        "bandwidth probe (`_core._stream`) in one pass; % of roofline = probe time / fastoptim time (optimizers "
        "that need norms, reductions or matrix products - LAMB, Adafactor, Muon - do more than one pass and "
        "cannot reach it; for arrays that fit in cache the probe's own loop costs show and a fused kernel can "
        "pass 100%; DRAM-sized cases are the meaningful ones). torch fused / roofline: torch fused's time over the "
        "probe's, the most a step that moves its bytes once could beat torch fused by (DRAM-sized cases). torch single: `foreach=False` (for LBFGS, SparseAdam and Muon, torch's only "
        "implementation). Ratios > 1: fastoptim is faster. '–': not applicable or not available.",
        "",
    ]
    for key, threads, rows in _groups(report):
        lines.append(section(report, key, threads, rows))
    if report.get("notes"):
        lines += ["Not measured:", ""] + [f"- {k}: {v}" for k, v in report["notes"].items()] + [""]
    return "\n".join(lines)


def _load(x: Optional[List[float]]) -> str:
    return "?" if not x else " ".join(f"{v:.2f}" for v in x)


def plot(report: Dict[str, Any], path: str) -> None:
    """ns/param per case (log scale), one panel per optimizer, at the highest thread count measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    threads = max(report["threads"])
    groups = [(k, rows) for k, t, rows in _groups(report) if t == threads]
    if not groups:
        return
    cols = min(3, len(groups))
    nrows = -(-len(groups) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5.2 * cols, 3.4 * nrows), dpi=90, squeeze=False)
    colors = {k: f"C{i}" for i, k in enumerate(IMPL_ORDER)}
    for ax, (key, rows) in zip(axes.flat, groups):
        impls = [k for k in IMPL_ORDER if any(k in r["seconds"] for r in rows)]
        width = 0.8 / len(impls)
        for j, k in enumerate(impls):
            xs = [i + j * width for i, r in enumerate(rows) if k in r["ns_per_param"]]
            ys = [r["ns_per_param"][k] for r in rows if k in r["ns_per_param"]]
            ax.bar(xs, ys, width, label=k, color=colors[k])
        roof = [(i + 0.4 - width / 2, 1e9 * r["roofline_seconds"] / r["params"]) for i, r in enumerate(rows)
                if r["roofline_seconds"]]
        if roof:
            ax.hlines([y for _, y in roof], [x - 0.4 for x, _ in roof], [x + 0.4 for x, _ in roof], colors="k",
                      label="roofline")
        ax.set_yscale("log")
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))], [r["case"] for r in rows], rotation=20,
                      fontsize=7)
        ax.set_title(rows[0]["label"], fontsize=9)
        ax.set_ylabel("ns / parameter (log)", fontsize=8)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    fig.suptitle(f"fastoptim step, float32 parameters, {threads} thread(s), kernels {report['machine']['kernels']}",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / (3.4 * nrows)))
    fig.savefig(path)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ run


def run(optimizers: Optional[Sequence[str]] = None, threads: Sequence[int] = (1, 2), repeat: int = 30,
        big: bool = False, json_path: Optional[str] = None, plot_path: Optional[str] = None,
        markdown_path: Optional[str] = None, cases: Optional[Sequence[str]] = None, quick: bool = False,
        use_torch: bool = True, command: Optional[str] = None, out: Any = None) -> Dict[str, Any]:
    """Runs the benchmark; prints a Markdown table per optimizer and thread count to ``out`` (stdout) and
    returns the report (also written as JSON, Markdown and a PNG plot where paths are given)."""
    out = sys.stdout if out is None else out
    if not threads or any(int(t) < 1 for t in threads):
        raise ValueError(f"threads must be counts >= 1, got {list(threads)}")
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    torch: Any = None
    if use_torch:
        try:
            import torch
        except ImportError:
            torch = None
    table_cases = QUICK_CASES if quick else CASES
    if cases is None:
        cases = [k for k in table_cases if big or k not in BIG_CASES]
    unknown = [c for c in cases if c not in table_cases]
    if quick and unknown:
        raise ValueError(f"--quick runs its own tiny cases ({', '.join(QUICK_CASES)}); {unknown} do not apply")
    if unknown:
        raise ValueError(f"unknown case(s) {unknown}; choose from {list(table_cases)}")
    explicit = optimizers is not None
    names = list(SPECS) if optimizers is None else list(optimizers)
    unknown = [o for o in names if o not in SPECS]
    if unknown:
        raise ValueError(f"unknown optimizer(s) {unknown}; choose from {list(SPECS)}")
    specs = []
    for name in names:
        if supported(SPECS[name]):
            specs.append(name)
        elif explicit:
            print(f"skipping {name}: this build does not accept {SPECS[name].kwargs}", file=sys.stderr)
    repeat = 3 if quick else repeat
    min_time = 0.0 if quick else 0.2
    report: Dict[str, Any] = {
        "command": command or "fastoptim._bench.run(...)",
        "machine": machine_info(torch), "threads": list(threads), "cases": list(cases), "quick": quick,
        "repeat": repeat, "sparse_density": SPARSE_DENSITY, "results": [], "notes": {},
    }
    print(f"fastoptim bench: kernels {cpu_capability()}, float32 parameters, medians of >= {repeat} steps; "
          f"torch {report['machine']['versions']['torch']}", file=out)
    saved = get_num_threads()
    saved_torch = torch.get_num_threads() if torch is not None else None
    try:
        for nthreads in threads:
            set_num_threads(nthreads)
            if torch is not None:
                torch.set_num_threads(nthreads)
            for name in specs:
                spec = SPECS[name]
                rows = []
                for case in cases:
                    label, shapes = table_cases[case]
                    its = shapes_for(spec, shapes)
                    if its is None:
                        continue
                    res = bench_case(spec, its, repeat, min_time, torch, report["notes"])
                    if spec.kind == "matrices" and its != shapes:
                        label = f"{label}: {len(its)} matrices" if len(its) > 1 else f"{label} as {its[0]}"
                    elif spec.kind == "sparse":
                        label = f"{label} as {its[0]}"
                    row = {"optimizer": name, "label": spec.label, "hyperparameters": spec.kwargs,
                           "threads": nthreads, "case": case, "case_label": label, **res}
                    derive(row)
                    rows.append(row)
                    report["results"].append(row)
                if rows:
                    print("\n" + section(report, name, nthreads, rows), file=out, flush=True)
    finally:
        set_num_threads(saved)
        if torch is not None:
            torch.set_num_threads(saved_torch)
    report["machine"]["load_average_after"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    if json_path:
        with open(json_path, "w") as f:
            json.dump(report, f, indent=1)
    if markdown_path:
        with open(markdown_path, "w") as f:
            f.write(markdown(report))
    if plot_path:
        plot(report, plot_path)
    return report
