"""Hostile and careless inputs found by an audit: every call that raises must leave the optimizer, its
state, its param groups and any scheduler exactly as they were; nothing may be lost, aliased or crash.

Some tests are regressions for problems the audit found (and that were fixed):

* two Python threads stepping one optimizer race on its buffers and lose step counts;
* a scheduler step that raises (lr_lambda raising, ZeroDivisionError, CyclicLR's total_size 0) still
  advances ``last_epoch`` / ``_step_count``;
* scheduler ``load_state_dict`` installs some arguments before a later one fails (an int past int64, a bad
  child of SequentialLR/ChainedScheduler), and ints past int64 give pybind11's "incompatible function
  arguments" TypeError instead of a clear ValueError;
* ``fastoptim.load`` rolls back only ``param_groups``/``state`` when the scheduler part fails: the
  stochastic-rounding counter and LBFGS's C++ state stay the checkpoint's.

The others pin down cases that work today but that no test exercised (numpy subclasses and memmaps,
zero and negative strides, reshaped parameters after state exists, Fortran-ordered shape-sensitive
parameters, load_state_dict aliasing, checkpoint paths, plateau metrics).
"""

from __future__ import annotations

import copy
import json
import math
import os
import struct
import threading
import warnings
from typing import Any, Callable, List

import numpy as np
import pytest

import fastoptim
from fastoptim import lr_scheduler as fls


# ------------------------------------------------------------------------------------------ helpers


def _bits(value: Any) -> Any:
    """A comparable snapshot: arrays as (dtype, shape, bytes), containers recursively."""
    if isinstance(value, np.ndarray):
        return ("ndarray", str(value.dtype), value.shape, value.tobytes())
    if isinstance(value, dict):
        return {k: _bits(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_bits(v) for v in value])
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


def _opt_snapshot(opt) -> Any:
    groups = [{k: (v if k != "params" else [id(p) for p in v]) for k, v in g.items()} for g in opt.param_groups]
    params = [p.copy() for g in opt.param_groups for p in g["params"]]
    return _bits(groups), _bits(params), _bits(dict(opt.state)), getattr(opt, "_rounding_step", None)


def _sched_snapshot(s) -> Any:
    return _bits(s.state_dict()), s.last_epoch, s.get_last_lr(), _bits(
        [{k: v for k, v in g.items() if k != "params"} for g in s.optimizer.param_groups])


def _sgd(groups: int = 1):
    params = [np.zeros(2) for _ in range(groups)]
    return fastoptim.SGD([{"params": [p]} for p in params], lr=0.1, momentum=0.9), params


def _opt_step(opt):
    opt.step([np.ones(p.shape, p.dtype) for g in opt.param_groups for p in g["params"]])


def _stepped(make: Callable, steps: int = 2):
    opt, _ = _sgd()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = make(opt)
        for _ in range(steps):
            _opt_step(opt)
            s.step()
    return opt, s


# ================================================================ threads: concurrent steps on one optimizer


@pytest.mark.parametrize("name", ["Adam", "SGD"])
def test_concurrent_steps_on_one_optimizer_lose_nothing(name):
    """Two threads stepping the same optimizer (the kernels run without the GIL): every step that returns
    must count, as if the steps ran one after the other (a lock, or a clear error for the second caller).
    Without the lock both threads read the same step count and updated the same buffers at once: Adam ended
    at step 20 of 40 and equal gradients gave unequal parameters."""
    n, per_thread = 1 << 21, 10
    kwargs = dict(lr=0.01, momentum=0.9) if name == "SGD" else dict(lr=0.01)
    p = np.zeros(n, np.float32)
    opt = getattr(fastoptim, name)([p], **kwargs)
    g = np.ones(n, np.float32)
    done: List[int] = []
    errors: List[BaseException] = []
    barrier = threading.Barrier(2)

    def work():
        barrier.wait()
        for _ in range(per_thread):
            try:
                opt.step([g])
                done.append(1)
            except RuntimeError as e:  # acceptable fix: refuse a concurrent step, changing nothing
                errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    twin_p = np.zeros(n, np.float32)
    twin = getattr(fastoptim, name)([twin_p], **kwargs)
    for _ in range(len(done)):
        twin.step([g])
    if name == "Adam":
        assert float(opt.state[0]["step"]) == len(done), "concurrent steps lost step counts"
    assert np.unique(p).size == 1, "equal gradients gave unequal elements: buffers were updated concurrently"
    assert np.array_equal(p, twin_p), "concurrent steps differ from the same steps run one after the other"


