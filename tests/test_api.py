"""The torch-shaped API: signatures and defaults, param_groups, None gradients, in-place updates,
threading determinism."""

from __future__ import annotations

import inspect

import os

import numpy as np
import pytest

import fastoptim
import parity
from conftest import assert_same_state, requires_torch

NAMES = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "ASGD", "Rprop", "Adamax", "NAdam", "RAdam",
         "Adafactor", "SparseAdam"]
# Optimizers whose gradients are (indices, values) of rows of the leading dimension, not arrays.
SPARSE = {"SparseAdam"}

DEFAULTS = {
    "SGD": dict(lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False),
    "Adam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, maximize=False,
                 decoupled_weight_decay=False),
    "AdamW": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, maximize=False,
                  decoupled_weight_decay=True),
    "RMSprop": dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, maximize=False),
    "Adagrad": dict(lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10, maximize=False),
    "Adadelta": dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False),
    "ASGD": dict(lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, maximize=False),
    "Rprop": dict(lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), maximize=False),
    "Adamax": dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, maximize=False),
    "NAdam": dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                  decoupled_weight_decay=False, maximize=False),
    "RAdam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False, maximize=False),
    "Adafactor": dict(lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, maximize=False),
    "SparseAdam": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False),
}


def grad_for(name, g):
    """A dense gradient as optimizer ``name`` takes it: for sparse ones, every row listed once."""
    if name in SPARSE and g is not None:
        return np.arange(g.shape[0], dtype=np.int64), g
    return g


@pytest.mark.parametrize("name", NAMES)
def test_defaults(name):
    opt = getattr(fastoptim, name)([np.zeros(2, np.float32)])
    for key, value in DEFAULTS[name].items():
        assert opt.param_groups[0][key] == value, key
        assert opt.defaults[key] == value, key


LOW_PRECISION_ARGS = ["state_dtype", "master_weights", "stochastic_rounding", "rounding_seed"]


@requires_torch
@pytest.mark.parametrize("name", NAMES)
def test_signature_matches_torch(name):
    import torch

    ours = inspect.signature(getattr(fastoptim, name)).parameters
    theirs = inspect.signature(getattr(torch.optim, name)).parameters
    # torch's arguments in torch's order, then (keyword-only) our low-precision storage options
    extra = [k for k in LOW_PRECISION_ARGS if k in ours]
    assert extra in ([], LOW_PRECISION_ARGS)
    assert list(ours) == list(theirs) + extra
    assert all(ours[k].kind == inspect.Parameter.KEYWORD_ONLY for k in extra)
    for key in theirs:
        assert ours[key].kind == theirs[key].kind, key
        assert ours[key].default == theirs[key].default, key


@requires_torch
@pytest.mark.parametrize("name", NAMES)
def test_param_group_layout_matches_torch(name):
    import torch

    ours = getattr(fastoptim, name)([np.zeros(2, np.float32)], lr=0.5)
    theirs = getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], lr=0.5)
    assert ours.state_dict()["param_groups"] == theirs.state_dict()["param_groups"]


@pytest.mark.parametrize("name", NAMES)
def test_updates_the_given_arrays_in_place(name):
    w = np.ones((3, 4), np.float32)
    b = np.ones(4, np.float64)
    opt = getattr(fastoptim, name)([w, b], lr=0.1)
    w_id, b_id = id(w), id(b)
    opt.step([grad_for(name, np.full((3, 4), 0.5, np.float32)), grad_for(name, np.full(4, 0.5, np.float64))])
    assert opt.param_groups[0]["params"][0] is w and id(w) == w_id and id(b) == b_id
    assert np.all(w < 1) and np.all(b < 1)


@pytest.mark.parametrize("name", NAMES)
def test_none_gradient_leaves_param_and_state_untouched(name):
    a, b = np.ones(5, np.float32), np.ones(5, np.float32)
    opt = getattr(fastoptim, name)([a, b], lr=0.1, **({"momentum": 0.9} if name == "SGD" else {}))
    one = grad_for(name, np.ones(5, np.float32))
    opt.step([one, None])
    assert np.all(b == 1) and (1 not in opt.state or name == "Adagrad" and float(opt.state[1]["step"]) == 0)
    opt.step([None, one])
    before_a = a.copy()
    state_a = {k: np.array(v, copy=True) for k, v in opt.state[0].items()}
    opt.step([None, one])
    assert np.array_equal(a, before_a)
    for key, value in state_a.items():
        assert np.array_equal(opt.state[0][key], value)
    if "step" in opt.state[0]:
        assert float(opt.state[0]["step"]) == 1.0 and float(opt.state[1]["step"]) == 2.0


