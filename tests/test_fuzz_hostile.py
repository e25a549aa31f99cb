"""Randomized hostile inputs (the hand-written cases are in test_bad_inputs.py and test_hostile_audit.py):
an optimizer after 0-2 good steps, then one drawn mutation - a gradient of the wrong dtype, shape, byte order,
alignment, layout or type; a gradient aliasing a parameter or another gradient; a state entry or a
parameter replaced by such a value; a hyperparameter edited to NaN, inf, a string, a huge int, an array;
a state_dict corrupted the same ways before load_state_dict. The call must work or raise a clean
exception (TypeError, ValueError, KeyError, IndexError, RuntimeError, ZeroDivisionError, OverflowError)
that leaves parameters, state and param groups bit for bit as they were. Reproduce one case with
``run_case(seed)``."""

from __future__ import annotations

import copy
import warnings
from typing import Any, Callable, List, Optional, Tuple

import numpy as np
import pytest

import test_bad_inputs as tb

ALLOWED = (TypeError, ValueError, KeyError, IndexError, RuntimeError, ZeroDivisionError, OverflowError)


def _weird_array(rng: np.random.Generator, like: np.ndarray) -> Any:
    """Something in place of an array like ``like``: mostly arrays that must not be updated in place."""
    shape, k = like.shape, int(rng.integers(0, 15))
    if k == 0:
        return like.astype(np.int32)
    if k == 1:
        return like.astype(np.float16)
    if k == 2:
        return like.astype(np.complex64)
    if k == 3:
        return np.ones(shape + (1,), like.dtype)
    if k == 4:
        return np.ones(like.size + 1, like.dtype)
    if k == 5:  # strided
        return np.ones(2 * like.size, like.dtype)[::2].reshape(shape)
    if k == 6:
        a = like.copy()
        a.setflags(write=False)
        return a
    if k == 7:
        return like.astype(like.dtype.newbyteorder(">"))
    if k == 8:  # misaligned
        return np.zeros(like.nbytes + 1, np.uint8)[1:].view(like.dtype).reshape(shape)
    if k == 9:
        return like.tolist()
    if k == 10:
        return np.ma.masked_array(like.copy())
    if k == 11:
        return like.astype(object)
    if k == 12:
        return np.float64(0.5)
    if k == 13:
        return like.astype(bool)
    return np.asfortranarray(np.ones(shape[::-1], like.dtype).T) if like.ndim > 1 else "x"


WEIRD_VALUES = [float("nan"), float("inf"), -1.0, -1e-300, 10**400, "0.1", None, True, np.float32(0.5),
                np.array(0.5), np.array([0.5]), [0.1], (0.9,), 2**63, -0.0, 1e308, np.int64(3)]


def _weird_value(rng: np.random.Generator) -> Any:
    return WEIRD_VALUES[int(rng.integers(len(WEIRD_VALUES)))]


def _pick(rng: np.random.Generator, values: List[Any]) -> Any:
    return values[int(rng.integers(len(values)))]


