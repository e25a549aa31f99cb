"""fastoptim.LBFGS against torch.optim.LBFGS (tests/lbfgs_parity.py): trajectories (stored and live),
one step from torch's own state, state_dict layout and interchange both ways, the API, bad inputs, and
thread-count independence.

Bounds. Our dot products round differently from torch's BLAS, by about one ulp, and torch's sqrt (MKL)
is not correctly rounded; each step of a trajectory may deviate from torch's up to twice the spread of
eight torch runs with one-ulp gradient perturbations (stored per step in tests/data/golden_LBFGS.npz),
with a floor of 8 roundings. The 1-d problems (every reduction exact) take every branch of the line
search and match torch bit for bit in float32 and float64 on the machine that made the golden data, which
pins down torch's float / 0-d-tensor rounding rules. Measured: float64 up to 1.3e-5 relative on Rosenbrock with the strong
Wolfe search (torch's own spread 4.7e-5; the problem amplifies roundings), 1.4e-11 or less elsewhere;
float32 up to 2.8e-2 on Rosenbrock (spread 1.8e-1), 6e-8 on logistic regression. One step from torch's
exact state: float64 within 1e-10 relative (measured 1.2e-11), float32 within 1e-3 (measured 1.4e-4).
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import pathlib

import numpy as np
import pytest

import fastoptim
import lbfgs_parity as L
from conftest import requires_torch

DATA = pathlib.Path(__file__).resolve().parent / "data"
CASES = list(L.cases())
IDS = [L.case_id(*c) for c in CASES]
STEP_BOUND = {"float64": 1e-10, "float32": 1e-3}


@functools.lru_cache(maxsize=None)
def golden():
    with np.load(DATA / "golden_LBFGS.npz", allow_pickle=False) as f:
        return json.loads(str(f["meta"])), {k: f[k] for k in f.files if k != "meta"}


def check_trajectory(dtype, ours, ref, spread):
    dev = L.deviation_per_step(ours, ref)
    allowed = L.allowed_per_step(spread, dtype)
    worst = int(np.argmax(dev / allowed))
    assert np.all(dev <= allowed), f"step {worst}: deviation {dev[worst]:.3e}, allowed {allowed[worst]:.3e}"


@pytest.mark.parametrize("k,dtype", CASES, ids=IDS)
def test_matches_golden_trajectory(k, dtype):
    meta, arrays = golden()
    cid = L.case_id(k, dtype)
    problem, config, steps = L.CASES[k]
    case = meta["cases"][cid]
    assert (case["problem"], case["config"], case["steps"]) == (problem, config, steps), \
        "registry changed: rerun tests/data/make_golden_lbfgs.py"
    opts: list = []
    ours = L.run_fastoptim(k, L.DTYPES[dtype], opt_out=opts)
    check_trajectory(dtype, ours, arrays[cid], arrays[cid + "/spread"])
    if dtype == "float64" and arrays[cid + "/spread"].max() <= 1e-12:  # where one rounding cannot change the course
        state = opts[0].state[0]
        assert (state["func_evals"], state["n_iter"]) == (case["func_evals"], case["n_iter"])


def torch_state(opt):
    import torch

    def conv(v):
        if isinstance(v, torch.Tensor):
            return v.numpy().copy()
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v

    sd = opt.state_dict()
    return {"state": {i: {k: conv(v) for k, v in e.items()} for i, e in sd["state"].items()},
            "param_groups": sd["param_groups"]}


def _kind(v):
    # torch holds t as the int it was given (lr=1, the line search's 0) or a float; we hold a float
    return "number" if isinstance(v, (int, float)) and not isinstance(v, bool) else type(v)


def assert_same_state(ours, theirs, exact):
    """Same keys, kinds of values (numbers, 0-d and 1-d arrays of the dtype, lists, None) and shapes, as
    torch's layout; with exact, equal values."""
    assert set(ours) == set(theirs)
    for key in theirs:
        a, b = ours[key], theirs[key]
        if isinstance(b, list):
            assert isinstance(a, list) and len(a) == len(b), key
            pairs = list(zip(a, b))
        else:
            pairs = [(a, b)]
        for x, y in pairs:
            assert _kind(x) == _kind(y), (key, x, y)
            if isinstance(y, np.ndarray):
                assert x.dtype == y.dtype and x.shape == y.shape, key
                if exact:
                    assert np.array_equal(x, y), key
            elif y is not None and exact:
                assert x == y, key