# ============================================================ schedulers: a step that raises changes nothing


def _lambda_raising_after(k: int, result: Callable[[], Any]):
    calls = [0]

    def fn(epoch):
        calls[0] += 1
        return 0.9 ** epoch if calls[0] <= k else result()

    return fn


def _boom():
    raise RuntimeError("boom")


FAILING_STEPS = {
    # id: (make(opt) -> scheduler after which step() raises, exception)
    "LambdaLR_lambda_raises": (lambda o: fls.LambdaLR(o, _lambda_raising_after(3, _boom)), RuntimeError),
    "LambdaLR_lambda_returns_None": (lambda o: fls.LambdaLR(o, _lambda_raising_after(3, lambda: None)), TypeError),
    "MultiplicativeLR_lambda_raises": (lambda o: fls.MultiplicativeLR(o, _lambda_raising_after(2, _boom)),
                                       RuntimeError),
}


@pytest.mark.parametrize("case", list(FAILING_STEPS))
def test_scheduler_step_that_raises_changes_nothing(case):
    make, exc = FAILING_STEPS[case]
    opt, s = _stepped(make, steps=2)
    _opt_step(opt)
    before = _sched_snapshot(s)
    with pytest.raises(exc):
        s.step()
    assert _sched_snapshot(s) == before, "the failed step advanced last_epoch / _step_count"


def test_cosine_annealing_zero_division_step_changes_nothing():
    opt, s = _stepped(lambda o: fls.CosineAnnealingLR(o, T_max=10))
    s.T_max = 0
    before = _sched_snapshot(s)
    with pytest.raises(ZeroDivisionError):
        s.step()
    assert _sched_snapshot(s) == before


