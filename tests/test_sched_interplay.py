"""Schedulers together: several on one optimizer, hand-written learning rates, param groups added later,
resuming, warnings, and what lr_lambdas may be changed to or return. Each behaviour has a torch-free
check (values worked out by hand) and, with torch installed, a live comparison of whole trajectories."""

import copy
import itertools
import warnings

import numpy as np
import pytest

import fastoptim
import fastoptim.lr_scheduler as fls
from conftest import requires_torch

GET_LR_WARNING = r"To get the last learning rate computed by the scheduler, please use `get_last_lr\(\)`"


def fo_opt(lrs=(0.1, 0.2), name="SGD", **kw):
    params = [np.zeros(2) for _ in lrs]
    opt = getattr(fastoptim, name)([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)], **kw)
    opt.test_grads = lambda: [np.zeros(2) for _ in range(sum(len(g["params"]) for g in opt.param_groups))]
    return opt


def torch_opt(lrs=(0.1, 0.2), name="SGD", **kw):
    import torch

    params = [torch.zeros(2, requires_grad=True) for _ in lrs]
    for p in params:
        p.grad = torch.zeros(2)
    return getattr(torch.optim, name)([{"params": [p], "lr": lr} for p, lr in zip(params, lrs)], **kw)


def opt_step(opt):
    if isinstance(opt, fastoptim.Optimizer):
        opt.step(opt.test_grads())
    else:
        opt.step()


def add_group(opt, lr):
    if isinstance(opt, fastoptim.Optimizer):
        opt.add_param_group({"params": [np.zeros(2)], "lr": lr})
    else:
        import torch

        p = torch.zeros(2, requires_grad=True)
        p.grad = torch.zeros(2)
        opt.add_param_group({"params": [p], "lr": lr})


def lrs(opt):
    return [g["lr"] for g in opt.param_groups]


# ---------------------------------------------------------------------------------------------- resume


def test_resume_without_initial_lr_gives_torchs_message():
    opt = fo_opt()
    with pytest.raises(KeyError, match="This typically happens when") as info:
        fls.StepLR(opt, 2, last_epoch=3)
    assert "param 'initial_lr' is not specified in param_groups[0]" in str(info.value)


def test_onecycle_resume_without_initial_lr_names_initial_lr():
    # torch's base constructor checks initial_lr before OneCycleLR reads the groups' max_lr.
    opt = fo_opt(momentum=0.9)
    with pytest.raises(KeyError, match="initial_lr"):
        fls.OneCycleLR(opt, 0.1, total_steps=10, last_epoch=3)
    assert all("initial_lr" not in g and "max_lr" not in g for g in opt.param_groups)


# -------------------------------------------------------------------------------------------- warnings


def test_get_lr_outside_step_warns():
    opt = fo_opt()
    sched = fls.StepLR(opt, 2, gamma=0.5)
    for _ in range(2):
        opt_step(opt)
        sched.step()
    with pytest.warns(UserWarning, match=GET_LR_WARNING):
        assert sched.get_lr() == pytest.approx([0.025, 0.05])  # the chainable form applied once more
    assert lrs(opt) == pytest.approx([0.05, 0.1])  # get_lr changes nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt_step(opt)
        sched.step()  # no warning from within step


# ------------------------------------------------------------------------------------------ lr_lambdas


@pytest.mark.parametrize("cls", ["LambdaLR", "MultiplicativeLR"])
def test_assigned_lr_lambdas_take_effect(cls):
    # torch reads self.lr_lambdas at every step.
    opt = fo_opt()
    sched = getattr(fls, cls)(opt, lambda e: 0.5)
    opt_step(opt)
    sched.step()
    assert lrs(opt) == pytest.approx([0.05, 0.1])
    sched.lr_lambdas = [lambda e: 0.25, lambda e: 0.5]
    opt_step(opt)
    sched.step()
    expected = [0.025, 0.1] if cls == "LambdaLR" else [0.0125, 0.05]
    assert lrs(opt) == pytest.approx(expected)
    sched.lr_lambdas[0] = lambda e: 1.0
    opt_step(opt)
    sched.step()
    expected = [0.1, 0.1] if cls == "LambdaLR" else [0.0125, 0.025]
    assert lrs(opt) == pytest.approx(expected)


@pytest.mark.parametrize("cls", ["LambdaLR", "MultiplicativeLR"])
def test_lr_lambdas_of_wrong_length_raise_value_error(cls):
    opt = fo_opt()
    sched = getattr(fls, cls)(opt, lambda e: 0.5)
    sched.lr_lambdas = [lambda e: 0.5]
    opt_step(opt)
    before = lrs(opt)
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas, but got 1"):
        sched.step()
    assert lrs(opt) == before


@pytest.mark.parametrize("cls", ["LambdaLR", "MultiplicativeLR"])
@pytest.mark.parametrize("bad", [None, "0.5"])
def test_lr_lambda_returning_a_non_number_raises_type_error(cls, bad):
    # A warm-up lambda missing its `else: return ...` returns None: torch's arithmetic raises TypeError.
    opt = fo_opt()
    sched = getattr(fls, cls)(opt, lambda e: 1.0 if e < 2 else bad)
    opt_step(opt)
    sched.step()
    opt_step(opt)
    with pytest.raises(TypeError, match="lr_lambda must return a real number"):
        sched.step()


