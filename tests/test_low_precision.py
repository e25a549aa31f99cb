"""Low-precision storage (beyond torch): float16/bfloat16 parameters computed in float32, optional float32
master weights, optimizer state in bfloat16/float16 (``state_dtype=``), and stochastic rounding of
bfloat16 writes.

The reference for every elementwise optimizer is the optimizer itself in float32: one low-precision step
must equal "widen everything to float32, take the float32 step, round what was written". The conversions
are checked against numpy's float16 and ml_dtypes' bfloat16 on every 16-bit pattern."""

from __future__ import annotations

import re

import numpy as np
import pytest

import fastoptim
from fastoptim import _core
from conftest import assert_same_state

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)

# Every optimizer with low-precision kernels, with hyperparameters that exercise its options.
CONFIGS = {
    "SGD": dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    "Adam": dict(lr=1e-2, amsgrad=True, weight_decay=0.1),
    "AdamW": dict(lr=1e-2, weight_decay=0.05),
    "RMSprop": dict(lr=1e-2, centered=True, momentum=0.5),
    "Adagrad": dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.5),
    "Adadelta": dict(lr=1.0, rho=0.8, weight_decay=0.01),
    "Adamax": dict(lr=1e-2, weight_decay=0.01),
    "NAdam": dict(lr=1e-2, weight_decay=0.01),
    "RAdam": dict(lr=1e-2, betas=(0.8, 0.8)),
    "ASGD": dict(lr=1e-2, lambd=1e-2, t0=0),
    "Rprop": dict(lr=0.0625, etas=(0.5, 1.25)),
    "Lion": dict(lr=1e-3, weight_decay=0.1),
    "Adan": dict(lr=1e-2, weight_decay=0.02),
    "AdaBelief": dict(lr=1e-2, weight_decay=0.01, amsgrad=True),
}
NOT_SUPPORTED = ["LAMB", "Adafactor", "ScheduleFreeAdamW", "Muon", "SparseAdam", "LBFGS"]


def widen(a):
    return a.astype(np.float32) if a.dtype != np.float64 else a


def bits(a):
    return np.ascontiguousarray(a).view(np.uint16 if a.dtype.itemsize == 2 else np.uint32)


# ------------------------------------------------------------------------------------ conversions

def test_every_16_bit_pattern_widens_exactly():
    pattern = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    for dtype in (F16, BF16):
        out = np.empty(pattern.size, np.float32)
        _core._lowp_convert(pattern.view(dtype), out)
        want = pattern.view(dtype).astype(np.float32)
        nan = np.isnan(want)
        assert np.array_equal(np.isnan(out), nan)
        assert np.array_equal(out[~nan].view(np.uint32), want[~nan].view(np.uint32)), dtype


def _hard_floats():
    rng = np.random.default_rng(0)
    u = rng.integers(0, 1 << 32, 2_000_000, dtype=np.uint64).astype(np.uint32)
    # every 16-bit pattern with each low half: exact, just below/above and exactly at the ties
    hi = np.arange(1 << 16, dtype=np.uint32) << 16
    lows = np.array([0, 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF, 0x0FFF, 0x1000, 0x1001, 0x2000, 0x3000], np.uint32)
    grid = (hi[:, None] | lows[None, :]).ravel()
    return np.concatenate([u, grid]).view(np.float32)