def test_lambda_lr_second_group_raising_changes_nothing():
    opt, _ = _sgd(groups=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = fls.LambdaLR(opt, [lambda e: 0.5 ** e, _lambda_raising_after(2, _boom)])
        _opt_step(opt)
        s.step()
    _opt_step(opt)
    before = _sched_snapshot(s)
    with pytest.raises(RuntimeError, match="boom"):
        s.step()
    assert _sched_snapshot(s) == before


def _cyclic_with_total_size_zero():
    opt, s = _stepped(lambda o: fls.CyclicLR(o, base_lr=0.01, max_lr=0.1))
    sd = s.state_dict()
    sd["total_size"] = 0  # torch loads it too; its next step divides by zero
    s.load_state_dict(sd)
    return opt, s


def test_cyclic_lr_step_with_total_size_zero_changes_nothing():
    opt, s = _cyclic_with_total_size_zero()
    before = _sched_snapshot(s)
    with pytest.raises((ZeroDivisionError, ValueError)):
        s.step()
    assert _sched_snapshot(s) == before


def test_cyclic_lr_step_with_total_size_zero_raises_torchs_zero_division_error():
    """torch: ``1 + last_epoch / total_size`` raises ZeroDivisionError (ours once raised ValueError)."""
    opt, s = _cyclic_with_total_size_zero()
    with pytest.raises(ZeroDivisionError):
        s.step()


# ================================================== schedulers: load_state_dict is all or nothing


BAD_SCHED_LOADS = {
    # id: (make(opt), edits of its state dict)
    "ConstantLR_factor_then_total_iters_past_int64": (lambda o: fls.ConstantLR(o), {"factor": 0.2,
                                                                                    "total_iters": 2**70}),
    "ConstantLR_factor_then_last_epoch_past_int64": (lambda o: fls.ConstantLR(o), {"factor": 0.2,
                                                                                   "last_epoch": 2**70}),
    "StepLR_gamma_then_step_count_past_int64": (lambda o: fls.StepLR(o, 3), {"gamma": 0.3, "_step_count": 2**64}),
    "LinearLR_end_factor_then_total_iters_past_int64": (lambda o: fls.LinearLR(o), {"end_factor": 0.5,
                                                                                    "total_iters": 2**70}),
    "PolynomialLR_power_then_total_iters_past_int64": (lambda o: fls.PolynomialLR(o), {"power": 2.0,
                                                                                      "total_iters": 2**70}),
}


@pytest.mark.parametrize("case", list(BAD_SCHED_LOADS))
def test_scheduler_load_state_dict_that_fails_changes_nothing(case):
    make, edits = BAD_SCHED_LOADS[case]
    opt, s = _stepped(make)
    sd = s.state_dict()
    sd.update(edits)
    before = _sched_snapshot(s)
    with pytest.raises((TypeError, ValueError, OverflowError)):
        s.load_state_dict(sd)
    assert _sched_snapshot(s) == before, "some arguments were installed before the failure"


@pytest.mark.parametrize("case", list(BAD_SCHED_LOADS))
def test_scheduler_load_state_dict_int_past_int64_is_a_clear_value_error(case):
    """As the optimizers' loads (test_load_rejects_group_counts_past_int64): a ValueError naming the key, not
    pybind11's "incompatible function arguments"."""
    make, edits = BAD_SCHED_LOADS[case]
    opt, s = _stepped(make)
    sd = s.state_dict()
    sd.update(edits)
    key = next(k for k, v in edits.items() if isinstance(v, int) and abs(v) >= 2**63)
    with pytest.raises(ValueError, match=key) as info:
        s.load_state_dict(sd)
    assert "incompatible function arguments" not in str(info.value)


@pytest.mark.parametrize("cls", ["SequentialLR", "ChainedScheduler"])
def test_composite_load_state_dict_with_a_bad_later_child_changes_nothing(cls):
    opt, _ = _sgd()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = fls.StepLR(opt, step_size=2, gamma=0.5), fls.ExponentialLR(opt, gamma=0.9)
        s = fls.SequentialLR(opt, [a, b], milestones=[3]) if cls == "SequentialLR" else fls.ChainedScheduler([a, b], opt)
        _opt_step(opt)
        s.step()
    bad = copy.deepcopy(s.state_dict())
    bad["_last_lr"] = [0.999]
    bad["_schedulers"][0].update(last_epoch=7, gamma=0.123)
    bad["_schedulers"][1]["gamma"] = "x"  # only the second child's state is bad
    before = (_sched_snapshot(a), _sched_snapshot(b), _bits(s.state_dict()), s.get_last_lr())
    with pytest.raises(TypeError, match="gamma"):
        s.load_state_dict(bad)
    after = (_sched_snapshot(a), _sched_snapshot(b), _bits(s.state_dict()), s.get_last_lr())
    assert after[0] == before[0], "the first child was loaded before the second failed"
    assert after == before


INT64_PAST = {
    # id: (call(opt, scheduler), argument name)
    "StepLR_step_size_argument": (lambda o, s: fls.StepLR(o, step_size=2**70), "step_size"),
    "ReduceLROnPlateau_patience_argument": (lambda o, s: fls.ReduceLROnPlateau(o, patience=2**70), "patience"),
    "step_epoch": (lambda o, s: s.step(2**70), "epoch"),
    "last_epoch_assignment": (lambda o, s: setattr(s, "last_epoch", 2**70), "last_epoch"),
    "step_size_assignment": (lambda o, s: setattr(s, "step_size", 2**70), "step_size"),
}


@pytest.mark.parametrize("case", list(INT64_PAST))
def test_scheduler_int_past_int64_is_a_clear_value_error_and_changes_nothing(case):
    call, name = INT64_PAST[case]
    opt, s = _stepped(lambda o: fls.StepLR(o, 3))
    before = _sched_snapshot(s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=name) as info:
            call(opt, s)
    assert "incompatible" not in str(info.value)
    assert _sched_snapshot(s) == before


# ================================================ ReduceLROnPlateau metrics of odd types (torch's errors)


PLATEAU_METRICS = {
    "none": (None, TypeError),
    "two_element_array": (np.array([0.5, 0.2]), TypeError),
    "non_numeric_string": ("abc", ValueError),
    "list": ([0.5], TypeError),
    "complex": (1 + 0j, TypeError),
    "int_past_float": (10**400, OverflowError),
}


@pytest.mark.parametrize("case", list(PLATEAU_METRICS))
def test_plateau_odd_metric_raises_torchs_error_and_changes_nothing(case):
    metric, exc = PLATEAU_METRICS[case]
    opt, _ = _sgd()
    s = fls.ReduceLROnPlateau(opt, patience=0)
    s.step(1.0)
    s.step(2.0)
    before = _sched_snapshot(s)
    with pytest.raises(exc):
        s.step(metric)
    assert _sched_snapshot(s) == before


# ===================================================== fastoptim.load: the rollback covers everything


def _rewrite_checkpoint(path: str, out: str, edit: Callable[[dict], None]) -> str:
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = json.loads(header["__metadata__"]["fastoptim"])
    edit(meta)
    header["__metadata__"] = {"fastoptim": json.dumps(meta)}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + raw[8 + n:])
    return out


