"""StepLR and ReduceLROnPlateau beyond the parity runs: the seed's plateau example, every knob of the
plateau state machine, events, errors, state dicts and torch interop."""

import math
import warnings

import numpy as np
import pytest

import fastoptim
from fastoptim.lr_scheduler import ReduceLROnPlateau, StepLR
from conftest import requires_torch


def sgd(lrs=(0.1,)):
    params = [np.zeros(1) for _ in lrs]
    opt = fastoptim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)], momentum=0.9)
    return opt, params


def stepped(opt, params):
    opt.step([np.zeros_like(p) for p in params])


# ------------------------------------------------------------------------------------------ plateau

def test_seed_example_halves_after_patience_bad_epochs():
    """The seed: val loss 0.88, 0.81, 0.81, 0.80, then a plateau; patience=2, factor=0.5."""
    opt, params = sgd([0.001])
    sched = ReduceLROnPlateau(opt, mode="min", patience=2, factor=0.5)
    losses = [0.88, 0.81, 0.81, 0.80, 0.80, 0.80, 0.80, 0.80, 0.80, 0.80]
    seen = []
    for loss in losses:
        stepped(opt, params)
        sched.step(loss)
        e = sched.last_event
        seen.append((e.kind, e.num_bad_epochs, opt.param_groups[0]["lr"]))
    assert seen == [
        ("improved", 0, 0.001), ("improved", 0, 0.001), ("no_improvement", 1, 0.001), ("improved", 0, 0.001),
        ("no_improvement", 1, 0.001), ("no_improvement", 2, 0.001), ("reduced", 0, 0.0005),
        ("no_improvement", 1, 0.0005), ("no_improvement", 2, 0.0005), ("reduced", 0, 0.00025),
    ]
    assert str(sched.last_event) == "LR reduced 0.0005 → 0.00025"


def test_cooldown_and_min_lr_events():
    opt, params = sgd([0.1, 0.01])
    events = []
    sched = ReduceLROnPlateau(opt, patience=0, factor=0.1, cooldown=2, min_lr=[0.001, 0.001], on_event=events.append)
    for _ in range(10):
        stepped(opt, params)
        sched.step(1.0)
    kinds = [e.kind for e in events]
    assert kinds == ["improved", "reduced", "cooldown", "cooldown", "reduced", "cooldown", "cooldown",
                     "at_min_lr", "cooldown", "cooldown"]
    assert events[1].old_lrs == (0.1, 0.01) and events[1].new_lrs == (pytest.approx(0.01), 0.001)
    assert events[2].cooldown_counter == 1 and str(events[2]) == "cooldown (1 left)"
    assert opt.param_groups[0]["lr"] == pytest.approx(0.001) and opt.param_groups[1]["lr"] == 0.001


def test_nan_is_never_an_improvement():
    opt, params = sgd()
    sched = ReduceLROnPlateau(opt, patience=1)
    for m in [1.0, math.nan, math.nan]:
        stepped(opt, params)
        sched.step(m)
    assert sched.best == 1.0 and sched.last_event.kind == "reduced"


@pytest.mark.parametrize("mode,threshold_mode,values,expect_better", [
    ("min", "rel", [1.0, 0.99995], False), ("min", "rel", [1.0, 0.9998], True),
    ("min", "abs", [1.0, 0.99995], False), ("min", "abs", [1.0, 0.9998], True),
    ("max", "rel", [1.0, 1.00005], False), ("max", "rel", [1.0, 1.0002], True),
    ("max", "abs", [1.0, 1.00005], False), ("max", "abs", [1.0, 1.0002], True),
])
def test_threshold_modes(mode, threshold_mode, values, expect_better):
    opt, params = sgd()
    sched = ReduceLROnPlateau(opt, mode=mode, threshold_mode=threshold_mode, threshold=1e-4)
    for v in values:
        stepped(opt, params)
        sched.step(v)
    assert (sched.last_event.kind == "improved") == expect_better


def test_eps_skips_tiny_reductions():
    opt, params = sgd([1e-9])
    sched = ReduceLROnPlateau(opt, patience=0, eps=1e-8)
    for _ in range(3):
        stepped(opt, params)
        sched.step(1.0)
    assert opt.param_groups[0]["lr"] == 1e-9 and sched.last_event.kind == "at_min_lr"


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(factor=1.0), ValueError, "Factor should be < 1.0."),
    (dict(mode="mean"), ValueError, "mode mean is unknown!"),
    (dict(threshold_mode="pct"), ValueError, "threshold mode pct is unknown!"),
    (dict(min_lr=[0.1, 0.2, 0.3]), ValueError, "expected 1 min_lrs, got 3"),
    (dict(patience=-1), ValueError, "patience"),
    (dict(patience=1.5), TypeError, "patience"),
])
def test_plateau_invalid_arguments(kwargs, exc, match):
    opt, _ = sgd()
    before = [dict(g) for g in opt.param_groups]
    with pytest.raises(exc, match=match):
        ReduceLROnPlateau(opt, **kwargs)
    assert [dict(g) for g in opt.param_groups] == before


