"""Muon parity machinery: configurations, a deterministic problem and runners for fastoptim.Muon and
torch.optim.Muon (the problem of tests/parity.py restricted to 2-D parameters: wide, tall, square).

torch's Muon orthogonalizes in bfloat16 with float accumulation whatever the parameters' dtype, so the
comparison has two parts:
  * everything but the matrix products (momentum, Nesterov, the bfloat16 conversion and normalisation,
    the transposition, weight decay, the lr adjustment) must match torch bit for bit: runs with
    ns_steps=0 (no products) are compared exactly, float32 and float64, over 300 steps;
  * with the products, a float sum accumulated in another order can round to the neighbouring bfloat16,
    and later Newton-Schulz iterations spread such a flip: the orthogonalized update O is compared in
    relative Frobenius norm (``ns_bound``), the one-step update from torch's own state (teacher forced)
    likewise, and free-running trajectories within one bfloat16 rounding of a unit-size O times |lr| per
    step (``free_running_bound``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

import fastoptim
from parity import uniform

SHAPES = [(12, 20), (24, 8), (6, 6)]
GROUPS = [[0, 1], [2]]
STEPS = 300
DTYPES = {"float32": np.float32, "float64": np.float64}

# bfloat16 has 8 significant bits: the relative rounding is 2^-9, one ulp of a value in [1, 2) is 2^-7.
BF16_ULP_AT_1 = 2.0 ** -7


def initial_params(dtype, seed: int) -> List[np.ndarray]:
    return [uniform(seed, 1_000_000 + i, r * c).reshape(r, c).astype(dtype) for i, (r, c) in enumerate(SHAPES)]


def gradient(p: np.ndarray, seed: int, step: int, i: int) -> Optional[np.ndarray]:
    if i == 2 and step % 5 == 2:
        return None
    noise = uniform(seed, step * 16 + i, p.size).reshape(p.shape).astype(p.dtype)
    return noise + p.dtype.type(0.1) * p


def _configs(ns_steps: Optional[int]) -> List[Dict[str, Any]]:
    """Every flag and adjust_lr_fn, with weight decay and momentum drawn from a fixed seed."""
    rng = np.random.default_rng(2024 if ns_steps == 0 else 7)
    out = []
    for nesterov in (True, False):
        for adjust in (None, "original", "match_rms_adamw"):
            cfg = dict(lr=float(np.round(rng.uniform(0.005, 0.03), 4)), nesterov=nesterov, adjust_lr_fn=adjust,
                       weight_decay=float(np.round(rng.choice([0.0, 0.01, 0.1]), 3)),
                       momentum=float(np.round(rng.uniform(0.8, 0.99), 3)))
            if ns_steps is not None:
                cfg["ns_steps"] = ns_steps
            out.append(cfg)
    return out


# No matrix products: must match torch exactly.
EXACT_CONFIGS = _configs(0)
# With Newton-Schulz (default and custom coefficients and step counts).
NS_CONFIGS = [
    dict(lr=0.02),
    dict(lr=0.01, nesterov=False, weight_decay=0.01, adjust_lr_fn="match_rms_adamw", ns_steps=3),
    dict(lr=0.02, momentum=0.9, ns_coefficients=(2.0, -1.5, 0.5), ns_steps=7, eps=1e-5),
]
GROUP1 = dict(lr=0.005, momentum=0.9, adjust_lr_fn="match_rms_adamw")


def seed_of(kind: str, k: int, dtype: str) -> int:
    return 31 + 101 * k + (0 if dtype == "float32" else 70_000) + (0 if kind == "exact" else 5000)


def groups(params) -> List[Dict[str, Any]]:
    return [{"params": [params[i] for i in GROUPS[0]]}, dict({"params": [params[i] for i in GROUPS[1]]}, **GROUP1)]


def run_fastoptim(config: Dict[str, Any], dtype, seed: int, steps: int = STEPS) -> np.ndarray:
    """Trajectory (steps + 1, n_elements) of the concatenated parameters."""
    params = initial_params(dtype, seed)
    opt = fastoptim.Muon(groups(params), **config)
    traj = [np.concatenate([p.ravel() for p in params])]
    for t in range(1, steps + 1):
        opt.step([gradient(p, seed, t, i) for i, p in enumerate(params)])
        traj.append(np.concatenate([p.ravel() for p in params]))
    return np.stack(traj)


def run_torch(config: Dict[str, Any], dtype, seed: int, steps: int = STEPS, record_every: int = 0,
              records: Optional[list] = None) -> np.ndarray:
    """torch's trajectory; with record_every, appends (step, params before, buffers before, params after,
    buffers after) every record_every steps to records (for teacher-forced comparisons)."""
    import torch

    params = [torch.from_numpy(p) for p in initial_params(dtype, seed)]
    opt = torch.optim.Muon(groups(params), **config)
    traj = [np.concatenate([p.numpy().ravel() for p in params])]
    for t in range(1, steps + 1):
        grads = [gradient(p.numpy(), seed, t, i) for i, p in enumerate(params)]
        for p, g in zip(params, grads):
            p.grad = None if g is None else torch.from_numpy(g)
        record = record_every and t % record_every == 0 and records is not None
        if record:
            before = [p.numpy().copy() for p in params]
            bufs = [opt.state[p]["momentum_buffer"].numpy().copy() if p in opt.state else np.zeros(p.shape, dtype)
                    for p in params]
        opt.step()
        if record:
            records.append((t, before, bufs, [p.numpy().copy() for p in params],
                            [opt.state[p]["momentum_buffer"].numpy().copy() for p in params]))
        traj.append(np.concatenate([p.numpy().ravel() for p in params]))
    return np.stack(traj)


def one_step_from(config: Dict[str, Any], dtype, seed: int, t: int, before, bufs) -> Tuple[list, list]:
    """Our step t from torch's parameters and momentum buffers (teacher forcing); returns (params, buffers)."""
    params = [b.copy() for b in before]
    opt = fastoptim.Muon(groups(params), **config)
    sd = opt.state_dict()
    sd["state"] = {i: {"momentum_buffer": b} for i, b in enumerate(bufs)}
    opt.load_state_dict(sd)
    opt.step([gradient(p, seed, t, i) for i, p in enumerate(params)])
    return params, [opt.state[i]["momentum_buffer"] for i in range(len(params))]


