"""Adafactor and SparseAdam beyond the registry-driven tests: every rounding against torch (with the one
rounding we do differently replaced by ours), torch's edge cases (eps1=None in a mixed-dtype group, empty
parameters, sparse vs dense gradients), SparseAdam's row semantics, and its bad sparse gradients (each
raises before anything is modified)."""

from __future__ import annotations

import numpy as np
import pytest

import fastoptim
import parity
from conftest import requires_torch
from factored_reference import correctly_rounded_sqrt, fastoptim_reductions
from test_bad_inputs import (TARGET_IDS, TARGETS, STEPS, STEPS_IDS, assert_same_value, expect_no_change, good_grads,
                             make, misaligned, read_only, words_pattern)

DTYPES = [np.float32, np.float64]


def _random_shapes_grads(rng, shapes, dtype, skip):
    """Gradients of mixed scales; parameter i gets None where skip(i) holds."""
    return [None if skip(i) else np.asarray(rng.standard_normal(s) * 10.0 ** rng.integers(-4, 1), dtype)
            for i, s in enumerate(shapes)]


# ------------------------------------------------------------------------------------------- Adafactor

ADAFACTOR_CONFIGS = [
    dict(),
    dict(lr=0.1, weight_decay=0.02, maximize=True, d=1.5, eps=(1e-3, 1e-2), beta2_decay=-0.5),
    dict(lr=0.5, d=4.0, eps=(None, 1e-4)),
]


@requires_torch
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("k", range(len(ADAFACTOR_CONFIGS)))
def test_adafactor_is_torch_with_our_summation_order(k, dtype):
    """Bit for bit torch's single-tensor Adafactor once its norms and means are summed in our documented order
    (factored_reference.fastoptim_reductions, written from the header's description): every other rounding
    is torch's. The shapes have several row and column tiles, a batch of matrices, vectors and a scalar."""
    import torch

    config = ADAFACTOR_CONFIGS[k]
    # (65, 257): two row tiles by two column tiles (float32 only: the reference fuses float64 squares slowly)
    shapes = [(4, 5), (65, 257) if dtype == np.float32 else (9, 6), (7,), (3, 2, 2), (1,), ()]
    rng = np.random.default_rng(k)
    params = [np.asarray(rng.standard_normal(s), dtype) for s in shapes]
    t_params = [torch.from_numpy(p.copy()).requires_grad_(True) for p in params]
    ours = fastoptim.Adafactor(params, **config)
    theirs = torch.optim.Adafactor(t_params, foreach=False, **config)
    for t in range(1, 7):
        grads = _random_shapes_grads(rng, shapes, dtype, lambda i: i == 2 and t % 3 == 0)
        ours.step(grads)
        for p, g in zip(t_params, grads):
            p.grad = None if g is None else torch.from_numpy(g.copy())
        with fastoptim_reductions() as calls:
            theirs.step()
        assert calls  # the replacement was used
    for i, (p, q) in enumerate(zip(params, t_params)):
        assert_same_value(p, q.detach().numpy(), f"parameter {i}")
        state = theirs.state[q]
        assert set(ours.state[i]) == set(state)
        for key, value in state.items():
            assert_same_value(np.asarray(ours.state[i][key]), value.numpy(), f"state[{i}][{key!r}]")


