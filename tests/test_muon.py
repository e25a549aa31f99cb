"""fastoptim.Muon against torch.optim.Muon (tests/muon_parity.py explains the bounds): bit-identical
without matrix products, the bfloat16 Newton-Schulz orthogonalization within a measured bound, one step
from torch's state, free-running trajectories; then the API, bad inputs, state dicts both ways and
thread-count independence. Stored torch results (tests/data/golden_Muon.npz, make_golden_muon.py) run
without torch; the live tests rerun torch."""

from __future__ import annotations

import functools
import inspect
import json
import math
import pathlib

import numpy as np
import pytest

import fastoptim
import muon_parity as M
from conftest import HAS_TORCH, requires_torch

DATA = pathlib.Path(__file__).resolve().parent / "data"
EXACT = [(k, dt) for k in range(len(M.EXACT_CONFIGS)) for dt in M.DTYPES]
EXACT_IDS = [f"exact{k}-{dt}" for k, dt in EXACT]
NS = [(k, dt) for k in range(len(M.NS_CONFIGS)) for dt in M.DTYPES]
NS_IDS = [f"ns{k}-{dt}" for k, dt in NS]
ORTH = [(k, j) for k in range(len(M.NS_MATRICES)) for j in range(len(M.NS_SETTINGS))]
ORTH_IDS = [f"{M.NS_MATRICES[k][0]}x{M.NS_MATRICES[k][1]}-setting{j}" for k, j in ORTH]
LIVE_STEPS = 60


@functools.lru_cache(maxsize=None)
def golden():
    with np.load(DATA / "golden_Muon.npz", allow_pickle=False) as f:
        return json.loads(str(f["meta"])), {k: f[k] for k in f.files if k != "meta"}


def test_golden_data_matches_the_registry():
    meta, _ = golden()
    assert meta["exact"] == json.loads(json.dumps(M.EXACT_CONFIGS)), "rerun tests/data/make_golden_muon.py"
    assert meta["ns"] == json.loads(json.dumps(M.NS_CONFIGS)), "rerun tests/data/make_golden_muon.py"
    assert meta["group1"] == M.GROUP1 and meta["ns_settings"] == json.loads(json.dumps(M.NS_SETTINGS))


# ---------------------------------------------------------------------- without products: exact


@pytest.mark.parametrize("k,dtype", EXACT, ids=EXACT_IDS)
def test_without_products_matches_golden_exactly(k, dtype):
    meta, arrays = golden()
    ours = M.run_fastoptim(M.EXACT_CONFIGS[k], M.DTYPES[dtype], M.seed_of("exact", k, dtype))
    assert np.array_equal(ours[list(meta["exact_rows"])], arrays[f"exact/{k}/{dtype}"])


@requires_torch
@pytest.mark.parametrize("k,dtype", EXACT, ids=EXACT_IDS)
def test_without_products_matches_torch_live_exactly(k, dtype):
    seed = M.seed_of("exact", k, dtype)
    config = M.EXACT_CONFIGS[k]
    ours = M.run_fastoptim(config, M.DTYPES[dtype], seed, steps=LIVE_STEPS)
    theirs = M.run_torch(config, M.DTYPES[dtype], seed, steps=LIVE_STEPS)
    assert np.array_equal(ours, theirs)


# ------------------------------------------------------------------- Newton-Schulz: bounded


def check_orthogonalization(k, j, ref):
    coefficients, steps, eps = M.NS_SETTINGS[j]
    ours = M.ours_orthogonalized(M.ns_input(k, M.NS_MATRICES[k]), coefficients, steps, eps)
    assert np.array_equal(ours, M.bf16(ours))  # bfloat16 values, as torch's
    err = M.relative_frobenius(ours, ref)
    assert err <= M.ns_bound(steps), f"relative error {err:.2e}, bound {M.ns_bound(steps):.2e}"


