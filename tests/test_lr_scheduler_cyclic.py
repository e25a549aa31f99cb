"""CosineAnnealingLR, CosineAnnealingWarmRestarts, CyclicLR and OneCycleLR beyond step-by-step parity
(tests/sched_cases_cyclic.py): closed vs chainable form, state-dict round trips and torch interop, errors."""

import copy
import math

import numpy as np
import pytest

import fastoptim.lr_scheduler as fls
import sched_parity as sp
from conftest import requires_torch

CONFIGS = [
    ("CosineAnnealingLR", "sgd", dict(T_max=37, eta_min=1e-4)),
    ("CosineAnnealingWarmRestarts", "adam", dict(T_0=7, T_mult=2, eta_min=1e-6)),
    ("CosineAnnealingWarmRestarts", "sgd", dict(T_0=11)),
    ("CyclicLR", "sgd", dict(base_lr=[1e-3, 5e-4], max_lr=1e-2, step_size_up=13, step_size_down=21,
                             mode="triangular2")),
    ("CyclicLR", "adam", dict(base_lr=1e-4, max_lr=1e-3, step_size_up=17, mode="exp_range", gamma=0.995,
                              max_momentum=[0.95, 0.9])),
    ("CyclicLR", "rmsprop", dict(base_lr=1e-4, max_lr=1e-3, step_size_up=17, cycle_momentum=False)),
    ("OneCycleLR", "sgd", dict(max_lr=[0.1, 0.05], total_steps=600)),
    ("OneCycleLR", "adam", dict(max_lr=0.01, epochs=6, steps_per_epoch=100, anneal_strategy="linear",
                                three_phase=True)),
    ("OneCycleLR", "rmsprop", dict(max_lr=0.01, total_steps=600, cycle_momentum=False, pct_start=0.1)),
]
IDS = [f"{name}-{kind}-{i}" for i, (name, kind, _) in enumerate(CONFIGS)]
GROUP_KEYS = ("lr", "momentum", "betas", "initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum")


def zero_step(opt, params):
    if hasattr(params[0], "grad"):  # torch
        import torch

        for p in params:
            p.grad = torch.zeros_like(p)
        opt.step()
    else:
        opt.step([np.zeros_like(p) for p in params])


def copy_groups(src, dst):
    for gs, gd in zip(src.param_groups, dst.param_groups):
        for key in GROUP_KEYS:
            if key in gs:
                gd[key] = tuple(gs[key]) if key == "betas" else float(gs[key])


def run_steps(opt, params, sched, n):
    rows = []
    for _ in range(n):
        zero_step(opt, params)
        sched.step()
        rows.append(sp.group_values(opt))
    return np.array(rows)


def groups_snapshot(opt):
    return [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]


# ------------------------------------------------------------------------------------------ closed form

@pytest.mark.parametrize("T_max,eta_min", [(1, 0.0), (7, 1e-3), (50, 0.0), (333, 1e-5)])
def test_cosine_closed_form_matches_chainable(T_max, eta_min):
    opt, params = sp.make_fastoptim_optimizer("sgd")
    sched = fls.CosineAnnealingLR(opt, T_max=T_max, eta_min=eta_min)
    for _ in range(3 * T_max + 20):
        zero_step(opt, params)
        sched.step()
        closed = sched._get_closed_form_lr()
        for lr, ref, base in zip(sched.get_last_lr(), closed, sched.base_lrs):
            assert abs(lr - ref) <= 1e-12 * base


@requires_torch
def test_cosine_closed_form_matches_torch():
    import torch

    opt, params = sp.make_fastoptim_optimizer("sgd")
    topt, tparams = sp.make_torch_optimizer("sgd")
    ours = fls.CosineAnnealingLR(opt, T_max=19, eta_min=1e-4)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=19, eta_min=1e-4)
    for epoch in range(60):
        ours.last_epoch = ref.last_epoch = epoch
        assert ours._get_closed_form_lr() == ref._get_closed_form_lr()


# ------------------------------------------------------------------------------------------ state dicts

