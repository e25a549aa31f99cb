"""The step benchmark behind ``python -m fastoptim bench`` and ``bench/bench_step.py``.

Times ``step()`` (gradients prepared beforehand) after warm-up and reports medians, side by side in one run:
fastoptim, torch's single-tensor / foreach / fused implementations when torch is installed, and a
hand-written numpy Adam; for Adam also a bandwidth probe with Adam's memory traffic (28 B per float32
parameter) that gives the roofline. Machines are shared and noisy: compare numbers from one run only.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from typing import Any, Dict, List, Optional

import numpy as np

from . import _core
from . import SGD, Adam, AdamW, RMSprop, get_num_threads, set_num_threads, cpu_capability

KWARGS = {"Adam": dict(lr=1e-3), "AdamW": dict(lr=1e-3), "SGD": dict(lr=1e-2, momentum=0.9), "RMSprop": dict(lr=1e-3)}
CLASSES = {"Adam": Adam, "AdamW": AdamW, "SGD": SGD, "RMSprop": RMSprop}
TORCH_FUSED = {"Adam", "AdamW", "SGD"}


def transformer_like() -> List[int]:
    """12 blocks (qkv, proj, fc1, fc2 weights and biases, 2 layer norms), d=256, and an embedding: 148 tensors, 1e7."""
    d = 256
    sizes: List[int] = []
    for _ in range(12):
        sizes += [3 * d * d, 3 * d, d * d, d, 4 * d * d, 4 * d, 4 * d * d, d, d, d, d, d]
    return sizes + [10_000_000 - sum(sizes) - 2 * d, d, d]


def cases(big: bool) -> Dict[str, List[int]]:
    out = {"1 x 16": [16], "1 x 1e5": [100_000], "1 x 1e6": [1_000_000], "1 x 1e7": [10_000_000],
           "148 tensors, 1e7": transformer_like(), "1000 x 1e3": [1000] * 1000}
    if big:
        out["1 x 1e8"] = [100_000_000]
    return out


def median_time(fn, repeat: int, min_time: float = 0.2) -> float:
    fn()
    fn()
    times: List[float] = []
    start = time.perf_counter()
    while len(times) < repeat or (time.perf_counter() - start < min_time and len(times) < 10 * repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def numpy_adam(params, grads, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """The straightforward numpy Adam a user would write."""
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = [0]

    def step():
        t[0] += 1
        c1, c2 = 1 - b1 ** t[0], 1 - b2 ** t[0]
        for p, g, mi, vi in zip(params, grads, m, v):
            mi *= b1
            mi += (1 - b1) * g
            vi *= b2
            vi += (1 - b2) * g * g
            p -= (lr / c1) * mi / (np.sqrt(vi / c2) + eps)

    return step


def bench_case(name: str, sizes: List[int], repeat: int, torch) -> Dict[str, float]:
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    grads = [(rng.standard_normal(n) * 1e-3).astype(np.float32) for n in sizes]
    res: Dict[str, float] = {}
    opt = CLASSES[name](params, **KWARGS[name])
    res["fastoptim"] = median_time(lambda: opt.step(grads), repeat)
    if name == "Adam":
        res["numpy"] = median_time(numpy_adam([p.copy() for p in params], grads), max(3, repeat // 5))
        bufs = [(p.copy(), g, np.zeros_like(p), np.zeros_like(p)) for p, g in zip(params, grads)]
        res["roofline"] = median_time(lambda: [_core._stream_adam_like(*b) for b in bufs], repeat)
    if torch is not None:
        tparams = [torch.from_numpy(p.copy()).requires_grad_(True) for p in params]
        for p, g in zip(tparams, grads):
            p.grad = torch.from_numpy(g)
        impls = {"torch single": dict(foreach=False), "torch foreach": dict(foreach=True)}
        if name in TORCH_FUSED:
            impls["torch fused"] = dict(fused=True)
        for label, extra in impls.items():
            topt = getattr(torch.optim, name)(tparams, **KWARGS[name], **extra)
            res[label] = median_time(topt.step, repeat)
    return res


def run(optimizers: List[str], threads: List[int], repeat: int, big: bool, json_path: Optional[str],
        plot_path: Optional[str]) -> Dict[str, Any]:
    torch: Any
    try:
        import torch
    except ImportError:
        torch = None
    report: Dict[str, Any] = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    "kernels": cpu_capability(), "numpy": np.__version__,
                    "torch": None if torch is None else torch.__version__},
        "results": [],
    }
    print(f"fastoptim bench: kernels {cpu_capability()}, float32, medians of >= {repeat} steps; "
          f"torch {report['machine']['torch']}")
    saved = get_num_threads()
    try:
        for nthreads in threads:
            set_num_threads(nthreads)
            if torch is not None:
                torch.set_num_threads(nthreads)
            for name in optimizers:
                print(f"\n### {name} {KWARGS[name]}, {nthreads} thread(s)\n")
                header = None
                for label, sizes in cases(big).items():
                    res = bench_case(name, sizes, repeat, torch)
                    n = sum(sizes)
                    row = {"optimizer": name, "threads": nthreads, "case": label, "params": n,
                           "seconds": res}
                    report["results"].append(row)
                    impls = [k for k in res if k != "roofline"]
                    if header is None:
                        header = impls
                        extra = " | % of roofline | GB/s" if "roofline" in res else ""
                        fused = " | torch fused / ours" if "torch fused" in res else ""
                        print("| case | " + " | ".join(f"{k} ns/param" for k in header) + fused + extra + " |")
                        print("|---" * (1 + len(header) + bool(fused) + (2 if extra else 0)) + "|")
                    cells = [f"{1e9 * res[k] / n:.3f}" for k in header]
                    if "torch fused" in res:
                        cells.append(f"{res['torch fused'] / res['fastoptim']:.2f}x")
                    if "roofline" in res:
                        cells.append(f"{100 * res['roofline'] / res['fastoptim']:.0f}%")
                        cells.append(f"{28 * n / res['fastoptim'] / 1e9:.1f}")
                    print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    finally:
        set_num_threads(saved)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(report, f, indent=1)
    if plot_path:
        plot(report, plot_path)
    return report


def plot(report: Dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report["results"] if r["optimizer"] == "Adam"]
    if not rows:
        return
    threads = max(r["threads"] for r in rows)
    rows = [r for r in rows if r["threads"] == threads]
    labels = [r["case"] for r in rows]
    impls = [k for k in rows[0]["seconds"] if k != "roofline"]
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    width = 0.8 / len(impls)
    for j, k in enumerate(impls):
        ax.bar([i + j * width for i in range(len(rows))], [1e9 * r["seconds"][k] / r["params"] for r in rows],
               width, label=k)
    ax.set_yscale("log")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))], labels, rotation=15)
    ax.set_ylabel("ns per parameter (log)")
    ax.set_title(f"Adam step, float32, {threads} thread(s)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