@pytest.mark.parametrize("k,j", ORTH, ids=ORTH_IDS)
def test_orthogonalization_matches_golden(k, j):
    _, arrays = golden()
    ref = arrays[f"orth/{k}/{j}"].astype(np.uint32) << 16
    check_orthogonalization(k, j, ref.view(np.float32))


@requires_torch
@pytest.mark.parametrize("k,j", ORTH, ids=ORTH_IDS)
def test_orthogonalization_matches_torch_live(k, j):
    import torch
    from torch.optim._muon import _zeropower_via_newtonschulz

    coefficients, steps, eps = M.NS_SETTINGS[j]
    g = torch.from_numpy(M.ns_input(k, M.NS_MATRICES[k]))
    check_orthogonalization(k, j, _zeropower_via_newtonschulz(g, coefficients, steps, eps).float().numpy())


def group_options(config, index):
    merged = {"weight_decay": 0.1, "ns_steps": 5, **config, **(M.GROUP1 if index in M.GROUPS[1] else {})}
    return merged


def check_step_from(config, dtype, seed, t, before, bufs, after, torch_bufs):
    """Our step t from torch's state: momentum buffers bit-identical, the update within the NS bound."""
    params, ours_bufs = M.one_step_from(config, M.DTYPES[dtype], seed, t, before, bufs)
    for i, (p, q, p_before) in enumerate(zip(params, after, before)):
        assert np.array_equal(ours_bufs[i], torch_bufs[i])
        opts = group_options(config, i)
        decay = p.dtype.type(1.0 - opts.get("lr", 1e-3) * opts["weight_decay"])
        update = q.astype(np.float64) - (p_before * decay).astype(np.float64)  # torch's -adjusted_lr * O
        err = np.linalg.norm(p.astype(np.float64) - q) / np.linalg.norm(update)
        assert err <= M.ns_bound(opts["ns_steps"]), (t, i, err)


@pytest.mark.parametrize("k,dtype", NS, ids=NS_IDS)
def test_step_from_torch_state_matches_golden(k, dtype):
    meta, arrays = golden()
    config = M.NS_CONFIGS[k]
    seed = M.seed_of("ns", k, dtype)
    sizes = [r * c for r, c in M.SHAPES]
    split = lambda flat: [x.reshape(s) for x, s in zip(np.split(flat, np.cumsum(sizes)[:-1]), M.SHAPES)]  # noqa: E731
    for t in (100, 200, 300):
        record = [split(arrays[f"record/{k}/{dtype}/{t}/{name}"]) for name in ("before", "bufs", "after", "bufs_after")]
        check_step_from(config, dtype, seed, t, *record)


@requires_torch
@pytest.mark.parametrize("k,dtype", NS, ids=NS_IDS)
def test_step_from_torch_state_matches_torch_live(k, dtype):
    config = M.NS_CONFIGS[k]
    seed = M.seed_of("ns", k, dtype)
    records: list = []
    M.run_torch(config, M.DTYPES[dtype], seed, steps=LIVE_STEPS, record_every=10, records=records)
    for t, *record in records:
        check_step_from(config, dtype, seed, t, *record)


@pytest.mark.parametrize("k,dtype", NS, ids=NS_IDS)
def test_free_running_trajectory_matches_golden(k, dtype):
    meta, arrays = golden()
    config = M.NS_CONFIGS[k]
    ours = M.run_fastoptim(config, M.DTYPES[dtype], M.seed_of("ns", k, dtype))
    for row, ref in zip(meta["ns_rows"], arrays[f"ns/{k}/{dtype}"]):
        dev = np.abs(ours[row].astype(np.float64) - ref).max()
        assert dev <= M.free_running_bound(config, row), (row, dev)


# ----------------------------------------------------------------------------------------------- API

DEFAULTS = dict(lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True, ns_coefficients=(3.4445, -4.7750, 2.0315),
                eps=1e-7, ns_steps=5, adjust_lr_fn=None)


