"""state_dict: bit-identical resume, and interchange with torch.optim in both directions."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import fastoptim
import parity
from conftest import requires_torch
from test_parity import golden

# For each optimizer, the configs that create every state buffer it has.
FULL_STATE = {
    "SGD": [5, 10, 15],      # momentum, nesterov + weight decay, dampening + maximize
    "Adam": [6, 8, 11],      # amsgrad variants, coupled and decoupled weight decay
    "AdamW": [4, 7],
    "RMSprop": [12, 15],     # centered + momentum
    "Adagrad": [7, 15],      # weight decay + initial accumulator + maximize, with and without lr_decay
    "Adadelta": [3, 6],      # weight decay, with and without maximize
    "ASGD": [3, 6],          # weight decay, with and without maximize (group 1 averages from step 100)
    "Rprop": [2, 6],         # tight step-size bounds, with and without maximize
    "Adamax": [3, 5],        # weight decay + maximize, small and large eps
    "NAdam": [3, 4, 7],      # coupled + maximize, decoupled weight decay, fast momentum_decay
    "RAdam": [3, 4, 7],      # coupled + maximize, decoupled, late rectification
    "Adafactor": [5, 11],    # every config has row_var/col_var and variance; weight decay, eps1 given, maximize
    "SparseAdam": [1, 4],    # step kept as an int, as torch
}
CASES = [(name, k, dt) for name, ks in FULL_STATE.items() for k in ks for dt in parity.DTYPES]
IDS = [parity.case_id(*c) for c in CASES]
HALF = 100


def _ours(name, k, params):
    return getattr(fastoptim, name)(parity._groups(params, name), **parity.OPTIMIZERS[name]["configs"][k])


def _run(opt, params, seed, steps):
    name = type(opt).__name__
    for t in steps:
        opt.step([parity.make_gradient(name, p, seed, t, i) for i, p in enumerate(params)])


@pytest.mark.parametrize("name,k,dtype", CASES, ids=IDS)
def test_round_trip_mid_run_is_bit_identical(name, k, dtype):
    seed = parity.case_seed(name, k, dtype)
    a_params = parity.initial_params(parity.DTYPES[dtype], seed)
    a = _ours(name, k, a_params)
    _run(a, a_params, seed, range(1, HALF + 1))
    saved = a.state_dict()
    expected_keys = set(a.state[0])
    b_params = [p.copy() for p in a_params]
    b = _ours(name, k, b_params)
    b.load_state_dict(copy.deepcopy(saved))
    assert set(b.state[0]) == expected_keys
    if name == "NAdam" and parity.DTYPES[dtype] == np.float64:
        # torch's load_state_dict casts mu_product (float32, as torch creates it) to the parameter's
        # dtype, and later steps multiply in float64: so does ours (test_adamfam compares with torch)
        assert all(b.state[i]["mu_product"].dtype == np.float64 for i in b.state)
        a.load_state_dict(copy.deepcopy(saved))
    _run(a, a_params, seed, range(HALF + 1, 2 * HALF + 1))
    _run(b, b_params, seed, range(HALF + 1, 2 * HALF + 1))
    for pa, pb in zip(a_params, b_params):
        assert np.array_equal(pa, pb)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for i in sa["state"]:
        for key in sa["state"][i]:
            assert np.array_equal(sa["state"][i][key], sb["state"][i][key]), key


def test_state_dict_is_a_snapshot():
    p = np.ones(3, np.float32)
    opt = fastoptim.Adam([p])
    opt.step([np.ones(3, np.float32)])
    sd = opt.state_dict()
    before = sd["state"][0]["exp_avg"].copy()
    opt.step([np.ones(3, np.float32)])
    assert np.array_equal(sd["state"][0]["exp_avg"], before)


def _to_torch(sd):
    import torch

    # Arrays become tensors; other values (SparseAdam's int step) stay as they are, as torch keeps them.
    state = {i: {k: torch.from_numpy(np.array(v)) if isinstance(v, np.ndarray) else v for k, v in entry.items()}
             for i, entry in sd["state"].items()}
    return {"state": state, "param_groups": copy.deepcopy(sd["param_groups"])}


def _torch_opt(name, k, params):
    import torch

    foreach = {} if parity.OPTIMIZERS[name].get("sparse") else {"foreach": False}  # SparseAdam has one implementation
    return getattr(torch.optim, name)(parity._groups(params, name), **foreach, **parity.OPTIMIZERS[name]["configs"][k])


def _torch_run(opt, params, seed, steps):
    name = type(opt).__name__
    for t in steps:
        for i, p in enumerate(params):
            p.grad = parity.to_torch_grad(parity.make_gradient(name, p.detach().numpy(), seed, t, i), p.shape)
        opt.step()


def _bound(name, k, dtype):
    meta, _ = golden(name)
    return parity.allowed_deviation(meta["cases"][parity.case_id(name, k, dtype)]["spread_ulps"])


@requires_torch
@pytest.mark.parametrize("name,k,dtype", CASES, ids=IDS)
def test_torch_state_dict_loads_and_resumes(name, k, dtype):
    import torch

    seed = parity.case_seed(name, k, dtype)
    t_params = [torch.from_numpy(p).requires_grad_(True) for p in parity.initial_params(parity.DTYPES[dtype], seed)]
    t_opt = _torch_opt(name, k, t_params)
    _torch_run(t_opt, t_params, seed, range(1, HALF + 1))
    torch_sd = parity.torch_to_numpy(t_opt.state_dict())
    ours_params = [p.detach().numpy().copy() for p in t_params]
    ours = _ours(name, k, ours_params)
    ours.load_state_dict(torch_sd)
    # Same layout as torch: state keys per parameter and group entries.
    ours_sd = ours.state_dict()
    assert ours_sd["param_groups"] == torch_sd["param_groups"]
    assert {i: set(e) for i, e in ours_sd["state"].items()} == {i: set(e) for i, e in torch_sd["state"].items()}
    _torch_run(t_opt, t_params, seed, range(HALF + 1, 2 * HALF + 1))
    _run(ours, ours_params, seed, range(HALF + 1, 2 * HALF + 1))
    ref = np.concatenate([p.detach().numpy().ravel() for p in t_params])[None]
    got = np.concatenate([p.ravel() for p in ours_params])[None]
    assert parity.ulp_deviation(got, ref) <= _bound(name, k, dtype)


@requires_torch
@pytest.mark.parametrize("name,k,dtype", CASES, ids=IDS)
def test_our_state_dict_loads_into_torch_and_resumes(name, k, dtype):
    import torch

    seed = parity.case_seed(name, k, dtype)
    ours_params = parity.initial_params(parity.DTYPES[dtype], seed)
    ours = _ours(name, k, ours_params)
    _run(ours, ours_params, seed, range(1, HALF + 1))
    t_params = [torch.from_numpy(p.copy()).requires_grad_(True) for p in ours_params]
    t_opt = _torch_opt(name, k, t_params)
    t_opt.load_state_dict(_to_torch(ours.state_dict()))
    assert parity.torch_to_numpy(t_opt.state_dict())["param_groups"] == ours.state_dict()["param_groups"]
    _run(ours, ours_params, seed, range(HALF + 1, 2 * HALF + 1))
    _torch_run(t_opt, t_params, seed, range(HALF + 1, 2 * HALF + 1))
    ref = np.concatenate([p.detach().numpy().ravel() for p in t_params])[None]
    got = np.concatenate([p.ravel() for p in ours_params])[None]
    assert parity.ulp_deviation(got, ref) <= _bound(name, k, dtype)
