"""Parity machinery: one registry of optimizers and flag combinations, a deterministic problem, and
runners for fastoptim and torch.optim that record the whole parameter trajectory.

The problem: two param groups with four parameters of different shapes and gradient scales. The gradient
at step t is a counter-based hash noise (exact integer arithmetic, so identical on every machine and numpy
version) plus 0.1 * p, computed in the parameter's dtype; so trajectories feed back through the
parameters as in training. The last parameter gets no gradient every fifth step, which exercises
``grad is None`` and per-parameter step counts.

Deviation is measured in ulps of each parameter's largest magnitude (a norm-wise ulp), maximised over
elements and steps.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import json
import math
import pathlib
import random
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

import fastoptim
from factored_reference import correctly_rounded_sqrt  # the one torch is compared with (tests import it from here)

DATA = pathlib.Path(__file__).resolve().parent / "data"
SHAPES = [(4, 5), (7,), (3, 2, 2), (1,)]
GRAD_SCALES = [1.0, 0.01, 3.0, 1e-3]
GROUPS = [[0, 1], [2, 3]]
STEPS = 500
MASK64 = (1 << 64) - 1


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def uniform(seed: int, stream: int, n: int) -> np.ndarray:
    """n float64 values in [-1, 1), a pure function of (seed, stream)."""
    base = np.uint64(((seed * 0x100000001B3) ^ (stream * 0xC2B2AE3D27D4EB4F)) & MASK64)
    x = _splitmix(np.arange(n, dtype=np.uint64) + base)
    return (x >> np.uint64(11)).astype(np.float64) * (2.0 ** -52) - 1.0


def initial_params(dtype, seed: int) -> List[np.ndarray]:
    return [
        uniform(seed, 1_000_000 + i, int(np.prod(s))).reshape(s).astype(dtype) for i, s in enumerate(SHAPES)
    ]


def gradient(p: np.ndarray, seed: int, step: int, i: int) -> Optional[np.ndarray]:
    if i == 3 and step % 5 == 2:
        return None
    noise = uniform(seed, step * 16 + i, p.size).reshape(p.shape).astype(p.dtype)
    return noise * p.dtype.type(GRAD_SCALES[i]) + p.dtype.type(0.1) * p


def sparse_gradient(p: np.ndarray, seed: int, step: int, i: int):
    """SparseAdam's gradient: (indices, values) for 0 to 2 * rows - 1 rows of the leading dimension, drawn
    with repetition (repeated rows are summed), noise plus 0.1 * the row; None as ``gradient``."""
    if i == 3 and step % 5 == 2:
        return None
    rows, row_shape = p.shape[0], p.shape[1:]
    draw = uniform(seed, 1_000_003 * (step + 1) + i, 2 * rows + 1)
    nnz = int((draw[0] + 1.0) * rows)
    indices = np.minimum(((draw[1:nnz + 1] + 1.0) * 0.5 * rows).astype(np.int64), rows - 1)
    noise = uniform(seed, step * 16 + i, nnz * int(np.prod(row_shape))).reshape((nnz,) + row_shape).astype(p.dtype)
    return indices, noise * p.dtype.type(GRAD_SCALES[i]) + p.dtype.type(0.1) * p[indices]


def make_gradient(name: str, p: np.ndarray, seed: int, step: int, i: int):
    """The gradient optimizer ``name`` takes: dense, or (indices, values) for sparse ones."""
    return (sparse_gradient if OPTIMIZERS[name].get("sparse") else gradient)(p, seed, step, i)


def to_torch_grad(g, shape):
    """A gradient from make_gradient as torch's p.grad (a sparse COO tensor for (indices, values))."""
    import torch

    if g is None:
        return None
    if isinstance(g, tuple):
        # Indices are in range by construction; torch's invariant checks would cost it 20x its step time.
        return torch.sparse_coo_tensor(torch.from_numpy(g[0])[None], torch.from_numpy(g[1]), shape,
                                       check_invariants=False)
    return torch.from_numpy(g)