def test_defaults():
    opt = fastoptim.Muon([np.zeros((2, 3), np.float32)])
    for key, value in DEFAULTS.items():
        assert opt.param_groups[0][key] == value and opt.defaults[key] == value, key


@requires_torch
def test_signature_and_param_groups_match_torch():
    import torch

    ours = inspect.signature(fastoptim.Muon).parameters
    theirs = inspect.signature(torch.optim.Muon).parameters
    assert list(ours) == list(theirs)
    for key in theirs:
        assert ours[key].default == theirs[key].default and ours[key].kind == theirs[key].kind, key
    kw = dict(lr=0.02, adjust_lr_fn="match_rms_adamw", nesterov=False)
    a = fastoptim.Muon([np.zeros((2, 3)), np.zeros((3, 3))], **kw).state_dict()["param_groups"]
    b = torch.optim.Muon([torch.zeros(2, 3), torch.zeros(3, 3)], **kw).state_dict()["param_groups"]
    assert a == b


BAD_HYPERS = [
    (dict(lr=-0.1), ValueError, "Learning rate should be >= 0 but is: -0.1"),
    (dict(momentum=-0.5), ValueError, "momentum should be >= 0 but is: -0.5"),
    (dict(weight_decay=-1.0), ValueError, "weight decay should be >= 0 but is: -1.0"),
    (dict(adjust_lr_fn="rms"), ValueError, "Adjust learning rate function rms is not supported"),
]
# torch checks these when stepping; we do when constructing too
STEP_HYPERS = [
    (dict(ns_steps=100), ValueError, "Number of steps must be less than 100 for computational efficiency"),
    (dict(ns_coefficients=(1.0, 2.0)), ValueError, "Coefficients must be a tuple of exactly 3 values"),
]
TYPE_HYPERS = [
    (dict(lr="0.1"), TypeError, "lr"),
    (dict(nesterov="yes"), TypeError, "nesterov"),
    (dict(ns_steps=5.0), TypeError, "ns_steps must be an integer"),
    (dict(ns_coefficients=3.0), TypeError, "ns_coefficients"),
    (dict(eps=None), TypeError, "eps"),
]


