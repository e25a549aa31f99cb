"""Adamax, NAdam and RAdam details the registry-driven suites do not reach: NAdam's 0-d ``mu_product`` state
(torch's dtype and rounding, in-place update, loading, checkpoints, tampering), RAdam's rho_t > 5 switch
(on the right step, and on every kernel tier and thread count), Adamax's NaN handling."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import fastoptim
import parity
from conftest import requires_torch
from test_bad_inputs import TARGETS, TARGET_IDS, expect_no_change, good_grads, make, words_pattern
from test_checkpoint import _edit_header

DTYPES = [np.float32, np.float64]


def _torch_twin(name, params, **kwargs):
    import torch

    t_params = [torch.from_numpy(p.copy()).requires_grad_(True) for p in params]
    return t_params, getattr(torch.optim, name)(t_params, foreach=False, **kwargs)


def _torch_step(opt, t_params, grads):
    import torch

    for p, g in zip(t_params, grads):
        p.grad = None if g is None else torch.from_numpy(g.copy())
    opt.step()


def _grads(params, seed, t):
    return [parity.gradient(p, seed, t, i) for i, p in enumerate(params)]


# ======================================================================================== NAdam mu_product


def _mu_product_reference(beta1, momentum_decay, steps):
    """torch's mu_product after `steps` updates: a float32 0-d tensor, `mu_product *= mu_t` in float32."""
    mp = np.float32(1.0)
    for t in range(1, steps + 1):
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
        mp = np.float32(mp * np.float32(mu))
    return mp


@pytest.mark.parametrize("dtype", DTYPES)
def test_mu_product_is_a_float32_scalar_updated_in_place(dtype):
    """Whatever the parameter's dtype, as torch with its default dtype: a float32 0-d array, multiplied in
    float32 (a float64 product would round differently within a few steps)."""
    p = np.linspace(-1, 1, 7).astype(dtype)
    opt = fastoptim.NAdam([p], lr=0.01, betas=(0.95, 0.999), momentum_decay=0.3)
    opt.step([np.ones(7, dtype)])
    mp = opt.state[0]["mu_product"]
    assert mp.dtype == np.float32 and mp.shape == ()
    for _ in range(39):
        opt.step([np.ones(7, dtype)])
    assert opt.state[0]["mu_product"] is mp
    assert mp.tobytes() == _mu_product_reference(0.95, 0.3, 40).tobytes()


@requires_torch
@pytest.mark.parametrize("dtype", DTYPES)
def test_mu_product_and_state_layout_match_torch(dtype):
    seed = 3
    params = parity.initial_params(dtype, seed)
    kwargs = dict(lr=0.01, betas=(0.97, 0.99), momentum_decay=0.2, weight_decay=0.01)
    t_params, t_opt = _torch_twin("NAdam", params, **kwargs)
    opt = fastoptim.NAdam(params, **kwargs)
    for t in range(1, 61):
        grads = _grads(params, seed, t)
        opt.step(grads)
        _torch_step(t_opt, t_params, grads)
    theirs = t_opt.state_dict()["state"]
    for i in range(len(params)):
        tm = theirs[i]["mu_product"].numpy()
        assert opt.state[i]["mu_product"].dtype == tm.dtype == np.float32
        assert opt.state[i]["mu_product"].tobytes() == tm.tobytes(), i
        assert float(opt.state[i]["step"]) == float(theirs[i]["step"])
        assert set(opt.state[i]) == set(theirs[i])


@requires_torch
def test_float64_mu_product_from_torch_keeps_its_dtype_and_rounding():
    """torch's load_state_dict casts mu_product to the parameter's dtype; loaded that way, a torch
    optimizer then multiplies in float64. A state dict it saves afterwards resumes identically here."""
    import torch

    seed, kwargs = 5, dict(lr=0.01, betas=(0.99, 0.999), momentum_decay=0.5)
    params = parity.initial_params(np.float64, seed)
    t_params, t_opt = _torch_twin("NAdam", params, **kwargs)
    for t in range(1, 11):
        _torch_step(t_opt, t_params, _grads([p.detach().numpy() for p in t_params], seed, t))
    t_opt.load_state_dict(t_opt.state_dict())
    assert t_opt.state[t_params[0]]["mu_product"].dtype == torch.float64
    saved = {"state": {i: {k: v.numpy().copy() for k, v in e.items()} for i, e in t_opt.state_dict()["state"].items()},
             "param_groups": t_opt.state_dict()["param_groups"]}
    ours_params = [p.detach().numpy().copy() for p in t_params]
    opt = fastoptim.NAdam(ours_params, **kwargs)
    opt.load_state_dict(saved)
    assert opt.state[0]["mu_product"].dtype == np.float64
    for t in range(11, 31):
        grads = _grads(ours_params, seed, t)
        opt.step(grads)
        _torch_step(t_opt, t_params, grads)
    for i, p in enumerate(t_params):
        assert opt.state[i]["mu_product"].tobytes() == t_opt.state[p]["mu_product"].numpy().tobytes()