@pytest.mark.parametrize("name,kind,kwargs", CONFIGS, ids=IDS)
def test_state_dict_round_trip_resumes_identically(name, kind, kwargs):
    opt_a, params_a = sp.make_fastoptim_optimizer(kind)
    a = getattr(fls, name)(opt_a, **kwargs)
    run_steps(opt_a, params_a, a, 250)
    state = copy.deepcopy(a.state_dict())

    opt_b, params_b = sp.make_fastoptim_optimizer(kind)
    b = getattr(fls, name)(opt_b, **kwargs)
    run_steps(opt_b, params_b, b, 3)
    copy_groups(opt_a, opt_b)
    b.load_state_dict(state)
    assert b.state_dict() == state
    assert b.get_last_lr() == a.get_last_lr()
    np.testing.assert_array_equal(run_steps(opt_b, params_b, b, 300), run_steps(opt_a, params_a, a, 300))


@requires_torch
@pytest.mark.parametrize("name,kind,kwargs", CONFIGS, ids=IDS)
def test_state_dict_has_torch_layout(name, kind, kwargs):
    import torch

    opt, params = sp.make_fastoptim_optimizer(kind)
    topt, tparams = sp.make_torch_optimizer(kind)
    ours = getattr(fls, name)(opt, **kwargs)
    ref = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    run_steps(opt, params, ours, 123)
    run_steps(topt, tparams, ref, 123)
    s_ours, s_ref = ours.state_dict(), ref.state_dict()
    assert set(s_ours) == set(s_ref)
    for key, value in s_ref.items():
        if isinstance(value, float):
            assert math.isclose(s_ours[key], value, rel_tol=1e-12), key
        elif isinstance(value, list) and value and isinstance(value[0], float):
            np.testing.assert_allclose(s_ours[key], value, rtol=1e-12, err_msg=key)
        else:
            assert s_ours[key] == value and type(s_ours[key]) is type(value), key
    assert groups_snapshot(opt).__len__() == len(topt.param_groups)
    for g_ours, g_ref in zip(opt.param_groups, topt.param_groups):
        for key in ("initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"):
            assert (key in g_ours) == (key in g_ref), key
            if key in g_ref:
                assert math.isclose(g_ours[key], g_ref[key], rel_tol=1e-12), key


@requires_torch
@pytest.mark.parametrize("direction", ["ours_to_torch", "torch_to_ours"])
@pytest.mark.parametrize("name,kind,kwargs", CONFIGS, ids=IDS)
def test_torch_state_dict_interop(name, kind, kwargs, direction):
    import torch

    opt, params = sp.make_fastoptim_optimizer(kind)
    topt, tparams = sp.make_torch_optimizer(kind)
    ours = getattr(fls, name)(opt, **kwargs)
    ref = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    if direction == "ours_to_torch":
        run_steps(opt, params, ours, 200)
        run_steps(topt, tparams, ref, 7)
        copy_groups(opt, topt)
        ref.load_state_dict(copy.deepcopy(ours.state_dict()))
    else:
        run_steps(topt, tparams, ref, 200)
        run_steps(opt, params, ours, 7)
        copy_groups(topt, opt)
        ours.load_state_dict(copy.deepcopy(ref.state_dict()))
    assert ours.last_epoch == ref.last_epoch
    sp.assert_close(run_steps(opt, params, ours, 300), run_steps(topt, tparams, ref, 300), direction)


class _HalfPerCycle:
    """A callable object: CyclicLR saves its __dict__."""

    def __init__(self, base):
        self.base = base

    def __call__(self, x):
        return self.base ** x


def test_cyclic_callable_scale_fn_state():
    opt, params = sp.make_fastoptim_optimizer("sgd")
    a = fls.CyclicLR(opt, base_lr=1e-3, max_lr=1e-2, step_size_up=5, scale_fn=_HalfPerCycle(0.5))
    run_steps(opt, params, a, 33)
    state = a.state_dict()
    assert state["_scale_fn_custom"] == {"base": 0.5}

    opt_b, params_b = sp.make_fastoptim_optimizer("sgd")
    fn = _HalfPerCycle(0.9)
    b = fls.CyclicLR(opt_b, base_lr=1e-3, max_lr=1e-2, step_size_up=5, scale_fn=fn)
    copy_groups(opt, opt_b)
    b.load_state_dict(copy.deepcopy(state))
    assert fn.base == 0.5
    np.testing.assert_array_equal(run_steps(opt_b, params_b, b, 40), run_steps(opt, params, a, 40))

    c = fls.CyclicLR(opt_b, base_lr=1e-3, max_lr=1e-2, step_size_up=5, scale_fn=lambda x: 1.0)
    assert c.state_dict()["_scale_fn_custom"] is None