def test_zero_size_and_scalar_params():
    empty, scalar = np.zeros((0, 3), np.float32), np.array(2.0)
    opt = fastoptim.Adam([empty, scalar], lr=0.1)
    opt.step([np.zeros((0, 3), np.float32), np.array(1.0)])
    assert scalar < 2.0 and empty.shape == (0, 3)


def _drive(opt, params, seed, steps, edit=None):
    name = type(opt).__name__
    for t in steps:
        if edit:
            edit(t, opt)
        opt.step([parity.make_gradient(name, p, seed, t, i) for i, p in enumerate(params)])


@requires_torch
@pytest.mark.parametrize("name", NAMES)
def test_hyperparameter_edits_take_effect_next_step_as_torch(name):
    """What a scheduler does: edit param_groups between steps."""
    import torch

    seed = 11
    params = parity.initial_params(np.float64, seed)
    t_params = [torch.from_numpy(p.copy()).requires_grad_(True) for p in params]
    config = {"lr": 0.01}
    extra = {"SGD": ("momentum", 0.5), "Adam": ("betas", (0.5, 0.9)), "AdamW": ("weight_decay", 0.3),
             "RMSprop": ("alpha", 0.5), "Adagrad": ("lr_decay", 0.1), "Adadelta": ("rho", 0.5),
             "ASGD": ("lambd", 0.05), "Rprop": ("etas", (0.3, 1.5)),
             "Adamax": ("betas", (0.5, 0.9)), "NAdam": ("momentum_decay", 0.1), "RAdam": ("betas", (0.5, 0.7)),
             "Adafactor": ("beta2_decay", -0.5),
             "SparseAdam": ("betas", (0.5, 0.9))}[name]

    def edit(t, opt):
        if t == 20:
            for g in opt.param_groups:
                g["lr"] *= 0.1
        if t == 40:
            opt.param_groups[1][extra[0]] = extra[1]

    ours = getattr(fastoptim, name)(parity._groups(params, name), **config)
    foreach = {} if name in SPARSE else {"foreach": False}  # SparseAdam has one implementation
    theirs = getattr(torch.optim, name)(parity._groups(t_params, name), **foreach, **config)
    _drive(ours, params, seed, range(1, 61), edit)
    for t in range(1, 61):
        edit(t, theirs)
        for i, p in enumerate(t_params):
            p.grad = parity.to_torch_grad(parity.make_gradient(name, p.detach().numpy(), seed, t, i), p.shape)
        theirs.step()
    for p, q in zip(params, t_params):
        np.testing.assert_allclose(p, q.detach().numpy(), rtol=1e-12, atol=1e-14)