@pytest.mark.parametrize("index,dtype", [(2, np.float32), (5, np.float64)], ids=["float32_param", "float64_param"])
@pytest.mark.parametrize("value", [
    np.array(0.25, np.float32), np.array(0.25, np.float64), 0.25, np.float64(0.25), np.array([0.25], np.float16),
    np.array(0.25, ">f8"),
], ids=["float32", "float64", "python_float", "numpy_float64_scalar", "float16_size_1", "big_endian"])
def test_load_state_dict_mu_product_dtypes(value, index, dtype):
    """Loaded mu_product takes the parameter's dtype, as torch's load_state_dict casts it."""
    opt, params, rng = make("NAdam", 1)
    sd = opt.state_dict()
    sd["state"][index]["mu_product"] = value
    opt.load_state_dict(sd)
    mp = opt.state[index]["mu_product"]
    assert mp.dtype == dtype and mp.shape == () and float(mp) == 0.25 and mp.flags.owndata
    opt.step(good_grads(params, rng))  # and it steps


def test_load_state_dict_rejects_mu_product_past_float32():
    opt, params, rng = make("NAdam", 2)
    sd = opt.state_dict()
    sd["state"][2]["mu_product"] = 1e39  # parameter 2 is float32: inf there
    expect_no_change(opt, lambda: opt.load_state_dict(sd), ValueError,
                     words_pattern("state 'mu_product' of parameter 2", "finite in float32"))


@pytest.mark.parametrize("value,exc,words", [
    (np.nan, ValueError, ("finite",)), (np.array(np.inf, np.float32), ValueError, ("finite",)),
    ("0.5", TypeError, ("number",)), (np.zeros(2), ValueError, ("scalar",)), (None, TypeError, ("real number",)),
], ids=["nan", "inf", "string", "vector", "none"])
def test_load_state_dict_rejects_bad_mu_product(value, exc, words):
    opt, params, rng = make("NAdam", 2)
    sd = opt.state_dict()
    sd["state"][4]["mu_product"] = value
    expect_no_change(opt, lambda: opt.load_state_dict(sd), exc,
                     words_pattern("state 'mu_product' of parameter 4", *words))


def _view_of_a_buffer(opt, t):
    return opt.state[t]["exp_avg"].reshape(-1)[0:1].reshape(())


MP = "state 'mu_product' of parameter {t}"
TAMPERED_MU_PRODUCTS = {
    "float16": (lambda opt, t: np.array(0.5, np.float16), TypeError, (MP, "dtype float16")),
    "big_endian": (lambda opt, t: np.array(0.5, ">f4"), TypeError, (MP, "dtype >f4")),
    "python_float": (lambda opt, t: 0.5, TypeError, (MP, "numpy.ndarray")),
    "numpy_scalar": (lambda opt, t: np.float32(0.5), TypeError, (MP, "numpy.ndarray")),
    "one_element_vector": (lambda opt, t: np.array([0.5], np.float32), ValueError, (MP, "0-d")),
    "view_of_a_state_buffer": (_view_of_a_buffer, ValueError, ("parameter {t}", "overlap in memory")),
    "shared_with_next_param": (lambda opt, t: opt.state[t + 1]["mu_product"], ValueError,
                               ("state 'mu_product' of parameter {t1} is the same array as that of parameter {t}",)),
}


@pytest.mark.parametrize("t", TARGETS, ids=TARGET_IDS)
@pytest.mark.parametrize("case", list(TAMPERED_MU_PRODUCTS))
def test_step_rejects_tampered_mu_product(case, t):
    opt, params, rng = make("NAdam", 2)
    grads = good_grads(params, rng)
    build, exc, words = TAMPERED_MU_PRODUCTS[case]
    opt.state[t]["mu_product"] = build(opt, t)
    words = tuple(w.format(t=t, t1=t + 1) for w in words)
    expect_no_change(opt, lambda: opt.step(grads), exc, words_pattern(*words), grads)


def test_step_rejects_read_only_mu_product():
    opt, params, rng = make("NAdam", 2)
    grads = good_grads(params, rng)
    mp = opt.state[3]["mu_product"].copy()
    mp.flags.writeable = False
    opt.state[3]["mu_product"] = mp
    expect_no_change(opt, lambda: opt.step(grads), ValueError,
                     words_pattern("state 'mu_product' of parameter 3", "read-only"), grads)


@pytest.mark.parametrize("dtype", DTYPES)
def test_checkpoint_keeps_mu_product_dtype(tmp_path, dtype):
    p = [np.linspace(-1, 1, 5).astype(dtype)]
    opt = fastoptim.NAdam(p, lr=0.05, momentum_decay=0.5)
    opt.step([np.ones(5, dtype)])
    opt.state[0]["mu_product"] = opt.state[0]["mu_product"].astype(dtype)  # as after torch's load_state_dict
    path = tmp_path / "nadam.safetensors"
    fastoptim.save(path, opt)
    q = [p[0].copy()]
    other = fastoptim.NAdam(q, lr=0.05, momentum_decay=0.5)
    fastoptim.load(path, other)
    assert other.state[0]["mu_product"].dtype == dtype
    for _ in range(5):
        opt.step([np.ones(5, dtype)])
        other.step([np.ones(5, dtype)])
    assert p[0].tobytes() == q[0].tobytes()
    assert opt.state[0]["mu_product"].tobytes() == other.state[0]["mu_product"].tobytes()