@requires_torch
@pytest.mark.parametrize("k,dtype", CASES, ids=IDS)
def test_matches_torch_live(k, dtype):
    ours_opt, torch_opt = [], []
    ours = L.run_fastoptim(k, L.DTYPES[dtype], opt_out=ours_opt)
    ref = L.run_torch(k, L.DTYPES[dtype], opt_out=torch_opt)
    if np.all(L.deviation_per_step(ours, ref) <= L.FLOOR[dtype]):
        check_trajectory(dtype, ours, ref, np.zeros(len(ref)))  # no need to measure torch's spread
    else:
        check_trajectory(dtype, ours, ref, L.torch_spread_per_step(k, L.DTYPES[dtype], ref))
    theirs = torch_state(torch_opt[0])["state"][0]
    ours_state = ours_opt[0].state_dict()["state"][0]
    if dtype == "float64":  # float32 runs may take another number of iterations
        assert_same_state(ours_state, theirs, exact=False)
    else:
        assert set(ours_state) == set(theirs)


@requires_torch
@pytest.mark.parametrize("k,dtype", CASES, ids=IDS)
def test_step_from_torch_state_matches_torch_live(k, dtype):
    """Every step starts from torch's parameters and state (torch -> fastoptim state_dict interchange)."""
    import torch

    problem, config, steps = L.CASES[k]
    np_dtype = L.DTYPES[dtype]
    params = [torch.from_numpy(p) for p in L.initial_params(problem, np_dtype)]
    theirs = torch.optim.LBFGS(params, **config)

    def closure():
        loss, grads = L.loss_and_grads(problem, [p.numpy() for p in params])
        for p, g in zip(params, grads):
            p.grad = torch.from_numpy(g)
        return loss

    for _ in range(steps):
        mine = [p.numpy().copy() for p in params]
        opt = fastoptim.LBFGS(mine, **config)
        opt.load_state_dict(torch_state(theirs))
        loss = opt.step(lambda: L.loss_and_grads(problem, mine))
        assert loss == theirs.step(closure)
        a = np.concatenate([p.ravel() for p in mine])
        b = np.concatenate([p.numpy().ravel() for p in params])
        assert np.abs(a - b).max() <= STEP_BOUND[dtype] * np.abs(b).max()
        if dtype == "float64":
            s = theirs.state[params[0]]
            assert (opt.state[0]["func_evals"], opt.state[0]["n_iter"]) == (s["func_evals"], s["n_iter"])


@requires_torch
def test_our_state_dict_loads_into_torch_live():
    import torch

    k = 6  # logistic regression, strong Wolfe, history of 4 (full)
    problem, config, steps = L.CASES[k]
    params = L.initial_params(problem, np.float64)
    opt = fastoptim.LBFGS(params, **config)
    for _ in range(2):
        opt.step(lambda: L.loss_and_grads(problem, params))
    sd = opt.state_dict()

    def tensors(v):
        if isinstance(v, np.ndarray):
            return torch.from_numpy(v)
        if isinstance(v, list):
            return [tensors(x) for x in v]
        return v

    t_params = [torch.from_numpy(p.copy()) for p in params]
    theirs = torch.optim.LBFGS(t_params, **config)
    theirs.load_state_dict({"state": {i: {key: tensors(v) for key, v in e.items()} for i, e in sd["state"].items()},
                            "param_groups": sd["param_groups"]})

    def closure():
        loss, grads = L.loss_and_grads(problem, [p.numpy() for p in t_params])
        for p, g in zip(t_params, grads):
            p.grad = torch.from_numpy(g)
        return loss

    opt.step(lambda: L.loss_and_grads(problem, params))
    theirs.step(closure)
    for p, q in zip(params, t_params):
        np.testing.assert_allclose(p, q.numpy(), rtol=1e-12, atol=1e-15)
    assert opt.state[0]["func_evals"] == theirs.state[t_params[0]]["func_evals"]


@pytest.mark.parametrize("k", [1, 6, 9])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_state_dict_round_trip_resumes_bit_identically(k, dtype):
    problem, config, steps = L.CASES[k]
    np_dtype = L.DTYPES[dtype]
    straight = L.initial_params(problem, np_dtype)
    opt = fastoptim.LBFGS(straight, **config)
    resumed = L.initial_params(problem, np_dtype)
    first = fastoptim.LBFGS(resumed, **config)
    for _ in range(2):
        opt.step(lambda: L.loss_and_grads(problem, straight))
        first.step(lambda: L.loss_and_grads(problem, resumed))
    sd = first.state_dict()
    second = fastoptim.LBFGS(resumed, **config)
    second.load_state_dict(sd)
    assert_same_state(second.state_dict()["state"][0], sd["state"][0], exact=True)
    for _ in range(2):
        opt.step(lambda: L.loss_and_grads(problem, straight))
        second.step(lambda: L.loss_and_grads(problem, resumed))
    for a, b in zip(straight, resumed):
        assert np.array_equal(a, b)
    assert_same_state(second.state_dict()["state"][0], opt.state_dict()["state"][0], exact=True)


