"""The optimizers torch.optim lacks (Lion, LAMB, Adan, AdaBelief, ScheduleFreeAdamW): agreement with numpy
references written from the papers (tests/beyond_reference.py) and, when installed, with the public torch
implementations; convergence on standard problems; state_dict round trips; the parts of the API specific
to each (train/eval, group step counts, restart).

Bad inputs and invalid hyperparameters are in test_bad_inputs.py, tier and thread determinism in
test_tiers.py, C++ golden values in cpp/tests/test_opt_beyond.cpp.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import inspect

import numpy as np
import pytest

import beyond_reference as ref
import fastoptim
import parity
from conftest import HAS_TORCH

CASES = list(ref.cases())
IDS = [parity.case_id(*c) for c in CASES]

# Largest relative deviation (of each parameter's scale) over 300 steps from the float64 numpy reference.
# Measured: float64 <= 3.1e-15 (Adan), float32 <= 1.2e-5 (Adan; the float32 rounding of each step).
REFERENCE_BOUND = {"float64": 1e-12, "float32": 5e-5}


@pytest.mark.parametrize("name,k,dtype", CASES, ids=IDS)
def test_matches_numpy_reference(name, k, dtype):
    config = ref.CONFIGS[name]["configs"][k]
    seed = ref.case_seed(name, k, dtype)
    expected = ref.run_reference(name, config, np.float64, seed)
    ours = ref.run_ours(name, config, parity.DTYPES[dtype], seed)
    assert ours.shape == (ref.STEPS + 1, expected.shape[1]) and ours.dtype == parity.DTYPES[dtype]
    deviation = ref.relative_deviation(ours, expected)
    assert deviation <= REFERENCE_BOUND[dtype], f"{deviation:.3g} from the float64 reference"


@pytest.mark.parametrize("name", ref.NAMES)
def test_reference_comparison_detects_a_wrong_update(name):
    """The bound must be able to fail: a learning rate 1e-6 too large is far outside it."""
    config = ref.CONFIGS[name]["configs"][0]
    seed = ref.case_seed(name, 0, "float64")
    expected = ref.run_reference(name, config, np.float64, seed)
    wrong = ref.run_ours(name, dict(config, lr=config["lr"] * (1 + 1e-6)), np.float64, seed)
    assert ref.relative_deviation(wrong, expected) > 100 * REFERENCE_BOUND["float64"]


def _have(module):
    return HAS_TORCH and importlib.util.find_spec(module) is not None


PACKAGE_CASES = list(ref.package_cases())
# Measured against lion-pytorch 0.2.5 (bit-identical), torch-optimizer 0.3.0, adabelief-pytorch 0.2.1 and
# schedulefree 1.4.1 (single-tensor paths): float32 <= 1.8e-7, float64 <= 1.8e-16.
PACKAGE_BOUND = {"float64": 1e-14, "float32": 2e-6}


@pytest.mark.parametrize("name,k,dtype", PACKAGE_CASES, ids=[parity.case_id(*c) for c in PACKAGE_CASES])
def test_matches_public_implementation(name, k, dtype):
    module = ref.PACKAGES[name][0]
    if not _have(module):
        pytest.skip(f"{module} (and torch) not installed; the numpy reference test covers {name}")
    config = ref.CONFIGS[name]["configs"][k]
    seed = ref.case_seed(name, k, dtype)
    theirs = ref.run_package(name, config, parity.DTYPES[dtype], seed)
    ours = ref.run_ours_like_package(name, config, parity.DTYPES[dtype], seed)
    deviation = ref.relative_deviation(ours, theirs)
    assert deviation <= PACKAGE_BOUND[dtype], f"{deviation:.3g} from {module}"
    if name == "Lion":  # same operations in the same order: the same bits
        assert np.array_equal(ours, theirs)


# ------------------------------------------------------------------------------------ convergence

def _rosenbrock(w):
    x, y = w
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2, np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


def _quadratic_problem():
    rng = np.random.default_rng(0)
    a = np.logspace(0, 2, 20)  # condition number 100
    b = rng.standard_normal(20)
    f_min = -0.5 * np.sum(b * b / a)
    return lambda w: (0.5 * np.sum(a * w * w) - b @ w - f_min, a * w - b)


def _logistic_problem():
    """Mean log loss (+ 1e-3 L2) of a linear model on generated data; its minimum by Newton's method."""
    rng = np.random.default_rng(1)
    x = np.hstack([rng.standard_normal((400, 5)), np.ones((400, 1))])
    labels = (rng.random(400) < 1 / (1 + np.exp(-(x @ np.array([1.5, -2, 0.5, 0, 1, 0.3]))))).astype(float)

    def f(w):
        z = x @ w
        loss = np.mean(np.logaddexp(0, z) - labels * z) + 0.5e-3 * w @ w
        return loss, x.T @ (1 / (1 + np.exp(-z)) - labels) / len(labels) + 1e-3 * w

    w = np.zeros(6)
    for _ in range(30):
        s = 1 / (1 + np.exp(-(x @ w)))
        hessian = x.T @ (x * (s * (1 - s))[:, None]) / len(labels) + 1e-3 * np.eye(6)
        w -= np.linalg.solve(hessian, f(w)[1])
    best = f(w)[0]
    return lambda w: (f(w)[0] - best, f(w)[1])


