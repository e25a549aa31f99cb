"""Median optimizer-step time, fastoptim vs torch.optim, measured side by side in one run.

    python bench/bench_step.py                 # default cases
    python bench/bench_step.py --big           # adds one tensor of 1e8 (DRAM-bound; needs ~3 GB)
    python bench/bench_step.py --optimizers Adam SGD --repeat 50

Each case times `step()` only (gradients prepared beforehand), after warm-up, and reports the median and
the ratio of torch's time to ours (> 1: we are faster). torch runs its single-tensor (foreach=False),
foreach and fused CPU implementations where it has them. Machines are shared and noisy: quote medians
from one run, never across runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import fastoptim

KWARGS = {
    "Adam": dict(lr=1e-3),
    "AdamW": dict(lr=1e-3),
    "SGD": dict(lr=1e-2, momentum=0.9),
    "RMSprop": dict(lr=1e-3),
}
FUSED = {"Adam", "AdamW", "SGD"}


def cases(big: bool):
    out = [
        ("1 x 16", [16]),
        ("1 x 1e5", [100_000]),
        ("1 x 1e6", [1_000_000]),
        ("1 x 1e7", [10_000_000]),
        ("1000 x 1e3", [1000] * 1000),
        ("148 tensors, 1e7 total", transformer_like()),
    ]
    if big:
        out.append(("1 x 1e8", [100_000_000]))
    return out


def transformer_like():
    """12 blocks of (qkv, proj, fc1, fc2 weights + biases + 2 layernorms), d=256, plus embeddings: 148 tensors."""
    d = 256
    sizes = []
    for _ in range(12):
        sizes += [3 * d * d, 3 * d, d * d, d, 4 * d * d, 4 * d, 4 * d * d, d, d, d, d, d]
    sizes += [10_000_000 - sum(sizes) - 2 * d, d, d, 0][:4]
    return [s for s in sizes if s > 0]


def median_time(fn, repeat: int, min_time: float = 0.2) -> float:
    fn()
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeat or (time.perf_counter() - start < min_time and len(times) < 10 * repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_case(name, sizes, repeat, have_torch):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(n).astype(np.float32) for n in sizes]
    grads = [rng.standard_normal(n).astype(np.float32) * 1e-3 for n in sizes]
    results = {}
    opt = getattr(fastoptim, name)(params, **KWARGS[name])
    results["fastoptim"] = median_time(lambda: opt.step(grads), repeat)
    if have_torch:
        import torch

        tparams = [torch.from_numpy(p.copy()).requires_grad_(True) for p in params]
        for p, g in zip(tparams, grads):
            p.grad = torch.from_numpy(g)
        impls = {"torch single": dict(foreach=False), "torch foreach": dict(foreach=True)}
        if name in FUSED:
            impls["torch fused"] = dict(fused=True)
        for label, extra in impls.items():
            topt = getattr(torch.optim, name)(tparams, **KWARGS[name], **extra)
            results[label] = median_time(topt.step, repeat)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--optimizers", nargs="+", default=["Adam", "SGD", "RMSprop"], choices=sorted(KWARGS))
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--big", action="store_true")
    args = parser.parse_args()
    try:
        import torch

        have_torch = True
        torch_threads = torch.get_num_threads()
    except ImportError:
        have_torch, torch_threads = False, None
    print(f"fastoptim {fastoptim.__version__}, {fastoptim._core.max_threads()} OpenMP threads; "
          f"torch threads {torch_threads}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; float32")
    for name in args.optimizers:
        print(f"\n### {name} {KWARGS[name]}\n")
        header = None
        for label, sizes in cases(args.big):
            res = bench_case(name, sizes, args.repeat, have_torch)
            if header is None:
                header = list(res)
                cols = " | ".join(f"{h} (ms)" for h in header)
                ratios = " | ".join(f"{h} / ours" for h in header[1:])
                print(f"| case | {cols} | {ratios} |")
                print("|---" * (1 + 2 * len(header) - 1) + "|")
            times = " | ".join(f"{1e3 * res[h]:.4f}" for h in header)
            ratio = " | ".join(f"{res[h] / res['fastoptim']:.2f}" for h in header[1:])
            print(f"| {label} | {times} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