def test_state_dict_is_a_snapshot_and_state_is_read_through():
    x = np.array([1.0, -2.0, 3.0])
    opt = fastoptim.LBFGS([x], max_iter=3)
    assert len(opt.state) == 0 and opt.state_dict()["state"] == {}
    opt.step(lambda: (float(x @ x), [2 * x]))
    sd = opt.state_dict()
    entry = sd["state"][0]
    assert entry["n_iter"] >= 1 and entry["func_evals"] >= 2 and entry["H_diag"] is not None
    assert list(opt.state) == [0] and opt.state[0]["n_iter"] == entry["n_iter"]
    entry["d"][:] = 0  # a snapshot: editing it changes nothing
    assert np.any(opt.state[0]["d"] != 0)


@pytest.mark.parametrize("problem", ["rosenbrock", "logistic"])
def test_converges(problem):
    params = L.initial_params(problem, np.float64)
    opt = fastoptim.LBFGS(params, line_search_fn="strong_wolfe", max_iter=200, tolerance_grad=1e-9,
                          tolerance_change=1e-14)
    opt.step(lambda: L.loss_and_grads(problem, params))
    _, grads = L.loss_and_grads(problem, params)
    assert max(np.abs(g).max() for g in grads) < 1e-6
    if problem == "rosenbrock":
        np.testing.assert_allclose(np.concatenate([p.ravel() for p in params]), 1.0, atol=1e-8)


# ------------------------------------------------------------------------------------------------ API

DEFAULTS = dict(lr=1, max_iter=20, max_eval=25, tolerance_grad=1e-7, tolerance_change=1e-9, history_size=100,
                line_search_fn=None)


def test_defaults():
    opt = fastoptim.LBFGS([np.zeros(2)])
    for key, value in DEFAULTS.items():
        assert opt.param_groups[0][key] == value and opt.defaults[key] == value, key
    assert fastoptim.LBFGS([np.zeros(2)], max_iter=7).defaults["max_eval"] == 8  # max_iter * 5 // 4


@requires_torch
def test_signature_and_param_groups_match_torch():
    import torch

    ours = inspect.signature(fastoptim.LBFGS).parameters
    theirs = inspect.signature(torch.optim.LBFGS).parameters
    assert list(ours) == list(theirs)
    for key in theirs:
        assert ours[key].default == theirs[key].default and ours[key].kind == theirs[key].kind, key
    for kw in (dict(), dict(lr=0.5, max_iter=9, history_size=3, line_search_fn="strong_wolfe")):
        a = fastoptim.LBFGS([np.zeros(2), np.zeros(3)], **kw).state_dict()["param_groups"]
        b = torch.optim.LBFGS([torch.zeros(2), torch.zeros(3)], **kw).state_dict()["param_groups"]
        assert a == b


@requires_torch
def test_lr_scheduler_drives_lbfgs_as_torch():
    import torch

    problem, config, steps = L.CASES[5]
    params = L.initial_params(problem, np.float64)
    opt = fastoptim.LBFGS(params, **config)
    sched = fastoptim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    t_params = [torch.from_numpy(p.copy()) for p in params]
    theirs = torch.optim.LBFGS(t_params, **config)
    t_sched = torch.optim.lr_scheduler.StepLR(theirs, step_size=1, gamma=0.5)

    def closure():
        loss, grads = L.loss_and_grads(problem, [p.numpy() for p in t_params])
        for p, g in zip(t_params, grads):
            p.grad = torch.from_numpy(g)
        return loss

    for _ in range(3):
        opt.step(lambda: L.loss_and_grads(problem, params))
        sched.step()
        theirs.step(closure)
        t_sched.step()
    assert opt.param_groups[0]["lr"] == theirs.param_groups[0]["lr"] == 0.125
    for p, q in zip(params, t_params):
        np.testing.assert_allclose(p, q.numpy(), rtol=1e-10)