PROBLEMS = {
    # name: (objective, start, steps, target: distance to (1, 1) for Rosenbrock, excess loss otherwise)
    "rosenbrock": (_rosenbrock, np.array([-1.5, 2.0]), 4000, 1e-2),
    "quadratic": (_quadratic_problem(), np.zeros(20), 2000, 1e-3),
    "logistic": (_logistic_problem(), np.zeros(6), 1000, 1e-4),
}

# name -> problem -> (kwargs, cosine-annealed lr). Sign-like steps (Lion) and trust-ratio steps (LAMB) keep a
# size proportional to lr, so they settle only as lr decays; the others converge at a fixed lr.
SETTINGS = {
    "Lion": {"rosenbrock": (dict(lr=3e-2), True), "quadratic": (dict(lr=1e-2), True),
             "logistic": (dict(lr=4e-3), True)},
    "LAMB": {"rosenbrock": (dict(lr=2e-2), True), "quadratic": (dict(lr=2e-2), True),
             "logistic": (dict(lr=2e-2), True)},
    "Adan": {"rosenbrock": (dict(lr=2e-2), False), "quadratic": (dict(lr=5e-3), False),
             "logistic": (dict(lr=2e-2), False)},
    # Rectification starts with plain SGD steps, which the raw Rosenbrock gradient (~150) throws far away.
    "AdaBelief": {"rosenbrock": (dict(lr=2e-2, rectify=False), False), "quadratic": (dict(lr=5e-2), False),
                  "logistic": (dict(lr=5e-2), False)},
    "ScheduleFreeAdamW": {"rosenbrock": (dict(lr=0.1), False), "quadratic": (dict(lr=2e-2), False),
                          "logistic": (dict(lr=8e-2), False)},
}


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("name", ref.NAMES)
def test_converges(name, problem):
    f, start, steps, target = PROBLEMS[problem]
    kwargs, anneal = SETTINGS[name][problem]
    w = start.copy()
    opt = getattr(fastoptim, name)([w], **kwargs)
    sched = fastoptim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps) if anneal else None
    if name == "ScheduleFreeAdamW":
        opt.train()
    first = f(w)[0]
    for _ in range(steps):
        opt.step([f(w)[1]])
        if sched is not None:
            sched.step()
    if name == "ScheduleFreeAdamW":
        opt.eval()  # x, the averaged iterate, is the answer
    if problem == "rosenbrock":
        assert np.linalg.norm(w - 1.0) < target, w
    else:
        assert f(w)[0] < target < first, (f(w)[0], first)


# ------------------------------------------------------------------------------------- state dicts

# A config per optimizer that creates every state buffer it has.
FULL_STATE = {"Lion": 1, "LAMB": 3, "Adan": 3, "AdaBelief": 3, "ScheduleFreeAdamW": 3}  # AdaBelief 3: amsgrad
STATE_KEYS = {"Lion": {"exp_avg"}, "LAMB": {"step", "exp_avg", "exp_avg_sq"},
              "Adan": {"exp_avg", "exp_avg_sq", "exp_avg_diff", "neg_pre_grad"},
              "AdaBelief": {"step", "exp_avg", "exp_avg_var", "max_exp_avg_var"},
              "ScheduleFreeAdamW": {"z", "exp_avg_sq"}}