def test_lambda_scheduler_is_freed():
    import gc
    import weakref

    sched = fls.LambdaLR(fo_opt(), lambda e: 0.5)
    ref = weakref.ref(sched)
    del sched
    gc.collect()
    assert ref() is None


# ------------------------------------------------------------------------------- param group added later


@pytest.mark.parametrize("make", [
    lambda o: fls.LambdaLR(o, lambda e: 0.5),
    lambda o: fls.MultiplicativeLR(o, lambda e: 0.5),
    lambda o: fls.CosineAnnealingWarmRestarts(o, 3),
    lambda o: fls.CyclicLR(o, 0.01, 0.1, 2, cycle_momentum=False),
], ids=["LambdaLR", "MultiplicativeLR", "CosineAnnealingWarmRestarts", "CyclicLR"])
def test_group_added_after_scheduler_raises_value_error(make):
    # torch raises ValueError (zip(strict=True)) for schedulers with per-group values.
    opt = fo_opt()
    sched = make(opt)
    add_group(opt, 0.7)
    before = lrs(opt)
    opt_step(opt)
    with pytest.raises(ValueError):
        sched.step()
    assert lrs(opt) == before


def test_cosine_annealing_with_group_added_raises_at_the_base_lr_branch():
    # The chainable form reads base_lrs at last_epoch == T_max + 1 (mod 2 T_max): with a group added since,
    # torch raises ValueError there; we used to read past the end of base_lrs.
    opt = fo_opt(momentum=0.9)
    sched = fls.CosineAnnealingLR(opt, T_max=2, eta_min=0.001)
    add_group(opt, 0.7)
    for _ in range(2):
        opt_step(opt)
        sched.step()  # the other branches act on the current lrs only, as torch's
    opt_step(opt)
    before = lrs(opt)
    with pytest.raises(ValueError, match="param groups"):
        sched.step()
    assert lrs(opt) == before
    with pytest.raises(ValueError, match="param groups"), pytest.warns(UserWarning, match="epoch parameter"):
        sched.step(0)  # the closed form too


@requires_torch
def test_group_added_later_matches_torch():
    import torch.optim.lr_scheduler as tls

    for name, kw, steps in [("StepLR", dict(step_size=2), 6), ("ExponentialLR", dict(gamma=0.9), 6),
                            ("CosineAnnealingLR", dict(T_max=2), 2), ("LinearLR", dict(total_iters=3), 6)]:
        a, b = torch_opt(), fo_opt()
        ta, fb = getattr(tls, name)(a, **kw), getattr(fls, name)(b, **kw)
        add_group(a, 0.7)
        add_group(b, 0.7)
        for _ in range(steps):
            opt_step(a)
            opt_step(b)
            ta.step()
            fb.step()
            assert lrs(b) == pytest.approx(lrs(a), rel=1e-12, abs=0), name
            assert fb.get_last_lr() == pytest.approx(ta.get_last_lr(), rel=1e-12, abs=0), name


# ------------------------------------------------------------------------------- live torch trajectories

CHAINABLE = {
    "MultiStepLR": dict(milestones=[2, 4, 5], gamma=0.5),
    "ExponentialLR": dict(gamma=0.9),
    "StepLR": dict(step_size=3, gamma=0.3),
    "LambdaLR": dict(lr_lambda=lambda e: 1.0 / (e + 1)),
    "CosineAnnealingLR": dict(T_max=5, eta_min=0.001),
    "MultiplicativeLR": dict(lr_lambda=lambda e: 0.95),
    "ConstantLR": dict(factor=0.5, total_iters=3),
    "LinearLR": dict(start_factor=0.2, total_iters=4),
    "PolynomialLR": dict(total_iters=6, power=2.0),
    "CyclicLR": dict(base_lr=[0.01, 0.02], max_lr=[0.1, 0.3], step_size_up=3),
    "OneCycleLR": dict(max_lr=[0.5, 0.7], total_steps=30),
}


def assert_same_groups(a, b, where):
    for ga, gb in zip(a.param_groups, b.param_groups):
        for key in ("lr", "initial_lr", "momentum", "betas", "max_lr", "min_lr"):
            assert (key in ga) == (key in gb), (where, key)
            if key in ga:
                va, vb = ga[key], gb[key]
                assert type(va) is type(vb) or key == "lr", (where, key, va, vb)
                assert np.allclose(np.asarray(va, float), np.asarray(vb, float), rtol=1e-12, atol=0), (where, key)


@requires_torch
@pytest.mark.parametrize("pair", list(itertools.permutations(["MultiStepLR", "ExponentialLR", "LambdaLR",
                                                              "CosineAnnealingLR", "CyclicLR", "OneCycleLR"], 2)),
                         ids="-".join)