def adjusted_lrs(config: Dict[str, Any]) -> List[float]:
    """|adjusted lr| of each parameter (torch's _adjust_lr)."""
    out = []
    for gi, idx in enumerate(GROUPS):
        merged = {"lr": 1e-3, "adjust_lr_fn": None, **config, **(GROUP1 if gi else {})}
        for i in idx:
            A, B = SHAPES[i]
            ratio = 0.2 * max(A, B) ** 0.5 if merged["adjust_lr_fn"] == "match_rms_adamw" else max(1, A / B) ** 0.5
            out.append(merged["lr"] * ratio)
    return out


def free_running_bound(config: Dict[str, Any], steps: int) -> float:
    """Largest |ours - torch| allowed after `steps` steps: one bfloat16 ulp of a unit-size update, times
    the largest |adjusted lr|, per step."""
    return steps * max(adjusted_lrs(config)) * BF16_ULP_AT_1


# Matrices for the orthogonalization alone: wide, tall (transposed), square, a row; the first two are big
# enough for rounding flips.
NS_MATRICES = [(64, 96), (130, 20), (40, 40), (1, 7)]
NS_SETTINGS = [((3.4445, -4.7750, 2.0315), 5, 1e-7), ((2.0, -1.5, 0.5), 2, 1e-7), ((3.4445, -4.7750, 2.0315), 10, 1e-3)]


def ns_input(k: int, shape) -> np.ndarray:
    return uniform(97, 500 + k, shape[0] * shape[1]).reshape(shape) * 3.0


def ours_orthogonalized(g: np.ndarray, coefficients, steps: int, eps: float) -> np.ndarray:
    """Our NS(g), read back from one Muon step from zero (lr=1, no momentum, no decay): p = -adjusted_lr * O,
    exactly invertible to the bfloat16 values of O."""
    import math

    p = np.zeros(g.shape, np.float64)
    opt = fastoptim.Muon([p], lr=1.0, momentum=0.0, weight_decay=0.0, nesterov=False,
                         ns_coefficients=coefficients, ns_steps=steps, eps=eps)
    opt.step([np.ascontiguousarray(g, np.float64)])
    return bf16(-p / math.sqrt(max(1.0, g.shape[0] / g.shape[1])))


def bf16(x: np.ndarray) -> np.ndarray:
    """x rounded to bfloat16 (ties to even), as float32."""
    b = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000
    return b.astype(np.uint32).view(np.float32)


def ns_bound(ns_steps: int) -> float:
    """Allowed relative Frobenius error of O: flips spread with every iteration; 3e-3 per iteration
    (measured worst: 6.3e-3 at 5 iterations, 2.1e-2 at 10, where torch's own ATen and oneDNN products
    differ by up to 3.1e-3 and 1.7e-2)."""
    return 3e-3 * max(ns_steps, 1)


def relative_frobenius(x: np.ndarray, ref: np.ndarray) -> float:
    x, ref = np.asarray(x, np.float64), np.asarray(ref, np.float64)
    return float(np.linalg.norm(x - ref) / np.linalg.norm(ref))