@requires_torch
def test_adafactor_eps1_none_takes_the_first_stepped_parameters_dtype():
    """torch's loop sets eps1 = finfo(dtype).eps at the group's first parameter with a gradient and keeps it
    for the others: a float32 parameter after a float64 one gets float64's epsilon (and its own when the
    float64 one has no gradient). Tiny gradients make eps1 decide the update."""
    import torch

    rng = np.random.default_rng(3)
    init = [rng.standard_normal((3, 4)), rng.standard_normal((5,)).astype(np.float32)]
    grads = [[None if t % 2 == 0 else rng.standard_normal((3, 4)) * 1e-9,
              (rng.standard_normal(5) * 1e-8).astype(np.float32)] for t in range(8)]
    params = [p.copy() for p in init]
    t_params = [torch.from_numpy(p.copy()).requires_grad_(True) for p in init]
    ours = fastoptim.Adafactor(params, lr=0.1)
    theirs = torch.optim.Adafactor(t_params, lr=0.1, foreach=False)
    for step in grads:
        ours.step(step)
        for p, g in zip(t_params, step):
            p.grad = None if g is None else torch.from_numpy(g.copy())
        with fastoptim_reductions():
            theirs.step()
    for p, q in zip(params, t_params):
        assert_same_value(p, q.detach().numpy(), "parameter")
    # The quirk matters here: in a group of its own the float32 parameter ends elsewhere.
    alone = [init[1].copy()]
    opt = fastoptim.Adafactor(alone, lr=0.1)
    for step in grads:
        opt.step(step[1:])
    assert not np.array_equal(alone[0], params[1])


@requires_torch
def test_adafactor_empty_parameter_raises_like_torch_and_changes_nothing():
    import torch

    with pytest.raises(ZeroDivisionError):
        p = torch.zeros((0, 3), requires_grad=True)
        p.grad = torch.zeros((0, 3))
        torch.optim.Adafactor([p], foreach=False).step()
    w, empty = np.ones((2, 3), np.float32), np.zeros((0, 3), np.float32)
    opt = fastoptim.Adafactor([w, empty])
    expect_no_change(opt, lambda: opt.step([np.ones((2, 3), np.float32), np.zeros((0, 3), np.float32)]),
                     ZeroDivisionError, words_pattern("parameter 1", "no elements"))
    opt.step([np.ones((2, 3), np.float32), None])
    assert np.all(w < 1) and sorted(opt.state) == [0]


def test_adafactor_refuses_sparse_gradients_as_torch():
    opt = fastoptim.Adafactor([np.ones((3, 2))])
    with pytest.raises(RuntimeError, match="^Adafactor does not support sparse gradients$"):
        opt.step([(np.array([0]), np.ones((1, 2)))])


def test_adafactor_state_keys_and_shapes_are_torchs():
    shapes = [(4, 5), (2, 3, 4), (6,), ()]
    params = [np.ones(s) for s in shapes]
    opt = fastoptim.Adafactor(params)
    opt.step([np.full(s, 0.5) for s in shapes])
    want = [{"row_var": (4, 1), "col_var": (1, 5)}, {"row_var": (2, 3, 1), "col_var": (2, 1, 4)},
            {"variance": (6,)}, {"variance": ()}]
    for i, keys in enumerate(want):
        assert set(opt.state[i]) == set(keys) | {"step"}
        for key, shape in keys.items():
            assert opt.state[i][key].shape == shape and opt.state[i][key].dtype == np.float64


@pytest.mark.parametrize("index,key,value,words", [
    (0, "variance", np.zeros((4, 5)), ("state 'variance' of parameter 0", "does not apply")),
    (1, "row_var", np.zeros((6, 1)), ("state 'row_var' of parameter 1", "does not apply")),
    (0, "row_var", np.zeros((1, 5)), ("state 'row_var' of parameter 0", "shape (1, 5)", "expected (4, 1)")),
    (0, "col_var", np.zeros((4, 5)), ("state 'col_var' of parameter 0", "expected (1, 5)")),
])
def test_adafactor_load_state_dict_checks_factored_shapes(index, key, value, words):
    params = [np.ones((4, 5)), np.ones(6)]
    opt = fastoptim.Adafactor(params)
    opt.step([np.full((4, 5), 0.5), np.full(6, 0.5)])
    sd = opt.state_dict()
    sd["state"][index][key] = value
    expect_no_change(opt, lambda: opt.load_state_dict(sd), ValueError, words_pattern(*words))


# ------------------------------------------------------------------------------------------ SparseAdam

SPARSE_SHAPES = [(6, 4), (5,), (3, 2, 2), (1,)]