@pytest.mark.parametrize("kwargs,exc,message", BAD_HYPERS + STEP_HYPERS + TYPE_HYPERS)
def test_constructor_rejects_bad_hyperparameters(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        fastoptim.Muon([np.zeros((2, 2))], **kwargs)


@requires_torch
@pytest.mark.parametrize("kwargs,exc,message", BAD_HYPERS + STEP_HYPERS)
def test_messages_are_torchs(kwargs, exc, message):
    import torch

    with pytest.raises(exc, match=message):
        opt = torch.optim.Muon([torch.zeros(2, 2)], **kwargs)
        opt.param_groups[0]["params"][0].grad = torch.ones(2, 2)
        opt.step()


@pytest.mark.parametrize("shape", [(3,), (2, 2, 2), ()])
def test_params_must_be_2d(shape):
    with pytest.raises(ValueError, match="Muon only supports 2D parameters whereas we found a parameter with size"):
        fastoptim.Muon([np.zeros((2, 2)), np.zeros(shape)])
    opt = fastoptim.Muon([np.zeros((2, 2))])
    with pytest.raises(ValueError, match="Muon only supports 2D parameters"):
        opt.add_param_group({"params": [np.zeros(shape)]})
    assert len(opt.param_groups) == 1


def test_step_rejects_a_param_reshaped_to_non_2d_and_changes_nothing():
    p = np.ones((2, 3))
    opt = fastoptim.Muon([p], lr=0.1)
    opt.step([np.ones((2, 3))])
    before, buf = p.copy(), opt.state[0]["momentum_buffer"].copy()
    p.shape = (6,)
    with pytest.raises(ValueError, match="Muon only supports 2D parameters whereas we found a parameter with size: \\(6,\\)"):
        opt.step([np.ones(6)])
    assert np.array_equal(p, before.ravel()) and np.array_equal(opt.state[0]["momentum_buffer"], buf)


@pytest.mark.parametrize("grads,exc,message", [
    ([np.ones((2, 3)), np.ones((3, 2))], ValueError, "gradient of parameter 1 has shape \\(3, 2\\)"),
    ([np.ones((2, 3)), np.ones((2, 3), np.float32)], TypeError, "gradient of parameter 1 has dtype float32"),
    ([np.ones((2, 3))], ValueError, "expected 2 gradients"),
])
def test_step_rejects_bad_grads_and_changes_nothing(grads, exc, message):
    a, b = np.ones((2, 3)), np.full((2, 3), 2.0)
    opt = fastoptim.Muon([a, b], lr=0.1)
    opt.step([np.ones((2, 3)), np.ones((2, 3))])
    snap = [a.copy(), b.copy()] + [opt.state[i]["momentum_buffer"].copy() for i in (0, 1)]
    with pytest.raises(exc, match=message):
        opt.step(grads)
    now = [a, b] + [opt.state[i]["momentum_buffer"] for i in (0, 1)]
    assert all(np.array_equal(x, y) for x, y in zip(now, snap))


@pytest.mark.parametrize("edit,exc,message", [
    ({"ns_steps": 100}, ValueError, "Number of steps must be less than 100"),
    ({"adjust_lr_fn": "none"}, ValueError, "Adjust learning rate function none is not supported"),
    ({"lr": math.nan}, ValueError, "Learning rate should be >= 0"),
])
def test_step_rejects_edited_group_and_changes_nothing(edit, exc, message):
    a = np.ones((3, 2))
    opt = fastoptim.Muon([a], lr=0.1)
    opt.param_groups[0].update(edit)
    with pytest.raises(exc, match=message):
        opt.step([np.ones((3, 2))])
    assert np.all(a == 1) and len(opt.state) == 0


# --------------------------------------------------------------------------------------- state dicts


def test_state_dict_round_trip_resumes_bit_identically():
    config = M.NS_CONFIGS[1]
    seed = 5
    straight = M.initial_params(np.float32, seed)
    resumed = M.initial_params(np.float32, seed)
    opt = fastoptim.Muon(M.groups(straight), **config)
    first = fastoptim.Muon(M.groups(resumed), **config)
    for t in range(1, 8):
        opt.step([M.gradient(p, seed, t, i) for i, p in enumerate(straight)])
        if t <= 4:
            first.step([M.gradient(p, seed, t, i) for i, p in enumerate(resumed)])
        elif t == 5:
            second = fastoptim.Muon(M.groups(resumed), **config)
            second.load_state_dict(first.state_dict())
        if t >= 5:
            second.step([M.gradient(p, seed, t, i) for i, p in enumerate(resumed)])
    for a, b in zip(straight, resumed):
        assert np.array_equal(a, b)
    assert set(second.state[0]) == {"momentum_buffer"}


@requires_torch
def test_state_dicts_interchange_with_torch_live():
    """Both ways, continuing with ns_steps=0 (no products), where both must agree exactly."""
    import torch

    config = dict(M.EXACT_CONFIGS[1])
    seed = 9
    params = M.initial_params(np.float64, seed)
    opt = fastoptim.Muon(M.groups(params), **config)
    t_params = [torch.from_numpy(p.copy()) for p in params]
    theirs = torch.optim.Muon(M.groups(t_params), **config)
    for t in range(1, 4):
        opt.step([M.gradient(p, seed, t, i) for i, p in enumerate(params)])
    ours_sd = opt.state_dict()
    theirs.load_state_dict({"state": {i: {"momentum_buffer": torch.from_numpy(e["momentum_buffer"])}
                                      for i, e in ours_sd["state"].items()},
                            "param_groups": ours_sd["param_groups"]})
    for p, q in zip(params, t_params):
        q.copy_(torch.from_numpy(p))
    for t in range(4, 7):
        opt.step([M.gradient(p, seed, t, i) for i, p in enumerate(params)])
        for i, q in enumerate(t_params):
            g = M.gradient(q.numpy(), seed, t, i)
            q.grad = None if g is None else torch.from_numpy(g)
        theirs.step()
    for p, q in zip(params, t_params):
        assert np.array_equal(p, q.numpy())
    # torch -> ours
    sd = theirs.state_dict()
    again = fastoptim.Muon(M.groups([q.numpy().copy() for q in t_params]), **config)
    again.load_state_dict({"state": {i: {k: v.numpy() for k, v in e.items()} for i, e in sd["state"].items()},
                           "param_groups": sd["param_groups"]})
    for i in range(len(params)):
        assert np.array_equal(again.state[i]["momentum_buffer"], opt.state[i]["momentum_buffer"])


# ----------------------------------------------------------------------------------------- threads


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_do_not_depend_on_the_thread_count(dtype):
    """Products split into several column panels, run with 1, 2 and 3 threads."""
    rng = np.random.default_rng(1)
    shapes = [(300, 520), (700, 260)]
    init = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(2)]

    def run(threads):
        old = fastoptim.get_num_threads()
        fastoptim.set_num_threads(threads)
        try:
            params = [p.copy() for p in init]
            opt = fastoptim.Muon(params, lr=0.02, ns_steps=2)
            for g in grads:
                opt.step(g)
            return params
        finally:
            fastoptim.set_num_threads(old)

    one = run(1)
    for threads in (2, 3):
        assert all(np.array_equal(a, b) for a, b in zip(one, run(threads)))