def test_rounding_to_nearest_matches_numpy_and_ml_dtypes():
    x = _hard_floats()
    for dtype in (F16, BF16):
        out = np.empty(x.size, dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            want = x.astype(dtype)
        _core._lowp_convert(x, out)
        nan = np.isnan(x)
        assert np.isnan(out.astype(np.float32)[nan]).all()
        mismatch = np.flatnonzero(bits(out)[~nan] != bits(want)[~nan])
        assert mismatch.size == 0, (dtype, x[~nan][mismatch[:5]])


def test_stochastic_rounding_is_unbiased_reproducible_and_split_independent():
    x = np.full(200_000, 1.0 + 2.0 ** -10, np.float32)  # 1/8 of the way from 1 to the next bfloat16
    out = np.empty(x.size, BF16)
    _core._lowp_convert(x, out, key=12345)
    y = out.astype(np.float32)
    assert set(np.unique(y)) == {1.0, 1.0 + 2.0 ** -7}  # only the two neighbours
    assert abs(y.mean() - x[0]) < 4 * 2.0 ** -7 * np.sqrt(0.125 * 0.875 / x.size)  # 4 sigma
    again = np.empty_like(out)
    _core._lowp_convert(x, again, key=12345)
    assert np.array_equal(bits(again), bits(out))
    other = np.empty_like(out)
    _core._lowp_convert(x, other, key=54321)
    assert not np.array_equal(bits(other), bits(out))
    part = np.empty(1000, BF16)  # a slice converted on its own draws the same bits (thread splits)
    _core._lowp_convert(x[5000:6000], part, key=12345, first=5000)
    assert np.array_equal(bits(part), bits(out[5000:6000]))
    # exact values stay exact; negatives round symmetrically; NaN and inf survive
    special = np.array([0.0, -0.0, 1.5, -2.0, np.inf, -np.inf, np.nan], np.float32)
    s = np.empty(special.size, BF16)
    _core._lowp_convert(special, s, key=7)
    assert np.array_equal(s.astype(np.float32)[:6], special[:6]) and np.isnan(s.astype(np.float32)[6])
    neg = np.empty(x.size, BF16)
    _core._lowp_convert(-x, neg, key=12345)
    assert np.array_equal(neg.astype(np.float32), -y)


# --------------------------------------------------------------------- one step == float32 step

def _grads(rng, shapes, dtype):
    return [(rng.standard_normal(s) * 0.5).astype(dtype) for s in shapes]


def _reference_step(name, kw, params32, state32, groups, grads32):
    """The float32 optimizer's step from the given (widened) state."""
    ref = getattr(fastoptim, name)([{"params": params32[:1]}, {"params": params32[1:]}], **kw)
    sd = {"state": state32, "param_groups": groups}
    ref.load_state_dict(sd)
    ref.step(grads32)
    return ref


def _widened_state_dict(opt):
    sd = opt.state_dict()
    state = {i: {k: (widen(v) if isinstance(v, np.ndarray) and v.ndim else v) for k, v in e.items()
                 if k != "master_param"} for i, e in sd["state"].items()}
    return state, sd["param_groups"]


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("mode", ["bf16 state", "f16 state", "bf16 params", "f16 params + master",
                                  "bf16 params + master, f32 state", "f16 params, bf16 state"])
def test_one_low_precision_step_equals_the_float32_step_rounded(name, mode):
    """(Every optimizer here but Rprop loads and stores the first five layouts in its kernel, lowp_run.hpp's
    FusedStorage, except that AdaBelief, RMSprop, RAdam, NAdam and Adan leave master weights to the float32
    tiles; the last mode, and Rprop, always take the tiles.)"""
    kw = CONFIGS[name]
    rng = np.random.default_rng(hash((name, mode)) % 2**32)
    shapes = [(37,), (3, 1000), (5000,)]  # tails, and a tensor spanning several tiles
    pdtype = {"bf16 params": BF16, "f16 params + master": F16, "bf16 params + master, f32 state": BF16,
              "f16 params, bf16 state": F16}.get(mode, np.float32)
    extra = {"bf16 state": dict(state_dtype="bfloat16"), "f16 state": dict(state_dtype="float16"),
             "f16 params + master": dict(master_weights=True),
             "bf16 params + master, f32 state": dict(master_weights=True, state_dtype="float32"),
             "f16 params, bf16 state": dict(state_dtype="bfloat16")}.get(mode, {})
    params = [rng.standard_normal(s).astype(pdtype) for s in shapes]
    opt = getattr(fastoptim, name)([{"params": params[:1]}, {"params": params[1:]}], **kw, **extra)
    opt.step(_grads(rng, shapes, pdtype))  # creates the state
    sdtype = {"bf16 state": BF16, "f16 state": F16, "bf16 params + master, f32 state": np.dtype(np.float32),
              "f16 params, bf16 state": BF16}.get(mode, pdtype)
    for _ in range(4):
        grads = _grads(rng, shapes, pdtype)
        state32, groups = _widened_state_dict(opt)
        masters = [opt.state[i].get("master_param") for i in range(len(params))]
        start = [m.copy() if m is not None else widen(p) for m, p in zip(masters, params)]
        ref = _reference_step(name, kw, start, state32, groups, [widen(g) for g in grads])
        opt.step(grads)
        for i, p in enumerate(params):
            want = ref.param_groups[0 if i == 0 else 1]["params"][0 if i == 0 else i - 1]
            if masters[i] is not None:
                assert np.array_equal(opt.state[i]["master_param"], want), (name, mode, i)
            assert np.array_equal(bits(p), bits(want.astype(pdtype))), (name, mode, i)
            for key, buf in opt.state[i].items():
                if isinstance(buf, np.ndarray) and buf.ndim and key != "master_param":
                    assert buf.dtype == sdtype, (key, buf.dtype)
                    r = ref.state[i][key]
                    assert np.array_equal(bits(buf), bits(r.astype(sdtype))), (name, mode, i, key)


# Settings the C++ driver (cpp/bindings/driver.hpp) must handle exactly as the Python loop it replaces.
DRIVER_MODES = {
    "bf16 state": (np.float32, dict(state_dtype="bfloat16")),
    "f16 params, f32 state": (F16, dict(state_dtype="float32")),
    "f16 params + master, bf16 state": (F16, dict(master_weights=True, state_dtype="bfloat16")),
    "bf16 params + master + rounding": (BF16, dict(master_weights=True, stochastic_rounding=True, rounding_seed=7)),
    "bf16 params + rounding": (BF16, dict(stochastic_rounding=True, rounding_seed=3)),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("mode", sorted(DRIVER_MODES))
def test_cpp_bookkeeping_equals_the_python_loop_with_low_precision(name, mode):
    """The C++ driver with 16-bit parameters, master weights, a state dtype and stochastic rounding gives the
    bits, state and rounding counter of the Python loop, with missing gradients, two groups, a state_dict
    round trip, and a failing step that changes nothing on either path."""
    cls = getattr(fastoptim, name)
    assert cls._drive is not None
    slow_cls = type("Slow" + name, (cls,), {"_drive": None})
    pdtype, extra = DRIVER_MODES[mode]
    rng = np.random.default_rng(11)
    shapes = [(3, 4), (5,), (), (70001,)]
    a = [rng.standard_normal(s).astype(pdtype) for s in shapes]
    b = [x.copy() for x in a]
    fast = cls([{"params": a[:2]}, {"params": a[2:]}], **CONFIGS[name], **extra)
    slow = slow_cls([{"params": b[:2]}, {"params": b[2:]}], **CONFIGS[name], **extra)
    for t in range(6):
        grads = [None if (t + i) % 3 == 0 else rng.standard_normal(s).astype(pdtype) for i, s in enumerate(shapes)]
        if t == 3:
            sd = fast.state_dict()
            fast.load_state_dict(sd)
            slow.load_state_dict(sd)
            assert_same_state(fast, slow)
        fast.step(grads)
        slow.step([None if g is None else g.copy() for g in grads])
        for x, y in zip(a, b):
            assert np.array_equal(bits(x), bits(y)), t
        assert_same_state(fast, slow)
        assert fast._rounding_step == slow._rounding_step
    # A step that fails on its last gradient: the same message, nothing changed, no rounding bits used.
    before = [bits(x).copy() for x in a]
    bad = [rng.standard_normal(s).astype(pdtype) for s in shapes[:-1]] + [np.ones(shapes[-1], np.float64)]
    messages = []
    for opt in (fast, slow):
        with pytest.raises(TypeError) as err:
            opt.step(bad)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and "gradient of parameter 3 has dtype float64" in messages[0]
    assert all(np.array_equal(bits(x), y) for x, y in zip(a, before))
    assert_same_state(fast, slow)
    assert fast._rounding_step == slow._rounding_step


def test_float32_params_keep_float32_state_by_default_and_the_fast_path():
    p = np.ones(10, np.float32)
    opt = fastoptim.Adam([p])
    opt.step([np.ones(10, np.float32)])
    assert opt.state[0]["exp_avg"].dtype == np.float32
    assert not opt._uses_low_precision()


# ------------------------------------------------------------------------- stochastic rounding

def test_stochastic_rounding_lets_small_updates_accumulate():
    # bfloat16 has 8 significant bits: 1 - 1e-3 rounds back to 1 under round-to-nearest
    def run(**kw):
        p = np.ones(10_000, BF16)
        opt = fastoptim.SGD([p], lr=1e-3, **kw)
        g = np.ones(10_000, BF16)
        for _ in range(100):
            opt.step([g])
        return p.astype(np.float64)

    assert np.all(run() == 1.0)  # stuck
    sr = run(stochastic_rounding=True, rounding_seed=3)
    assert abs(sr.mean() - 0.9) < 2e-3  # 100 steps of 1e-3, unbiased on average
    assert np.array_equal(run(stochastic_rounding=True, rounding_seed=3), sr)  # reproducible
    assert not np.array_equal(run(stochastic_rounding=True, rounding_seed=4), sr)


def test_stochastic_rounding_resumes_from_a_state_dict():
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(3000).astype(BF16) for _ in range(6)]
    p = rng.standard_normal(3000).astype(BF16)
    q = p.copy()
    kw = dict(lr=1e-2, state_dtype="bfloat16", stochastic_rounding=True, rounding_seed=11)
    a = fastoptim.Adam([p], **kw)
    for g in grads:
        a.step([g])
    b = fastoptim.Adam([q], **kw)
    for g in grads[:3]:
        b.step([g])
    sd = b.state_dict()
    assert sd["rounding"] == {"seed": 11, "step": 3}
    c = fastoptim.Adam([q], **kw)
    c.load_state_dict(sd)
    for g in grads[3:]:
        c.step([g])
    assert np.array_equal(bits(p), bits(q))
    assert np.array_equal(bits(a.state[0]["exp_avg"]), bits(c.state[0]["exp_avg"]))


def test_master_weights_keep_small_updates():
    p = np.ones(1000, F16)
    opt = fastoptim.SGD([p], lr=1e-5, master_weights=True)
    for _ in range(200):
        opt.step([np.ones(1000, F16)])
    assert np.allclose(opt.state[0]["master_param"], 1 - 200e-5, rtol=0, atol=1e-5)  # float32 accumulation
    assert np.array_equal(p, opt.state[0]["master_param"].astype(F16))
    assert np.all(p < 1)
    stuck = np.ones(1000, F16)  # without master weights each 1e-5 step rounds back to 1
    opt = fastoptim.SGD([stuck], lr=1e-5)
    for _ in range(200):
        opt.step([np.ones(1000, F16)])
    assert np.all(stuck == 1)


def test_low_precision_results_do_not_depend_on_the_thread_count():
    def run(threads):
        saved = fastoptim.get_num_threads()
        fastoptim.set_num_threads(threads)
        try:
            rng = np.random.default_rng(5)
            params = [rng.standard_normal(n).astype(BF16) for n in (300_001, 70_000, 17)]
            opt = fastoptim.Adam(params, lr=1e-2, state_dtype="bfloat16", master_weights=True,
                                 stochastic_rounding=True)
            for _ in range(3):
                opt.step([rng.standard_normal(p.shape).astype(BF16) for p in params])
            return [bits(p).copy() for p in params] + [bits(opt.state[i][k]).copy() for i in opt.state
                                                         for k in ("exp_avg", "exp_avg_sq")]
        finally:
            fastoptim.set_num_threads(saved)

    one, two = run(1), run(2)
    assert all(np.array_equal(a, b) for a, b in zip(one, two))


# ----------------------------------------------------------------------------------- bad input

def test_bad_low_precision_inputs_raise_and_change_nothing():
    p = np.ones(4, BF16)
    opt = fastoptim.Adam([p], state_dtype="bfloat16")
    with pytest.raises(TypeError, match=r"gradient of parameter 0 has dtype float32, but parameter 0 is bfloat16"):
        opt.step([np.ones(4, np.float32)])
    assert opt.state == {} and np.all(p.astype(np.float32) == 1)
    opt.step([np.ones(4, BF16)])
    before = {k: np.copy(v) for k, v in opt.state[0].items()}
    opt.state[0]["exp_avg"] = np.zeros(4, np.float64)
    with pytest.raises(TypeError, match=r"state 'exp_avg' of parameter 0 has dtype float64, but parameter 0 is "
                                        r"bfloat16"):
        opt.step([np.ones(4, BF16)])
    opt.state[0]["exp_avg"] = before["exp_avg"]
    f32 = np.ones(4, np.float32)  # float32 parameter, bfloat16 state
    lowstate = fastoptim.Adam([f32], state_dtype="bfloat16")
    lowstate.step([np.ones(4, np.float32)])
    lowstate.state[0]["exp_avg_sq"] = np.zeros(4, np.float32)
    with pytest.raises(TypeError, match=r"state 'exp_avg_sq' of parameter 0 has dtype float32, but the state dtype "
                                        r"is bfloat16"):
        lowstate.step([np.ones(4, np.float32)])
    assert np.array_equal(bits(opt.state[0]["exp_avg_sq"]), bits(before["exp_avg_sq"]))
    # float32 parameters keep float32 state unless state_dtype says otherwise: a 16-bit buffer is refused
    r = np.ones(4, np.float32)
    plain = fastoptim.Adagrad([r])
    plain.step([np.ones(4, np.float32)])
    plain.state[0]["sum"] = np.zeros(4, F16)
    with pytest.raises(TypeError, match=r"state 'sum' of parameter 0 has dtype float16, but parameter 0 is float32"):
        plain.step([np.ones(4, np.float32)])
    assert np.all(r == r[0])
    # a failed step does not use up stochastic-rounding bits
    s = np.ones(4, BF16)
    sr = fastoptim.SGD([s], lr=0.1, stochastic_rounding=True)
    with pytest.raises(TypeError):
        sr.step([np.ones(4, np.float32)])
    assert sr._rounding_step == 0
    with pytest.raises(ValueError, match="state_dtype must be None, 'float32', 'float16' or 'bfloat16'"):
        fastoptim.Adam([np.ones(2, np.float32)], state_dtype="float64")
    with pytest.raises(ValueError, match="parameter 0 is float64: state_dtype applies to"):
        fastoptim.Adam([np.ones(2)], state_dtype="bfloat16")
    with pytest.raises(ValueError, match="rounding_seed must be an integer"):
        fastoptim.SGD([np.ones(2, np.float32)], stochastic_rounding=True, rounding_seed=-1)
    # master weights of the wrong dtype are reported, not converted
    q = np.ones(3, F16)
    m = fastoptim.SGD([q], lr=0.1, master_weights=True)
    m.step([np.ones(3, F16)])
    m.state[0]["master_param"] = np.ones(3, np.float64)
    with pytest.raises(TypeError, match=r"state 'master_param' of parameter 0 has dtype float64, expected float32"):
        m.step([np.ones(3, F16)])
    assert np.all(q == np.float16(0.9))


@pytest.mark.parametrize("name", NOT_SUPPORTED)
def test_optimizers_without_low_precision_kernels_say_so(name):
    cls = getattr(fastoptim, name)
    with pytest.raises(TypeError, match=re.escape("has dtype bfloat16")):
        cls([np.ones((2, 2), BF16)])
    if name not in ("LBFGS",):
        with pytest.raises((TypeError, ValueError)):
            cls([np.ones((2, 2), np.float32)], state_dtype="bfloat16")


def test_driver_path_rejects_a_16_bit_array_swapped_in():
    p = np.ones(4, np.float32)
    opt = fastoptim.Adam([p])
    opt.param_groups[0]["params"][0] = np.ones(4, F16)  # behind the optimizer's back
    with pytest.raises(TypeError, match="dtype float16"):
        opt.step([np.ones(4, F16)])


# ---------------------------------------------------------------------------------- convergence

def test_bfloat16_state_trains_the_demo_to_the_same_accuracy(capsys):
    pytest.importorskip("sklearn")
    from fastoptim.__main__ import main

    def accuracy(*args):
        assert main(["demo", "--no-progress", *args]) == 0
        out = capsys.readouterr().out
        return float(re.search(r"validation accuracy ([0-9.]+)", out).group(1))

    f32 = accuracy()
    bf16 = accuracy("--opt-arg", "state_dtype=bfloat16")
    assert f32 > 0.95 and abs(bf16 - f32) <= 0.01, (f32, bf16)


# ---------------------------------------------------------------------------------- checkpoints

def test_checkpoints_keep_16_bit_state_master_weights_and_the_rounding_counter(tmp_path):
    rng = np.random.default_rng(3)
    grads = [[rng.standard_normal(n).astype(BF16) for n in (300, 7)] for _ in range(6)]
    kw = dict(lr=1e-2, state_dtype="float16", master_weights=True, stochastic_rounding=True, rounding_seed=9)

    def fresh():
        return [np.linspace(-1, 1, n).astype(BF16) for n in (300, 7)]

    full = fresh()
    a = fastoptim.AdamW(full, **kw)
    for g in grads:
        a.step(g)
    half = fresh()
    b = fastoptim.AdamW(half, **kw)
    for g in grads[:3]:
        b.step(g)
    fastoptim.save(tmp_path / "lowp.safetensors", b)
    resumed = [p.copy() for p in half]
    c = fastoptim.AdamW(resumed, **kw)
    fastoptim.load(tmp_path / "lowp.safetensors", c)
    assert c.state[0]["exp_avg"].dtype == F16 and c.state[0]["master_param"].dtype == np.float32
    assert c._rounding_step == 3
    for g in grads[3:]:
        c.step(g)
    for p, q in zip(full, resumed):
        assert np.array_equal(bits(p), bits(q))
    # the file's state dtype must be the optimizer's: no silent conversion
    other = fastoptim.AdamW([p.copy() for p in half], lr=1e-2, master_weights=True)
    with pytest.raises(ValueError, match="has dtype F16, the parameter is BF16"):
        fastoptim.load(tmp_path / "lowp.safetensors", other)
    assert other.state == {}


def test_bfloat16_state_checkpoint_round_trip(tmp_path):
    p = np.arange(10, dtype=np.float32)
    opt = fastoptim.Adam([p], state_dtype="bfloat16")
    opt.step([np.ones(10, np.float32)])
    fastoptim.save(tmp_path / "bf.safetensors", opt)
    q = np.arange(10, dtype=np.float32)
    opt2 = fastoptim.Adam([q], state_dtype="bfloat16")
    fastoptim.load(tmp_path / "bf.safetensors", opt2)
    assert opt2.state[0]["exp_avg_sq"].dtype == BF16
    assert np.array_equal(bits(opt2.state[0]["exp_avg_sq"]), bits(opt.state[0]["exp_avg_sq"]))
    plain = fastoptim.Adam([np.arange(10, dtype=np.float32)])
    with pytest.raises(ValueError, match="has dtype BF16, the parameter is F32"):
        fastoptim.load(tmp_path / "bf.safetensors", plain)
