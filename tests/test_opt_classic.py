"""Adadelta, ASGD and Rprop beyond the shared registries: every rounding is torch's (bit-identical
trajectories and state against torch's single-tensor path with a correctly rounded sqrt), torch's edge
cases, ASGD's 0-d ``eta``/``mu`` state, and Rprop's sign of the rounded product."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastoptim
import parity
from conftest import requires_torch
from test_bad_inputs import expect_no_change, good_grads, make, words_pattern

CLASSIC = ["Adadelta", "ASGD", "Rprop"]
CASES = [c for c in parity.cases() if c[0] in CLASSIC]
IDS = [parity.case_id(*c) for c in CASES]


def _torch_state(opt, params):
    return [{k: v.detach().numpy().copy() for k, v in opt.state[p].items()} for p in params]


def _assert_same_state(ours, theirs, what):
    """Same keys, dtypes, shapes and bits (NaN where torch has NaN)."""
    assert set(ours) == set(theirs), f"{what}: keys {sorted(ours)} != {sorted(theirs)}"
    for key, t in theirs.items():
        o = np.asarray(ours[key])
        assert o.dtype == t.dtype and o.shape == t.shape, f"{what}[{key!r}]: {o.dtype}{o.shape} != {t.dtype}{t.shape}"
        assert np.array_equal(o, t, equal_nan=True), f"{what}[{key!r}] differs from torch"


@requires_torch
@pytest.mark.parametrize("name,k,dtype", CASES, ids=IDS)
def test_bit_identical_to_torch_with_a_correctly_rounded_sqrt(name, k, dtype):
    """torch's sqrt on x86 (MKL VML) is not correctly rounded; with it replaced by an IEEE one, torch's
    single-tensor path and ours agree in every bit: parameters at every step, and the final state
    (ax, eta, mu, step_size, prev, ...) with torch's dtypes."""
    import torch

    config = parity.OPTIMIZERS[name]["configs"][k]
    seed = parity.case_seed(name, k, dtype)
    steps = 300
    opts = []
    ours = parity.run_fastoptim(name, config, parity.DTYPES[dtype], seed, steps=steps, opt_out=opts)
    params = [torch.from_numpy(p).requires_grad_(True) for p in parity.initial_params(parity.DTYPES[dtype], seed)]
    t_opt = getattr(torch.optim, name)(parity._groups(params, name), foreach=False, **config)
    with parity.correctly_rounded_sqrt():
        for t in range(1, steps + 1):
            for i, p in enumerate(params):
                g = parity.gradient(p.detach().numpy(), seed, t, i)
                p.grad = None if g is None else torch.from_numpy(g)
            t_opt.step()
            got = np.concatenate([p.detach().numpy().ravel() for p in params])
            assert np.array_equal(ours[t], got), f"step {t}: parameters differ from torch's"
    for i, theirs in enumerate(_torch_state(t_opt, params)):
        _assert_same_state(opts[0].state[i], theirs, f"state of parameter {i}")