@pytest.mark.parametrize("shape,adjust,raises", [((3, 0), None, True), ((3, 0), "match_rms_adamw", False),
                                                 ((0, 3), None, False)])
def test_empty_parameter_as_torch(shape, adjust, raises):
    """torch's _adjust_lr divides rows by cols ("original"): a (n, 0) parameter raises ZeroDivisionError there;
    we raise it before changing anything. Other empty shapes step (nothing to update)."""
    opt = fastoptim.Muon([np.zeros(shape, np.float32), np.ones((2, 2), np.float32)], adjust_lr_fn=adjust)
    grads = [np.zeros(shape, np.float32), np.ones((2, 2), np.float32)]
    if raises:
        with pytest.raises(ZeroDivisionError):
            opt.step(grads)
        assert opt.state == {}
    else:
        opt.step(grads)
    if HAS_TORCH:
        import torch

        t_opt = torch.optim.Muon([torch.zeros(shape, requires_grad=True)], adjust_lr_fn=adjust)
        t_opt.param_groups[0]["params"][0].grad = torch.zeros(shape)
        if raises:
            with pytest.raises(ZeroDivisionError):
                t_opt.step()
        else:
            t_opt.step()


@requires_torch
@pytest.mark.parametrize("value", [1e-25, -3e-21, 2.5])
def test_one_by_one_matrix_norm_is_abs(value):
    """torch's norm of a single element is |x|; sqrt(x * x) would underflow below ~1e-19 (with a tiny eps,
    the orthogonalized update then became NaN or inf where torch's is +-1)."""
    import torch

    p = np.ones((1, 1), np.float32)
    g = np.full((1, 1), value, np.float32)
    opt = fastoptim.Muon([p], lr=0.1, eps=1e-30, weight_decay=0.0)
    opt.step([g])
    t = torch.ones(1, 1, requires_grad=True)
    t.grad = torch.tensor(g)
    torch.optim.Muon([t], lr=0.1, eps=1e-30, weight_decay=0.0).step()
    assert np.isfinite(p).all()
    np.testing.assert_array_equal(p, t.detach().numpy())