@requires_torch
def test_add_param_group_mid_run_as_torch():
    import torch

    a, b = np.linspace(-1, 1, 6), np.linspace(2, 3, 4)
    ta, tb = (torch.from_numpy(x.copy()).requires_grad_(True) for x in (a, b))
    ours = fastoptim.Adam([a], lr=0.1)
    theirs = torch.optim.Adam([ta], lr=0.1, foreach=False)
    for t in range(10):
        if t == 5:
            ours.add_param_group({"params": [b], "lr": 0.05})
            theirs.add_param_group({"params": [tb], "lr": 0.05})
        grads = [np.sin(a * (t + 1))] + ([np.cos(b * t)] if t >= 5 else [])
        ours.step(grads)
        ta.grad = torch.from_numpy(grads[0])
        tb.grad = torch.from_numpy(grads[1]) if t >= 5 else None
        theirs.step()
    np.testing.assert_allclose(a, ta.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(b, tb.detach().numpy(), rtol=1e-12)
    assert ours.state_dict()["param_groups"][1]["params"] == [1]


# Adafactor's update depends on whole-tensor norms, so a split array is not the same problem.
@pytest.mark.parametrize("name", [n for n in NAMES if n != "Adafactor"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_arrays_split_across_threads_give_identical_results(name, dtype):
    """One big array (split across threads) must equal the same elements as many small arrays (serial)."""
    n, pieces = 300_007, 7
    rng = np.random.default_rng(0)
    big = rng.standard_normal(n).astype(dtype)
    small = [x.copy() for x in np.array_split(big, pieces)]
    kw = {"SGD": dict(momentum=0.9, nesterov=True, weight_decay=1e-2), "Adam": dict(amsgrad=True, weight_decay=0.1),
          "AdamW": dict(), "RMSprop": dict(centered=True, momentum=0.5),
          "Adagrad": dict(lr_decay=1e-2, weight_decay=1e-2, initial_accumulator_value=0.1),
          "Adadelta": dict(weight_decay=1e-2, maximize=True), "ASGD": dict(t0=2, lambd=1e-2, weight_decay=1e-2),
          "Rprop": dict(step_sizes=(1e-3, 2e-2)),
          "Adamax": dict(weight_decay=0.1, maximize=True), "NAdam": dict(weight_decay=0.1, decoupled_weight_decay=True),
          "RAdam": dict(weight_decay=0.1),
          "SparseAdam": dict(betas=(0.5, 0.9), maximize=True)}[name]
    opt_big = getattr(fastoptim, name)([big], lr=1e-2, **kw)
    opt_small = getattr(fastoptim, name)(small, lr=1e-2, **kw)
    for t in range(5):
        g = rng.standard_normal(n).astype(dtype)
        opt_big.step([grad_for(name, g)])
        opt_small.step([grad_for(name, x.copy()) for x in np.array_split(g, pieces)])
    assert np.array_equal(big, np.concatenate(small))


def _adam_run(n_steps, seed, threads=None):
    """Adam on a 300k-element array and 200 small ones; returns the parameters."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(300_001).astype(np.float32)] + [rng.standard_normal(500).astype(np.float32)
                                                                   for _ in range(200)]
    opt = fastoptim.Adam(params, lr=1e-2, weight_decay=0.1)
    for _ in range(n_steps):
        opt.step([rng.standard_normal(p.shape).astype(np.float32) for p in params])
    return params


def test_steps_from_several_python_threads_at_once_equal_serial_ones():
    """Kernels run without the GIL on the thread pool (core/thread_pool.hpp): optimizers stepped from four
    Python threads at once (one gets the pool, the others run their chunks themselves) give the bits of
    running them one after the other."""
    import threading
    want = [_adam_run(6, seed) for seed in range(4)]
    got = [None] * 4
    previous = fastoptim.get_num_threads()
    fastoptim.set_num_threads(2)
    try:
        threads = [threading.Thread(target=lambda i=i: got.__setitem__(i, _adam_run(6, i))) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        fastoptim.set_num_threads(previous)
    for w, g in zip(want, got):
        assert all(np.array_equal(x, y) for x, y in zip(w, g))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_steps_with_threads():
    """The parent's pool workers do not exist in a forked child: the child gets a pool of its own and its
    steps give the same bits (multiprocessing's default start method on Linux forks)."""
    previous = fastoptim.get_num_threads()
    fastoptim.set_num_threads(2)
    try:
        want = _adam_run(3, 7)  # the parent has used its workers
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report through the pipe, never return into pytest
            try:
                got = _adam_run(3, 7)
                ok = all(np.array_equal(x, y) for x, y in zip(want, got))
                os.write(write, b"1" if ok else b"0")
            finally:
                os._exit(0)
        os.close(write)
        answer = os.read(read, 1)
        os.close(read)
        _, status = os.waitpid(pid, 0)
    finally:
        fastoptim.set_num_threads(previous)
    assert os.WIFEXITED(status) and answer == b"1"


def test_repr_lists_groups():
    text = repr(fastoptim.SGD([np.zeros(1)], lr=0.5))
    assert text.startswith("SGD (") and "lr: 0.5" in text

# Per optimizer on the C++ driver: its keywords, and a group setting changed mid-run (new buffers, other
# paths).
_DRIVEN = {
    "SGD": (dict(momentum=0.0, weight_decay=0.1), ("momentum", 0.5)),
    "Adam": (dict(weight_decay=0.1), ("amsgrad", True)),
    "AdamW": (dict(), ("amsgrad", True)),
    "RMSprop": (dict(momentum=0.5), ("centered", True)),
    "Adagrad": (dict(lr_decay=0.01, initial_accumulator_value=0.3), ("weight_decay", 0.1)),
    "Adadelta": (dict(weight_decay=0.1), ("rho", 0.5)),
    "Adamax": (dict(weight_decay=0.1), ("maximize", True)),
    "NAdam": (dict(weight_decay=0.1), ("decoupled_weight_decay", True)),
    "RAdam": (dict(weight_decay=0.1), ("decoupled_weight_decay", True)),
    "ASGD": (dict(lambd=0.1, t0=3.0), ("alpha", 0.5)),
    "Rprop": (dict(), ("lr", 0.05)),
    "Lion": (dict(weight_decay=0.1), ("maximize", True)),
    "Adan": (dict(weight_decay=0.1), ("no_prox", True)),
    "AdaBelief": (dict(weight_decay=0.1), ("amsgrad", True)),
    "ScheduleFreeAdamW": (dict(warmup_steps=2, weight_decay=0.1), ("weight_decay", 0.0)),
    "LAMB": (dict(weight_decay=0.1), ("trust_clip", True)),
    "Adafactor": (dict(beta2_decay=-0.5), ("eps", (1e-20, 1e-3))),
}


@pytest.mark.parametrize("name", sorted(_DRIVEN))
def test_cpp_bookkeeping_equals_the_python_loop(name):
    """The C++ driver (state lookup, lazy buffers, step counts in C++) gives the very bits and state of the
    Python loop it replaces, with missing gradients, two groups, steps and scalars loaded as plain numbers,
    a loaded state_dict, and a setting changed mid-run (new buffers)."""
    cls = getattr(fastoptim, name)
    assert cls._drive is not None
    slow_cls = type("Slow" + name, (cls,), {"_drive": None})
    kw, late = _DRIVEN[name]
    rng = np.random.default_rng(3)
    shapes = [(3, 4), (5,), (), (70001,)]
    a = [rng.standard_normal(s) for s in shapes]
    b = [x.copy() for x in a]
    fast = cls([{"params": a[:2]}, {"params": a[2:], "lr": 0.02}], lr=0.01, **kw)
    slow = slow_cls([{"params": b[:2]}, {"params": b[2:], "lr": 0.02}], lr=0.01, **kw)
    for opt in (fast, slow):
        if hasattr(opt, "train"):
            opt.train()
    for t in range(10):
        grads = [None if (t + i) % 3 == 0 else rng.standard_normal(s) for i, s in enumerate(shapes)]
        if t == 4:
            for opt in (fast, slow):
                opt.param_groups[1][late[0]] = late[1]
                for key in ("step", "eta", "mu"):  # as loaded from a plain state_dict
                    if key in opt.state.get(0, {}):
                        opt.state[0][key] = float(opt.state[0][key])
        if t == 7:  # a state_dict round trip, with Python-number steps
            sd = fast.state_dict()
            for entry in sd["state"].values():
                if "step" in entry:
                    entry["step"] = float(entry["step"])
            fast.load_state_dict(sd)
            slow.load_state_dict(sd)
            assert_same_state(fast, slow)
        fast.step(grads)
        slow.step([None if g is None else g.copy() for g in grads])
        for x, y in zip(a, b):
            assert np.array_equal(x, y), t
        assert_same_state(fast, slow)
    assert fast.param_groups[1]["params"][1] is a[3]
    assert [{k: v for k, v in g.items() if k != "params"} for g in fast.param_groups] == \
        [{k: v for k, v in g.items() if k != "params"} for g in slow.param_groups]


@pytest.mark.parametrize("name", sorted(_DRIVEN))
def test_cpp_bookkeeping_float32_and_failures_equal_the_python_loop(name):
    """float32 parameters; a step that raises (a float64 gradient after good ones) changes nothing on either
    path, with the same message."""
    cls = getattr(fastoptim, name)
    slow_cls = type("Slow" + name, (cls,), {"_drive": None})
    kw, _ = _DRIVEN[name]
    rng = np.random.default_rng(5)
    shapes = [(4, 3), (7,), (2, 2)]
    a = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    b = [x.copy() for x in a]
    fast, slow = cls(a, lr=0.01, **kw), slow_cls(b, lr=0.01, **kw)
    for opt in (fast, slow):
        if hasattr(opt, "train"):
            opt.train()
    for t in range(3):
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        fast.step(grads)
        slow.step(grads)
    assert_same_state(fast, slow)
    params = [x.copy() for x in a]
    state = {i: {k: np.array(v, copy=True) for k, v in e.items()} for i, e in fast.state.items()}
    groups = [{k: v for k, v in g.items() if k != "params"} for g in fast.param_groups]
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads[2] = grads[2].astype(np.float64)
    messages = []
    for opt in (fast, slow):
        with pytest.raises(TypeError) as e:
            opt.step(grads)
        messages.append(str(e.value))
    assert messages[0] == messages[1]
    for x, y in zip(a, params):
        assert np.array_equal(x, y)
    for i, e in fast.state.items():
        for k, v in e.items():
            assert np.array_equal(np.asarray(v), state[i][k]), (i, k)
    assert [{k: v for k, v in g.items() if k != "params"} for g in fast.param_groups] == groups
    assert_same_state(fast, slow)