def _run(opt, params, seed, steps):
    for t in steps:
        opt.step([parity.gradient(p, seed, t, i) for i, p in enumerate(params)])


@pytest.mark.parametrize("dtype", list(parity.DTYPES))
@pytest.mark.parametrize("name", ref.NAMES)
def test_state_dict_round_trip_mid_run_is_bit_identical(name, dtype):
    config = ref.CONFIGS[name]["configs"][FULL_STATE[name]]
    seed = ref.case_seed(name, 0, dtype)
    a_params = parity.initial_params(parity.DTYPES[dtype], seed)
    a = ref.make_ours(name, a_params, config)
    _run(a, a_params, seed, range(1, 101))
    saved = copy.deepcopy(a.state_dict())
    assert all(set(entry) == STATE_KEYS[name] for entry in saved["state"].values())
    b_params = [p.copy() for p in a_params]
    b = getattr(fastoptim, name)(ref._groups(b_params, name), **config)  # a fresh one, still in eval mode
    b.load_state_dict(saved)
    assert b.state_dict()["param_groups"] == saved["param_groups"]
    _run(a, a_params, seed, range(101, 201))
    _run(b, b_params, seed, range(101, 201))
    for pa, pb in zip(a_params, b_params):
        assert np.array_equal(pa, pb)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for i in sa["state"]:
        for key in sa["state"][i]:
            assert np.array_equal(sa["state"][i][key], sb["state"][i][key]), key


@pytest.mark.parametrize("name", ref.NAMES)
def test_checkpoint_file_round_trip(name, tmp_path):
    config = ref.CONFIGS[name]["configs"][FULL_STATE[name]]
    a_params = parity.initial_params(np.float32, 3)
    a = ref.make_ours(name, a_params, config)
    _run(a, a_params, 3, range(1, 21))
    fastoptim.save(tmp_path / "ckpt.safetensors", a)
    b_params = [p.copy() for p in a_params]
    b = getattr(fastoptim, name)(ref._groups(b_params, name), **config)
    fastoptim.load(tmp_path / "ckpt.safetensors", b)
    _run(a, a_params, 3, range(21, 31))
    _run(b, b_params, 3, range(21, 31))
    assert all(np.array_equal(pa, pb) for pa, pb in zip(a_params, b_params))


@pytest.mark.parametrize("name", ["Lion", "ScheduleFreeAdamW"])
def test_public_implementation_state_dict_loads_and_resumes(name):
    """lion-pytorch and schedulefree keep the same state keys and group entries as ours."""
    module = ref.PACKAGES[name][0]
    if not _have(module):
        pytest.skip(f"{module} (and torch) not installed")
    import torch

    config = ref.CONFIGS[name]["configs"][3]
    seed = 5
    holder = []
    ref.run_package(name, config, np.float64, seed, steps=50, params_out=holder)
    theirs = holder[0]
    sd = theirs.state_dict()
    sd = {"state": {i: {k: (v.numpy().copy() if isinstance(v, torch.Tensor) else v) for k, v in e.items()}
                    for i, e in sd["state"].items()},
          "param_groups": sd["param_groups"]}
    params = [p.detach().numpy().copy() for g in theirs.param_groups for p in g["params"]]
    ours = getattr(fastoptim, name)(ref._groups(params, name), **config)
    ours.load_state_dict(sd)
    assert set(ours.state[0]) == set(sd["state"][0])
    for t in range(51, 61):
        grads = [parity.gradient(p, seed, t, i) for i, p in enumerate(params)]
        ours.step(grads)
        for i, p in enumerate(g for group in theirs.param_groups for g in group["params"]):
            sign = -1 if config.get("maximize") else 1
            p.grad = None if grads[i] is None else torch.from_numpy(sign * grads[i])
        theirs.step()
    for p, q in zip(params, (g for group in theirs.param_groups for g in group["params"])):
        np.testing.assert_allclose(p, q.detach().numpy(), rtol=1e-13, atol=1e-15)


