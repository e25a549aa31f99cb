"""Numerical edge cases against torch 2.13's single-tensor (foreach=False) optimizers with a correctly
rounded sqrt (parity.correctly_rounded_sqrt), where our elementwise kernels are bit-identical:

* values: parameters and gradients holding NaN, +-inf, -0.0, zeros, subnormals, huge values (1e30, 3e38,
  the dtype's max), gradients that stay zero, turn zero, or are NaN once; NaN in loaded max-type state
  (torch.maximum propagates NaN, so must we);
* dtypes: float64, float32 beside float16/bfloat16 parameters in one optimizer, and the 16-bit parameters
  themselves ("the float32 step, rounded": README, Low-precision storage);
* steps: loaded step counts 0, 0.5, 2.5, near 2**24 (torch's step is a float32 tensor that stops counting
  there) and 1e9; long float32 runs.

Bits are compared exactly except NaN payloads (any NaN equals any NaN: x86 makes NaN signs depend on operand
order, and neither torch nor our vector tiers fix them). Where torch's own implementations disagree on such
inputs (e.g. its foreach ASGD and RAdam, its fused SGD with nesterov, the sign of a zero from its lerp with
weight 1 in vector bodies against scalar tails), we match the single-tensor path.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import fastoptim
from conftest import requires_torch

pytestmark = requires_torch

ELEMENTWISE = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "ASGD", "Rprop", "Adamax", "NAdam", "RAdam"]
# Vector bodies and tails, a column of one (factored with C = 1 for Adafactor), a single element.
SHAPES = [(9, 37), (37,), (5, 1), (1,)]


def _specials(dtype) -> np.ndarray:
    f = np.finfo(dtype)
    v = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-40, -1e-40, 1e-30, 1e-20, -1e-20, 1e30, -1e30, 3e38, -3e38,
         1.0, -1.0, 0.5, -2.0, float(f.tiny), float(f.max), -float(f.max)]
    if dtype == np.float64:
        v += [1e-310, -1e-310, 1e300, -1e300]
    with np.errstate(over="ignore"):
        return np.array(v).astype(dtype)


def edge_data(dtype, seed: int, n: int, steps: int):
    """(p0, grads[steps, n]): half the parameters special values; each element's gradients follow one of
    seven patterns (one special value throughout; a random special each step; normal with 10% specials;
    zero throughout; normal, then zero from a random step on; normal with one special at a random step;
    normal)."""
    rng = np.random.default_rng(seed)
    s = _specials(np.float32 if dtype != np.float64 else np.float64)
    p0 = np.where(rng.random(n) < 0.5, rng.choice(s, n), rng.standard_normal(n))
    mode = rng.integers(0, 7, n)
    const, switch = rng.choice(s, n), rng.integers(0, steps, n)
    grads = np.empty((steps, n))
    for t in range(steps):
        normal = rng.standard_normal(n) * 10.0 ** rng.integers(-3, 1, n)
        special = rng.choice(s, n)
        grads[t] = np.select(
            [mode == 0, mode == 1, mode == 2, mode == 3, mode == 4, mode == 5],
            [const, special, np.where(rng.random(n) < 0.1, special, normal), np.zeros(n),
             np.where(t >= switch, 0.0, normal), np.where(t == switch, special, normal)], normal)
    with np.errstate(over="ignore"):
        return p0.astype(dtype), grads.astype(dtype)


def _split(flat, shapes):
    out, start = [], 0
    for s in shapes:
        n = int(np.prod(s))
        out.append(np.ascontiguousarray(flat[start:start + n]).reshape(s))
        start += n
    return out


def assert_same_bits(ours: np.ndarray, ref: np.ndarray, what: str = "") -> None:
    """Equal bit patterns (so signs of zero, infinities, subnormals), NaN matching any NaN."""
    assert ours.dtype == ref.dtype and ours.shape == ref.shape, what
    nan_o, nan_r = np.isnan(ours), np.isnan(ref)
    uint = {2: np.uint16, 4: np.uint32, 8: np.uint64}[ours.dtype.itemsize]
    differ = (nan_o != nan_r) | (~nan_o & ~nan_r & (ours.view(uint) != ref.view(uint)))
    if differ.any():
        i = np.flatnonzero(differ.ravel())[0]
        pytest.fail(f"{what}: {differ.sum()} elements differ, first at {i}: ours {ours.ravel()[i]!r}, "
                    f"torch {ref.ravel()[i]!r}")


def _torch_opt(name, params, cfg):
    import inspect

    import torch

    kw = dict(cfg)
    if "foreach" in inspect.signature(getattr(torch.optim, name)).parameters:
        kw["foreach"] = False
    return getattr(torch.optim, name)(params, **kw)


def run_pair(name, cfg, p0, grads, shapes, check_state=True, what="", compare=None, exact_sqrt=True):
    """Steps ours and torch (single-tensor; with exact_sqrt, a correctly rounded sqrt) on the same data;
    compare(ours, torch's, what) after every step (default: equal bits), and equal state bits at the end."""
    import contextlib

    import torch

    import parity

    compare = compare or assert_same_bits

    ours = _split(p0.copy(), shapes)
    opt = getattr(fastoptim, name)(ours, **cfg)
    tp = [torch.from_numpy(p.copy()).requires_grad_(True) for p in _split(p0, shapes)]
    topt = _torch_opt(name, tp, cfg)
    for t in range(grads.shape[0]):
        g = _split(grads[t], shapes)
        with np.errstate(all="ignore"):
            opt.step([x.copy() for x in g])
        for p, x in zip(tp, g):
            p.grad = torch.from_numpy(x.copy())
        with parity.correctly_rounded_sqrt() if exact_sqrt else contextlib.nullcontext():
            topt.step()
        for i, (a, b) in enumerate(zip(ours, tp)):
            compare(a, b.detach().numpy(), f"{what} step {t + 1}, parameter {i}")
    if check_state:
        for i, p in enumerate(tp):
            for key, value in topt.state[p].items():
                if key == "step":
                    assert float(np.asarray(opt.state[i]["step"])) == float(value), (what, i)
                elif torch.is_tensor(value) and value.dim() > 0:
                    assert_same_bits(np.asarray(opt.state[i][key]), value.numpy(), f"{what} state {key} of {i}")
    return opt, topt


# ------------------------------------------------------------------------------------------- values


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_special_values_bit_identical_to_torch(name, dtype):
    """Every flag combination of the parity registry, on special values: the same NaNs, infinities and
    signed zeros as torch at every step, every other value bit for bit."""
    from parity import OPTIMIZERS

    n = sum(int(np.prod(s)) for s in SHAPES)
    for k, cfg in enumerate(OPTIMIZERS[name]["configs"]):
        p0, grads = edge_data(dtype, 100 + k, n, 10)
        run_pair(name, cfg, p0, grads, SHAPES, what=f"{name} config {k}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_adafactor_special_values_classes_match_torch(dtype):
    """Adafactor sums its norms in another order than torch (README, Numerics), so only the kind of
    every value (NaN, +-inf, +-0, subnormal, normal) must match; NaN and infinities spread through the
    row and column factors as in torch. A single-element parameter is left out: see the next test."""
    from parity import OPTIMIZERS

    shapes = SHAPES[:-1]
    n = sum(int(np.prod(s)) for s in shapes)

    def kind(a):
        tiny = np.finfo(a.dtype).tiny
        return np.select([np.isnan(a), a == np.inf, a == -np.inf, (a == 0) & np.signbit(a), a == 0,
                          np.abs(a) < tiny], [0, 1, 2, 3, 4, 5], 6)

    def same_kinds(a, b, what):
        np.testing.assert_array_equal(kind(a), kind(b), err_msg=what)

    for k, cfg in enumerate(OPTIMIZERS["Adafactor"]["configs"]):
        p0, grads = edge_data(dtype, 200 + k, n, 8)
        run_pair("Adafactor", cfg, p0, grads, shapes, check_state=False, what=f"config {k}",
                 compare=same_kinds, exact_sqrt=False)


@pytest.mark.parametrize("dtype, value, grad, eps", [
    (np.float32, 3e38, 1e-30, (None, 1e-3)),   # x * x overflows
    (np.float64, 1e300, 1e-30, (None, 1e-3)),
    (np.float32, 1e-30, 1e-3, (None, 0.0)),    # x * x underflows to 0 (eps2 = 0 leaves alpha to the norm)
], ids=["float32-huge", "float64-huge", "float32-tiny"])
def test_adafactor_one_element_parameter_norm_is_abs(dtype, value, grad, eps):
    """torch's norm of a one-element tensor is |x| exactly; sqrt(x * x) would overflow or underflow."""
    import torch

    p = np.array([value], dtype)
    opt = fastoptim.Adafactor([p], lr=0.01, eps=eps)
    with np.errstate(all="ignore"):
        opt.step([np.array([grad], dtype)])
    tp = torch.tensor([value], dtype=getattr(torch, np.dtype(dtype).name), requires_grad=True)
    tp.grad = torch.tensor([grad], dtype=tp.dtype)
    torch.optim.Adafactor([tp], lr=0.01, eps=eps, foreach=False).step()
    assert np.isfinite(p).all()
    assert_same_bits(p, tp.detach().numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name, cfg, key", [
    ("Adam", dict(amsgrad=True), "max_exp_avg_sq"),
    ("Adam", dict(amsgrad=True), "exp_avg_sq"),
    ("AdamW", dict(amsgrad=True, maximize=True), "max_exp_avg_sq"),
    ("Adamax", dict(), "exp_inf"),
    ("Adamax", dict(weight_decay=0.1), "exp_avg"),
])
def test_nan_and_inf_in_loaded_state(name, cfg, key, dtype):
    """torch takes the running maximum with torch.maximum, which propagates NaN whichever side holds it:
    NaN or inf in a loaded max-type buffer (not only NaN gradients, whose NaN reaches both sides) must give
    torch's results, in the vector bodies and the tails."""
    import torch

    import parity

    n = 37
    p0 = np.linspace(-1, 1, n).astype(dtype)
    g = np.linspace(0.5, -0.3, n).astype(dtype)
    g[::5] = np.nan
    state = {"step": np.array(3.0, np.float32), "exp_avg": np.full(n, 0.1, dtype)}
    if name == "Adamax":
        state["exp_inf"] = np.full(n, 0.2, dtype)
    else:
        state["exp_avg_sq"] = np.full(n, 0.01, dtype)
        state["max_exp_avg_sq"] = np.full(n, 0.02, dtype)
    state[key][::3] = np.nan
    state[key][1::7] = np.inf
    ours = p0.copy()
    opt = getattr(fastoptim, name)([ours], **cfg)
    opt.load_state_dict({"state": {0: {k: v.copy() for k, v in state.items()}},
                         "param_groups": opt.state_dict()["param_groups"]})
    tp = torch.from_numpy(p0.copy()).requires_grad_(True)
    topt = getattr(torch.optim, name)([tp], **cfg, foreach=False)
    topt.load_state_dict({"state": {0: {k: torch.from_numpy(v.copy()) for k, v in state.items()}},
                          "param_groups": topt.state_dict()["param_groups"]})
    for _ in range(2):
        with np.errstate(all="ignore"):
            opt.step([g.copy()])
        tp.grad = torch.from_numpy(g.copy())
        with parity.correctly_rounded_sqrt():
            topt.step()
        assert_same_bits(ours, tp.detach().numpy(), name)
    for k, v in topt.state[tp].items():
        if k != "step":
            assert_same_bits(opt.state[0][k], v.numpy(), k)


# ------------------------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_float32_and_float64_beside_16bit_parameters_are_torch(name):
    """One optimizer over float32, float64, float16 and bfloat16 parameters: the float32 and float64 ones
    take torch's step bit for bit, special values included, whatever the 16-bit ones beside them do."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    import torch

    import parity
    from parity import OPTIMIZERS

    cfg = OPTIMIZERS[name]["configs"][-1]
    n = sum(int(np.prod(s)) for s in SHAPES)
    p32, g32 = edge_data(np.float32, 300, n, 6)
    p64, g64 = edge_data(np.float64, 301, n, 6)
    rng = np.random.default_rng(302)
    low = [rng.standard_normal((6, 17)).astype(np.float16), rng.standard_normal(40).astype(ml_dtypes.bfloat16)]
    params = _split(p32.copy(), SHAPES) + low + _split(p64.copy(), SHAPES)
    opt = getattr(fastoptim, name)(params, **cfg)
    tp = [torch.from_numpy(p.copy()).requires_grad_(True) for p in _split(p32, SHAPES) + _split(p64, SHAPES)]
    topt = _torch_opt(name, tp, cfg)
    for t in range(g32.shape[0]):
        g = _split(g32[t], SHAPES) + _split(g64[t], SHAPES)
        g_low = [(0.1 * rng.standard_normal(p.shape)).astype(p.dtype) for p in low]
        with np.errstate(all="ignore"):
            opt.step([x.copy() for x in g[:4]] + g_low + [x.copy() for x in g[4:]])
        for p, x in zip(tp, g):
            p.grad = torch.from_numpy(x.copy())
        with parity.correctly_rounded_sqrt():
            topt.step()
        for i, (a, b) in enumerate(zip(params[:4] + params[6:], tp)):
            assert_same_bits(a, b.detach().numpy(), f"{name} step {t + 1}, parameter {i}")


@pytest.mark.parametrize("dtype16", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_16bit_special_values_are_the_rounded_float32_step(name, dtype16):
    """16-bit parameters (and state) with special values: each step is torch's float32 step on the widened
    values, with parameters and state rounded to the 16-bit type after it (README: the arithmetic is
    float32); state created at the first step is rounded as it is created (Adagrad's
    initial_accumulator_value, Rprop's step sizes)."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    import torch

    import parity
    from parity import OPTIMIZERS

    np16 = np.dtype(np.float16) if dtype16 == "float16" else np.dtype(ml_dtypes.bfloat16)
    t16 = getattr(torch, dtype16)
    n = sum(int(np.prod(s)) for s in SHAPES)

    def rounded(x):
        return x.to(t16).to(torch.float32)

    for k, cfg in enumerate(OPTIMIZERS[name]["configs"][:4]):
        p0, grads = edge_data(np.float32, 400 + k, n, 8)
        with np.errstate(over="ignore"):
            p0, grads = p0.astype(np16), grads.astype(np16)
        ours = _split(p0.copy(), SHAPES)
        opt = getattr(fastoptim, name)(ours, **cfg)
        tp = [torch.from_numpy(p.astype(np.float32)).requires_grad_(True) for p in _split(p0, SHAPES)]
        topt = _torch_opt(name, tp, cfg)
        with torch.no_grad():
            for p in tp:  # torch would create these in float32 at the first step
                if name == "Adagrad":
                    topt.state[p].update(step=torch.tensor(0.0), sum=rounded(
                        torch.full_like(p, cfg.get("initial_accumulator_value", 0.0))))
                elif name == "Rprop":
                    topt.state[p].update(step=torch.tensor(0.0), prev=torch.zeros_like(p),
                                         step_size=rounded(torch.full_like(p, cfg["lr"])))
        for t in range(grads.shape[0]):
            g = _split(grads[t], SHAPES)
            with np.errstate(all="ignore"):
                opt.step([x.copy() for x in g])
            for p, x in zip(tp, g):
                p.grad = torch.from_numpy(x.astype(np.float32))
            with parity.correctly_rounded_sqrt():
                topt.step()
            with torch.no_grad():
                for p in tp:
                    p.copy_(rounded(p))
                    for key, v in topt.state[p].items():
                        if key != "step" and torch.is_tensor(v) and v.dim() > 0:
                            v.copy_(rounded(v))
            for i, (a, b) in enumerate(zip(ours, tp)):
                assert_same_bits(a.astype(np.float32), b.detach().numpy(), f"{name} config {k} step {t + 1} p{i}")


# -------------------------------------------------------------------------------------------- steps

WITH_STEP = [n for n in ELEMENTWISE if n != "SGD"]
STEP_VALUES = [0.0, 0.5, 2.5, 2.0 ** 24 - 2, 1e9]


@pytest.mark.parametrize("name", WITH_STEP + ["Adafactor"])
def test_loaded_step_counts(name):
    """A torch state dict (tensors as numpy) whose step is 0, fractional, about to reach 2**24 (where a
    float32 step stops counting) or 1e9 continues as torch does: same step counter, same bits (Adafactor:
    its reductions round differently, so close)."""
    import torch

    import parity
    from parity import OPTIMIZERS

    shapes = [(5, 7), (9,), (1,)]
    n = sum(int(np.prod(s)) for s in shapes)
    rng = np.random.default_rng(500)
    for k, cfg in enumerate(OPTIMIZERS[name]["configs"][:4]):
        for dtype in (np.float32, np.float64):
            p0 = rng.standard_normal(n).astype(dtype)
            grads = (0.1 * rng.standard_normal((7, n))).astype(dtype)
            tp = [torch.from_numpy(p.copy()).requires_grad_(True) for p in _split(p0, shapes)]
            topt = _torch_opt(name, tp, cfg)
            for t in range(3):
                for p, x in zip(tp, _split(grads[t], shapes)):
                    p.grad = torch.from_numpy(x.copy())
                topt.step()
            base = [p.detach().numpy().copy() for p in tp]
            for step in STEP_VALUES:
                sd = copy.deepcopy(topt.state_dict())
                for st in sd["state"].values():
                    st["step"] = torch.tensor(step, dtype=torch.float32)
                ours = [p.copy() for p in base]
                opt = getattr(fastoptim, name)(ours, **cfg)
                opt.load_state_dict({"state": {i: {key: v.numpy().copy() for key, v in st.items()}
                                               for i, st in sd["state"].items()},
                                     "param_groups": copy.deepcopy(sd["param_groups"])})
                tp2 = [torch.from_numpy(p.copy()).requires_grad_(True) for p in base]
                t2 = _torch_opt(name, tp2, cfg)
                t2.load_state_dict(sd)
                for t in range(3, 7):
                    g = _split(grads[t], shapes)
                    opt.step([x.copy() for x in g])
                    for p, x in zip(tp2, g):
                        p.grad = torch.from_numpy(x.copy())
                    with parity.correctly_rounded_sqrt():
                        t2.step()
                    what = f"{name} config {k} {np.dtype(dtype).name} step {step} + {t - 2}"
                    for i, (a, b) in enumerate(zip(ours, tp2)):
                        assert float(np.asarray(opt.state[i]["step"])) == float(t2.state[b]["step"]), what
                        if name == "Adafactor":
                            np.testing.assert_allclose(a, b.detach().numpy(), rtol=1e-5, atol=0, err_msg=what)
                        else:
                            assert_same_bits(a, b.detach().numpy(), f"{what}, parameter {i}")
                if step == 2.0 ** 24 - 2:  # 2**24 - 1, 2**24, then stuck (float32)
                    assert float(np.asarray(opt.state[0]["step"])) == 2.0 ** 24


LONG_RUNS = [
    ("Adam", dict(lr=1e-3, weight_decay=0.01)),
    ("Adam", dict(lr=1e-3, amsgrad=True, maximize=True, weight_decay=0.01)),
    ("AdamW", dict(lr=1e-3, amsgrad=True, weight_decay=0.1)),
    ("RMSprop", dict(lr=1e-4, centered=True, momentum=0.9, maximize=True, weight_decay=0.01)),
    ("Adagrad", dict(lr=1e-2, weight_decay=0.01, lr_decay=1e-3)),
    ("NAdam", dict(lr=1e-3, weight_decay=0.01, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=1e-3, weight_decay=0.01, maximize=True)),
    ("Adamax", dict(lr=1e-3, weight_decay=0.01)),
]


@pytest.mark.parametrize("name, cfg", LONG_RUNS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(LONG_RUNS)])
def test_long_float32_runs_stay_bit_identical(name, cfg):
    """2000 float32 steps with small gradients (NAdam's mu_product goes subnormal, then zero, on the way):
    no drift at all from torch with a correctly rounded sqrt."""
    import torch

    import parity

    shapes = [(64, 17), (33,), (1,)]
    n = sum(int(np.prod(s)) for s in shapes)
    rng = np.random.default_rng(600)
    p0 = rng.uniform(-1, 1, n).astype(np.float32)
    ours = _split(p0.copy(), shapes)
    opt = getattr(fastoptim, name)(ours, **cfg)
    tp = [torch.from_numpy(p.copy()).requires_grad_(True) for p in _split(p0, shapes)]
    topt = _torch_opt(name, tp, cfg)
    with parity.correctly_rounded_sqrt():
        for t in range(2000):
            noise = _split((1e-3 * rng.uniform(-1, 1, n)).astype(np.float32), shapes)
            opt.step([x + np.float32(0.01) * p for x, p in zip(noise, ours)])
            for x, p in zip(noise, tp):
                p.grad = torch.from_numpy(x + np.float32(0.01) * p.detach().numpy())
            topt.step()
    for i, (a, b) in enumerate(zip(ours, tp)):
        assert_same_bits(a, b.detach().numpy(), f"{name} parameter {i}")


# -------------------------------------------------------------------------------------------- tiers

TIER_SCRIPT = r"""
import hashlib, sys
import numpy as np
import fastoptim
sys.path.insert(0, sys.argv[1])
from test_numeric_edges import edge_data
try:
    import ml_dtypes
    low = [np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)]
except ImportError:
    low = [np.dtype(np.float16)]
configs = [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adam", dict(amsgrad=True, weight_decay=0.1, maximize=True)), ("AdamW", {}),
    ("RMSprop", dict(centered=True, momentum=0.5)), ("Adagrad", dict(lr_decay=0.01, initial_accumulator_value=0.1)),
    ("Adadelta", dict(weight_decay=0.01)), ("ASGD", dict(t0=2)), ("Rprop", {}), ("Adamax", dict(weight_decay=0.01)),
    ("NAdam", {}), ("RAdam", {}), ("Lion", dict(weight_decay=0.1)), ("LAMB", dict(trust_clip=True)), ("Adan", {}),
    ("AdaBelief", dict(amsgrad=True, weight_decouple=False, rectify=False)), ("AdaBelief", {}),
    ("ScheduleFreeAdamW", dict(warmup_steps=2)), ("Adafactor", {}),
]
sizes = (1, 15, 17, 1023, 5003)
h = hashlib.sha256()
for name, kw in configs:
    for dtype in [np.dtype(np.float32), np.dtype(np.float64)] + low:
        if dtype.itemsize == 2 and name in ("LAMB", "Adafactor", "ScheduleFreeAdamW"):
            continue
        p0, grads = edge_data(np.float64 if dtype == np.float64 else np.float32, 7, sum(sizes), 6)
        with np.errstate(over="ignore"):
            p0, grads = p0.astype(dtype), grads.astype(dtype)
        extra = dict(stochastic_rounding=True) if dtype.name == "bfloat16" else {}
        splits = np.cumsum(sizes)[:-1]
        params = [np.ascontiguousarray(x) for x in np.split(p0, splits)]
        opt = getattr(fastoptim, name)(params, **kw, **extra)
        if hasattr(opt, "train"):
            opt.train()
        with np.errstate(all="ignore"):
            for g in grads:
                opt.step([np.ascontiguousarray(x) for x in np.split(g, splits)])
        arrays = params + [np.asarray(opt.state[i][k]) for i in sorted(opt.state) for k in sorted(opt.state[i])]
        for a in arrays:
            wide = a.astype(np.float64)  # canonical NaN: the sign of a NaN depends on operand order (x86)
            h.update(np.where(np.isnan(wide), np.nan, wide).tobytes())
print(fastoptim.cpu_capability(), h.hexdigest())
"""


def test_special_values_identical_on_every_tier():
    """Every kernel tier computes the same values on special inputs (test_tiers.py does ordinary ones),
    for every elementwise optimizer, the ones beyond torch and 16-bit storage included; only the sign of a
    NaN may differ (as it does between torch's own kernels)."""
    import os
    import pathlib
    import subprocess
    import sys

    here = str(pathlib.Path(__file__).resolve().parent)
    digests = {}
    for tier in fastoptim._core.supported_cpu_capabilities():
        env = dict(os.environ, FASTOPTIM_CPU_CAPABILITY=tier)
        out = subprocess.run([sys.executable, "-c", TIER_SCRIPT, here], env=env, capture_output=True, text=True,
                             check=True).stdout.split()
        assert out[0] == tier
        digests[tier] = out[1]
    assert len(set(digests.values())) == 1, digests
