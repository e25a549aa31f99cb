"""LBFGS parity machinery: two deterministic problems, a registry of configurations, and runners for
fastoptim.LBFGS and torch.optim.LBFGS that record the parameters after every step() and the state.

The problems (parameters split into two arrays of different shapes, to exercise the flattening):
  rosenbrock  the 10-d Rosenbrock function from a fixed start;
  logistic    L2-regularised logistic regression on 64 generated samples with 7 features and a bias;
  wiggly1/2   1-d quartic-plus-sine functions whose line searches take every branch of torch's
              _strong_wolfe and _cubic_interpolate. With one element, dot products and sums are exact,
              so only torch's sqrt (MKL's, not correctly rounded: 18% of float32 and 1.4% of float64
              results are an ulp off) can round differently from ours; they match torch bit for bit here.
Losses and gradients are computed in float64 with Python's math module and exact sums (math.fsum), so
they are the same on every machine, then cast to the parameters' dtype.

Deviation is relative, per step: max |ours - torch| over elements divided by max |torch|. torch's own
spread at each step is the largest deviation of eight torch runs whose gradients are moved one ulp up or
down (one rounding per evaluation, about what our deterministic dot products change); a step may deviate
up to twice that, with a floor of a few roundings.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

import fastoptim
from parity import uniform

SHAPES = {"rosenbrock": [(4,), (2, 3)], "logistic": [(7,), (1,)], "wiggly1": [(1,)], "wiggly2": [(1,)]}
PERTURBATIONS = tuple(range(1, 9))


def _rosenbrock(x: List[float]) -> Tuple[float, List[float]]:
    terms, grad = [], [0.0] * len(x)
    for i in range(len(x) - 1):
        a, b = x[i], x[i + 1]
        r = b - a * a
        terms += [100.0 * r * r, (1.0 - a) * (1.0 - a)]
        grad[i] += -400.0 * a * r - 2.0 * (1.0 - a)
        grad[i + 1] += 200.0 * r
    return math.fsum(terms), grad


def _logistic_data():
    n, d = 64, 7
    X = uniform(11, 1, n * d).reshape(n, d)
    w_true = uniform(11, 2, d) * 2.0
    noise = uniform(11, 3, n)
    y = [1.0 if math.fsum(X[i] * w_true) + 0.5 * noise[i] > 0 else 0.0 for i in range(n)]
    return [list(map(float, row)) for row in X], y


_DATA = _logistic_data()


def _logistic(x: List[float]) -> Tuple[float, List[float]]:
    X, y = _DATA
    w, b = x[:-1], x[-1]
    lam = 1e-2
    losses, resid = [], []
    for row, yi in zip(X, y):
        z = math.fsum([wi * xi for wi, xi in zip(w, row)] + [b])
        # log(1 + exp(-z)) and log(1 + exp(z)), stable
        losses.append(math.log1p(math.exp(-abs(z))) + max(-z, 0.0) if yi else math.log1p(math.exp(-abs(z))) + max(z, 0.0))
        p = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
        resid.append(p - yi)
    n = len(y)
    loss = math.fsum(losses) / n + 0.5 * lam * math.fsum([wi * wi for wi in w])
    grad = [math.fsum([r * row[j] for r, row in zip(resid, X)]) / n + lam * w[j] for j in range(len(w))]
    grad.append(math.fsum(resid) / n)
    return loss, grad


def _wiggly(a: float, b: float, c: float, w: float) -> Callable[[List[float]], Tuple[float, List[float]]]:
    def fn(x: List[float]) -> Tuple[float, List[float]]:
        t = x[0]
        f = a * t**4 + b * t**3 + c * t**2 - t + 0.3 * math.sin(w * t) + 0.05 * t**6
        g = 4 * a * t**3 + 3 * b * t**2 + 2 * c * t - 1 + 0.3 * w * math.cos(w * t) + 0.3 * t**5
        return f, [g]

    return fn


PROBLEMS: Dict[str, Dict[str, Any]] = {
    "rosenbrock": dict(fn=_rosenbrock, x0=[-1.2, 1.0, -0.5, 0.8, 1.3, -0.7, 0.9, 1.1, -1.0, 0.4]),
    "logistic": dict(fn=_logistic, x0=[0.1, -0.2, 0.3, 0.0, -0.1, 0.2, 0.05, 0.0]),
    "wiggly1": dict(fn=_wiggly(0.0, -2.78, 2.0, -4.48), x0=[1.31]),
    "wiggly2": dict(fn=_wiggly(0.58, -1.18, -0.28, -3.66), x0=[-0.39]),
}

# (problem, config, steps): both line searches, every branch of the strong-Wolfe search (bracketing,
# zoom, the insufficient-progress moves, a bracket below tolerance, evaluations exhausted, the cubic with
# no minimum), and every stopping rule (max_iter, max_eval, tolerance_grad, tolerance_change) with the
# history full.
CASES: List[Tuple[str, Dict[str, Any], int]] = [
    ("rosenbrock", dict(lr=0.2, history_size=5), 6),
    ("rosenbrock", dict(line_search_fn="strong_wolfe"), 4),
    ("rosenbrock", dict(line_search_fn="strong_wolfe", history_size=3, max_iter=10, max_eval=6), 8),
    ("rosenbrock", dict(lr=0.5, max_iter=7, tolerance_change=1e-6, line_search_fn="strong_wolfe"), 6),
    ("rosenbrock", dict(lr=3e-3, max_eval=4, line_search_fn="strong_wolfe"), 4),
    ("logistic", dict(max_iter=10), 5),
    ("logistic", dict(line_search_fn="strong_wolfe", history_size=4), 3),
    ("logistic", dict(lr=0.7, max_iter=40, tolerance_grad=1e-4, line_search_fn="strong_wolfe"), 3),
    ("logistic", dict(lr=1000.0, line_search_fn="strong_wolfe"), 3),
    ("wiggly1", dict(lr=10.0, max_iter=60, max_eval=76, tolerance_grad=0.0, tolerance_change=0.0,
                     line_search_fn="strong_wolfe"), 3),
    ("wiggly2", dict(lr=0.01, max_eval=16, line_search_fn="strong_wolfe"), 3),
    ("wiggly1", dict(lr=0.3, history_size=2), 4),
]

DTYPES = {"float32": np.float32, "float64": np.float64}


def cases():
    for k in range(len(CASES)):
        for dt in DTYPES:
            yield k, dt


def case_id(k: int, dtype: str) -> str:
    problem, _, _ = CASES[k]
    return f"{problem}-{k}-{dtype}"


def initial_params(problem: str, dtype) -> List[np.ndarray]:
    x0, out, start = PROBLEMS[problem]["x0"], [], 0
    for shape in SHAPES[problem]:
        n = int(np.prod(shape))
        out.append(np.array(x0[start:start + n], dtype=dtype).reshape(shape))
        start += n
    return out


def loss_and_grads(problem: str, params: List[np.ndarray], perturb: Optional[Tuple[int, int]] = None):
    """The loss (a float) and the gradients in the parameters' dtype; ``perturb=(k, call)`` moves every
    gradient element one ulp up or down, as a hash of (k, call) decides."""
    flat = [float(v) for p in params for v in p.ravel()]
    loss, grad = PROBLEMS[problem]["fn"](flat)
    out, start = [], 0
    for p in params:
        g = np.array(grad[start:start + p.size], dtype=p.dtype).reshape(p.shape)
        if perturb is not None:
            up = uniform(7919 * perturb[0], perturb[1] * 16 + len(out), g.size).reshape(g.shape) > 0
            g = np.nextafter(g, np.where(up, np.inf, -np.inf).astype(g.dtype))
        out.append(g)
        start += p.size
    return loss, out


def run_fastoptim(k: int, dtype, opt_out: Optional[list] = None) -> np.ndarray:
    """Parameters (flattened) after each step(), shape (steps + 1, n)."""
    problem, config, steps = CASES[k]
    params = initial_params(problem, dtype)
    opt = fastoptim.LBFGS(params, **config)
    traj = [np.concatenate([p.ravel() for p in params])]
    for _ in range(steps):
        opt.step(lambda: loss_and_grads(problem, params))
        traj.append(np.concatenate([p.ravel() for p in params]))
    if opt_out is not None:
        opt_out.append(opt)
    return np.stack(traj)


def run_torch(k: int, dtype, perturb: Optional[int] = None, opt_out: Optional[list] = None) -> np.ndarray:
    import torch

    problem, config, steps = CASES[k]
    params = [torch.from_numpy(p) for p in initial_params(problem, dtype)]
    opt = torch.optim.LBFGS(params, **config)
    calls = [0]

    def closure():
        calls[0] += 1
        loss, grads = loss_and_grads(problem, [p.numpy() for p in params],
                                     None if perturb is None else (perturb, calls[0]))
        for p, g in zip(params, grads):
            p.grad = torch.from_numpy(g)
        return loss

    traj = [np.concatenate([p.numpy().ravel() for p in params])]
    for _ in range(steps):
        opt.step(closure)
        traj.append(np.concatenate([p.numpy().ravel() for p in params]))
    if opt_out is not None:
        opt_out.append(opt)
    return np.stack(traj)


def deviation_per_step(traj: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """max |traj - ref| / max |ref| at each step (inf where finiteness differs)."""
    if not np.array_equal(np.isfinite(traj), np.isfinite(ref)):
        return np.full(len(ref), math.inf)
    diff = np.abs(traj.astype(np.float64) - ref.astype(np.float64)).max(axis=1)
    return diff / np.abs(ref.astype(np.float64)).max(axis=1)


def torch_spread_per_step(k: int, dtype, ref: np.ndarray) -> np.ndarray:
    return np.max([deviation_per_step(run_torch(k, dtype, perturb=j), ref) for j in PERTURBATIONS], axis=0)


# Allowed whatever torch's spread: a few roundings of the dtype.
FLOOR = {"float32": 8 * 2.0 ** -24, "float64": 8 * 2.0 ** -53}


def allowed_per_step(spread: np.ndarray, dtype: str) -> np.ndarray:
    return np.maximum(2 * spread, FLOOR[dtype])