@requires_torch
def test_warm_restarts_step_with_epoch_matches_torch():
    import torch

    opt, params = sp.make_fastoptim_optimizer("sgd")
    topt, tparams = sp.make_torch_optimizer("sgd")
    ours = fls.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=1e-5)
    ref = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(topt, T_0=3, T_mult=2, eta_min=1e-5)
    epochs = [0.5, 1.25, 2.0, 3.0, 7.75, 20.5, 3, 44.125, 100, 0]
    for e in epochs + [None] * 30:
        zero_step(opt, params)
        zero_step(topt, tparams)
        ours.step(e)
        ref.step(e)
        assert ours.last_epoch == ref.last_epoch and ours.T_i == ref.T_i
        assert math.isclose(ours.T_cur, ref.T_cur, rel_tol=1e-12, abs_tol=1e-15)
        sp.assert_close(np.array([sp.group_values(opt)]), np.array([sp.group_values(topt)]), str(e))
    with pytest.raises(ValueError, match="Expected non-negative epoch, but got -1"):
        ours.step(-1)


@pytest.mark.parametrize("epoch, message", [
    (float("nan"), "cannot convert float NaN to integer"),  # torch: math.floor(nan)
    (float("inf"), "Expected a finite epoch below 2\\*\\*53, but got inf"),
    (1e300, "Expected a finite epoch below 2\\*\\*53"),
    (1e30, "Expected a finite epoch below 2\\*\\*53"),  # T_mult ** n overflowed int64 in the core
])
def test_warm_restarts_step_rejects_non_finite_and_huge_epochs(epoch, message):
    opt, params = sp.make_fastoptim_optimizer("sgd")
    sched = fls.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2)
    sched.step(4.5)
    before = (sched.last_epoch, sched.T_i, sched.T_cur, [g["lr"] for g in opt.param_groups])
    with pytest.raises(ValueError, match=message):
        sched.step(epoch)
    assert (sched.last_epoch, sched.T_i, sched.T_cur, [g["lr"] for g in opt.param_groups]) == before


def test_int64_overflowing_arguments_raise():
    opt, params = sp.make_fastoptim_optimizer("sgd")
    with pytest.raises(ValueError, match="T_max must be at most 2\\^53"):
        fls.CosineAnnealingLR(opt, T_max=2**63 - 1)
    with pytest.raises(ValueError, match="T_0 \\* T_mult must be at most 2\\^53"):
        fls.CosineAnnealingWarmRestarts(opt, T_0=2**63 - 1, T_mult=2**63 - 1)
    with pytest.raises(ValueError, match="epochs \\* steps_per_epoch must be at most 2\\^53"):
        fls.OneCycleLR(opt, max_lr=0.1, epochs=2**62, steps_per_epoch=4)


# ------------------------------------------------------------------------------------------ errors

def test_one_cycle_raises_past_total_steps_and_changes_nothing():
    opt, params = sp.make_fastoptim_optimizer("adam")
    sched = fls.OneCycleLR(opt, max_lr=0.01, total_steps=50)
    run_steps(opt, params, sched, 50)
    before = groups_snapshot(opt)
    zero_step(opt, params)
    with pytest.raises(ValueError, match="^Tried to step 51 times. The specified number of total steps is 50$"):
        sched.step()
    assert groups_snapshot(opt) == before