# ------------------------------------------------------------------------------------------- API

DEFAULTS = {
    "Lion": dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, maximize=False),
    "LAMB": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, bias_correction=True, clamp_value=10.0,
                 trust_clip=False, exclude_from_layer_adaptation=False, maximize=False),
    "Adan": dict(lr=1e-3, betas=(0.98, 0.92, 0.99), eps=1e-8, weight_decay=0.0, no_prox=False, maximize=False),
    "AdaBelief": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-16, weight_decay=0, amsgrad=False, weight_decouple=True,
                      fixed_decay=False, rectify=True, degenerated_to_sgd=True, maximize=False),
    "ScheduleFreeAdamW": dict(lr=0.0025, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, warmup_steps=0, r=0.0,
                              weight_lr_power=2.0, k=0, train_mode=False, weight_sum=0.0, lr_max=-1.0,
                              scheduled_lr=0.0, maximize=False),
}


@pytest.mark.parametrize("name", ref.NAMES)
def test_defaults(name):
    opt = getattr(fastoptim, name)([np.zeros(2, np.float32)])
    for key, value in DEFAULTS[name].items():
        assert opt.param_groups[0][key] == value, key
        assert opt.defaults[key] == value, key
    assert name in fastoptim.__all__


@pytest.mark.parametrize("name", ["Lion", "AdaBelief", "ScheduleFreeAdamW"])
def test_defaults_match_public_implementation(name):
    module = ref.PACKAGES[name][0]
    if not _have(module):
        pytest.skip(f"{module} (and torch) not installed")
    cls = {"Lion": "lion_pytorch.Lion", "AdaBelief": "adabelief_pytorch.AdaBelief",
           "ScheduleFreeAdamW": "schedulefree.AdamWScheduleFree"}[name]
    mod, attr = cls.rsplit(".", 1)
    theirs = inspect.signature(getattr(importlib.import_module(mod), attr)).parameters
    ours = inspect.signature(getattr(fastoptim, name)).parameters
    for key, p in theirs.items():
        if key in ours and key != "foreach":
            assert ours[key].default == p.default, key


@pytest.mark.parametrize("name", ref.NAMES)
def test_none_gradient_leaves_param_and_state_untouched(name):
    a, b = np.ones(5), np.ones(5)
    opt = getattr(fastoptim, name)([a, b], lr=0.1)
    if name == "ScheduleFreeAdamW":
        opt.train()
    opt.step([np.full(5, 0.5), None])
    assert np.all(b == 1) and 1 not in opt.state and np.all(a != 1)
    before = a.copy()
    state = {k: np.array(v, copy=True) for k, v in opt.state[0].items()}
    opt.step([None, np.full(5, 0.5)])
    assert np.array_equal(a, before)
    for key, value in state.items():
        assert np.array_equal(opt.state[0][key], value), key


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ref.NAMES)
def test_large_arrays_split_across_threads_give_identical_results(name, dtype):
    """Element-wise rules: one big array (split across threads) equals its pieces stepped as many arrays.
    LAMB's norms are per tensor, so it is compared with itself at 1 and 2 threads instead."""
    n, pieces = 300_007, 7
    rng = np.random.default_rng(0)
    big = rng.standard_normal(n).astype(dtype)
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(4)]
    kw = {"Lion": dict(weight_decay=0.1), "LAMB": dict(weight_decay=0.01), "Adan": dict(weight_decay=0.02),
          "AdaBelief": dict(amsgrad=True, weight_decay=0.01), "ScheduleFreeAdamW": dict(weight_decay=0.01)}[name]

    def run(arrays, split):
        opt = getattr(fastoptim, name)(arrays, lr=1e-2, **kw)
        if name == "ScheduleFreeAdamW":
            opt.train()
        for g in grads:
            opt.step([x.copy() for x in np.array_split(g, pieces)] if split else [g])
        return np.concatenate(arrays)

    if name == "LAMB":
        threads = fastoptim.get_num_threads()
        try:
            results = []
            for t in (1, 2, 3):
                fastoptim.set_num_threads(t)
                results.append(run([big.copy()], False))
        finally:
            fastoptim.set_num_threads(threads)
        assert all(np.array_equal(results[0], r) for r in results[1:])
    else:
        assert np.array_equal(run([big.copy()], False), run([x.copy() for x in np.array_split(big, pieces)], True))