@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
def test_two_schedulers_with_hand_written_lr_and_plateau_match_torch(pair, opt_name):
    import torch.optim.lr_scheduler as tls

    kw = dict(momentum=0.9) if opt_name == "SGD" else {}
    a, b = torch_opt(name=opt_name, **kw), fo_opt(name=opt_name, **kw)
    ta, fb = [], []
    for i, name in enumerate(pair):
        ta.append(getattr(tls, name)(a, **CHAINABLE[name]))
        fb.append(getattr(fls, name)(b, **CHAINABLE[name]))
        if i == 0:  # the second one is created after a step of the first
            for o, s in ((a, ta[0]), (b, fb[0])):
                opt_step(o)
                s.step()
    pa = tls.ReduceLROnPlateau(a, patience=1, factor=0.5, min_lr=[0.01, 0.0])
    pb = fls.ReduceLROnPlateau(b, patience=1, factor=0.5, min_lr=[0.01, 0.0])
    assert_same_groups(a, b, "created")
    for epoch in range(12):
        opt_step(a)
        opt_step(b)
        if epoch in (3, 7):
            a.param_groups[1]["lr"] = b.param_groups[1]["lr"] = 0.05
        order = [1, 0] if epoch % 3 else [0, 1]
        for i in order:
            ta[i].step()
            fb[i].step()
        pa.step(1.0)
        pb.step(1.0)
        assert_same_groups(a, b, epoch)
        for x, y in zip(ta + [pa], fb + [pb]):
            assert y.last_epoch == x.last_epoch
            assert y.get_last_lr() == pytest.approx(x.get_last_lr(), rel=1e-12, abs=0)
        if epoch == 5:  # resume both from state dicts mid-run
            for x, y in zip(ta, fb):
                y.load_state_dict(copy.deepcopy(y.state_dict()))
                x.load_state_dict(x.state_dict())


@requires_torch
@pytest.mark.parametrize("name", sorted(CHAINABLE))
def test_resume_with_last_epoch_after_optimizer_load_matches_torch(name):
    import torch.optim.lr_scheduler as tls

    a, b = torch_opt(momentum=0.9), fo_opt(momentum=0.9)
    ta, fb = getattr(tls, name)(a, **CHAINABLE[name]), getattr(fls, name)(b, **CHAINABLE[name])
    for _ in range(4):
        opt_step(a)
        opt_step(b)
        ta.step()
        fb.step()
    a2, b2 = torch_opt(momentum=0.9), fo_opt(momentum=0.9)
    a2.load_state_dict(a.state_dict())
    b2.load_state_dict(b.state_dict())
    ta2 = getattr(tls, name)(a2, **CHAINABLE[name], last_epoch=ta.last_epoch)
    fb2 = getattr(fls, name)(b2, **CHAINABLE[name], last_epoch=fb.last_epoch)
    assert_same_groups(a2, b2, "resumed")
    for epoch in range(6):
        opt_step(a2)
        opt_step(b2)
        ta2.step()
        fb2.step()
        assert_same_groups(a2, b2, epoch)
        assert fb2.get_last_lr() == pytest.approx(ta2.get_last_lr(), rel=1e-12, abs=0)


@requires_torch
def test_warnings_match_torch():
    import torch.optim.lr_scheduler as tls

    def record(fn):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            fn()
        return [str(x.message)[:40] for x in w]

    for mod, opt in ((tls, torch_opt()), (fls, fo_opt())):
        s = mod.ExponentialLR(opt, 0.9)
        c = mod.ChainedScheduler([mod.StepLR(opt, 2), mod.LambdaLR(opt, lambda e: 0.9)])
        got = [record(s.step), record(c.step), record(lambda: opt_step(opt)), record(s.step), record(s.get_lr)]
        if mod is tls:
            expected = got
        else:
            assert got == expected
    assert expected[0] == ["Detected call of `lr_scheduler.step()` b"]
    assert len(expected[1]) == 2 and expected[3] == [] and expected[4][0].startswith("To get the last")


@requires_torch
def test_lambda_results_match_torch():
    import torch.optim.lr_scheduler as tls

    for value in (np.float64(0.5), np.array(0.5), 1, True):
        a, b = torch_opt(), fo_opt()
        ta, fb = tls.LambdaLR(a, lambda e: value), fls.LambdaLR(b, lambda e: value)
        opt_step(a)
        opt_step(b)
        ta.step()
        fb.step()
        assert np.allclose(np.asarray(lrs(a), float), lrs(b), rtol=1e-12, atol=0)


def test_swalr_that_fails_leaves_the_groups_as_they_were():
    opt = fastoptim.SGD([np.zeros(3, np.float32)], lr=0.1)
    opt.param_groups[0]["lr"] = [0.1]  # an lr schedulers do not take
    before = [dict(g) for g in opt.param_groups]
    with pytest.raises(TypeError, match="lr"):
        fastoptim.lr_scheduler.SWALR(opt, swa_lr=0.05)
    assert [dict(g) for g in opt.param_groups] == before