def _bad_scheduler_part(meta: dict) -> None:
    meta["scheduler"]["state"]["step_size"] = 0  # the optimizer part is fine, the scheduler's is not


def test_failed_checkpoint_load_restores_the_stochastic_rounding_counter(tmp_path):
    pytest.importorskip("ml_dtypes")
    p = np.zeros(4, np.float32)
    opt = fastoptim.Adam([p], state_dtype="bfloat16", stochastic_rounding=True)
    s = fls.StepLR(opt, step_size=2)
    for _ in range(3):
        _opt_step(opt)
        s.step()
    good = str(tmp_path / "good.ckpt")
    fastoptim.save(good, opt, s)

    def edit(meta):
        meta["optimizer"]["rounding"]["step"] = 12345
        _bad_scheduler_part(meta)

    bad = _rewrite_checkpoint(good, str(tmp_path / "bad.ckpt"), edit)
    for _ in range(2):
        _opt_step(opt)
        s.step()
    before, sched_before = _opt_snapshot(opt), _sched_snapshot(s)
    with pytest.raises(ValueError, match="step_size"):
        fastoptim.load(bad, opt, s)
    assert opt._rounding_step == before[3], "the rounding counter kept the failed checkpoint's value"
    assert _opt_snapshot(opt) == before and _sched_snapshot(s) == sched_before


def test_failed_checkpoint_load_restores_lbfgs_state(tmp_path):
    x = np.array([1.0, 2.0])
    opt = fastoptim.LBFGS([x], lr=0.5, max_iter=3)
    s = fls.StepLR(opt, step_size=2)

    def closure():
        return float(((x - 3.0) ** 4).sum()), [4 * (x - 3.0) ** 3]

    opt.step(closure)
    s.step()
    good = str(tmp_path / "good.ckpt")
    fastoptim.save(good, opt, s)
    bad = _rewrite_checkpoint(good, str(tmp_path / "bad.ckpt"), _bad_scheduler_part)
    for _ in range(2):
        opt.step(closure)
        s.step()
    before = _bits(opt.state_dict())
    with pytest.raises(ValueError, match="step_size"):
        fastoptim.load(bad, opt, s)
    assert _bits(opt.state_dict()) == before, "LBFGS kept the failed checkpoint's state"


def test_checkpoint_path_that_is_a_directory_is_a_value_error(tmp_path):
    p = np.zeros(3, np.float32)
    opt = fastoptim.Adam([p])
    _opt_step(opt)
    before = _opt_snapshot(opt)
    with pytest.raises(ValueError, match="cannot read"):
        fastoptim.load(str(tmp_path), opt)
    assert _opt_snapshot(opt) == before