# Small problems at torch's edges: (name, kwargs, dtype, gradients as a function of the step).
EDGES = {
    "Adadelta-rho0": ("Adadelta", dict(rho=0.0), np.float32, None),
    "Adadelta-rho1": ("Adadelta", dict(rho=1.0, weight_decay=0.1), np.float64, None),
    # eps=0: delta = sqrt(0) / sqrt(v) * g is 0, and NaN (0 / 0) where the gradient is 0
    "Adadelta-eps0": ("Adadelta", dict(eps=0.0), np.float32,
                      lambda t, n: np.where(np.arange(n) % 4 == 0, 0.0, np.cos(np.arange(n) + t))),
    "ASGD-lambd0-alpha0": ("ASGD", dict(lambd=0.0, alpha=0.0, t0=2), np.float32, None),
    "ASGD-negative-t0": ("ASGD", dict(t0=-5.5, lambd=0.3), np.float64, None),
    "ASGD-nan-t0": ("ASGD", dict(t0=math.nan), np.float32, None),  # max(1, nan) is 1 in Python
    "ASGD-negative-lambd": ("ASGD", dict(lambd=-3.0, lr=0.1, alpha=2.0), np.float32, None),  # integer alpha
    "Rprop-underflowing-product": ("Rprop", dict(), np.float32, lambda t, n: np.full(n, 1e-23 * (-1) ** (t // 3))),
    "Rprop-nan-gradient": ("Rprop", dict(), np.float64, lambda t, n: np.where(np.arange(n) == t % n, np.nan, 1.0 - t)),
    "Rprop-etaminus-rounds-to-0": ("Rprop", dict(etas=(1e-50, 1.5)), np.float32, None),
    "Rprop-etaminus-rounds-to-1": ("Rprop", dict(etas=(1 - 1e-9, 1.5)), np.float32, None),
    # step sizes overflow to inf (an etaplus above float32's range makes torch raise; we would cast it to inf)
    "Rprop-step-size-overflows": ("Rprop", dict(etas=(0.5, 3e38), step_sizes=(1e-6, math.inf)), np.float32, None),
    "Rprop-min-above-max": ("Rprop", dict(step_sizes=(0.5, 0.1)), np.float64, None),
}


def _edge_grads(fn, t, n, dtype):
    if fn is None:  # signs that flip now and then, magnitudes over three decades
        g = np.sin(np.arange(n) * 1.7 + t * 0.9) * 10.0 ** (np.arange(n) % 3 - 1)
    else:
        g = fn(t, n)
    return g.astype(dtype)


@requires_torch
@pytest.mark.parametrize("case", list(EDGES))
def test_edge_cases_match_torch_bitwise(case):
    import torch

    name, kwargs, dtype, fn = EDGES[case]
    n, steps = 13, 12
    p = np.linspace(-1.0, 1.0, n).astype(dtype)
    tp = torch.from_numpy(p.copy()).requires_grad_(True)
    ours = getattr(fastoptim, name)([p], **kwargs)
    theirs = getattr(torch.optim, name)([tp], foreach=False, **kwargs)
    with parity.correctly_rounded_sqrt():
        for t in range(1, steps + 1):
            g = _edge_grads(fn, t, n, dtype)
            ours.step([g])
            tp.grad = torch.from_numpy(g.copy())
            theirs.step()
            assert np.array_equal(p, tp.detach().numpy(), equal_nan=True), f"step {t}: parameters differ"
    _assert_same_state(ours.state[0], _torch_state(theirs, [tp])[0], "state")


# ------------------------------------------------------------------------------------------------ ASGD


def test_asgd_eta_and_mu_are_0d_float32_and_lag_one_step():
    """The update uses the eta and mu computed at the end of the previous step (eta starts at lr)."""
    p = np.array([1.0])
    opt = fastoptim.ASGD([p], lr=0.5, lambd=0.5, alpha=1.0, t0=0.0)
    opt.step([np.array([1.0])])
    # eta = lr: p = 1 * (1 - 0.5 * 0.5) - 0.5 * 1; mu = 1: ax = p
    assert p[0] == 0.25 and opt.state[0]["ax"][0] == 0.25
    eta, mu = opt.state[0]["eta"], opt.state[0]["mu"]
    assert eta.shape == () and eta.dtype == np.float32 and mu.shape == () and mu.dtype == np.float32
    assert eta == np.float32(0.4) and mu == 1.0  # 0.5 / (1 + 0.5 * 0.5 * 1), 1 / max(1, 1 - 0)
    opt.step([np.array([1.0])])
    assert p[0] == 0.25 * (1 - 0.5 * float(np.float32(0.4))) - float(np.float32(0.4))
    assert opt.state[0]["ax"][0] == p[0]  # mu was still 1
    assert opt.state[0]["eta"] is eta and opt.state[0]["mu"] is mu  # updated in place, as torch's copy_
    assert eta == np.float32(0.5 / 1.5) and mu == 0.5
    before_p, before_ax = p[0], opt.state[0]["ax"][0]
    opt.step([np.array([1.0])])
    assert opt.state[0]["ax"][0] == before_ax + (p[0] - before_ax) * 0.5  # now averaging
    assert p[0] != before_p


@requires_torch
def test_asgd_load_state_dict_casts_eta_and_mu_to_the_parameter_dtype_as_torch():
    import torch

    p = np.linspace(0, 1, 5)
    tp = torch.from_numpy(p.copy()).requires_grad_(True)
    theirs = torch.optim.ASGD([tp], lr=0.1, t0=0, foreach=False)
    tp.grad = torch.ones(5, dtype=torch.float64)
    theirs.step()
    sd = theirs.state_dict()
    assert sd["state"][0]["eta"].dtype == torch.float32
    theirs.load_state_dict(sd)
    ours = fastoptim.ASGD([p], lr=0.1, t0=0)
    ours.load_state_dict({"state": {0: {k: v.numpy() for k, v in sd["state"][0].items()}},
                          "param_groups": sd["param_groups"]})
    _assert_same_state(ours.state[0], _torch_state(theirs, [tp])[0], "loaded state")
    assert ours.state[0]["eta"].dtype == np.float64 and ours.state[0]["step"].dtype == np.float32


def test_asgd_complex_eta_raises_and_changes_nothing():
    """1 + lambd * lr * step < 0 with a fractional alpha: torch takes the real part of a complex eta."""
    opt, params, rng = make("ASGD", 2)
    for group in opt.param_groups:
        group["lambd"] = -50.0
    grads = good_grads(params, rng)
    expect_no_change(opt, lambda: opt.step(grads), ValueError,
                     words_pattern("eta", "complex", "parameter 0", "step 3"), grads)


TAMPERED_SCALARS = {
    "string": ("abc", TypeError, "must be a number"),
    "nan": (np.array(np.nan, np.float32), ValueError, "finite"),
    "inf": (math.inf, ValueError, "finite"),
    "vector": (np.array([0.1, 0.2], np.float32), ValueError, "scalar"),
    "none": (None, TypeError, "real number"),
}


@pytest.mark.parametrize("case", list(TAMPERED_SCALARS))
@pytest.mark.parametrize("key", ["eta", "mu"])
def test_asgd_step_rejects_tampered_eta_or_mu(key, case):
    opt, params, rng = make("ASGD", 2)
    grads = good_grads(params, rng)
    value, exc, words = TAMPERED_SCALARS[case]
    opt.state[4][key] = value
    expect_no_change(opt, lambda: opt.step(grads), exc, words_pattern(f"state '{key}' of parameter 4", words), grads)


@pytest.mark.parametrize("case", list(TAMPERED_SCALARS))
@pytest.mark.parametrize("key", ["eta", "mu"])
def test_asgd_load_state_dict_rejects_bad_eta_or_mu(key, case):
    opt, params, rng = make("ASGD", 2)
    sd = make("ASGD", 3, seed=7)[0].state_dict()
    value, exc, words = TAMPERED_SCALARS[case]
    sd["state"][1][key] = value
    expect_no_change(opt, lambda: opt.load_state_dict(sd), exc, words_pattern(f"state '{key}' of parameter 1", words))


def test_asgd_scalars_that_are_not_our_arrays_are_replaced_after_a_good_step():
    """A Python float or a view as eta is read, then replaced by a 0-d float32 array (never written through)."""
    opt, params, rng = make("ASGD", 2)
    backing = np.array([0.004, 0.5], np.float32)
    opt.state[0]["eta"] = 0.004
    opt.state[1]["mu"] = backing[1:].reshape(())
    opt.step(good_grads(params, rng))
    assert isinstance(opt.state[0]["eta"], np.ndarray) and opt.state[0]["eta"].dtype == np.float32
    assert backing[1] == np.float32(0.5) and opt.state[1]["mu"].flags.owndata


# ----------------------------------------------------------------------------------------------- Rprop


def test_rprop_sign_is_that_of_the_rounded_product():
    """1e-23 * 1e-23 underflows to 0 in float32 (not in float64): the step size keeps its value there, and
    grows by etaplus in float64, as torch computes sign(grad * prev)."""
    p32, p64 = np.zeros(3, np.float32), np.zeros(3)
    o32, o64 = fastoptim.Rprop([p32], lr=0.1), fastoptim.Rprop([p64], lr=0.1)
    for _ in range(2):
        o32.step([np.full(3, 1e-23, np.float32)])
        o64.step([np.full(3, 1e-23)])
    assert np.all(o32.state[0]["step_size"] == np.float32(0.1))
    assert np.all(o64.state[0]["step_size"] == 0.1 * 1.2)
    assert np.all(p32 == -2 * np.float32(0.1)) and np.all(p64 == -0.1 - 0.1 * 1.2)


def test_rprop_sign_flip_skips_the_step_and_forgets_the_gradient():
    p = np.zeros(2)
    opt = fastoptim.Rprop([p], lr=0.1, etas=(0.5, 1.2))
    opt.step([np.array([1.0, 1.0])])
    opt.step([np.array([-1.0, 2.0])])  # element 0 flipped: step size halves, no move, prev = 0
    assert np.array_equal(p, [-0.1, -0.1 - 0.1 * 1.2])
    assert np.array_equal(opt.state[0]["step_size"], [0.05, 0.1 * 1.2])
    assert np.array_equal(opt.state[0]["prev"], [0.0, 2.0])
    opt.step([np.array([-1.0, 2.0])])  # prev 0: factor 1, moves by the halved step size
    assert np.array_equal(p, [-0.1 + 0.05, (-0.1 - 0.1 * 1.2) - 0.1 * 1.2 * 1.2])


def test_rprop_step_size_starts_at_the_groups_lr_when_the_state_is_created():
    a, b = np.zeros(2, np.float32), np.zeros(2, np.float32)
    opt = fastoptim.Rprop([{"params": [a]}, {"params": [b], "lr": 0.3}], lr=0.1)
    opt.step([np.ones(2, np.float32), None])
    opt.param_groups[1]["lr"] = 0.7
    opt.step([np.ones(2, np.float32), np.ones(2, np.float32)])
    assert np.all(opt.state[0]["step_size"] == np.float32(0.1) * np.float32(1.2))
    assert np.all(opt.state[1]["step_size"] == np.float32(0.7))


def test_asgd_checkpoint_round_trip_resumes_bit_identically(tmp_path):
    """fastoptim.save / load keep eta and mu as 0-d scalars (the loader casts them to the parameter's dtype,
    as load_state_dict does); the resumed run is bit-identical."""
    def run(opt, params, steps):
        for t in steps:
            opt.step([parity.gradient(p, 3, t, i) for i, p in enumerate(params)])

    params = parity.initial_params(np.float64, 3)
    opt = fastoptim.ASGD(parity._groups(params, "ASGD"), lr=0.01, t0=5)
    run(opt, params, range(1, 21))
    fastoptim.save(tmp_path / "asgd.safetensors", opt)
    params2 = [p.copy() for p in params]
    opt2 = fastoptim.ASGD(parity._groups(params2, "ASGD"), lr=0.01, t0=5)
    fastoptim.load(tmp_path / "asgd.safetensors", opt2)
    assert opt2.state[0]["eta"].shape == () and opt2.state[0]["eta"] == opt.state[0]["eta"]
    run(opt, params, range(21, 41))
    run(opt2, params2, range(21, 41))
    for a, b in zip(params, params2):
        assert a.tobytes() == b.tobytes()
    for i in opt.state:
        for key in ("ax", "eta", "mu", "step"):
            assert np.array_equal(opt.state[i][key], opt2.state[i][key]), (i, key)