def _sparse_grads(rng, params, t, dtype):
    """Repeated and unsorted rows, an empty gradient now and then, None for parameter 1 every fourth step."""
    out = []
    for i, p in enumerate(params):
        if i == 1 and t % 4 == 0:
            out.append(None)
            continue
        nnz = 0 if t % 5 == 3 else int(rng.integers(1, 2 * p.shape[0] + 1))
        rows = rng.integers(0, p.shape[0], nnz)
        out.append((rows, np.asarray(rng.standard_normal((nnz,) + p.shape[1:]) * 10.0 ** rng.integers(-3, 1), dtype)))
    return out


@requires_torch
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("config", [dict(), dict(lr=0.03, betas=(0.5, 0.9), eps=1e-3, maximize=True)],
                         ids=["defaults", "maximize"])
def test_sparse_adam_is_torch_with_a_correctly_rounded_sqrt(config, dtype):
    """Bit for bit torch's SparseAdam (coalescing included) once its sqrt (MKL's) is correctly rounded."""
    import torch

    rng = np.random.default_rng(5)
    params = [np.asarray(rng.uniform(-1, 1, s), dtype) for s in SPARSE_SHAPES]
    t_params = [torch.from_numpy(p.copy()).requires_grad_(True) for p in params]
    ours = fastoptim.SparseAdam(params, **config)
    theirs = torch.optim.SparseAdam(t_params, **config)
    for t in range(1, 16):
        grads = _sparse_grads(rng, params, t, dtype)
        ours.step(grads)
        for p, g in zip(t_params, grads):
            p.grad = parity.to_torch_grad(g, p.shape)
        with correctly_rounded_sqrt():
            theirs.step()
    for i, (p, q) in enumerate(zip(params, t_params)):
        assert_same_value(p, q.detach().numpy(), f"parameter {i}")
        state = theirs.state[q]
        assert type(ours.state[i]["step"]) is int and ours.state[i]["step"] == state["step"]
        for key in ("exp_avg", "exp_avg_sq"):
            assert_same_value(ours.state[i][key], state[key].numpy(), f"state[{i}][{key!r}]")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_sparse_adam_sums_repeated_rows_in_the_order_given(dtype):
    """A row listed several times steps as if listed once with its values summed left to right (in gradients
    of up to 16 entries; beyond, in torch's sort order: test_fuzz_torch.py); rows not listed keep their
    parameter and moments."""
    rng = np.random.default_rng(2)
    a, b = (np.asarray(rng.standard_normal((5, 3)), dtype) for _ in range(2))
    b[...] = a
    opt_a, opt_b = fastoptim.SparseAdam([a], lr=0.1), fastoptim.SparseAdam([b], lr=0.1)
    for _ in range(3):
        rows = np.array([3, 0, 3, 3, 1], np.int64)
        vals = np.asarray(rng.standard_normal((5, 3)) * 10.0 ** rng.integers(-6, 2, (5, 3)), dtype)
        summed = ((vals[0] + vals[2]) + vals[3]).astype(dtype)
        before = b.copy()
        state_before = {k: v.copy() for k, v in opt_b.state.get(0, {}).items() if k != "step"}
        opt_a.step([(rows, vals)])
        opt_b.step([(np.array([0, 1, 3], np.int64), np.stack([vals[1], vals[4], summed]))])
        assert_same_value(a, b, "parameter")
        assert np.array_equal(b[[2, 4]], before[[2, 4]])
        for key, old in state_before.items():
            assert np.array_equal(opt_b.state[0][key][[2, 4]], old[[2, 4]])
        for key in ("exp_avg", "exp_avg_sq"):
            assert_same_value(opt_a.state[0][key], opt_b.state[0][key], key)


def test_sparse_adam_empty_gradient_advances_step_only():
    p = np.ones((4, 2), np.float32)
    opt = fastoptim.SparseAdam([p])
    opt.step([(np.zeros(0, np.int64), np.zeros((0, 2), np.float32))])
    assert np.all(p == 1) and opt.state[0]["step"] == 1 and not np.any(opt.state[0]["exp_avg"])
    opt.step([(np.array([2], np.int64), np.ones((1, 2), np.float32))])
    assert opt.state[0]["step"] == 2 and np.all(p[2] < 1) and np.all(p[[0, 1, 3]] == 1)
    assert type(opt.state_dict()["state"][0]["step"]) is int


