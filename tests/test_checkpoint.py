"""fastoptim.save / fastoptim.load: portable, safe checkpoints (python/fastoptim/checkpoint.py).

Round trips resume bit-identically; the file is a valid safetensors file; saving is atomic; every malformed or
mismatched file raises ValueError and changes nothing. With FASTOPTIM_CPP_BUILD naming a CMake build directory
(or the test_sched_checkpoint binary itself), checkpoints also cross between Python and C++.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

import fastoptim
from fastoptim import lr_scheduler as L

# ------------------------------------------------------------------------------------------- helpers


def _grads(params, k):
    return [(np.sin(np.arange(p.size, dtype=np.float64) * 0.7 + k * 0.3 + j).reshape(p.shape) * 0.5).astype(p.dtype)
            for j, p in enumerate(params)]


def _params():
    return [np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), np.linspace(0.5, -0.5, 4)]


def _sched_step(sched, k):
    if isinstance(sched, L.ReduceLROnPlateau):
        sched.step(1.0)  # no improvement: reductions happen
    else:
        sched.step()


OPTIMIZERS = {
    "sgd_momentum": lambda ps: fastoptim.SGD(ps, lr=0.1, momentum=0.9),
    "adam_amsgrad": lambda ps: fastoptim.Adam([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.02}], lr=0.05,
                                              amsgrad=True),
    "adamw": lambda ps: fastoptim.AdamW(ps, lr=0.05, weight_decay=0.1),
    "rmsprop_centered": lambda ps: fastoptim.RMSprop(ps, lr=0.01, centered=True, momentum=0.5),
    "nadam": lambda ps: fastoptim.NAdam(ps, lr=0.05, momentum_decay=0.5),  # 0-d float32 mu_product state
}

SCHEDULERS = {
    "step": lambda o: L.StepLR(o, step_size=7, gamma=0.5),
    "plateau": lambda o: L.ReduceLROnPlateau(o, patience=3, factor=0.5),
    "onecycle": lambda o: L.OneCycleLR(o, max_lr=0.1, total_steps=200),
    "sequential": lambda o: L.SequentialLR(
        o, [L.LinearLR(o, start_factor=0.1, total_iters=10), L.CosineAnnealingLR(o, T_max=60)], milestones=[10]),
}


def _run(opt, sched, params, k0, n):
    for k in range(k0, k0 + n):
        opt.step(_grads(params, k))
        _sched_step(sched, k)


def _lrs(opt):
    return [g["lr"] for g in opt.param_groups]


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for i in sa["state"]:
        assert sa["state"][i].keys() == sb["state"][i].keys()
        for k in sa["state"][i]:
            x, y = np.asarray(sa["state"][i][k]), np.asarray(sb["state"][i][k])
            assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), (i, k)


@pytest.fixture
def small(tmp_path):
    """A small valid file (Adam + StepLR after 3 steps) and a factory for a target it would change."""
    p = [np.array([0.5, -0.25, 1.0], np.float32)]
    opt = fastoptim.Adam(p, lr=0.1)
    sched = L.StepLR(opt, step_size=2, gamma=0.5)
    _run(opt, sched, p, 0, 3)
    path = tmp_path / "small.safetensors"
    fastoptim.save(path, opt, sched)

    def target():
        q = [np.array([0.5, -0.25, 1.0], np.float32)]
        o = fastoptim.Adam(q, lr=0.3)
        s = L.StepLR(o, step_size=2, gamma=0.5)
        _run(o, s, q, 0, 1)
        return o, s

    return path, path.read_bytes(), target


def _snapshot(opt, sched):
    sd = opt.state_dict()
    return (id(opt.param_groups), id(opt.state), json.dumps(sd["param_groups"], sort_keys=True, default=str),
            {i: {k: np.asarray(v).tobytes() for k, v in e.items()} for i, e in sd["state"].items()},
            json.dumps(sched.state_dict(), sort_keys=True, default=str))


def _rejects(path, target, match=None):
    opt, sched = target()
    before = _snapshot(opt, sched)
    with pytest.raises(ValueError, match="^checkpoint .*: .*(" + (match or "") + ")"):
        fastoptim.load(path, opt, sched)
    assert _snapshot(opt, sched) == before


def _write(path, data):
    """A new file each time: ext4 flushes a truncated-and-rewritten file to disk on close (slow in loops)."""
    path.unlink(missing_ok=True)
    path.write_bytes(data)


def _split(blob):
    n = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def _join(header, data):
    head = json.dumps(header).encode()
    return len(head).to_bytes(8, "little") + head + data


def _edit_meta(blob, fn):
    header, data = _split(blob)
    meta = json.loads(header["__metadata__"]["fastoptim"])
    fn(meta)
    header["__metadata__"]["fastoptim"] = json.dumps(meta)
    return _join(header, data)


def _edit_header(blob, fn):
    header, data = _split(blob)
    fn(header)
    return _join(header, data)


# ----------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("sched_name", sorted(SCHEDULERS))
@pytest.mark.parametrize("opt_name", sorted(OPTIMIZERS))
def test_round_trip_resumes_bit_identically(tmp_path, opt_name, sched_name):
    params = _params()
    opt = OPTIMIZERS[opt_name](params)
    sched = SCHEDULERS[sched_name](opt)
    _run(opt, sched, params, 0, 25)
    path = tmp_path / "ckpt.safetensors"
    fastoptim.save(path, opt, sched)

    params2 = [p.copy() for p in params]  # parameters are the caller's to save
    opt2 = OPTIMIZERS[opt_name](params2)
    sched2 = SCHEDULERS[sched_name](opt2)
    fastoptim.load(path, opt2, sched2)
    _same_state(opt, opt2)
    assert json.dumps(sched.state_dict()) == json.dumps(sched2.state_dict())
    for k in range(25, 75):
        opt.step(_grads(params, k))
        opt2.step(_grads(params2, k))
        _sched_step(sched, k)
        _sched_step(sched2, k)
        assert _lrs(opt) == _lrs(opt2)
        assert sched.get_last_lr() == sched2.get_last_lr()
    for a, b in zip(params, params2):
        assert a.tobytes() == b.tobytes()
    _same_state(opt, opt2)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.safetensors"]


def test_optimizer_only_and_scheduler_entry_ignored(tmp_path):
    params = _params()
    opt = fastoptim.SGD(params, lr=0.1, momentum=0.9)
    sched = L.StepLR(opt, 3)
    _run(opt, sched, params, 0, 5)
    fastoptim.save(tmp_path / "a", opt)
    fastoptim.save(tmp_path / "b", opt, sched)
    opt2 = fastoptim.SGD([p.copy() for p in params], lr=0.5, momentum=0.9)
    fastoptim.load(tmp_path / "b", opt2)  # the file's scheduler state is ignored without a scheduler
    _same_state(opt, opt2)
    s2 = L.StepLR(opt2, 3)
    with pytest.raises(ValueError, match="no scheduler state"):
        fastoptim.load(tmp_path / "a", opt2, s2)


def test_unserializable_scheduler_state_is_rejected(tmp_path):
    params = _params()
    opt = fastoptim.SGD(params, lr=0.1)

    class Weird:
        def state_dict(self):
            return {"fn": lambda e: e}

    with pytest.raises(ValueError, match="not JSON-serializable"):
        fastoptim.save(tmp_path / "x", opt, Weird())
    assert list(tmp_path.iterdir()) == []


def test_readable_by_safetensors(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    params = _params()
    opt = fastoptim.Adam(params, amsgrad=True)
    sched = L.OneCycleLR(opt, max_lr=0.1, total_steps=100)
    _run(opt, sched, params, 0, 4)
    path = tmp_path / "c.safetensors"
    fastoptim.save(path, opt, sched)
    loaded = st.load_file(str(path))
    sd = opt.state_dict()["state"]
    expected = {f"state.{i}.{k}": np.asarray(v) for i, e in sd.items() for k, v in e.items()}
    assert loaded.keys() == expected.keys()
    for name, arr in expected.items():
        assert loaded[name].dtype == arr.dtype and loaded[name].shape == arr.shape
        assert loaded[name].tobytes() == arr.tobytes()
    assert loaded["state.0.step"].shape == () and loaded["state.0.step"].dtype == np.float32
    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads(f.metadata()["fastoptim"])
    assert meta["format"] == "fastoptim-checkpoint" and meta["version"] == 1
    assert meta["optimizer"]["class"] == "Adam" and meta["scheduler"]["class"] == "OneCycleLR"


def test_save_is_atomic(tmp_path, monkeypatch):
    params = _params()
    opt = fastoptim.Adam(params)
    opt.step(_grads(params, 0))
    path = tmp_path / "c.safetensors"
    fastoptim.save(path, opt)
    before = path.read_bytes()
    opt.step(_grads(params, 1))

    def boom(*a, **k):
        raise OSError("simulated crash")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="simulated crash"):
        fastoptim.save(path, opt)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]


# ---------------------------------------------------------------------------------------- robustness


def test_truncated_files(small, tmp_path):
    path, blob, target = small
    bad = tmp_path / "bad"
    for n in range(len(blob)):
        _write(bad, blob[:n])
        _rejects(bad, target)


def test_header_bit_flips(small, tmp_path):
    path, blob, target = small
    bad = tmp_path / "bad"
    for i in range(min(200, len(blob))):
        for mask in (0x01, 0x20, 0x80):
            m = bytearray(blob)
            m[i] ^= mask
            _write(bad, bytes(m))
            opt, sched = target()
            before = _snapshot(opt, sched)
            try:
                fastoptim.load(bad, opt, sched)  # a flipped digit of lr, say, is still a valid checkpoint
            except ValueError as e:
                assert str(e).startswith("checkpoint ")
                assert _snapshot(opt, sched) == before


@pytest.mark.parametrize("n, match", [(2**64 - 1, "exceeds"), (10**9, "exceeds"), (10**6, "past the end"),
                                      (0, "header length is 0")])
def test_header_length_field(small, tmp_path, n, match):
    _, blob, target = small
    bad = tmp_path / "bad"
    _write(bad, n.to_bytes(8, "little") + blob[8:])
    _rejects(bad, target, match)


def test_header_length_one_past_file(small, tmp_path):
    _, blob, target = small
    bad = tmp_path / "bad"
    _write(bad, (len(blob) - 7).to_bytes(8, "little") + blob[8:])
    _rejects(bad, target, "past the end")


@pytest.mark.parametrize("head, match", [
    (b"{not json", "not valid JSON"), (b"[1, 2]", "not a JSON object"), (b"\xff\xfe{}", "not UTF-8"),
    (b'{"a": 1, "a": 2}', "duplicate key"), (b'{"x": NaN}', "not JSON"), (b"{}", "__metadata__"),
])
def test_bad_header_json(small, tmp_path, head, match):
    _, blob, target = small
    bad = tmp_path / "bad"
    _write(bad, len(head).to_bytes(8, "little") + head)
    _rejects(bad, target, match)


def test_header_of_too_many_values_is_rejected_before_parsing(small, tmp_path):
    """8 MB of zeros would parse into 4M values (hundreds of MB in C++, more in Python): both readers stop."""
    _, blob, target = small
    bad = tmp_path / "bad"
    head = b'{"pad": [' + b"0," * (1 << 22) + b'0]}'
    _write(bad, len(head).to_bytes(8, "little") + head)
    _rejects(bad, target, "values")


def _set_tensor(name, key, value):
    def fn(header):
        header[name][key] = value
    return fn


@pytest.mark.parametrize("fn, match", [
    (_set_tensor("state.0.exp_avg", "dtype", "F33"), "unknown dtype"),
    (_set_tensor("state.0.exp_avg", "dtype", 4), "unknown dtype"),
    (_set_tensor("state.0.exp_avg", "dtype", "I32"), "has dtype I32"),
    (_set_tensor("state.0.exp_avg", "shape", [1, 3]), "has shape"),
    (_set_tensor("state.0.exp_avg", "shape", [4]), "bytes"),
    (_set_tensor("state.0.exp_avg", "shape", [-3]), "shape entry"),
    (_set_tensor("state.0.exp_avg", "shape", [3.0]), "shape entry"),
    (_set_tensor("state.0.exp_avg", "shape", [2**40, 2**40, 2**40]), "too large"),
    (_set_tensor("state.0.exp_avg", "data_offsets", [0, 10**9]), "data_offsets end"),
    (_set_tensor("state.0.exp_avg", "data_offsets", [0, 2**70]), "data_offsets end"),
    (_set_tensor("state.0.exp_avg", "data_offsets", [-12, 0]), "data_offsets begin"),
    (_set_tensor("state.0.exp_avg", "data_offsets", [12, 0]), "reversed"),
    (_set_tensor("state.0.exp_avg", "data_offsets", [0]), r"\[begin, end\]"),
    (_set_tensor("state.0.exp_avg", "extra", 1), "exactly"),
    (_set_tensor("state.0.step", "shape", [1]), "F32 scalar"),
    (lambda h: h.pop("state.0.exp_avg_sq"), "gap or overlap|cover"),
    (lambda h: h.update({"state.0.zzz": dict(h["state.0.exp_avg"])}), "gap or overlap"),
    (lambda h: h.pop("__metadata__"), "__metadata__"),
    (lambda h: h.update({"__metadata__": {"fastoptim": 3}}), "__metadata__"),
    (lambda h: h.update({"__metadata__": {"fastoptim": "{bad"}}), "not valid JSON"),
])
def test_bad_tensor_entries(small, tmp_path, fn, match):
    _, blob, target = small
    bad = tmp_path / "bad"
    _write(bad, _edit_header(blob, fn))
    _rejects(bad, target, match)


def test_overlapping_regions(small, tmp_path):
    _, blob, target = small

    def fn(h):  # two tensors over the same bytes, data section one tensor short
        h["state.0.exp_avg_sq"]["data_offsets"] = list(h["state.0.exp_avg"]["data_offsets"])

    bad = tmp_path / "bad"
    _write(bad, _edit_header(blob, fn))
    _rejects(bad, target, "gap or overlap")


def test_step_value_checked(small, tmp_path):
    _, blob, target = small
    header, data = _split(blob)
    b, e = header["state.0.step"]["data_offsets"]
    bad = tmp_path / "bad"
    _write(bad, _join(header, data[:b] + np.float32(np.nan).tobytes() + data[e:]))
    _rejects(bad, target, "finite")


def _meta_set(path, value):
    def fn(meta):
        d = meta
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return fn


@pytest.mark.parametrize("fn, match", [
    (_meta_set(["version"], 3), "unsupported version"),
    (_meta_set(["version"], "1"), "unsupported version"),
    (_meta_set(["format"], "other"), "format"),
    (_meta_set(["optimizer", "class"], "SGD"), "'SGD' optimizer"),
    (_meta_set(["scheduler", "class"], "ExponentialLR"), "ExponentialLR"),
    (_meta_set(["scheduler"], None), "no scheduler state"),
    (_meta_set(["scheduler", "state"], [1]), "'state' object"),
    (_meta_set(["optimizer", "state_keys", "0"], ["exp_avg", "exp_avg_sq", "step", "bogus"]), "missing"),
    (_meta_set(["optimizer", "state_keys", "0"], ["exp_avg", "step"]), "unexpected tensor"),
    (_meta_set(["optimizer", "state_keys", "7"], []), "no parameter group"),
    (_meta_set(["optimizer", "state_keys", "x"], []), "non-index"),
    (_meta_set(["optimizer", "param_groups"], []), "parameter groups"),
    (_meta_set(["optimizer", "param_groups", 0, "params"], [0, 1]), "parameters"),
    (_meta_set(["optimizer", "param_groups", 0, "params"], [-1]), "parameter id"),
    (_meta_set(["optimizer", "param_groups", 0, "lr"], "fast"), "does not fit"),
    (_meta_set(["optimizer", "param_groups", 0, "betas"], "x"), "does not fit"),
    (_meta_set(["scheduler", "state", "base_lrs"], [0.1, 0.2]), "does not fit"),  # fails after the optimizer loaded
    (_meta_set(["scheduler", "state", "last_epoch"], "x"), "does not fit"),
    (_meta_set(["optimizer"], None), "optimizer"),
])
def test_bad_metadata(small, tmp_path, fn, match):
    _, blob, target = small
    bad = tmp_path / "bad"
    _write(bad, _edit_meta(blob, fn))
    _rejects(bad, target, match)


def test_mismatched_objects(small, tmp_path):
    path, _, _ = small
    _rejects(path, lambda: (lambda o: (o, L.StepLR(o, 2)))(fastoptim.Adam([np.zeros(3)])), "dtype F32")
    _rejects(path, lambda: (lambda o: (o, L.StepLR(o, 2)))(fastoptim.Adam([np.zeros(4, np.float32)])), "shape")
    _rejects(path, lambda: (lambda o: (o, L.StepLR(o, 2)))(fastoptim.AdamW([np.zeros(3, np.float32)])), "optimizer")
    _rejects(path, lambda: (lambda o: (o, L.ExponentialLR(o, 0.5)))(fastoptim.Adam([np.zeros(3, np.float32)])),
             "StepLR")
    with pytest.raises(ValueError, match="cannot read"):
        fastoptim.load(tmp_path / "missing", fastoptim.Adam([np.zeros(3, np.float32)]))


def test_fuzz(small):
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    path, blob, target = small
    fuzz_path = path.with_name("fuzz")

    @hypothesis.settings(max_examples=200, deadline=None, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(edits=st.lists(st.tuples(st.integers(0, len(blob) - 1), st.integers(0, 255)), max_size=6),
                      cut=st.one_of(st.none(), st.integers(0, len(blob))))
    def check(edits, cut):
        m = bytearray(blob)
        for i, v in edits:
            m[i] = v
        if cut is not None:
            m = m[:cut]
        _write(fuzz_path, bytes(m))
        opt, sched = target()
        before = _snapshot(opt, sched)
        try:
            fastoptim.load(fuzz_path, opt, sched)
        except ValueError:
            assert _snapshot(opt, sched) == before

    check()


# ------------------------------------------------------------------------------------ Python <-> C++
# cpp/tests/ckpt_cross.c runs the same problem through the C API (see its header): group 0 holds 5 values,
# group 1 holds 3 (or the shapes of CROSS_SHAPES), gradients exact in binary; ReduceLROnPlateau steps on
# 1 / (1 + k // 4). SparseAdam gets the same sparse gradients in both languages, LBFGS the same closure.
# Every optimizer and every scheduler must appear in these two tables (test_every_optimizer_and_scheduler_crosses
# checks it): one line each.

N0, N1 = 5, 3

# name: (dtype, options (JSON for C, keyword arguments for Python), options of group 1; None: one group)
CROSS_OPTIMIZERS = {
    "SGD": (np.float32, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}, {"lr": 0.02}),
    "Adam": (np.float64, {"lr": 0.01, "betas": (0.9, 0.99), "weight_decay": 0.1, "amsgrad": True}, {"lr": 0.02}),
    "AdamW": (np.float32, {"lr": 0.01, "weight_decay": 0.05}, {"weight_decay": 0.0}),
    "RMSprop": (np.float64, {"lr": 0.01, "momentum": 0.5, "centered": True}, {"lr": 0.005}),
    "Adagrad": (np.float32, {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1}, {"lr": 0.05}),
    "Adadelta": (np.float64, {"lr": 0.5, "rho": 0.8, "weight_decay": 0.01}, {"lr": 0.25}),
    "ASGD": (np.float32, {"lr": 0.05, "lambd": 0.01, "t0": 3.0, "weight_decay": 0.01}, {"lr": 0.02}),
    "Rprop": (np.float64, {"lr": 0.01, "etas": (0.4, 1.3), "step_sizes": (1e-5, 0.5)}, {"lr": 0.02}),
    "Adamax": (np.float32, {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.01}, {"lr": 0.02}),
    "NAdam": (np.float64, {"lr": 0.01, "momentum_decay": 0.01, "decoupled_weight_decay": True,
                           "weight_decay": 0.01}, {"lr": 0.02}),
    "RAdam": (np.float32, {"lr": 0.01, "weight_decay": 0.01}, {"decoupled_weight_decay": True}),
    "Lion": (np.float32, {"lr": 0.01, "betas": (0.8, 0.95), "weight_decay": 0.1}, {"lr": 0.005}),
    "LAMB": (np.float64, {"lr": 0.01, "weight_decay": 0.01, "clamp_value": 0.5}, {"trust_clip": True}),
    "Adan": (np.float32, {"lr": 0.01, "weight_decay": 0.02}, {"no_prox": True}),
    "AdaBelief": (np.float64, {"lr": 0.01, "amsgrad": True, "weight_decay": 0.01}, {"rectify": False}),
    "ScheduleFreeAdamW": (np.float32, {"lr": 0.01, "warmup_steps": 3, "weight_decay": 0.01}, {"lr": 0.005}),
    "Adafactor": (np.float32, {"lr": 0.01, "eps": (None, 1e-3), "weight_decay": 0.01}, {"beta2_decay": -0.5}),
    "SparseAdam": (np.float64, {"lr": 0.01, "betas": (0.8, 0.99)}, {"lr": 0.02}),
    "Muon": (np.float32, {"lr": 0.02, "momentum": 0.9, "weight_decay": 0.01}, {"nesterov": False}),
    "LBFGS": (np.float64, {"lr": 0.5, "max_iter": 4, "history_size": 3}, None),  # see also test_lbfgs_strong_wolfe
}
# The parameters' shapes where not (5,) and (3,): Adafactor factors its 2-D parameter, Muon takes matrices,
# SparseAdam's gradients hold rows of the first dimension.
CROSS_SHAPES = {"Adafactor": ((2, 3), (4,)), "Muon": ((2, 3), (4, 2)), "SparseAdam": ((3, 2), (4, 2))}

# name: arguments; composites hold {"class": ..., arguments} per child. LambdaLR and MultiplicativeLR take
# the functions of _LAMBDAS (the C helper has the same ones).
CROSS_SCHEDULERS = {
    "StepLR": {"step_size": 3, "gamma": 0.5},
    "MultiStepLR": {"milestones": [2, 5, 5, 9], "gamma": 0.5},
    "ConstantLR": {"factor": 0.5, "total_iters": 6},
    "LinearLR": {"start_factor": 0.25, "end_factor": 0.75, "total_iters": 10},
    "ExponentialLR": {"gamma": 0.9},
    "PolynomialLR": {"total_iters": 12, "power": 2.0},
    "LambdaLR": {},
    "MultiplicativeLR": {},
    "CosineAnnealingLR": {"T_max": 6, "eta_min": 0.001},
    "CosineAnnealingWarmRestarts": {"T_0": 3, "T_mult": 2, "eta_min": 0.001},
    "CyclicLR": {"base_lr": 0.01, "max_lr": [0.1, 0.05], "step_size_up": 3, "mode": "triangular2"},
    "OneCycleLR": {"max_lr": [0.1, 0.05], "total_steps": 30, "three_phase": True},
    "SequentialLR": {"schedulers": [{"class": "LinearLR", "start_factor": 0.1, "total_iters": 4},
                                    {"class": "ExponentialLR", "gamma": 0.9}], "milestones": [4]},
    "ChainedScheduler": {"schedulers": [{"class": "StepLR", "step_size": 2, "gamma": 0.9},
                                        {"class": "CosineAnnealingLR", "T_max": 8}]},
    "ReduceLROnPlateau": {"patience": 1, "factor": 0.5, "cooldown": 1},
    "SWALR": {"swa_lr": [0.05, 0.01], "anneal_epochs": 5, "anneal_strategy": "linear"},
}
_LAMBDAS = {
    "LambdaLR": [lambda e: 0.5 + 0.5 / (1 + e), lambda e: 0.5 + 0.25 / (1 + e)],
    "MultiplicativeLR": lambda e: 0.9 if e % 3 else 0.8,
}
_CYCLING = ("CyclicLR", "OneCycleLR")  # cycle momentum where the optimizer has one


def _cross_binary():
    where = os.environ.get("FASTOPTIM_CPP_BUILD")
    if not where:
        pytest.skip("FASTOPTIM_CPP_BUILD (a CMake build directory) not set")
    path = Path(where)
    if path.is_dir():
        path = path / "cpp" / "tests" / "ckpt_cross"
    if not path.is_file():
        pytest.fail(f"FASTOPTIM_CPP_BUILD is set but {path} does not exist")
    return str(path)


def _sched_args(opt_name, sched_name):
    args = dict(CROSS_SCHEDULERS[sched_name])
    if CROSS_OPTIMIZERS[opt_name][2] is None:  # one group: one value of each per-group argument
        args = {k: v[0] if isinstance(v, list) and k != "milestones" and k != "schedulers" else v
                for k, v in args.items()}
    if sched_name in _CYCLING:
        args["cycle_momentum"] = "momentum" in CROSS_OPTIMIZERS[opt_name][1] or "betas" in CROSS_OPTIMIZERS[opt_name][1]
    return args


def _make_sched(opt, name, args):
    if name in _LAMBDAS:
        fn = _LAMBDAS[name]
        return getattr(L, name)(opt, fn[:len(opt.param_groups)] if isinstance(fn, list) else fn)
    args = dict(args)
    if "schedulers" in args:
        args["schedulers"] = [_make_sched(opt, c["class"], {k: v for k, v in c.items() if k != "class"})
                              for c in args["schedulers"]]
        if name == "ChainedScheduler":
            return L.ChainedScheduler(args["schedulers"])
    return getattr(L, name)(opt, **args)


def _cross_build(opt_name, sched_name, params):
    _, options, group1 = CROSS_OPTIMIZERS[opt_name]
    if group1 is None:
        opt = getattr(fastoptim, opt_name)(params, **options)
    else:
        opt = getattr(fastoptim, opt_name)([{"params": params[:1]}, {"params": params[1:], **group1}], **options)
    if opt_name == "ScheduleFreeAdamW":
        opt.train()  # steps only in train mode (the C helper does the same)
    return opt, _make_sched(opt, sched_name, _sched_args(opt_name, sched_name))


def _cross_shapes(opt_name):
    return CROSS_SHAPES.get(opt_name, ((N0,), (N1,)))


def _cross_params(opt_name):
    dtype = CROSS_OPTIMIZERS[opt_name][0]
    s0, s1 = _cross_shapes(opt_name)
    return [((np.arange(np.prod(s0)) - 2.0) * 0.25).astype(dtype).reshape(s0),
            (0.5 - 0.25 * np.arange(np.prod(s1))).astype(dtype).reshape(s1)]


def _cross_c(p, k, j):
    return (((np.arange(p.size) * 7 + k * 3 + j * 5) % 11 - 5) * 0.125).reshape(p.shape)


def _cross_grads(params, k):
    return [p * p.dtype.type(0.5) + _cross_c(p, k, j).astype(p.dtype) for j, p in enumerate(params)]


def _cross_run(opt, sched, params, k0, n):
    for k in range(k0, k0 + n):
        if isinstance(opt, fastoptim.LBFGS):
            def closure(k=k):
                loss = 0.0
                for j, p in enumerate(params):  # in double, in flat order, as the C helper
                    for x, c in zip(p.ravel().tolist(), _cross_c(p, k, j).ravel().tolist()):
                        loss += 0.25 * x * x + c * x
                return loss, _cross_grads(params, k)

            opt.step(closure)
        elif isinstance(opt, fastoptim.SparseAdam):
            grads = []
            for p, g in zip(params, _cross_grads(params, k)):
                rows = np.array([k % p.shape[0], (2 * k + 1) % p.shape[0], k % p.shape[0]], np.int64)
                extra = (np.arange(3) / 16.0).astype(p.dtype).reshape((3,) + (1,) * (p.ndim - 1))
                grads.append((rows, g[rows] + extra))
            opt.step(grads)
        else:
            opt.step(_cross_grads(params, k))
        if isinstance(sched, L.ReduceLROnPlateau):
            sched.step(1.0 / (1 + k // 4))
        else:
            sched.step()


def _cross_cmd(exe, verb, opt_name, sched_name):
    dtype, options, group1 = CROSS_OPTIMIZERS[opt_name]
    shapes = ",".join("x".join(map(str, s)) for s in _cross_shapes(opt_name))
    return [exe, verb, opt_name, np.dtype(dtype).name, shapes, json.dumps(options),
            "-" if group1 is None else json.dumps(group1), sched_name, json.dumps(_sched_args(opt_name, sched_name))]


def _lrs_printed(out):
    words = out.split()
    assert words[0] == "lr", out
    return [float.fromhex(w) for w in words[1:]]


def _same_values(x, y, where):
    if isinstance(x, list) or isinstance(y, list):  # LBFGS's history
        assert isinstance(x, list) and isinstance(y, list) and len(x) == len(y), where
        for j, (a, b) in enumerate(zip(x, y)):
            _same_values(a, b, where + (j,))
    elif x is None or y is None:
        assert x is None and y is None, where
    else:
        assert type(x) is type(y), where  # a Python number stays one, a 0-d array one too
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), where


def _same_state_dicts(sa, sb):
    assert sa["param_groups"] == sb["param_groups"]
    assert sa["state"].keys() == sb["state"].keys()
    for i in sa["state"]:
        assert sa["state"][i].keys() == sb["state"][i].keys()
        for k in sa["state"][i]:
            _same_values(sa["state"][i][k], sb["state"][i][k], (i, k))


def _sched_json(sched):
    return json.dumps(sched.state_dict(), sort_keys=True, default=repr)


@pytest.mark.parametrize("sched_name", sorted(CROSS_SCHEDULERS))
@pytest.mark.parametrize("opt_name", sorted(CROSS_OPTIMIZERS))
def test_python_to_cpp_and_back(tmp_path, opt_name, sched_name):
    exe = _cross_binary()
    # Python, uninterrupted: saves after 7 steps, then runs 10 more (the reference).
    p = _cross_params(opt_name)
    opt, sched = _cross_build(opt_name, sched_name, p)
    _cross_run(opt, sched, p, 0, 7)
    fastoptim.save(tmp_path / "py.safetensors", opt, sched)
    (tmp_path / "py.params").write_bytes(b"".join(x.tobytes() for x in p))
    at7 = [x.copy() for x in p]
    state7, sched7 = opt.state_dict(), _sched_json(sched)
    _cross_run(opt, sched, p, 7, 10)
    ref, ref_lrs = b"".join(x.tobytes() for x in p), [g["lr"] for g in opt.param_groups]

    # Python -> C++: the C helper loads Python's file and finishes the run.
    out = subprocess.run(_cross_cmd(exe, "resume", opt_name, sched_name) + [
        str(tmp_path / "py.safetensors"), str(tmp_path / "py.params"), str(tmp_path / "c_out.params"), "7", "10"],
        check=True, capture_output=True, text=True).stdout
    assert (tmp_path / "c_out.params").read_bytes() == ref
    assert _lrs_printed(out) == ref_lrs

    # C++ -> Python: the C helper runs 7 steps and saves; Python loads into fresh objects and finishes.
    subprocess.run(_cross_cmd(exe, "write", opt_name, sched_name) + [
        str(tmp_path / "c.safetensors"), str(tmp_path / "c.params"), "7"], check=True, capture_output=True)
    raw = (tmp_path / "c.params").read_bytes()
    assert raw == b"".join(x.tobytes() for x in at7)  # 7 steps in C++ == 7 steps in Python
    s0, s1 = _cross_shapes(opt_name)
    n0 = int(np.prod(s0))
    q = [np.frombuffer(raw, p[0].dtype, n0).copy().reshape(s0),
         np.frombuffer(raw, p[0].dtype, int(np.prod(s1)), n0 * p[0].itemsize).copy().reshape(s1)]
    opt2, sched2 = _cross_build(opt_name, sched_name, q)
    fastoptim.load(tmp_path / "c.safetensors", opt2, sched2)
    _same_state_dicts(state7, opt2.state_dict())
    assert _sched_json(sched2) == sched7
    _cross_run(opt2, sched2, q, 7, 10)
    assert b"".join(x.tobytes() for x in q) == ref
    assert [g["lr"] for g in opt2.param_groups] == ref_lrs


@pytest.mark.parametrize("sched_name", ["StepLR", "ReduceLROnPlateau", "OneCycleLR"])
def test_lbfgs_strong_wolfe_crosses(tmp_path, monkeypatch, sched_name):
    # The line search keeps t and H_diag as 0-d tensors or Python numbers by turns; float32 this time. (lr
    # must stay > 0: torch's line search divides by it, so not every scheduler of the table fits.)
    monkeypatch.setitem(CROSS_OPTIMIZERS, "LBFGS", (np.float32, {"lr": 1, "max_iter": 4, "history_size": 3,
                                                                 "line_search_fn": "strong_wolfe"}, None))
    test_python_to_cpp_and_back(tmp_path, "LBFGS", sched_name)


def test_every_optimizer_and_scheduler_crosses():
    optimizers = {n for n in fastoptim.__all__
                  if isinstance(getattr(fastoptim, n), type) and issubclass(getattr(fastoptim, n), fastoptim.Optimizer)
                  and getattr(fastoptim, n) is not fastoptim.Optimizer}
    assert optimizers == set(CROSS_OPTIMIZERS), \
        "add a line to CROSS_OPTIMIZERS (and the optimizer to registry.hpp)"
    schedulers = {n for n in L.__all__ if n not in ("LRScheduler", "PlateauEvent", "preview", "SchedulePreview")}
    assert schedulers == set(CROSS_SCHEDULERS)
    if os.environ.get("FASTOPTIM_CPP_BUILD"):
        out = subprocess.run([_cross_binary(), "names"], check=True, capture_output=True, text=True).stdout
        listed = [line.split() for line in out.splitlines()]
        assert {n for kind, n in listed if kind == "optimizer"} == set(CROSS_OPTIMIZERS)
        assert {n for kind, n in listed if kind == "scheduler"} == set(CROSS_SCHEDULERS)


@pytest.mark.parametrize("opt_name, key, dtype, match", [
    ("ASGD", "eta", "F64", "'eta' of parameter 0 must be F32"),  # a float32 member: F64 would not resume exactly
    ("ASGD", "mu", None, "has no 'mu'"),
    ("NAdam", "mu_product", None, "has no 'mu_product'"),
])
def test_cpp_checks_scalar_state(tmp_path, opt_name, key, dtype, match):
    exe = _cross_binary()
    p = _cross_params(opt_name)
    opt, sched = _cross_build(opt_name, "StepLR", p)
    _cross_run(opt, sched, p, 0, 2)
    state = opt.state[0]
    if dtype == "F64":
        state[key] = np.asarray(state[key], np.float64)  # Python's loader takes F32 or F64 scalars
    else:
        del state[key]  # Python saves what the state holds
    fastoptim.save(tmp_path / "bad.safetensors", opt, sched)
    (tmp_path / "p.params").write_bytes(b"".join(x.tobytes() for x in p))
    out = subprocess.run(_cross_cmd(exe, "resume", opt_name, "StepLR") + [
        str(tmp_path / "bad.safetensors"), str(tmp_path / "p.params"), str(tmp_path / "o.params"), "2", "1"],
        capture_output=True, text=True)
    assert out.returncode != 0 and match in out.stderr, out.stderr
    assert not (tmp_path / "o.params").exists()


def test_float64_mu_product_resumes_in_cpp(tmp_path):
    # torch's load_state_dict leaves NAdam's mu_product in the parameter's dtype: a float64 one must resume as
    # float64 in C++ too (NAdamState::mu_product_float32 = false), not be rounded to float32.
    exe = _cross_binary()
    p = _cross_params("NAdam")
    opt, sched = _cross_build("NAdam", "StepLR", p)
    _cross_run(opt, sched, p, 0, 3)
    for state in opt.state.values():
        state["mu_product"] = np.asarray(state["mu_product"], np.float64)
    fastoptim.save(tmp_path / "py.safetensors", opt, sched)
    (tmp_path / "py.params").write_bytes(b"".join(x.tobytes() for x in p))
    _cross_run(opt, sched, p, 3, 6)
    assert opt.state[0]["mu_product"].dtype == np.float64
    subprocess.run(_cross_cmd(exe, "resume", "NAdam", "StepLR") + [
        str(tmp_path / "py.safetensors"), str(tmp_path / "py.params"), str(tmp_path / "c.params"), "3", "6"],
        check=True, capture_output=True)
    assert (tmp_path / "c.params").read_bytes() == b"".join(x.tobytes() for x in p)


# ------------------------------------------------------------------------------- LBFGS's list-valued state
# Version 2 of the format: state_values (Python numbers) and state_lists ("state.0.old_dirs.<j>" tensors,
# None elements listed). Each hostile file must be refused by both loaders, changing nothing.

_LBFGS_HOSTILE = (np.float64, {"lr": 0.5, "max_iter": 3, "history_size": 6}, None)  # al keeps None slots


def _lists(meta):
    return meta["optimizer"]["state_lists"]["0"]


def _rename_tensor(old, new):
    def fn(header):
        header[new] = header.pop(old)
    return fn


def _drop_list_item(key):  # a well-formed file whose list `key` has one element fewer (tensor and bytes gone)
    def fn(blob):
        header, data = _split(blob)
        meta = json.loads(header["__metadata__"]["fastoptim"])
        _lists(meta)[key]["length"] -= 1
        header["__metadata__"]["fastoptim"] = json.dumps(meta)
        b, e = header.pop(f"state.0.{key}.{_lists(meta)[key]['length']}")["data_offsets"]
        for name, entry in header.items():
            if name != "__metadata__" and entry["data_offsets"][0] >= e:
                entry["data_offsets"] = [entry["data_offsets"][0] - (e - b), entry["data_offsets"][1] - (e - b)]
        return _join(header, data[:b] + data[e:])
    return fn


@pytest.mark.parametrize("edit, kind, match", [
    (lambda m: _lists(m)["old_dirs"].update(length=_lists(m)["old_dirs"]["length"] + 1), "meta", "is missing"),
    (lambda m: _lists(m)["old_dirs"].update(length=_lists(m)["old_dirs"]["length"] - 1), "meta", "unexpected tensor"),
    (lambda m: _lists(m)["al"].update(none=[1, 2, 3, 4, 5, 6]), "meta", "none"),
    (lambda m: _lists(m)["al"].update(none=[2, 1, 3, 4, 5]), "meta", "none"),
    (lambda m: _lists(m)["al"].update(none=[1, 1, 3, 4, 5]), "meta", "none"),
    (lambda m: _lists(m)["al"].update(length=1 << 40), "meta", "length"),
    (lambda m: _lists(m)["al"].update(length=1 << 32), "meta", "more elements than the file has tensors"),
    (lambda m: _lists(m)["al"].update(extra=1), "meta", "length"),
    (lambda m: _lists(m).update(d={"length": 0, "none": []}), "meta", "twice"),
    (lambda m: m["optimizer"]["state_values"]["0"].update(func_evals="x"), "meta", "number|integer"),
    (lambda m: m["optimizer"]["state_values"]["0"].update(func_evals=-1), "meta", "integer >= 0|integer in|does not fit"),
    (lambda m: m["optimizer"]["state_values"]["0"].update(n_iter=1.5), "meta", "integer|does not fit"),
    (lambda m: m["optimizer"]["state_values"]["0"].pop("prev_loss"), "meta", "prev_loss"),
    (lambda m: m["optimizer"]["state_values"]["0"].update(H_diag=1.0), "meta", "twice"),
    (lambda m: m["optimizer"]["state_values"].update({"1": {"x": 1}}), "meta", "state_keys"),
    (lambda m: m["optimizer"]["state_lists"].update({"0": []}), "meta", "not an object"),
    (lambda m: m.update(version=1), "meta", "version 2"),
    (lambda m: m.update(version=3), "meta", "version"),
    (lambda h: h["state.0.old_dirs.1"].update(shape=[1, h["state.0.old_dirs.1"]["shape"][0]]), "header", "shape"),
    (lambda h: h["state.0.ro.0"].update(dtype="I64"), "header", "dtype|F64"),
    (lambda h: h["state.0.al.0"].update(shape=[1]), "header", "shape|0-d"),
    (_rename_tensor("state.0.al.0", "state.0.al.5"), "header", "is missing|unexpected"),
    (_drop_list_item("old_stps"), "raw", "same length"),
    (_drop_list_item("ro"), "raw", "same length"),
])
def test_lbfgs_hostile_lists(tmp_path, monkeypatch, edit, kind, match):
    monkeypatch.setitem(CROSS_OPTIMIZERS, "LBFGS", _LBFGS_HOSTILE)
    p = _cross_params("LBFGS")
    opt, sched = _cross_build("LBFGS", "StepLR", p)
    _cross_run(opt, sched, p, 0, 3)
    assert len(opt.state[0]["old_dirs"]) >= 2 and opt.state[0]["al"][-1] is None
    good = tmp_path / "good.safetensors"
    fastoptim.save(good, opt, sched)
    blob = good.read_bytes()
    bad = tmp_path / "bad.safetensors"
    _write(bad, _edit_meta(blob, edit) if kind == "meta" else _edit_header(blob, edit) if kind == "header"
           else edit(blob))

    def target():  # a stepped LBFGS: a refused load must leave its state as it was
        q = [x.copy() for x in p]
        o, s = _cross_build("LBFGS", "StepLR", q)
        _cross_run(o, s, q, 0, 1)
        return o, s

    o, s = target()
    before = json.dumps(o.state_dict(), sort_keys=True, default=lambda a: np.asarray(a).tolist()), _sched_json(s)
    with pytest.raises(ValueError, match="^checkpoint .*: .*(" + match + ")"):
        fastoptim.load(bad, o, s)
    assert (json.dumps(o.state_dict(), sort_keys=True, default=lambda a: np.asarray(a).tolist()),
            _sched_json(s)) == before
    fastoptim.load(good, o, s)  # the intact file loads

    if os.environ.get("FASTOPTIM_CPP_BUILD"):
        (tmp_path / "p.params").write_bytes(b"".join(x.tobytes() for x in p))
        out = subprocess.run(_cross_cmd(_cross_binary(), "resume", "LBFGS", "StepLR") + [
            str(bad), str(tmp_path / "p.params"), str(tmp_path / "o.params"), "3", "1"], capture_output=True, text=True)
        assert out.returncode != 0 and "FASTOPTIM_ERROR_CHECKPOINT" in out.stderr, out.stderr
        assert re.search(match, out.stderr), out.stderr
        assert not (tmp_path / "o.params").exists()
        subprocess.run(_cross_cmd(_cross_binary(), "resume", "LBFGS", "StepLR") + [
            str(good), str(tmp_path / "p.params"), str(tmp_path / "o.params"), "3", "1"], check=True, capture_output=True)


def test_lbfgs_none_slots_cross(tmp_path, monkeypatch):
    # al's None slots survive both ways (the cross table's history is always full).
    monkeypatch.setitem(CROSS_OPTIMIZERS, "LBFGS", _LBFGS_HOSTILE)
    test_python_to_cpp_and_back(tmp_path, "LBFGS", "StepLR")