# ------------------------------------------------------------------------------------- registry

def _sgd_configs():
    out = []
    for momentum, dampening, nesterov in [(0.0, 0.0, False), (0.9, 0.0, False), (0.9, 0.0, True), (0.9, 0.1, False)]:
        for wd, maximize in itertools.product([0.0, 1e-2], [False, True]):
            out.append(dict(lr=0.05, momentum=momentum, dampening=dampening, nesterov=nesterov,
                            weight_decay=wd, maximize=maximize))
    return out


def _adam_configs():
    out = []
    for amsgrad, maximize in itertools.product([False, True], [False, True]):
        for wd, decoupled in [(0.0, False), (0.1, False), (0.1, True)]:
            out.append(dict(lr=1e-2, amsgrad=amsgrad, maximize=maximize, weight_decay=wd,
                            decoupled_weight_decay=decoupled))
    return out


def _adamw_configs():
    return [dict(lr=1e-2, amsgrad=a, maximize=m, weight_decay=wd)
            for a, m, wd in itertools.product([False, True], [False, True], [1e-2, 0.3])]


def _rmsprop_configs():
    return [dict(lr=1e-3, centered=c, momentum=mo, maximize=m, weight_decay=wd)
            for c, mo, m, wd in itertools.product([False, True], [0.0, 0.9], [False, True], [0.0, 1e-2])]


def _adagrad_configs():
    return [dict(lr=0.05, lr_decay=ld, weight_decay=wd, initial_accumulator_value=iv, maximize=m)
            for ld, wd, iv, m in itertools.product([0.0, 1e-3], [0.0, 1e-2], [0.0, 0.1], [False, True])]


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return float(f"{math.exp(rng.uniform(math.log(lo), math.log(hi))):.3g}")


def _adadelta_configs():
    rng = random.Random(1212)  # arXiv:1212.5701
    return [dict(lr=_log_uniform(rng, 0.05, 2.0), rho=round(rng.uniform(0.5, 0.99), 3),
                 eps=_log_uniform(rng, 1e-8, 1e-4), weight_decay=_log_uniform(rng, 1e-4, 0.1) if wd else 0.0,
                 maximize=m)
            for m, wd, _ in itertools.product([False, True], [False, True], range(2))]


def _asgd_configs():
    # t0 within the run, so that mu < 1 and ax averages, or at torch's default (ax copies the parameter).
    rng = random.Random(1992)
    return [dict(lr=_log_uniform(rng, 1e-3, 5e-2), lambd=_log_uniform(rng, 1e-5, 0.1),
                 alpha=round(rng.uniform(0.5, 1.0), 3), t0=round(rng.uniform(0, 300), 1) if avg else 1e6,
                 weight_decay=_log_uniform(rng, 1e-4, 0.1) if wd else 0.0, maximize=m)
            for m, wd, avg in itertools.product([False, True], [False, True], [False, True])]


def _rprop_configs():
    # Tight step-size bounds (clamped often, both ways) or loose ones as torch's default.
    rng = random.Random(1993)
    out = []
    for m, tight, _ in itertools.product([False, True], [False, True], range(2)):
        lr = _log_uniform(rng, 1e-4, 0.1)
        bounds = ((float(f"{lr * rng.uniform(0.05, 0.5):.3g}"), float(f"{lr * rng.uniform(2, 10):.3g}")) if tight
                  else (_log_uniform(rng, 1e-8, 1e-5), 50))
        out.append(dict(lr=lr, etas=(round(rng.uniform(0.1, 0.9), 3), round(rng.uniform(1.01, 2.0), 3)),
                        step_sizes=bounds, maximize=m))
    return out



class _Drawn(NamedTuple):
    """A hyperparameter drawn log-uniformly from [low, high) (to 3 significant digits)."""

    low: float
    high: float