def test_sparse_adam_read_only_and_shared_gradient_arrays_are_accepted():
    a, b, c, d = (np.ones((3, 2)) for _ in range(4))
    rows, vals = np.array([2, 0], np.int64), np.full((2, 2), 0.5)
    opt, twin = fastoptim.SparseAdam([a, b]), fastoptim.SparseAdam([c, d])
    opt.step([(read_only(rows), read_only(vals)), (rows, vals)])  # one pair for two parameters
    twin.step([(rows.copy(), vals.copy()), (rows.copy(), vals.copy())])
    for x, y in ((a, c), (b, d)):
        assert_same_value(x, y, "parameter")


def _strided_1d(x):
    v = np.repeat(x, 2)[::2]
    assert not v.flags.c_contiguous or v.size <= 1
    return v


GI = "gradient indices of parameter {t}"
GV = "gradient values of parameter {t}"
# id: (build(indices, values, params, opt, t) -> the bad gradient of parameter t, exception, words)
BAD_SPARSE = {
    "dense_array": (lambda i, v, ps, opt, t: v, RuntimeError, ("does not support dense gradients",)),
    "list_pair": (lambda i, v, ps, opt, t: [i, v], TypeError, ("gradient of parameter {t}", "tuple")),
    "triple": (lambda i, v, ps, opt, t: (i, v, v), TypeError, ("gradient of parameter {t}", "tuple")),
    "indices_int32": (lambda i, v, ps, opt, t: (i.astype(np.int32), v), TypeError, (GI, "dtype int32", "int64")),
    "indices_uint64": (lambda i, v, ps, opt, t: (i.astype(np.uint64), v), TypeError, (GI, "dtype uint64")),
    "indices_float": (lambda i, v, ps, opt, t: (i.astype(np.float64), v), TypeError, (GI, "dtype float64")),
    "indices_big_endian": (lambda i, v, ps, opt, t: (i.astype(">i8"), v), TypeError, (GI, "dtype >i8")),
    "indices_list": (lambda i, v, ps, opt, t: (i.tolist(), v), TypeError, (GI, "numpy.ndarray")),
    "indices_2d": (lambda i, v, ps, opt, t: (i[None], v), ValueError, (GI, "shape (1, 3)")),
    "indices_strided": (lambda i, v, ps, opt, t: (_strided_1d(i), v), ValueError, (GI, "C-contiguous")),
    "index_too_large": (lambda i, v, ps, opt, t: (np.array([0, ps[t].shape[0], 1], np.int64), v), ValueError,
                        (GI, "index {rows}", "out of range", "size {rows}")),
    "index_negative": (lambda i, v, ps, opt, t: (np.array([0, -1, 1], np.int64), v), ValueError,
                       (GI, "index -1", "out of range")),
    "values_other_dtype": (lambda i, v, ps, opt, t: (i, v.astype(np.float16)), TypeError, (GV, "dtype float16")),
    "values_fewer_rows": (lambda i, v, ps, opt, t: (i, v[:2].copy()), ValueError, (GV, "shape")),
    "values_other_row_shape": (lambda i, v, ps, opt, t: (i, np.ones((3, ps[t].shape[1] + 1), v.dtype)), ValueError,
                               (GV, "shape")),
    "values_flat": (lambda i, v, ps, opt, t: (i, v.reshape(-1).copy()), ValueError, (GV, "shape")),
    "values_strided": (lambda i, v, ps, opt, t: (i, np.repeat(v, 2, axis=-1)[..., ::2]), ValueError,
                       (GV, "C-contiguous")),
    "values_misaligned": (lambda i, v, ps, opt, t: (i, misaligned(v.shape, v.dtype)), ValueError, (GV, "aligned")),
    "values_view_of_a_param": (lambda i, v, ps, opt, t: (i, ps[t + 2].reshape(-1)[:v.size].reshape(v.shape)),
                               ValueError, ("parameter {t}", "parameter {t2}", "overlap")),
    "values_view_of_a_state_buffer": (lambda i, v, ps, opt, t: (i, _state_view(opt, t + 2, v)), ValueError,
                                      ("parameter {t}", "parameter {t2}", "overlap")),
}