def test_step_returns_the_first_loss_as_given():
    x = np.array([3.0])
    marker = np.float32(9.0)
    calls = []

    def closure():
        calls.append(1)
        return (marker if len(calls) == 1 else float(x[0] ** 2)), [2 * x]

    assert fastoptim.LBFGS([x], max_iter=2).step(closure) is marker


def test_none_gradient_counts_as_zero():
    a, b = np.array([2.0, -1.0]), np.array([5.0])
    opt = fastoptim.LBFGS([a, b], max_iter=3)
    opt.step(lambda: (float(a @ a), [2 * a, None]))
    assert b[0] == 5.0 and np.abs(a).max() < 2.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_do_not_depend_on_the_thread_count(dtype):
    """A problem big enough for the threaded dot products and updates (many reduction blocks)."""
    n = 100_003  # 25 reduction blocks: 3 threads take part
    rng = np.random.default_rng(3)
    scale = (1 + rng.random(n)).astype(dtype)
    target = rng.standard_normal(n).astype(dtype)

    def run(threads):
        old = fastoptim.get_num_threads()
        fastoptim.set_num_threads(threads)
        try:
            x = np.zeros(n, dtype)
            y = np.zeros(7, dtype)
            opt = fastoptim.LBFGS([x, y], max_iter=5, history_size=3, line_search_fn="strong_wolfe")

            def closure():
                r = x - target
                return float(np.sum(scale * r * r, dtype=np.float64)), [(2 * scale * r).astype(dtype), y - 1]

            for _ in range(2):
                opt.step(closure)
            return x.copy(), opt.state[0]
        finally:
            fastoptim.set_num_threads(old)

    x1, s1 = run(1)
    for threads in (2, 3):
        x2, s2 = run(threads)
        assert np.array_equal(x1, x2)
        assert_same_state(s2, s1, exact=True)