def test_checkpoint_with_deeply_nested_metadata_is_a_value_error(tmp_path):
    p = np.zeros(3, np.float32)
    opt = fastoptim.Adam([p])
    _opt_step(opt)
    good = str(tmp_path / "good.ckpt")
    fastoptim.save(good, opt)
    with open(good, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header["__metadata__"]["fastoptim"] = '{"format": ' + "[" * 100000 + "]" * 100000 + "}"
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    bad = str(tmp_path / "deep.ckpt")
    with open(bad, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + raw[8 + n:])
    before = _opt_snapshot(opt)
    with pytest.raises(ValueError, match="not valid JSON"):
        fastoptim.load(bad, opt)
    assert _opt_snapshot(opt) == before


# ================================================== arrays: subclasses, memmaps, odd strides, reshapes


def test_read_only_memmap_parameter_is_rejected(tmp_path):
    path = tmp_path / "w.bin"
    np.ones(8, np.float32).tofile(path)
    m = np.memmap(path, dtype=np.float32, mode="r", shape=(8,))
    with pytest.raises(ValueError, match="parameter 0 is read-only"):
        fastoptim.Adam([m])


def test_read_write_memmap_parameter_is_updated_in_place(tmp_path):
    path = tmp_path / "w.bin"
    np.ones(8, np.float32).tofile(path)
    m = np.memmap(path, dtype=np.float32, mode="r+", shape=(8,))
    opt = fastoptim.SGD([m], lr=0.5)
    opt.step([np.ones(8, np.float32)])
    m.flush()
    assert np.array_equal(np.fromfile(path, np.float32), np.full(8, 0.5, np.float32))


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_matrix_parameter_is_updated_in_place():
    w = np.matrix(np.ones((2, 3)))
    opt = fastoptim.SGD([w], lr=0.5)
    opt.step([np.ones((2, 3))])
    assert opt.param_groups[0]["params"][0] is w and np.all(np.asarray(w) == 0.5)


def _zero_stride_writeable():
    a = np.lib.stride_tricks.as_strided(np.ones(1, np.float32), shape=(4,), strides=(0,))
    assert a.flags.writeable and not a.flags.c_contiguous
    return a


@pytest.mark.parametrize("build", [_zero_stride_writeable, lambda: np.ones(8, np.float32)[::-2],
                                   lambda: np.ones(8, np.float32)[::-1]],
                         ids=["zero_stride_writeable", "negative_stride_2", "reversed"])
@pytest.mark.parametrize("name", ["Adam", "SGD", "Adafactor", "LAMB"])
def test_construction_rejects_zero_and_negative_strides(name, build):
    good = np.ones(3, np.float32)
    bits = good.copy()
    with pytest.raises(ValueError, match="parameter 1 is not C-contiguous"):
        getattr(fastoptim, name)([good, build()])
    assert np.array_equal(good, bits)


@pytest.mark.parametrize("name", ["Adam", "Adafactor", "LAMB", "Lion"])
def test_step_rejects_broadcast_and_reversed_grads_and_changes_nothing(name):
    p = np.ones(4, np.float32)
    opt = getattr(fastoptim, name)([p])
    _opt_step(opt)
    for bad in (np.broadcast_to(np.float32(1), (4,)), np.ones(4, np.float32)[::-1]):
        before = _opt_snapshot(opt)
        with pytest.raises(ValueError, match="gradient of parameter 0 is not C-contiguous"):
            opt.step([bad])
        assert _opt_snapshot(opt) == before


@pytest.mark.parametrize("name", ["Adam", "Adafactor", "Muon", "LAMB", "RMSprop"])
def test_step_rejects_param_reshaped_after_state_exists(name):
    """The user swaps a parameter for a same-size array of another shape (and matching grads): the old
    state no longer fits, so step() must refuse it, changing nothing."""
    w, b = np.ones((3, 4), np.float32), np.ones((2, 2), np.float32)
    opt = getattr(fastoptim, name)([w, b])
    opt.step([np.full((3, 4), 0.5, np.float32), np.full((2, 2), 0.5, np.float32)])
    opt.param_groups[0]["params"][0] = np.ones((4, 3), np.float32)
    before = _opt_snapshot(opt)
    with pytest.raises(ValueError, match="parameter 0"):
        opt.step([np.full((4, 3), 0.5, np.float32), np.full((2, 2), 0.5, np.float32)])
    assert _opt_snapshot(opt) == before


@pytest.mark.parametrize("name", ["Adafactor", "Muon"])
def test_shape_sensitive_optimizers_reject_fortran_order(name):
    good = np.ones((2, 2), np.float32)
    with pytest.raises(ValueError, match="parameter 1 is not C-contiguous"):
        getattr(fastoptim, name)([good, np.asfortranarray(np.ones((3, 4), np.float32))])
    opt = getattr(fastoptim, name)([np.ones((3, 4), np.float32)])
    _opt_step(opt)
    before = _opt_snapshot(opt)
    with pytest.raises(ValueError, match="gradient of parameter 0 is not C-contiguous"):
        opt.step([np.asfortranarray(np.ones((3, 4), np.float32))])
    assert _opt_snapshot(opt) == before


def test_low_precision_param_swapped_for_other_16_bit_dtype_changes_nothing():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    w = np.ones(4, ml_dtypes.bfloat16)
    opt = fastoptim.Adam([w], master_weights=True)
    opt.step([np.ones(4, ml_dtypes.bfloat16)])
    opt.param_groups[0]["params"][0] = np.ones(4, np.float16)
    before = _opt_snapshot(opt)
    with pytest.raises((TypeError, ValueError), match="parameter 0"):
        opt.step([np.ones(4, np.float16)])
    assert _opt_snapshot(opt) == before


def test_torch_tensor_parameter_and_grad_are_rejected():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="parameter 0"):
        fastoptim.Adam([torch.zeros(3)])
    p = np.zeros(3, np.float32)
    opt = fastoptim.Adam([p])
    _opt_step(opt)
    before = _opt_snapshot(opt)
    with pytest.raises(TypeError, match="gradient of parameter 0"):
        opt.step([torch.ones(3)])
    assert _opt_snapshot(opt) == before