# --------------------------------------------------------------------------------- ScheduleFreeAdamW

def _schedulefree(**kw):
    rng = np.random.default_rng(2)
    params = [rng.standard_normal(7), rng.standard_normal((2, 3)).astype(np.float32)]
    return params, fastoptim.ScheduleFreeAdamW([{"params": [params[0]]}, {"params": [params[1]], "betas": (0.8, 0.99)}],
                                               lr=0.05, **kw)


def test_schedulefree_step_outside_train_mode_raises_and_changes_nothing():
    params, opt = _schedulefree()
    before = [p.copy() for p in params]
    with pytest.raises(RuntimeError, match="not in train mode"):
        opt.step([np.ones(7), np.ones((2, 3), np.float32)])
    assert opt.state == {} and opt.param_groups[0]["k"] == 0
    assert all(np.array_equal(p, b) for p, b in zip(params, before))


def test_schedulefree_eval_gives_the_average_x():
    params, opt = _schedulefree(weight_decay=0.01, warmup_steps=5)
    groups = [{"params": [params[0].copy()]}, {"params": [params[1].astype(np.float64)], "betas": (0.8, 0.99)}]
    reference = ref.ScheduleFreeAdamWRef(groups, lr=0.05, weight_decay=0.01, warmup_steps=5)
    rng = np.random.default_rng(3)
    opt.train()
    for _ in range(40):
        grads = [rng.standard_normal(7), rng.standard_normal((2, 3)).astype(np.float32)]
        opt.step(grads)
        reference.step([grads[0], grads[1].astype(np.float64)])
    y = [p.copy() for p in params]
    opt.eval()
    assert [g["train_mode"] for g in opt.param_groups] == [False, False]
    np.testing.assert_allclose(params[0], reference.state[0]["x"], rtol=1e-12)
    np.testing.assert_allclose(params[1], reference.state[1]["x"], rtol=2e-5)
    opt.eval()  # already in eval mode: nothing moves
    np.testing.assert_allclose(params[0], reference.state[0]["x"], rtol=1e-12)
    opt.train()  # back to y (up to rounding)
    np.testing.assert_allclose(params[0], y[0], rtol=1e-12)
    np.testing.assert_allclose(params[1], y[1], rtol=1e-5)


def test_schedulefree_group_schedule_advances_without_gradients():
    params, opt = _schedulefree(warmup_steps=4)
    opt.train()
    opt.step([np.ones(7), None])
    opt.step([None, None])
    g0, g1 = opt.param_groups
    assert g0["k"] == g1["k"] == 2
    assert g0["scheduled_lr"] == pytest.approx(0.05 * 2 / 4) and g0["lr_max"] == g0["scheduled_lr"]
    assert g0["weight_sum"] == pytest.approx((0.05 / 4) ** 2 + (0.05 / 2) ** 2)
    assert 1 not in opt.state


@pytest.mark.parametrize("key,bad,exc", [("k", -1, ValueError), ("k", 2.0, TypeError),
                                          ("weight_sum", float("nan"), ValueError), ("weight_sum", -1.0, ValueError),
                                          ("train_mode", 1, TypeError), ("lr_max", "x", TypeError)])
def test_schedulefree_tampered_group_schedule_is_rejected_before_anything_changes(key, bad, exc):
    params, opt = _schedulefree()
    opt.train()
    opt.step([np.ones(7), np.ones((2, 3), np.float32)])
    before = [p.copy() for p in params]
    state = copy.deepcopy(opt.state)
    opt.param_groups[1][key] = bad
    with pytest.raises(exc, match=key):
        opt.step([np.ones(7), np.ones((2, 3), np.float32)])
    assert opt.param_groups[0]["k"] == 1 and all(np.array_equal(p, b) for p, b in zip(params, before))
    assert all(np.array_equal(opt.state[i][k], state[i][k]) for i in state for k in state[i])