@pytest.mark.parametrize("dtype,shape", [("I32", []), ("F32", [1]), ("F16", [2])])
def test_checkpoint_rejects_bad_mu_product_tensor(tmp_path, dtype, shape):
    p = [np.ones(3, np.float32)]
    opt = fastoptim.NAdam(p)
    opt.step([np.ones(3, np.float32)])
    path = tmp_path / "nadam.safetensors"
    fastoptim.save(path, opt)
    bad = tmp_path / "bad.safetensors"
    # Same 4 bytes, another dtype or shape.
    bad.write_bytes(_edit_header(path.read_bytes(), lambda h: h["state.0.mu_product"].update(dtype=dtype, shape=shape)))
    other = fastoptim.NAdam([np.ones(3, np.float32)])
    with pytest.raises(ValueError, match="state.0.mu_product.*must be an F32 or F64 scalar"):
        fastoptim.load(bad, other)
    assert other.state == {}


# ============================================================================================ RAdam


def _radam_run(dtype, steps, **kwargs):
    params = parity.initial_params(dtype, 9)
    opt = fastoptim.RAdam(params, lr=0.01, **kwargs)
    out = []
    for t in range(1, steps + 1):
        opt.step(_grads(params, 9, t))
        out.append(np.concatenate([p.ravel() for p in params]))
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_radam_rectifies_from_the_first_step_with_rho_t_above_5(dtype):
    """Unrectified steps do not read exp_avg_sq (nor eps): with beta2 = 0.999, rho_t is 1.0, 2.0, 3.0, 4.0,
    4.996, 5.994, ..., so eps changes nothing before step 6 (a `> 4` switch would change step 5) and
    everything from step 6 on. With beta2 = 0.6, rho_inf = 4: never rectified."""
    a = _radam_run(dtype, 8, eps=1e-8)
    b = _radam_run(dtype, 8, eps=0.5)
    assert [x.tobytes() == y.tobytes() for x, y in zip(a, b)] == [True] * 5 + [False] * 3
    a = _radam_run(dtype, 40, betas=(0.9, 0.6), eps=1e-8)
    b = _radam_run(dtype, 40, betas=(0.9, 0.6), eps=0.5)
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a, b))


TIERS_SCRIPT = r"""
import hashlib
import numpy as np
import fastoptim
h = hashlib.sha256()
for dtype in (np.float32, np.float64):
    rng = np.random.default_rng(0)
    sizes = (1, 15, 17, 1023, 100003, 40001, 30001)  # tails, vector bodies, threaded splits
    params = [rng.standard_normal(n).astype(dtype) for n in sizes]
    opt = fastoptim.RAdam(params, lr=1e-2, weight_decay=0.01)
    for _ in range(7):  # rectified from step 6
        opt.step([rng.standard_normal(p.shape).astype(dtype) for p in params])
    for p in params:
        h.update(p.tobytes())
print(fastoptim.cpu_capability(), h.hexdigest())
"""


def test_radam_rectified_update_is_identical_on_every_tier_and_thread_count():
    """test_tiers runs three steps, all before RAdam's switch; this covers the rectified kernel."""
    results = {}
    for tier in fastoptim._core.supported_cpu_capabilities():
        for threads in ("1", "3"):
            env = dict(os.environ, FASTOPTIM_CPU_CAPABILITY=tier, OMP_NUM_THREADS=threads)
            out = subprocess.run([sys.executable, "-c", TIERS_SCRIPT], env=env, capture_output=True, text=True,
                                 check=True).stdout.split()
            assert out[0] == tier
            results[tier, threads] = out[1]
    assert len(set(results.values())) == 1, results


# =========================================================================================== Adamax


@requires_torch
@pytest.mark.parametrize("dtype", DTYPES)
def test_adamax_non_finite_gradients_propagate_like_torch(dtype):
    """torch.maximum propagates NaN into exp_inf (and so into the parameter); an infinite gradient makes
    exp_inf infinite and m / exp_inf NaN."""
    p = np.linspace(-1, 1, 6).astype(dtype)
    t_params, t_opt = _torch_twin("Adamax", [p], lr=0.1, weight_decay=0.01)
    opt = fastoptim.Adamax([p], lr=0.1, weight_decay=0.01)
    for t in range(4):
        g = np.linspace(0.5, -0.5, 6).astype(dtype)
        if t == 1:
            g[1], g[4] = np.nan, -np.inf
        opt.step([g])
        _torch_step(t_opt, t_params, [g])
    theirs = t_params[0].detach().numpy()
    assert np.array_equal(np.isnan(p), np.isnan(theirs)) and np.isnan(p[1]) and np.isnan(p[4])
    assert np.array_equal(p, theirs, equal_nan=True)
    for key in ("exp_avg", "exp_inf"):
        assert np.array_equal(opt.state[0][key], t_opt.state[t_params[0]][key].numpy(), equal_nan=True)