# ============================================================== load_state_dict: never aliases the input


@pytest.mark.parametrize("name", ["Adam", "Adafactor", "NAdam", "ASGD"])
def test_loaded_state_never_aliases_the_given_arrays_or_parameters(name):
    w, b = np.ones((3, 4), np.float32), np.ones(5, np.float32)
    opt = getattr(fastoptim, name)([w, b])
    opt.step([np.full((3, 4), 0.5, np.float32), np.full(5, 0.5, np.float32)])
    sd = opt.state_dict()
    key = next((k for k, v in sd["state"][0].items() if isinstance(v, np.ndarray) and v.shape == w.shape), None)
    if key is not None:
        sd["state"][0][key] = w  # a hostile state dict whose buffer IS the parameter
    opt.load_state_dict(sd)
    arrays = [v for e in opt.state.values() for v in e.values() if isinstance(v, np.ndarray) and v.size]
    for a in arrays:
        assert not np.shares_memory(a, w) and not np.shares_memory(a, b)
        for other in sd["state"].values():
            for v in other.values():
                if isinstance(v, np.ndarray) and v.size:
                    assert not np.shares_memory(a, v), "a loaded buffer aliases the state dict it came from"
    before = w.copy()
    opt.step([np.full((3, 4), 0.5, np.float32), np.full(5, 0.5, np.float32)])
    assert not np.array_equal(w, before)  # the parameter was stepped, not clobbered through its "state"


# ================================================================================ set_num_threads


@pytest.mark.parametrize("bad", [0, -1, -2**31])
def test_set_num_threads_rejects_non_positive(bad):
    before = fastoptim.get_num_threads()
    with pytest.raises(ValueError, match=">= 1"):
        fastoptim.set_num_threads(bad)
    assert fastoptim.get_num_threads() == before


def test_set_num_threads_past_int32_raises_and_changes_nothing():
    before = fastoptim.get_num_threads()
    with pytest.raises((ValueError, OverflowError, TypeError)):
        fastoptim.set_num_threads(2**31)
    assert fastoptim.get_num_threads() == before


def test_huge_thread_count_still_steps_correctly():
    before = fastoptim.get_num_threads()
    try:
        fastoptim.set_num_threads(100000)
        p = np.zeros(1 << 17, np.float32)
        opt = fastoptim.SGD([p], lr=0.5)
        opt.step([np.ones(1 << 17, np.float32)])
        assert np.all(p == -0.5)
    finally:
        fastoptim.set_num_threads(before)