# --------------------------------------------------------------------------------------------- Adan

def test_adan_group_step_counts_every_call_and_first_difference_is_zero():
    a, b = np.ones(4), np.ones(3)
    opt = fastoptim.Adan([{"params": [a]}, {"params": [b], "lr": 0.01}], lr=0.1)
    assert "step" not in opt.param_groups[0]  # as the official implementation, created at the first step
    opt.step([np.full(4, 0.5), None])
    assert np.array_equal(opt.state[0]["exp_avg_diff"], np.zeros(4))
    assert np.array_equal(opt.state[0]["neg_pre_grad"], np.full(4, -0.5))
    opt.step([None, None])
    opt.step([None, np.full(3, 2.0)])  # b's first gradient, at the group's third step
    assert [g["step"] for g in opt.param_groups] == [3, 3]
    assert np.array_equal(opt.state[1]["exp_avg_diff"], np.zeros(3))


def test_adan_restart_opt_resets_moments_and_steps():
    w = np.linspace(-1, 1, 9)
    opt = fastoptim.Adan([w], lr=0.05, weight_decay=0.02)
    for t in range(5):
        opt.step([np.sin(w * (t + 1))])
    buffers = {k: opt.state[0][k] for k in ("exp_avg", "exp_avg_sq", "exp_avg_diff")}
    opt.restart_opt()
    assert opt.param_groups[0]["step"] == 0
    assert all(opt.state[0][k] is v and not v.any() for k, v in buffers.items())
    # After a restart the next step is a first step again: the same as a fresh optimizer from here.
    fresh_w = w.copy()
    fresh = fastoptim.Adan([fresh_w], lr=0.05, weight_decay=0.02)
    for t in range(3):
        opt.step([np.cos(w * (t + 2))])
        fresh.step([np.cos(fresh_w * (t + 2))])
    assert np.array_equal(w, fresh_w)


def test_adan_tampered_group_step_is_rejected_before_anything_changes():
    w = np.ones(3)
    opt = fastoptim.Adan([w], lr=0.1)
    opt.step([np.ones(3)])
    state = copy.deepcopy(opt.state)
    before = w.copy()
    for bad, exc in [(-1, ValueError), (1.5, TypeError), (True, TypeError)]:
        opt.param_groups[0]["step"] = bad
        with pytest.raises(exc, match="param group 'step'"):
            opt.step([np.ones(3)])
        assert opt.param_groups[0]["step"] is bad and np.array_equal(w, before)
        assert all(np.array_equal(opt.state[0][k], state[0][k]) for k in state[0])


# --------------------------------------------------------------------------------------------- LAMB

def test_lamb_trust_ratio_options():
    """One step from zero state, where u = sign(g) / (1 + eps / |g|) exactly in the limit: the step of
    each element is lr * trust, with trust from the norms as documented."""
    g = np.array([3.0, -4.0, 0.5, -0.5])
    for kw, expected_trust in [
        (dict(), 2.0 / 2.0),                                  # ||p|| = 2, ||u|| ~ 2
        (dict(clamp_value=1.0), 1.0 / 2.0),                   # phi = min(||p||, 1)
        (dict(exclude_from_layer_adaptation=True), 1.0),
    ]:
        p = np.full(4, 1.0)
        opt = fastoptim.LAMB([p], lr=0.1, eps=0.0, **kw)
        opt.step([g])
        np.testing.assert_allclose(1.0 - p, 0.1 * expected_trust * np.sign(g), rtol=1e-14)
    p = np.full(4, 4.0)  # ||p|| = 8 > ||u|| = 2: trust 4, clipped to 1 with trust_clip
    fastoptim.LAMB([p], lr=0.1, eps=0.0, trust_clip=True).step([g])
    np.testing.assert_allclose(4.0 - p, 0.1 * np.sign(g), rtol=1e-14)
    p = np.zeros(4)  # ||p|| = 0: trust 1
    fastoptim.LAMB([p], lr=0.1, eps=0.0).step([g])
    np.testing.assert_allclose(-p, 0.1 * np.sign(g), rtol=1e-14)