def draw_case(seed: int) -> Optional[Tuple[Any, list, Callable[[], Any], list]]:
    """(optimizer, gradients, the hostile call, a description), or None when the draw has nothing to mutate."""
    rng = np.random.default_rng(seed)
    name = _pick(rng, tb.DENSE_NAMES)
    steps = int(rng.integers(0, 3))
    opt, params, grad_rng = tb.make(name, steps, seed)
    grads = tb.good_grads(params, grad_rng, name)
    kind = _pick(rng, ["grad", "alias", "state", "hyper", "load", "param"])
    desc: list = [name, steps, kind]
    call = lambda: opt.step(grads)  # noqa: E731
    if kind == "grad":
        i = int(rng.integers(len(grads)))
        grads[i] = _weird_array(rng, params[i])
        desc.append((i, type(grads[i]).__name__, getattr(grads[i], "dtype", None)))
    elif kind == "alias":
        i, j = int(rng.integers(len(grads))), int(rng.integers(len(grads)))
        if params[i].shape != params[j].shape or params[i].dtype != params[j].dtype:
            return None
        grads[i] = params[j] if rng.random() < 0.5 else grads[j]
        desc.append((i, j))
    elif kind == "state":
        if not opt.state:
            return None
        i = _pick(rng, sorted(opt.state))
        if not opt.state[i]:
            return None
        key = _pick(rng, sorted(opt.state[i]))
        old = opt.state[i][key]
        opt.state[i][key] = (_weird_array(rng, old) if isinstance(old, np.ndarray) and rng.random() < 0.7
                             else _weird_value(rng))
        desc.append((i, key, type(opt.state[i][key]).__name__))
    elif kind == "hyper":
        group = _pick(rng, opt.param_groups)
        key = _pick(rng, sorted(k for k in group if k != "params"))
        group[key] = _weird_value(rng)
        desc.append((key, repr(group[key])[:40]))
    elif kind == "load":
        sd = copy.deepcopy(opt.state_dict())
        if sd["state"] and rng.random() < 0.6:
            entry = sd["state"][_pick(rng, sorted(sd["state"]))]
            key = _pick(rng, sorted(entry)) if entry else "unknown"
            old = entry.get(key)
            entry[key] = (_weird_array(rng, old) if isinstance(old, np.ndarray) and rng.random() < 0.7
                          else _weird_value(rng))
        else:
            group = _pick(rng, sd["param_groups"])
            key = _pick(rng, sorted(group))
            group[key] = _weird_value(rng)
        desc.append(key)
        call = lambda: opt.load_state_dict(sd)  # noqa: E731
    else:  # a parameter replaced in its group after construction
        group = _pick(rng, opt.param_groups)
        if not group["params"]:
            return None
        k = int(rng.integers(len(group["params"])))
        group["params"][k] = _weird_array(rng, group["params"][k])
        desc.append((k, type(group["params"][k]).__name__))
    return opt, grads, call, desc


def run_case(seed: int) -> Tuple[str, Optional[str]]:
    """("ok" | "raised" | "skipped", None or what went wrong)."""
    drawn = draw_case(seed)
    if drawn is None:
        return "skipped", None
    opt, grads, call, desc = drawn
    snapshot = tb.Snapshot(opt, grads)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call()
    except ALLOWED as e:
        try:
            snapshot.check()
        except AssertionError as a:
            return "raised", f"seed {seed} {desc}: raised {type(e).__name__}({e}) but changed: {a}"
        return "raised", None
    except Exception as e:  # noqa: BLE001 - any other exception type is the finding
        return "raised", f"seed {seed} {desc}: {type(e).__name__}: {e}"
    return "ok", None


@pytest.mark.parametrize("block", range(3))
def test_hostile_calls_raise_cleanly_and_change_nothing(block):
    outcomes = [run_case(seed) for seed in range(1000 * block, 1000 * block + 400)]
    failures = [f for _, f in outcomes if f]
    assert not failures, f"{len(failures)} of {len(outcomes)}; first: {failures[0]}"
    raised = sum(kind == "raised" for kind, _ in outcomes)
    assert raised > len(outcomes) // 3, f"only {raised} of {len(outcomes)} calls raised: the draw lost its teeth"


def test_harness_sees_a_change_behind_an_exception(monkeypatch):
    # A step that updates a parameter and then raises must be reported.
    def bad_step(self, grads):
        self.param_groups[0]["params"][0][...] += 1
        raise ValueError("late")

    seed = next(s for s in range(1000) if (d := draw_case(s)) and d[3][:3] == ["SGD", 0, "grad"])  # no good steps
    monkeypatch.setattr(type(tb.make("SGD")[0]), "step", bad_step)
    kind, failure = run_case(seed)
    assert kind == "raised" and failure and "changed" in failure