def test_new_param_group_after_construction():
    opt, params = sgd()
    sched = ReduceLROnPlateau(opt, patience=0, min_lr=0.0)
    opt.add_param_group({"params": [np.zeros(1)], "lr": 0.5})
    params.append(opt.param_groups[1]["params"][0])
    for _ in range(2):
        stepped(opt, params)
        sched.step(1.0)
    assert opt.param_groups[1]["lr"] == pytest.approx(0.05)
    opt2, params2 = sgd()
    sched2 = ReduceLROnPlateau(opt2, patience=0, min_lr=[0.0])
    opt2.add_param_group({"params": [np.zeros(1)], "lr": 0.5})
    params2.append(opt2.param_groups[1]["params"][0])
    stepped(opt2, params2)
    sched2.step(1.0)
    stepped(opt2, params2)
    with pytest.raises(RuntimeError, match="differs from when `ReduceLROnPlateau` was initialized"):
        sched2.step(1.0)


def test_plateau_state_dict_resumes():
    opt, params = sgd([0.1, 0.2])
    sched = ReduceLROnPlateau(opt, patience=1, cooldown=1)
    rng = np.random.default_rng(0)
    metrics = list(1 + 0.1 * rng.standard_normal(60))
    for m in metrics[:30]:
        stepped(opt, params)
        sched.step(m)
    sd = sched.state_dict()
    opt2, params2 = sgd([0.1, 0.2])
    opt2.load_state_dict(opt.state_dict())
    sched2 = ReduceLROnPlateau(opt2, patience=7, factor=0.9)  # different arguments: the state dict wins
    sched2.load_state_dict(sd)
    for m in metrics[30:]:
        stepped(opt, params)
        sched.step(m)
        stepped(opt2, params2)
        sched2.step(m)
        assert sched.get_last_lr() == sched2.get_last_lr()
        assert (sched.best, sched.num_bad_epochs, sched.cooldown_counter) == (
            sched2.best, sched2.num_bad_epochs, sched2.cooldown_counter)


@requires_torch
def test_plateau_state_dict_interop_with_torch():
    import torch

    t_param = torch.zeros(1, requires_grad=True)
    t_opt = torch.optim.SGD([t_param], lr=0.1)
    t_sched = torch.optim.lr_scheduler.ReduceLROnPlateau(t_opt, patience=1, factor=0.5, cooldown=1)
    opt, params = sgd([0.1])
    sched = ReduceLROnPlateau(opt, patience=1, factor=0.5, cooldown=1)
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85]
    assert set(sched.state_dict()) == set(t_sched.state_dict())
    for m in metrics[:5]:
        t_param.grad = torch.zeros(1)
        t_opt.step()
        t_sched.step(m)
    opt.param_groups[0]["lr"] = t_opt.param_groups[0]["lr"]
    sched.load_state_dict(t_sched.state_dict())
    back = torch.optim.lr_scheduler.ReduceLROnPlateau(t_opt)
    back.load_state_dict(sched.state_dict())
    for m in metrics[5:]:
        t_param.grad = torch.zeros(1)
        t_opt.step()
        t_sched.step(m)
        stepped(opt, params)
        sched.step(m)
        assert sched.get_last_lr() == t_sched.get_last_lr()
        assert (sched.best, sched.num_bad_epochs, sched.cooldown_counter) == (
            t_sched.best, t_sched.num_bad_epochs, t_sched.cooldown_counter)


# ---------------------------------------------------------------------------------------------- StepLR

def test_steplr_writes_initial_lr_and_matches_closed_form():
    opt, params = sgd([0.1, 0.3])
    sched = StepLR(opt, step_size=7, gamma=0.5)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.3]
    for _ in range(100):
        stepped(opt, params)
        sched.step()
        np.testing.assert_allclose(sched._core.closed_form_lr(), sched.get_last_lr(), rtol=1e-13)


def test_steplr_order_warning_like_torch():
    opt, _ = sgd()
    sched = StepLR(opt, step_size=2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()


def test_steplr_resume_needs_initial_lr():
    opt, _ = sgd()
    with pytest.raises(KeyError, match="initial_lr"):
        StepLR(opt, step_size=2, last_epoch=3)


@pytest.mark.parametrize("kwargs,exc", [(dict(step_size=0), ValueError), (dict(step_size=2.5), TypeError),
                                         (dict(step_size=2, gamma="x"), TypeError)])
def test_steplr_invalid_arguments_change_nothing(kwargs, exc):
    opt, _ = sgd()
    before = [dict(g) for g in opt.param_groups]
    with pytest.raises(exc):
        StepLR(opt, **kwargs)
    assert [dict(g) for g in opt.param_groups] == before


def test_steplr_state_dict_round_trip_into_different_arguments():
    opt, params = sgd([0.1, 0.2])
    sched = StepLR(opt, step_size=3, gamma=0.5)
    for _ in range(10):
        stepped(opt, params)
        sched.step()
    opt2, params2 = sgd([0.1, 0.2])
    opt2.load_state_dict(opt.state_dict())
    sched2 = StepLR(opt2, step_size=100, gamma=0.9)
    sched2.load_state_dict(sched.state_dict())
    assert sched2.state_dict() == sched.state_dict()
    for _ in range(20):
        stepped(opt, params)
        sched.step()
        stepped(opt2, params2)
        sched2.step()
        assert sched.get_last_lr() == sched2.get_last_lr()


@requires_torch
def test_steplr_state_dict_is_torchs():
    import torch

    t_opt = torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)]},
                             {"params": [torch.zeros(1, requires_grad=True)]}], lr=0.1)
    t_sched = torch.optim.lr_scheduler.StepLR(t_opt, step_size=3)
    opt, _ = sgd([0.1, 0.1])
    sched = StepLR(opt, step_size=3)
    assert sched.state_dict() == t_sched.state_dict()