def _state_view(opt, index, like):
    buf = opt.state.get(index, {}).get("exp_avg")
    if buf is None:
        pytest.skip("no state yet")
    return buf.reshape(-1)[:like.size].reshape(like.shape)


@pytest.mark.parametrize("t", TARGETS, ids=TARGET_IDS)
@pytest.mark.parametrize("steps", STEPS, ids=STEPS_IDS)
@pytest.mark.parametrize("case", list(BAD_SPARSE))
def test_sparse_adam_rejects_bad_gradient_and_modifies_nothing(case, steps, t):
    opt, params, rng = make("SparseAdam", steps)
    grads = good_grads(params, rng, "SparseAdam")
    build, exc, words = BAD_SPARSE[case]
    rows = np.array([1, 0, 1], np.int64)  # three rows, one repeated
    values = np.ones((3,) + params[t].shape[1:], params[t].dtype)
    grads[t] = build(rows, values, params, opt, t)
    words = tuple(w.format(t=t, t2=t + 2, rows=params[t].shape[0]) for w in words)
    expect_no_change(opt, lambda: opt.step(grads), exc, words_pattern(*words), grads)


def test_sparse_adam_rejects_indices_in_a_parameters_memory():
    """Indices are read while parameters are written: they may not share memory (zeros are valid rows)."""
    p = np.zeros((4, 2))
    opt = fastoptim.SparseAdam([p])
    rows = p.reshape(-1).view(np.int64)[:3]
    assert np.shares_memory(rows, p) and rows.flags.c_contiguous
    expect_no_change(opt, lambda: opt.step([(rows, np.ones((3, 2)))]), ValueError, words_pattern("parameter 0", "overlap"))


def test_sparse_adam_rejects_a_gradient_for_a_0d_parameter():
    opt = fastoptim.SparseAdam([np.ones(()), np.ones(3)])
    expect_no_change(opt, lambda: opt.step([(np.zeros(1, np.int64), np.ones(1)), None]), ValueError,
                     words_pattern("parameter 0", "0-d"))


@pytest.mark.parametrize("value", [2.5, np.array(1.5, np.float32)])
def test_sparse_adam_refuses_a_fractional_step(value):
    opt = fastoptim.SparseAdam([np.ones(3)])
    opt.step([(np.array([1], np.int64), np.ones(1))])
    sd = opt.state_dict()
    sd["state"][0]["step"] = value
    expect_no_change(opt, lambda: opt.load_state_dict(sd), ValueError, words_pattern("step", "whole number"))


# ---------------------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("name", ["Adafactor", "SparseAdam"])
def test_checkpoint_round_trip_resumes_bit_identically(tmp_path, name):
    """fastoptim.save/load: Adafactor's factored state is not shaped like its parameter, SparseAdam's step
    is an int (saved as torch's F32 scalar)."""
    from fastoptim.lr_scheduler import StepLR

    def build(params):
        opt = getattr(fastoptim, name)(parity._groups(params, name), lr=0.01)
        return opt, StepLR(opt, step_size=3, gamma=0.5)

    seed = 17
    params = parity.initial_params(np.float32, seed)
    opt, sched = build(params)

    def run(o, s, ps, steps):
        for t in steps:
            o.step([parity.make_gradient(name, p, seed, t, i) for i, p in enumerate(ps)])
            s.step()

    run(opt, sched, params, range(1, 11))
    fastoptim.save(tmp_path / "ckpt.safetensors", opt, sched)
    params2 = [p.copy() for p in params]
    opt2, sched2 = build(params2)
    fastoptim.load(tmp_path / "ckpt.safetensors", opt2, sched2)
    run(opt, sched, params, range(11, 21))
    run(opt2, sched2, params2, range(11, 21))
    for p, q in zip(params, params2):
        assert_same_value(p, q, "parameter")
    assert_same_value(opt2.state_dict(), opt.state_dict(), "state dict")