INVALID = [
    ("CosineAnnealingWarmRestarts", "sgd", dict(T_0=0)),
    ("CosineAnnealingWarmRestarts", "sgd", dict(T_0=2.5)),
    ("CosineAnnealingWarmRestarts", "sgd", dict(T_0=5, T_mult=0)),
    ("CosineAnnealingWarmRestarts", "sgd", dict(T_0=5, T_mult=1.5)),
    ("CosineAnnealingWarmRestarts", "sgd", dict(T_0=5, eta_min="0")),
    ("CyclicLR", "sgd", dict(base_lr=1e-3, max_lr=1e-2, mode="sawtooth")),
    ("CyclicLR", "sgd", dict(base_lr=[1e-3, 1e-3, 1e-3], max_lr=1e-2)),
    ("CyclicLR", "sgd", dict(base_lr=1e-3, max_lr=[1e-2])),
    ("CyclicLR", "adam", dict(base_lr=1e-3, max_lr=1e-2, base_momentum=[0.8, 0.8, 0.8])),
    ("CyclicLR", "sgd", dict(base_lr=1e-3, max_lr=1e-2, max_momentum=[0.9])),
    ("OneCycleLR", "sgd", dict(max_lr=0.1)),
    ("OneCycleLR", "sgd", dict(max_lr=0.1, epochs=3)),
    ("OneCycleLR", "sgd", dict(max_lr=0.1, total_steps=0)),
    ("OneCycleLR", "sgd", dict(max_lr=0.1, total_steps=10.0)),
    ("OneCycleLR", "sgd", dict(max_lr=0.1, epochs=0, steps_per_epoch=3)),
    ("OneCycleLR", "sgd", dict(max_lr=0.1, epochs=2, steps_per_epoch=-1)),
    ("OneCycleLR", "sgd", dict(max_lr=0.1, total_steps=10, pct_start=1.5)),
    ("OneCycleLR", "sgd", dict(max_lr=0.1, total_steps=10, pct_start=1)),
    ("OneCycleLR", "sgd", dict(max_lr=0.1, total_steps=10, anneal_strategy="cosine")),
    ("OneCycleLR", "adam", dict(max_lr=[0.1, 0.1, 0.1], total_steps=10)),
    ("OneCycleLR", "sgd", dict(max_lr=0.1, total_steps=10, base_momentum=[0.8])),
]


def _error(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        return type(e), str(e)
    return None, None


@pytest.mark.parametrize("name,kind,kwargs", INVALID, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(INVALID)])
def test_invalid_arguments_raise_and_change_nothing(name, kind, kwargs):
    opt, _ = sp.make_fastoptim_optimizer(kind)
    before = groups_snapshot(opt)
    etype, message = _error(lambda: getattr(fls, name)(opt, **kwargs))
    assert etype is ValueError, (etype, message)
    assert groups_snapshot(opt) == before
    try:
        import torch
    except ImportError:
        return
    topt, _ = sp.make_torch_optimizer(kind)
    assert _error(lambda: getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)) == (etype, message)


class _NoMomentum:
    """An optimizer-like object without momentum or betas."""

    def __init__(self):
        self.defaults = dict(lr=0.1)
        self.param_groups = [dict(lr=0.1, params=[]), dict(lr=0.2, params=[])]


@pytest.mark.parametrize("name,kwargs", [("CyclicLR", dict(base_lr=1e-3, max_lr=1e-2)),
                                         ("OneCycleLR", dict(max_lr=0.1, total_steps=10))])
def test_cycle_momentum_requires_momentum(name, kwargs):
    opt = _NoMomentum()
    before = copy.deepcopy(opt.param_groups)
    with pytest.raises(ValueError, match="^optimizer must support momentum or beta1 with `cycle_momentum` "
                                         "option enabled$"):
        getattr(fls, name)(opt, **kwargs)
    assert opt.param_groups == before
    getattr(fls, name)(opt, cycle_momentum=False, **kwargs)  # fine without cycling


def test_cycle_momentum_writes_groups_at_construction():
    opt, _ = sp.make_fastoptim_optimizer("adam")
    fls.CyclicLR(opt, base_lr=1e-4, max_lr=1e-3, base_momentum=0.7, max_momentum=[0.97, 0.93])
    assert [g["betas"][0] for g in opt.param_groups] == [0.97, 0.93]
    assert [g["max_momentum"] for g in opt.param_groups] == [0.97, 0.93]
    assert [g["base_momentum"] for g in opt.param_groups] == [0.7, 0.7]
    assert [g["lr"] for g in opt.param_groups] == [1e-4, 1e-4]
    assert opt.param_groups[1]["betas"][1] == 0.99

    opt, _ = sp.make_fastoptim_optimizer("sgd")
    fls.OneCycleLR(opt, max_lr=[0.1, 0.2], total_steps=10, div_factor=10.0, final_div_factor=100.0)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.01, 0.02]
    assert [g["max_lr"] for g in opt.param_groups] == [0.1, 0.2]
    assert [g["min_lr"] for g in opt.param_groups] == [0.01 / 100.0, 0.02 / 100.0]
    assert [g["momentum"] for g in opt.param_groups] == [0.95, 0.95]


def test_one_cycle_empty_phase_raises_zero_division_like_torch():
    opt, _ = sp.make_fastoptim_optimizer("sgd")
    before = groups_snapshot(opt)
    with pytest.raises(ZeroDivisionError, match="float division by zero"):
        fls.OneCycleLR(opt, max_lr=0.1, total_steps=10, pct_start=0.1)
    assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in before]
