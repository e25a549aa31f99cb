"""Scheduler parity machinery: run a fastoptim scheduler and torch's on twin optimizers with two param
groups, step for step, and record every group's lr (and momentum / betas[0]) after construction and after
each step. Tests compare the records to 1e-12 relative, live against torch or against golden files
(tests/data/golden_sched_*.npz, written by ``save_golden``) when torch is not installed.

A case is ``(name, kwargs, optimizer kind, steps, metrics)``; kwargs may hold per-group lists. The same
kwargs build both schedulers, so every case is a torch call too.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

import fastoptim
import fastoptim.lr_scheduler as fls

DATA = pathlib.Path(__file__).resolve().parent / "data"
RTOL = 1e-12

# Two groups with different lrs, and for SGD different momenta, so per-group logic shows.
OPTIMIZERS = {
    "sgd": ("SGD", [dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.8)]),
    "adam": ("Adam", [dict(lr=1e-3), dict(lr=3e-4, betas=(0.85, 0.99))]),
    "rmsprop": ("RMSprop", [dict(lr=1e-2, momentum=0.5), dict(lr=5e-3)]),
}


def make_fastoptim_optimizer(kind: str):
    name, groups = OPTIMIZERS[kind]
    params = [np.zeros(2), np.zeros(3)]
    return getattr(fastoptim, name)([dict(g, params=[p]) for g, p in zip(groups, params)]), params


def make_torch_optimizer(kind: str):
    import torch

    name, groups = OPTIMIZERS[kind]
    params = [torch.zeros(2, dtype=torch.float64, requires_grad=True),
              torch.zeros(3, dtype=torch.float64, requires_grad=True)]
    return getattr(torch.optim, name)([dict(g, params=[p]) for g, p in zip(groups, params)]), params


def group_values(optimizer) -> Tuple[List[float], List[float]]:
    lrs, moms = [], []
    for g in optimizer.param_groups:
        lrs.append(float(g["lr"]))
        if "betas" in g:
            moms.append(float(g["betas"][0]))
        else:
            moms.append(float(g.get("momentum", np.nan)))
    return lrs, moms


def run(module, optimizer, grads_step: Callable[[], None], build: Callable[[Any, Any], Any], steps: int,
        metrics: Optional[Sequence[float]] = None) -> np.ndarray:
    """Returns an array (steps + 1, 2, n_groups): lr and momentum after construction and each step."""
    sched = build(module, optimizer)
    rows = [group_values(optimizer)]
    for t in range(steps):
        grads_step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[t])
        rows.append(group_values(optimizer))
    return np.array(rows, dtype=np.float64)


def run_fastoptim(kind: str, build: Callable[[Any, Any], Any], steps: int, metrics=None) -> np.ndarray:
    opt, params = make_fastoptim_optimizer(kind)
    zeros = [np.zeros_like(p) for p in params]
    return run(fls, opt, lambda: opt.step(zeros), build, steps, metrics)


def run_torch(kind: str, build: Callable[[Any, Any], Any], steps: int, metrics=None) -> np.ndarray:
    import torch

    opt, params = make_torch_optimizer(kind)

    def grads_step():
        for p in params:
            p.grad = torch.zeros_like(p)
        opt.step()

    return run(torch.optim.lr_scheduler, opt, grads_step, build, steps, metrics)


def assert_close(ours: np.ndarray, ref: np.ndarray, what: str = "") -> None:
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    same_nan = np.isnan(ours) == np.isnan(ref)
    assert same_nan.all(), f"{what}: NaN pattern differs"
    ok = np.isclose(ours, ref, rtol=RTOL, atol=0.0) | np.isnan(ref)
    if not ok.all():
        t, k, g = np.argwhere(~ok)[0]
        raise AssertionError(f"{what}: step {t} group {g} {'lr' if k == 0 else 'momentum'}: "
                             f"ours {ours[t, k, g]!r}, torch {ref[t, k, g]!r}")


def save_golden(path: pathlib.Path, records: Dict[str, np.ndarray], meta: Dict[str, Any]) -> None:
    """npz of records plus a JSON string; no pickle."""
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), **records)


def load_golden(path: pathlib.Path) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as f:
        return json.loads(str(f["meta"])), {k: f[k] for k in f.files if k != "meta"}


# ------------------------------------------------------------------------------------ case registry

def case_modules():
    """Every tests/sched_cases_<tag>.py: each defines CASES, a list of dicts with keys
    id, name, kwargs, kind (an OPTIMIZERS key), steps, and optionally metrics (ReduceLROnPlateau)."""
    import importlib

    here = pathlib.Path(__file__).resolve().parent
    for path in sorted(here.glob("sched_cases_*.py")):
        yield path.stem[len("sched_cases_"):], importlib.import_module(path.stem)


def all_cases():
    for tag, module in case_modules():
        for case in module.CASES:
            yield tag, case


def builder(case: Dict[str, Any]) -> Callable[[Any, Any], Any]:
    """The case's scheduler, built in fastoptim.lr_scheduler or torch.optim.lr_scheduler. A case may give
    `build(module, optimizer)` itself (compositions, callables); else `name` and `kwargs`."""
    if "build" in case:
        return case["build"]
    return lambda module, opt: getattr(module, case["name"])(opt, **case["kwargs"])


def golden_path(tag: str) -> pathlib.Path:
    return DATA / f"golden_sched_{tag}.npz"


def jsonable(case: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in case.items() if k != "build"}