# ----------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("kwargs,exc,message", [
    (dict(lr=-1.0), ValueError, "Invalid learning rate: -1.0"),
    (dict(lr="1"), TypeError, "lr"),
    (dict(max_iter=0), ValueError, "Invalid max_iter value: 0"),
    (dict(max_iter=2.5), TypeError, "max_iter must be an integer"),
    (dict(max_iter=True), TypeError, "max_iter must be an integer"),
    (dict(max_eval=0), ValueError, "Invalid max_eval value: 0"),
    (dict(max_eval=3.0), TypeError, "max_eval must be an integer"),
    (dict(history_size=0), ValueError, "Invalid history_size value: 0"),
    (dict(history_size=None), TypeError, "history_size must be an integer"),
    (dict(tolerance_grad="x"), TypeError, "tolerance_grad"),
    (dict(tolerance_change=None), TypeError, "tolerance_change"),
    (dict(line_search_fn="armijo"), RuntimeError, "only 'strong_wolfe' is supported"),
])
def test_constructor_rejects_bad_hyperparameters(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        fastoptim.LBFGS([np.zeros(3)], **kwargs)


@pytest.mark.parametrize("params,exc,message", [
    ([{"params": [np.zeros(2)]}, {"params": [np.zeros(2)]}], ValueError,
     "LBFGS doesn't support per-parameter options"),
    ([np.zeros(2, np.float32), np.zeros(2)], TypeError, "one dtype"),
    ([np.zeros(0)], ValueError, "at least one parameter element"),
    ([], ValueError, "empty parameter list"),
    ([np.zeros(4)[::2]], ValueError, "not C-contiguous"),
    ([np.zeros(2, np.int64)], TypeError, "dtype int64"),
])
def test_constructor_rejects_bad_params(params, exc, message):
    with pytest.raises(exc, match=message):
        fastoptim.LBFGS(params)


def test_add_param_group_is_rejected():
    opt = fastoptim.LBFGS([np.zeros(2)])
    with pytest.raises(ValueError, match="LBFGS doesn't support per-parameter options"):
        opt.add_param_group({"params": [np.zeros(3)]})
    assert len(opt.param_groups) == 1


def snapshot(opt, params):
    return [p.copy() for p in params], opt.state_dict()


def assert_unchanged(opt, params, snap):
    before_params, before_sd = snap
    for p, q in zip(params, before_params):
        assert np.array_equal(p, q)
    after = opt.state_dict()
    assert after["param_groups"] == before_sd["param_groups"]
    if before_sd["state"]:
        assert_same_state(after["state"][0], before_sd["state"][0], exact=True)
    else:
        assert after["state"] == {}


def _quadratic(params):
    return float(sum(np.sum(p.astype(np.float64) ** 2) for p in params)), [2 * p for p in params]


BAD_CLOSURES = {
    "not_a_tuple": (lambda ps: (lambda: 1.0), TypeError, "must return a \\(loss, grads\\) tuple"),
    "grads_not_a_list": (lambda ps: (lambda: (1.0, ps[0])), TypeError, "list or tuple"),
    "too_few_grads": (lambda ps: (lambda: (1.0, [ps[0]])), ValueError, "returned 1 gradients, expected 2"),
    "wrong_dtype": (lambda ps: (lambda: (1.0, [ps[0].astype(np.float32), ps[1]])), TypeError,
                    "gradient of parameter 0 has dtype float32"),
    "wrong_shape": (lambda ps: (lambda: (1.0, [ps[0], np.zeros(5)])), ValueError,
                    "gradient of parameter 1 has shape \\(5,\\)"),
    "strided": (lambda ps: (lambda: (1.0, [ps[0], np.zeros(12)[::2].reshape(2, 3)])), ValueError,
                "not C-contiguous"),
    "list_grad": (lambda ps: (lambda: (1.0, [[1.0, 2.0, 3.0], ps[1]])), TypeError, "must be a numpy.ndarray"),
    "loss_not_a_number": (lambda ps: (lambda: ("x", [2 * ps[0], 2 * ps[1]])), ValueError, "could not convert"),
    "raises": (lambda ps: (lambda: 1 / 0), ZeroDivisionError, "division by zero"),
}


@pytest.mark.parametrize("after_calls", [0, 1])
def test_strong_wolfe_with_a_nan_loss_raises_torchs_index_error_and_changes_nothing(after_calls):
    """torch's strong-Wolfe search ends with a one-point bracket whose low point, for a NaN loss, is index 1:
    an IndexError. We raise the same (it once read past the bracket and crashed), and change nothing."""
    x = np.array([1.5, -0.5, 2.0])
    opt = fastoptim.LBFGS([x], line_search_fn="strong_wolfe")
    calls = [0]

    def closure():
        calls[0] += 1
        return (float("nan") if calls[0] > after_calls else float(np.sum((x - 3) ** 2))), [2 * (x - 3)]

    snap = snapshot(opt, [x])
    with pytest.raises(IndexError, match="list index out of range"):
        opt.step(closure)
    assert_unchanged(opt, [x], snap)


@requires_torch
def test_strong_wolfe_with_a_nan_loss_raises_in_torch_too():
    import torch

    x = torch.tensor([1.5, -0.5, 2.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([x], line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = ((x - 3) ** 2).sum() * float("nan")
        loss.backward()
        x.grad = 2 * (x.detach() - 3)
        return loss

    with pytest.raises(IndexError):
        opt.step(closure)


@pytest.mark.parametrize("line_search", [None, "strong_wolfe"])
@pytest.mark.parametrize("after_calls", [0, 1, 4], ids=["first_call", "second_call", "fifth_call"])
@pytest.mark.parametrize("case", list(BAD_CLOSURES))
def test_bad_closure_raises_and_changes_nothing(case, after_calls, line_search):
    """The closure goes bad on its first, second or fifth call of a step (mid line search): the step
    raises, and the parameters and state are as before the step (torch would leave them half-updated)."""
    params = L.initial_params("rosenbrock", np.float64)
    good = lambda ps: L.loss_and_grads("rosenbrock", ps)  # noqa: E731
    opt = fastoptim.LBFGS(params, max_iter=5, history_size=2, line_search_fn=line_search)
    opt.step(lambda: good(params))  # some state first
    snap = snapshot(opt, params)
    make_bad, exc, message = BAD_CLOSURES[case]
    bad = make_bad(params)
    calls = [0]

    def closure():
        calls[0] += 1
        return bad() if calls[0] > after_calls else good(params)

    with pytest.raises(exc, match=message):
        opt.step(closure)
    assert_unchanged(opt, params, snap)
    # and the optimizer still works, exactly as if the failed step never happened
    twin_params = [p.copy() for p in params]
    twin = fastoptim.LBFGS(twin_params, max_iter=5, history_size=2, line_search_fn=line_search)
    twin.load_state_dict(opt.state_dict())
    opt.step(lambda: good(params))
    twin.step(lambda: good(twin_params))
    for p, q in zip(params, twin_params):
        assert np.array_equal(p, q)


@pytest.mark.parametrize("edit,exc,message", [
    ({"lr": math.nan}, ValueError, "Invalid learning rate"),
    ({"max_iter": 0}, ValueError, "Invalid max_iter value: 0"),
    ({"history_size": 1.5}, TypeError, "history_size must be an integer"),
    ({"line_search_fn": "wolfe"}, RuntimeError, "only 'strong_wolfe' is supported"),
])
def test_step_rejects_edited_group_and_changes_nothing(edit, exc, message):
    params = [np.array([1.0, 2.0])]
    opt = fastoptim.LBFGS(params)
    opt.step(lambda: _quadratic(params))
    snap = snapshot(opt, params)
    opt.param_groups[0].update(edit)
    with pytest.raises(exc, match=message):
        opt.step(lambda: _quadratic(params))
    for p, q in zip(params, snap[0]):
        assert np.array_equal(p, q)


def test_step_rejects_a_non_callable_closure():
    opt = fastoptim.LBFGS([np.zeros(2)])
    with pytest.raises(TypeError, match="needs a closure"):
        opt.step([np.zeros(2)])


def test_step_rejects_params_that_no_longer_match_the_state():
    params = [np.array([1.0, 2.0])]
    opt = fastoptim.LBFGS(params, max_iter=2)
    opt.step(lambda: _quadratic(params))
    opt.param_groups[0]["params"] = [np.array([1.0, 2.0, 3.0])]
    with pytest.raises(ValueError, match="'d' has 2 elements, the parameters have 3"):
        opt.step(lambda: _quadratic(opt.param_groups[0]["params"]))


def _good_state_dict():
    params = [np.array([1.0, 2.0, -1.0])]
    opt = fastoptim.LBFGS(params, max_iter=4, history_size=2)
    opt.step(lambda: _quadratic(params))
    return opt.state_dict()


BAD_STATES = {
    "d_wrong_size": (lambda e: e.update(d=np.zeros(5)), ValueError, "'d' has 5 elements"),
    "d_2d": (lambda e: e.update(d=np.zeros((3, 1))), ValueError, "'d' must be a 1-d real array"),
    "history_lengths_differ": (lambda e: e["old_stps"].pop(), ValueError, "same length"),
    "old_dir_wrong_size": (lambda e: e["old_dirs"].__setitem__(0, np.zeros(2)), ValueError, "old_dirs\\[0\\]"),
    "negative_n_iter": (lambda e: e.update(n_iter=-1), ValueError, "'n_iter' must be an integer in \\[0, 2\\*\\*53\\]"),
    "n_iter_past_int64": (lambda e: e.update(n_iter=2**63 - 1), ValueError, "'n_iter' must be an integer in"),
    "func_evals_past_int64": (lambda e: e.update(func_evals=2**70), ValueError, "'func_evals' must be an integer in"),
    "unknown_key": (lambda e: e.update(step=1), ValueError, "unknown state"),
    "missing_t": (lambda e: e.pop("t"), ValueError, "lacks \\['t'\\]"),
    "t_not_a_number": (lambda e: e.update(t="x"), TypeError, "state 't'"),
    "ro_not_a_list": (lambda e: e.update(ro=3.0), ValueError, "'ro' must be a list"),
    "iterations_without_direction": (lambda e: [e.pop(k) for k in list(e) if k not in ("func_evals", "n_iter")],
                                     ValueError, "n_iter > 0 but no 'd'"),
}


@pytest.mark.parametrize("case", list(BAD_STATES))
def test_load_state_dict_rejects_bad_state_and_changes_nothing(case):
    params = [np.array([0.5, 0.5, 0.5])]
    opt = fastoptim.LBFGS(params, max_iter=4, history_size=2)
    opt.step(lambda: _quadratic(params))
    snap = snapshot(opt, params)
    sd = _good_state_dict()
    mutate, exc, message = BAD_STATES[case]
    mutate(sd["state"][0])
    with pytest.raises(exc, match=message):
        opt.load_state_dict(sd)
    assert_unchanged(opt, params, snap)


def test_load_state_dict_rejects_bad_groups_and_changes_nothing():
    params = [np.array([0.5, 0.5, 0.5])]
    opt = fastoptim.LBFGS(params, max_iter=4)
    opt.step(lambda: _quadratic(params))
    snap = snapshot(opt, params)
    sd = _good_state_dict()
    sd["param_groups"][0]["history_size"] = 0
    with pytest.raises(ValueError, match="Invalid history_size value: 0"):
        opt.load_state_dict(sd)
    assert_unchanged(opt, params, snap)