def _drawn_configs(name: str, variants: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One config per variant: lr, betas and eps drawn from a generator seeded by the optimizer's name, then
    the variant's entries (values, or _Drawn ranges drawn from the same generator). Fixed, as the goldens
    store the configs and the tests check they are unchanged."""
    rng = np.random.default_rng(sum(map(ord, name)))

    def draw(low, high, log=True):
        return float(f"{10 ** rng.uniform(np.log10(low), np.log10(high)) if log else rng.uniform(low, high):.3g}")

    out = []
    for variant in variants:
        config = dict(lr=draw(1e-3, 3e-2), betas=(draw(0.5, 0.95, log=False), draw(0.9, 0.9999, log=False)),
                      eps=draw(1e-9, 1e-5))
        config.update({k: draw(*v) if isinstance(v, _Drawn) else v for k, v in variant.items()})
        out.append(config)
    return out


_WD = _Drawn(1e-3, 0.2)


def _adamax_configs():
    variants = [dict(weight_decay=wd, maximize=m) for wd, m in itertools.product([0.0, _WD], [False, True])]
    # A large eps bounds the step of small gradients.
    return _drawn_configs("Adamax", variants + [dict(eps=1e-3), dict(eps=1e-2, weight_decay=_WD, maximize=True)])


# Every weight-decay mode with and without maximize.
_DECAY_VARIANTS = [dict(weight_decay=wd, decoupled_weight_decay=d, maximize=m)
                   for (wd, d), m in itertools.product([(0.0, False), (_WD, False), (_WD, True)], [False, True])]


def _nadam_configs():
    # momentum_decay from 0 (constant mu = beta1 / 2) to 0.5 (mu near beta1 within a few hundred steps).
    variants = [dict(v, momentum_decay=_Drawn(1e-3, 5e-2)) for v in _DECAY_VARIANTS]
    variants += [dict(momentum_decay=0.0, weight_decay=_WD, decoupled_weight_decay=True),
                 dict(momentum_decay=0.5, maximize=True)]
    return _drawn_configs("NAdam", variants)


def _radam_configs():
    # rho_t > 5 turns the rectified update on at step 6 for beta2 >= 0.85, at step 16 for beta2 = 0.67, and
    # never when rho_inf = 2 / (1 - beta2) - 1 <= 5, i.e. beta2 <= 2/3.
    variants = _DECAY_VARIANTS + [dict(betas=(0.9, 0.6), weight_decay=_WD), dict(betas=(0.5, 0.67), maximize=True)]
    return _drawn_configs("RAdam", variants)

# name -> (configs, group-1 overrides, torch implementations to measure torch's own spread)
def _adafactor_configs():
    """Every flag combination (maximize, weight decay, eps1 given or None, update clipping active or not),
    other values drawn at random with a fixed seed."""
    rng = np.random.default_rng(20260613)
    out = []
    for maximize, decay, eps1_given, clipping in itertools.product([False, True], repeat=4):
        if eps1_given == clipping and maximize != decay:
            continue  # 12 of the 16 combinations keep every pair of flags covered
        out.append(dict(
            # maximize grows the parameters geometrically (by up to lr * d per step): keep float32 finite
            lr=float(rng.choice([1e-3, 3e-3] if maximize else [1e-2, 3e-2, 0.1])),
            beta2_decay=round(float(-rng.uniform(0.5, 1.0)), 3),
            eps=(round(float(10 ** rng.uniform(-5, -2)), 8) if eps1_given else None,
                 round(float(10 ** rng.uniform(-4, -2)), 6)),
            d=1.0 if clipping else round(float(rng.uniform(1.5, 4.0)), 3),
            weight_decay=round(float(10 ** rng.uniform(-3, -1)), 5) if decay else 0.0,
            maximize=maximize,
        ))
    return out


def _sparse_adam_configs():
    rng = np.random.default_rng(20260614)
    return [dict(lr=float(rng.choice([1e-3, 1e-2, 3e-2])),
                 betas=(round(float(rng.uniform(0.5, 0.95)), 3), round(float(rng.uniform(0.9, 0.9999)), 5)),
                 eps=float(rng.choice([1e-8, 1e-6, 1e-3])), maximize=maximize)
            for maximize in (False, True) for _ in range(4)]


# name -> (configs, group-1 overrides, torch implementations to measure torch's own spread; sparse: the
# gradients are (indices, values), see sparse_gradient)
OPTIMIZERS: Dict[str, Dict[str, Any]] = {
    "SGD": dict(configs=_sgd_configs(), group1=dict(lr=0.02), alternatives=["foreach", "fused"]),
    "Adam": dict(configs=_adam_configs(), group1=dict(lr=3e-3, betas=(0.8, 0.99)), alternatives=["foreach", "fused"]),
    "AdamW": dict(configs=_adamw_configs(), group1=dict(lr=3e-3, betas=(0.8, 0.99)), alternatives=["foreach", "fused"]),
    "RMSprop": dict(configs=_rmsprop_configs(), group1=dict(lr=3e-4, alpha=0.9), alternatives=["foreach"]),
    "Adagrad": dict(configs=_adagrad_configs(), group1=dict(lr=0.02, lr_decay=1e-2, eps=1e-6),
                    alternatives=["foreach", "fused"]),
    "Adadelta": dict(configs=_adadelta_configs(), group1=dict(lr=0.3, rho=0.8, eps=1e-5),
                     alternatives=["foreach", "exact_sqrt"]),
    "ASGD": dict(configs=_asgd_configs(), group1=dict(lr=0.02, lambd=1e-3, alpha=0.6, t0=100.0),
                 alternatives=["foreach"]),
    "Rprop": dict(configs=_rprop_configs(), group1=dict(lr=3e-3, etas=(0.4, 1.3), step_sizes=(1e-5, 0.02)),
                  alternatives=["foreach"]),
    # torch 2.13 has no fused Adamax, NAdam or RAdam.
    "Adamax": dict(configs=_adamax_configs(), group1=dict(lr=4e-3, betas=(0.8, 0.99)), alternatives=["foreach"]),
    "NAdam": dict(configs=_nadam_configs(), group1=dict(lr=4e-3, betas=(0.8, 0.99), momentum_decay=1e-2),
                  alternatives=["foreach"]),
    "RAdam": dict(configs=_radam_configs(), group1=dict(lr=4e-3, betas=(0.8, 0.99)), alternatives=["foreach"]),
    # Adafactor's foreach path shares torch's reductions; runs with its norms and means summed in other orders
    # measure what a different summation order (ours) can change (factored_reference.reordered_reductions).
    "Adafactor": dict(configs=_adafactor_configs(), group1=dict(lr=0.02, beta2_decay=-0.6, eps=(None, 1e-2), d=2.0),
                      alternatives=["foreach"], reordered_reductions=True),
    # torch has no other SparseAdam: its spread is the one-ulp perturbed runs (and the 4-ulp floor).
    "SparseAdam": dict(configs=_sparse_adam_configs(), group1=dict(lr=3e-3, betas=(0.8, 0.99)), alternatives=[],
                       sparse=True),
}

DTYPES = {"float32": np.float32, "float64": np.float64}


def cases():
    """(optimizer name, config index, dtype name) for every parity case."""
    for name, entry in OPTIMIZERS.items():
        for k in range(len(entry["configs"])):
            for dt in DTYPES:
                yield name, k, dt


def case_id(name: str, k: int, dtype: str) -> str:
    return f"{name}-{k}-{dtype}"


def case_seed(name: str, k: int, dtype: str) -> int:
    return 7 + 97 * k + (0 if dtype == "float32" else 50_000) + sum(map(ord, name))


# -------------------------------------------------------------------------------------- runners

def _groups(params, name):
    g1 = OPTIMIZERS[name]["group1"]
    return [{"params": [params[i] for i in GROUPS[0]]}, dict({"params": [params[i] for i in GROUPS[1]]}, **g1)]


def run_fastoptim(name: str, config: Dict[str, Any], dtype, seed: int, steps: int = STEPS, opt_out=None) -> np.ndarray:
    """Trajectory of shape (steps + 1, n_elements): the concatenated parameters after each step."""
    params = initial_params(dtype, seed)
    opt = getattr(fastoptim, name)(_groups(params, name), **config)
    traj = [np.concatenate([p.ravel() for p in params])]
    for t in range(1, steps + 1):
        opt.step([make_gradient(name, p, seed, t, i) for i, p in enumerate(params)])
        traj.append(np.concatenate([p.ravel() for p in params]))
    if opt_out is not None:
        opt_out.append(opt)
    return np.stack(traj)


def run_torch(name: str, config: Dict[str, Any], dtype, seed: int, impl: str = "single",
              steps: int = STEPS, perturb: Optional[int] = None, reorder: Optional[int] = None) -> np.ndarray:
    """torch.optim's trajectory. ``perturb=k`` moves every gradient element one ulp up or down (a hash
    of k decides) before each step: the spread that one rounding per step causes in this problem.
    ``impl``: "single" (foreach=False), "foreach", "fused", "exact_sqrt" (the single-tensor path with a
    correctly rounded sqrt, as torch computes it where its sqrt does not go through MKL's VML; see
    ``torch_spread``), or "fastoptim" (fastoptim.torch's class of that name).
    ``reorder=k`` sums every norm and mean torch takes in another order (factored_reference)."""
    import torch

    from factored_reference import reordered_reductions

    params = [torch.from_numpy(p.copy()).requires_grad_(True) for p in initial_params(dtype, seed)]
    kwargs = dict(config)
    if impl == "fastoptim":  # fastoptim.torch: our kernels behind torch's optimizer API
        import fastoptim.torch

        opt = getattr(fastoptim.torch, name)(_groups(params, name), **kwargs)
    else:
        if "foreach" in inspect.signature(getattr(torch.optim, name)).parameters:
            kwargs["foreach"] = impl == "foreach"
        if impl == "fused":
            kwargs["fused"] = True
            kwargs.pop("foreach", None)
        opt = getattr(torch.optim, name)(_groups(params, name), **kwargs)
    traj = [np.concatenate([p.detach().numpy().ravel() for p in params])]
    with correctly_rounded_sqrt() if impl == "exact_sqrt" else contextlib.nullcontext():
        for t in range(1, steps + 1):
            for i, p in enumerate(params):
                g = make_gradient(name, p.detach().numpy(), seed, t, i)
                if g is not None and perturb is not None:
                    v = g[1] if isinstance(g, tuple) else g
                    up = uniform(seed + 7919 * perturb, t * 16 + i, v.size).reshape(v.shape) > 0
                    v = np.nextafter(v, np.where(up, np.inf, -np.inf).astype(v.dtype))
                    g = (g[0], v) if isinstance(g, tuple) else v
                p.grad = to_torch_grad(g, p.shape)
            with (reordered_reductions(seed + 7919 * reorder + 104729 * t) if reorder is not None
                  else contextlib.nullcontext()):
                opt.step()
            traj.append(np.concatenate([p.detach().numpy().ravel() for p in params]).copy())
    return np.stack(traj)


def torch_to_numpy(value):
    """A torch state dict (or any nesting of dicts and lists) with every tensor as a numpy copy."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().numpy().copy()
    if isinstance(value, dict):
        return {k: torch_to_numpy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [torch_to_numpy(v) for v in value]
    return value


def param_slices():
    out, start = [], 0
    for s in SHAPES:
        n = int(np.prod(s))
        out.append(slice(start, start + n))
        start += n
    return out


def ulp_deviation(traj: np.ndarray, ref: np.ndarray) -> float:
    """Largest |traj - ref| over steps and elements, in ulps of each parameter's largest |ref| at that step."""
    worst = 0.0
    for sl in param_slices():
        r, x = ref[:, sl], traj[:, sl]
        scale = np.spacing(np.max(np.abs(r), axis=1, keepdims=True).astype(ref.dtype))
        with np.errstate(invalid="ignore"):
            dev = np.abs(x.astype(np.float64) - r.astype(np.float64)) / scale.astype(np.float64)
        if not np.all(np.isfinite(x) == np.isfinite(r)):
            return float("inf")
        dev = np.where(np.isfinite(r), dev, 0.0)
        worst = max(worst, float(np.max(dev)))
    return worst


# Deviation allowed whatever torch's own spread: a few ulps.
ULP_FLOOR = 4.0
PERTURBATIONS = (1, 2, 3, 4)


def torch_spread(name: str, config: Dict[str, Any], dtype, seed: int, ref: np.ndarray,
                 enough: float = math.inf) -> float:
    """How far torch's own trajectories stray from its single-tensor reference: its foreach and fused
    implementations, and runs where one rounding per step goes the other way (one-ulp gradient
    perturbations). The latter matters where torch's implementations share every rounding, e.g.
    RMSprop, whose only alternative is foreach, built on the same MKL sqrt, which is not correctly rounded
    (~17% of float32 results are 1 ulp off); a correctly rounded kernel then differs by one rounding.
    Where a rule takes several square roots per element (Adadelta: two), those roundings can add up to more
    than a one-ulp gradient perturbation does (Adadelta with lr=1, maximize=True, float32: 66 ulps against
    28); its registry entry lists "exact_sqrt", torch's single-tensor algorithm with a correctly rounded
    sqrt (as torch builds without MKL's VML compute it, e.g. on aarch64).
    Optimizers with reductions (Adafactor's norms) add runs with the reductions summed in other orders:
    torch's summation order is not fixed either (vector width, threads), and its alternatives share it.
    Stops early, returning a lower bound, once the spread reaches ``enough``."""
    runs = [dict(impl=impl) for impl in OPTIMIZERS[name]["alternatives"]]
    runs += [dict(perturb=k) for k in PERTURBATIONS]
    if OPTIMIZERS[name].get("reordered_reductions"):
        runs += [dict(reorder=k) for k in PERTURBATIONS]
    spread = 0.0
    for run in runs:
        spread = max(spread, ulp_deviation(run_torch(name, config, dtype, seed, **run), ref))
        if spread >= enough:
            break
    return spread


def allowed_deviation(spread: float) -> float:
    return max(spread, ULP_FLOOR)


@functools.lru_cache(maxsize=None)
def golden(name: str):
    """torch's stored trajectories for optimizer ``name`` (tests/data, made by make_golden.py): (meta, arrays)."""
    with np.load(DATA / f"golden_{name}.npz", allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        arrays = {k: f[k] for k in f.files if k != "meta"}
    return meta, arrays


def golden_deviation(name: str, k: int, dtype: str, traj: np.ndarray) -> Tuple[float, float]:
    """How far a trajectory of case (name, k, dtype) strays from torch's stored single-tensor one (over the
    steps it has: a run may stop early), and the deviation allowed (torch's own spread, stored with it,
    or the floor)."""
    meta, arrays = golden(name)
    cid = case_id(name, k, dtype)
    case = meta["cases"][cid]
    assert case["config"] == json.loads(json.dumps(OPTIMIZERS[name]["configs"][k])), (
        "registry changed: rerun tests/data/make_golden.py"
    )
    ours = traj[:: meta["checkpoint"]]
    ref = arrays[cid][: len(ours)]
    assert ref.dtype == ours.dtype and len(ours) > 1
    return ulp_deviation(ours, ref), allowed_deviation(case["spread_ulps"])
