"""torch semantics beyond the step-for-step parity cases: SequentialLR's initial step in torch's
``_initial_mode``, the deprecated ``step(epoch)``, ReduceLROnPlateau's assignable attributes,
ZeroDivisionError where torch divides by zero, and the other schedulers' assignable attributes. Every
behaviour has a torch-free check (values worked out by hand) and, with torch installed, a live comparison."""

import collections
import copy
import math
import warnings

import numpy as np
import pytest

import fastoptim
import fastoptim.lr_scheduler as fls
from conftest import requires_torch

EPOCH_WARNING = r"The epoch parameter in `scheduler.step\(\)` was not necessary"


def fo_sgd(lr=0.1):
    return fastoptim.SGD([np.zeros(2)], lr=lr, momentum=0.9)


def torch_sgd(lr=0.1):
    import torch

    return torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=lr, momentum=0.9)


def both():
    """(module, optimizer) for fastoptim and torch."""
    import torch.optim.lr_scheduler as tls

    return [(fls, fo_sgd()), (tls, torch_sgd())]


def lr(opt):
    return opt.param_groups[0]["lr"]


def outcome(fn):
    """What calling ``fn`` gives: ("ok", value) or (exception type name,)."""
    try:
        return ("ok", fn())
    except Exception as e:  # noqa: BLE001 - the type is what is compared
        return (type(e).__name__,)


# ------------------------------------------------------------------ SequentialLR's initial step (_initial_mode)

FIRSTS = {
    "ExponentialLR": (lambda m, o: m.ExponentialLR(o, 0.5), [0.1, 0.05, 0.025, 0.0125]),
    "MultiplicativeLR": (lambda m, o: m.MultiplicativeLR(o, lambda e: 0.5), [0.1, 0.05, 0.025, 0.0125]),
    "CosineAnnealingLR": (lambda m, o: m.CosineAnnealingLR(o, T_max=10),
                          [0.05 * (1 + math.cos(math.pi * t / 10)) for t in range(4)]),
    "PolynomialLR": (lambda m, o: m.PolynomialLR(o, total_iters=4), [0.1, 0.075, 0.05, 0.025]),
    "LinearLR": (lambda m, o: m.LinearLR(o, 0.5, total_iters=4), [0.05, 0.0625, 0.075, 0.0875]),
    "LambdaLR": (lambda m, o: m.LambdaLR(o, lambda e: 0.5 ** e), [0.1, 0.05, 0.025, 0.0125]),
}


def seq_lrs(m, opt, build, steps=3, milestones=(5,)):
    s = m.SequentialLR(opt, [build(m, opt), m.StepLR(opt, 100)], milestones=list(milestones))
    out = [lr(opt)]
    for _ in range(steps):
        s.step()
        out.append(lr(opt))
    return out, s


@pytest.mark.parametrize("name", list(FIRSTS))
def test_sequential_first_child_starts_at_initial_lr(name):
    build, want = FIRSTS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got, s = seq_lrs(fls, fo_sgd(), build)
    assert got == pytest.approx(want, rel=1e-12, abs=0)
    child = s._schedulers[0]
    assert child.last_epoch == 3 and child._step_count == 4


@pytest.mark.parametrize("name", list(FIRSTS))
def test_sequential_second_child_at_milestone_0_keeps_lr(name):
    # milestones=[0]: the second child does the initial step; SequentialLR then steps it from epoch 1.
    build, want = FIRSTS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = fo_sgd()
        s = fls.SequentialLR(opt, [fls.StepLR(opt, 3), build(fls, opt)], milestones=[0])
        got = [lr(opt)]
        for _ in range(3):
            s.step()
            got.append(lr(opt))
    assert got == pytest.approx(want, rel=1e-12, abs=0)


def test_sequential_chained_child_steps_its_children():
    # torch's _initial_mode is the ChainedScheduler's own: the ExponentialLR inside it steps as usual.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = fo_sgd()
        s = fls.SequentialLR(opt, [fls.ChainedScheduler([fls.ExponentialLR(opt, 0.5)]), fls.StepLR(opt, 100)], [5])
        got = [lr(opt)]
        s.step()
        got.append(lr(opt))
    assert got == pytest.approx([0.05, 0.025], rel=1e-12)


def test_cpp_sequential_binding_initial_mode():
    # The C++ composite (driven over a GroupValues) does the same.
    ls = fastoptim._core.lr_scheduler
    g = ls.GroupValues()
    g.set_all([0.1], [None], [None], [False])
    e = ls.ExponentialLR(g, 0.5, -1)
    st = ls.StepLR(g, 100, 0.1, -1)
    seq = ls.SequentialLR(g, (e, st), [5], -1)
    assert g.get_all()[0] == [0.1] and e.step_count == 1 and e.last_epoch == 0
    seq.step()
    assert g.get_all()[0] == [0.05]


@requires_torch
@pytest.mark.parametrize("milestones", [(5,), (0,), (2,)])
@pytest.mark.parametrize("name", list(FIRSTS))
def test_sequential_initial_mode_matches_torch(name, milestones):
    build = FIRSTS[name][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (fm, fo), (tm, to) = both()
        ours, s_ours = seq_lrs(fm, fo, build, steps=8, milestones=milestones)
        ref, s_ref = seq_lrs(tm, to, build, steps=8, milestones=milestones)
    assert ours == pytest.approx(ref, rel=1e-12, abs=0)
    for a, b in zip(s_ours._schedulers, s_ref._schedulers):
        assert (a.last_epoch, a._step_count) == (b.last_epoch, b._step_count)


# ------------------------------------------------------------------ deprecated step(epoch)

# (build, epoch, lr after step(epoch) from 0.1, by hand: the closed form where torch has one, else get_lr)
STEP_EPOCH = {
    "StepLR": (lambda m, o: m.StepLR(o, 2, 0.5), 5, 0.025),
    "MultiStepLR": (lambda m, o: m.MultiStepLR(o, [2, 4], 0.5), 5, 0.025),
    "ConstantLR": (lambda m, o: m.ConstantLR(o, 0.5, total_iters=3), 4, 0.1),
    "LinearLR": (lambda m, o: m.LinearLR(o, 0.5, 1.0, total_iters=4), 2, 0.075),
    "ExponentialLR": (lambda m, o: m.ExponentialLR(o, 0.9), 3, 0.1 * 0.9 ** 3),
    "PolynomialLR": (lambda m, o: m.PolynomialLR(o, total_iters=4, power=2.0), 2, 0.025),
    "CosineAnnealingLR": (lambda m, o: m.CosineAnnealingLR(o, 10), 5, 0.05),
    "LambdaLR": (lambda m, o: m.LambdaLR(o, lambda e: 0.9 ** e), 4, 0.1 * 0.9 ** 4),
    # no closed form: the chainable get_lr from the current lr
    "MultiplicativeLR": (lambda m, o: m.MultiplicativeLR(o, lambda e: 0.5), 3, 0.05),
}


@pytest.mark.parametrize("name", list(STEP_EPOCH))
def test_step_epoch(name):
    build, epoch, want = STEP_EPOCH[name]
    opt = fo_sgd()
    s = build(fls, opt)
    opt.step([np.zeros(2)])
    with pytest.warns(UserWarning, match=EPOCH_WARNING):
        s.step(epoch)
    assert lr(opt) == pytest.approx(want, rel=1e-12)
    assert s.get_last_lr() == [lr(opt)]
    assert s.last_epoch == epoch and s._step_count == 2
    s.step()  # and on from there
    assert s.last_epoch == epoch + 1


def test_step_epoch_onecycle_past_total_steps_raises():
    opt = fo_sgd()
    s = fls.OneCycleLR(opt, 0.1, total_steps=10)
    opt.step([np.zeros(2)])
    with pytest.warns(UserWarning, match=EPOCH_WARNING):
        with pytest.raises(ValueError, match="Tried to step 11 times. The specified number of total steps is 10"):
            s.step(11)


def test_plateau_step_epoch():
    opt = fo_sgd()
    s = fls.ReduceLROnPlateau(opt)
    with pytest.warns(UserWarning, match=EPOCH_WARNING):
        s.step(1.0, 7)
    assert s.last_epoch == 7 and s.last_event.epoch == 7
    s.step(1.0)
    assert s.last_epoch == 8


def _step_epoch_record(m, opt, build, args):
    s = build(m, opt)
    opt.step() if not isinstance(opt, fastoptim.SGD) else opt.step([np.zeros(2)])
    before = (s.last_epoch, getattr(s, "_step_count", None))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        res = outcome(lambda: s.step(*args))
    return (res, lr(opt), s.last_epoch, getattr(s, "_step_count", None),
            sorted(str(x.message)[:60] for x in w), before)


@requires_torch
@pytest.mark.parametrize("case", list(STEP_EPOCH) + ["OneCycleLR-3", "OneCycleLR-11", "CyclicLR", "SWALR",
                                                      "Plateau", "PolynomialLR-neg"])
def test_step_epoch_matches_torch(case):
    from torch.optim.swa_utils import SWALR as TorchSWALR

    extra = {
        "OneCycleLR-3": (lambda m, o: m.OneCycleLR(o, 0.1, total_steps=10), (3,)),
        "OneCycleLR-11": (lambda m, o: m.OneCycleLR(o, 0.1, total_steps=10), (11,)),
        "CyclicLR": (lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=3), (4,)),
        "SWALR": (lambda m, o: (m.SWALR if m is fls else TorchSWALR)(o, 0.01, anneal_epochs=4), (2,)),
        "Plateau": (lambda m, o: m.ReduceLROnPlateau(o), (1.0, 7)),
        "PolynomialLR-neg": (lambda m, o: m.PolynomialLR(o, total_iters=4, power=-1.0), (4,)),
    }
    build, args = extra[case] if case in extra else (STEP_EPOCH[case][0], (STEP_EPOCH[case][1],))
    (fm, fo), (tm, to) = both()
    ours = _step_epoch_record(fm, fo, build, args)
    ref = _step_epoch_record(tm, to, build, args)
    assert ours[0][0] == ref[0][0] and ours[4] == ref[4]
    assert ours[1] == pytest.approx(ref[1], rel=1e-12)
    if ours[0][0] == "ok":
        assert ours[2:4] == ref[2:4]
    else:  # torch has advanced last_epoch and _step_count before raising; a failed step of ours changes nothing
        assert ours[2:4] == ours[5]


# ------------------------------------------------------------------ ReduceLROnPlateau's attributes

METRICS = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.8, 0.8, 0.8, 0.8]


def plateau_lrs(s, opt, metrics=METRICS):
    out = []
    for m in metrics:
        s.step(m)
        out.append(lr(opt))
    return out


@pytest.mark.parametrize("attr,value", [("patience", 0), ("factor", 0.5), ("cooldown", 3), ("threshold", 0.5),
                                        ("eps", 1.0), ("threshold_mode", "abs"), ("min_lrs", [0.05])])
def test_plateau_assignment_takes_effect(attr, value):
    # Assigning after construction behaves as passing the value to the constructor.
    kwargs = {"min_lr" if attr == "min_lrs" else attr: value}
    opt_a, opt_b = fo_sgd(), fo_sgd()
    a = fls.ReduceLROnPlateau(opt_a, patience=1)
    setattr(a, attr, copy.deepcopy(value))
    b = fls.ReduceLROnPlateau(opt_b, **dict(dict(patience=1), **kwargs))
    assert getattr(a, attr) == value
    assert plateau_lrs(a, opt_a) == plateau_lrs(b, opt_b)
    if attr != "min_lrs":  # a per-group min_lr list makes default_min_lr None
        assert a.state_dict() == b.state_dict()


def test_plateau_default_min_lr_applies_to_new_groups():
    # torch's default_min_lr is read only when the number of param groups changed.
    opt = fo_sgd()
    s = fls.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    s.default_min_lr = 0.04
    s.step(1.0)
    s.step(1.0)
    assert lr(opt) == 0.05 and s.min_lrs == [0.0]
    opt.add_param_group(dict(params=[np.zeros(1)], lr=0.1))
    s.step(1.0)
    assert s.min_lrs == [0.04, 0.04] and [g["lr"] for g in opt.param_groups] == [0.04, 0.05]


def test_plateau_mode_assignment_keeps_mode_worse():
    # torch's mode_worse (and so best) is set at construction: after `mode = "max"` best stays inf, so no
    # metric is an improvement.
    opt = fo_sgd()
    s = fls.ReduceLROnPlateau(opt, patience=1)
    s.mode = "max"
    assert plateau_lrs(s, opt, [1.0, 2.0, 3.0]) == pytest.approx([0.1, 0.01, 0.01])
    sd = s.state_dict()
    assert sd["mode"] == "max" and sd["mode_worse"] == math.inf and sd["best"] == math.inf


def test_plateau_state_assignment():
    opt = fo_sgd()
    s = fls.ReduceLROnPlateau(opt, patience=2)
    s.best = 0.5
    s.step(0.6)
    assert s.num_bad_epochs == 1 and s.best == 0.5
    s.num_bad_epochs = 2
    s.step(0.6)  # the third bad epoch: reduce
    assert lr(opt) == pytest.approx(0.01)
    s.cooldown_counter = 2
    s.step(0.6)
    assert s.last_event.kind == "cooldown" and s.cooldown_counter == 1
    s.last_epoch = 40
    s.step(0.1)
    assert s.last_epoch == 41 and s.best == 0.1


@pytest.mark.parametrize("attr,value,exc,match", [
    ("factor", 1.5, ValueError, "Factor should be < 1.0."),
    ("mode", "mid", ValueError, "mode mid is unknown!"),
    ("threshold_mode", "pct", ValueError, "threshold mode pct is unknown!"),
    ("patience", 1.5, TypeError, "patience must be an integer"),
])
def test_plateau_invalid_assignment_changes_nothing(attr, value, exc, match):
    opt = fo_sgd()
    s = fls.ReduceLROnPlateau(opt, patience=1)
    before = s.state_dict()
    with pytest.raises(exc, match=match):
        setattr(s, attr, value)
    assert s.state_dict() == before


@requires_torch
@pytest.mark.parametrize("attr,value", [("patience", 0), ("factor", 0.5), ("cooldown", 3), ("threshold", 0.5),
                                        ("eps", 1.0), ("mode", "max"), ("threshold_mode", "abs"),
                                        ("min_lrs", [0.05]), ("default_min_lr", 0.02), ("best", 0.5),
                                        ("num_bad_epochs", 3),
                                        ("cooldown_counter", 1), ("last_epoch", 4)])
def test_plateau_assignment_matches_torch(attr, value):
    out = []
    for m, opt in both():
        s = m.ReduceLROnPlateau(opt, patience=1)
        setattr(s, attr, copy.deepcopy(value))
        out.append((plateau_lrs(s, opt), s.state_dict()))
    (ours, sd_ours), (ref, sd_ref) = out
    assert ours == pytest.approx(ref, rel=1e-12)
    assert sd_ours == sd_ref


# ------------------------------------------------------------------ division by zero

# (build, number of plain steps that succeed before the ZeroDivisionError; None: raised at construction)
ZERO_DIV = {
    "PolynomialLR power -1": (lambda m, o: m.PolynomialLR(o, total_iters=4, power=-1.0), 3),
    "ConstantLR factor 0": (lambda m, o: m.ConstantLR(o, factor=0.0, total_iters=2), 1),
    "CosineAnnealingLR T_max 0": (lambda m, o: m.CosineAnnealingLR(o, T_max=0), 0),
    "OneCycleLR div_factor 0": (lambda m, o: m.OneCycleLR(o, 0.1, total_steps=10, div_factor=0.0,
                                                          cycle_momentum=False), None),
    "OneCycleLR final_div_factor 0": (lambda m, o: m.OneCycleLR(o, 0.1, total_steps=10, final_div_factor=0.0,
                                                                cycle_momentum=False), None),
    "CyclicLR step_size_up 0": (lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=0, step_size_down=3,
                                                        cycle_momentum=False), None),
}


@pytest.mark.parametrize("name", list(ZERO_DIV))
def test_zero_division(name):
    build, ok_steps = ZERO_DIV[name]
    opt = fo_sgd()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if ok_steps is None:
            with pytest.raises(ZeroDivisionError):
                build(fls, opt)
            assert lr(opt) == 0.1 and "initial_lr" not in opt.param_groups[0]
            return
        s = build(fls, opt)
        for _ in range(ok_steps):
            s.step()
        before = lr(opt)
        with pytest.raises(ZeroDivisionError):
            s.step()
        assert lr(opt) == before


def test_zero_division_closed_form():
    opt = fo_sgd()
    s = fls.PolynomialLR(opt, total_iters=4, power=-1.0)
    opt.step([np.zeros(2)])
    with pytest.warns(UserWarning, match=EPOCH_WARNING), pytest.raises(ZeroDivisionError):
        s.step(5)


@requires_torch
@pytest.mark.parametrize("name", list(ZERO_DIV))
def test_zero_division_matches_torch(name):
    build = ZERO_DIV[name][0]
    out = []
    for m, opt in both():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            made = outcome(lambda: build(m, opt))
            if made[0] != "ok":
                out.append(made)
                continue
            s, steps = made[1], []
            for _ in range(5):
                r = outcome(s.step)
                steps.append(r[0] if r[0] != "ok" else lr(opt))
                if r[0] != "ok":
                    break
            out.append(("ok", steps))
    assert out[0][0] == out[1][0]
    if out[0][0] == "ok":
        assert out[0][1][:-1] == pytest.approx(out[1][1][:-1], rel=1e-12) and out[0][1][-1] == out[1][1][-1]


# ------------------------------------------------------------------ assignable attributes

# (build, attribute, value, lrs of 4 steps after assigning, by hand)
ASSIGN = {
    "StepLR.gamma": (lambda m, o: m.StepLR(o, 2), "gamma", 0.5, [0.1, 0.05, 0.05, 0.025]),
    "StepLR.step_size": (lambda m, o: m.StepLR(o, 2, 0.5), "step_size", 3, [0.1, 0.1, 0.05, 0.05]),
    "StepLR.base_lrs": (lambda m, o: m.StepLR(o, 2, 0.5), "base_lrs", [0.2], [0.1, 0.05, 0.05, 0.025]),
    "MultiStepLR.milestones": (lambda m, o: m.MultiStepLR(o, [2], 0.5), "milestones",
                               collections.Counter([1, 3]), [0.05, 0.05, 0.025, 0.025]),
    "MultiStepLR.milestones list": (lambda m, o: m.MultiStepLR(o, [2], 0.5), "milestones", [1, 3],
                                    [0.05, 0.05, 0.025, 0.025]),
    "ExponentialLR.gamma": (lambda m, o: m.ExponentialLR(o, 0.9), "gamma", 0.5, [0.05, 0.025, 0.0125, 0.00625]),
    "CosineAnnealingLR.T_max": (lambda m, o: m.CosineAnnealingLR(o, 10), "T_max", 2, [0.05, 0.0, 0.05, 0.1]),
    "CosineAnnealingLR.eta_min": (lambda m, o: m.CosineAnnealingLR(o, 2), "eta_min", 0.02, [0.06, 0.02, 0.06, 0.1]),
    "LinearLR.total_iters": (lambda m, o: m.LinearLR(o, 0.5), "total_iters", 2, [0.075, 0.1, 0.1, 0.1]),
    "PolynomialLR.power": (lambda m, o: m.PolynomialLR(o, total_iters=4), "power", 2.0,
                           [0.1 * 0.75 ** 2, 0.1 * 0.5 ** 2, 0.1 * 0.25 ** 2, 0.0]),
    "PolynomialLR.total_iters": (lambda m, o: m.PolynomialLR(o, total_iters=4), "total_iters", 2,
                                 [0.1 * (0.5 / 0.75) * 0.75, 0.0, 0.0, 0.0]),
    # T_0 only matters to step(epoch) and at restarts; T_i is the current period
    "CosineAnnealingWarmRestarts.T_0": (lambda m, o: m.CosineAnnealingWarmRestarts(o, 3), "T_0", 2,
                                        [0.075, 0.025, 0.1, 0.075]),
    "CosineAnnealingWarmRestarts.T_i": (lambda m, o: m.CosineAnnealingWarmRestarts(o, 3), "T_i", 2,
                                        [0.05, 0.1, 0.05, 0.1]),
    "CosineAnnealingWarmRestarts.eta_min": (lambda m, o: m.CosineAnnealingWarmRestarts(o, 2), "eta_min", 0.02,
                                            [0.06, 0.1, 0.06, 0.1]),
    "OneCycleLR.total_steps": (lambda m, o: m.OneCycleLR(o, 0.1, total_steps=4, anneal_strategy="linear"),
                               "total_steps", 6, None),
    "CyclicLR.max_lrs": (lambda m, o: m.CyclicLR(o, 0.0, 0.1, step_size_up=2), "max_lrs", [0.2],
                         [0.1, 0.2, 0.1, 0.0]),
    "CyclicLR.base_lrs": (lambda m, o: m.CyclicLR(o, 0.0, 0.1, step_size_up=2), "base_lrs", [0.02],
                          [0.06, 0.1, 0.06, 0.02]),
    "SWALR.anneal_epochs": (lambda m, o: m.SWALR(o, 0.0, anneal_epochs=10, anneal_strategy="linear"),
                            "anneal_epochs", 2, [0.05, 0.0, 0.0, 0.0]),
}


def _assign_lrs(m, opt, key):
    build, attr, value, _ = ASSIGN[key]
    if m is not fls and key.startswith("SWALR"):
        from torch.optim.swa_utils import SWALR

        s = SWALR(opt, 0.0, anneal_epochs=10, anneal_strategy="linear")
    else:
        s = build(m, opt)
    setattr(s, attr, copy.deepcopy(value))
    out = []
    for _ in range(4):
        s.step()
        out.append(lr(opt))
    return out, s, attr


@pytest.mark.parametrize("key", list(ASSIGN))
def test_assignment_takes_effect(key):
    want = ASSIGN[key][3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got, s, attr = _assign_lrs(fls, fo_sgd(), key)
    value = ASSIGN[key][2]
    if attr == "milestones":
        assert s.milestones == collections.Counter(value)
    elif attr in s.state_dict():
        assert s.state_dict()[attr] == value
    if want is not None:
        assert got == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_invalid_assignment_raises_and_changes_nothing():
    opt = fo_sgd()
    s = fls.StepLR(opt, 2)
    with pytest.raises(ValueError, match="step_size must be a positive integer"):
        s.step_size = 0
    with pytest.raises(TypeError):
        s.gamma = "half"
    with pytest.raises(ValueError):
        s.base_lrs = [0.1, 0.2]
    assert (s.step_size, s.gamma, s.base_lrs) == (2, 0.1, [0.1])


@requires_torch
@pytest.mark.parametrize("key", [k for k in ASSIGN if k != "MultiStepLR.milestones list"])  # torch: a Counter
def test_assignment_matches_torch(key):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (fm, fo), (tm, to) = both()
        ours = _assign_lrs(fm, fo, key)[0]
        ref = _assign_lrs(tm, to, key)[0]
    assert ours == pytest.approx(ref, rel=1e-12, abs=1e-15)


# ------------------------------------------------------------------ class hierarchy


@pytest.mark.parametrize("name", ["ReduceLROnPlateau", "SequentialLR", "ChainedScheduler", "SWALR", "StepLR"])
def test_every_scheduler_is_an_lrscheduler(name):
    # As torch's: ReduceLROnPlateau, SequentialLR and ChainedScheduler subclass LRScheduler too.
    assert issubclass(getattr(fls, name), fls.LRScheduler)


def test_composite_and_plateau_attributes_stay_plain():
    opt = fo_sgd()
    seq = fls.SequentialLR(opt, [fls.StepLR(opt, 2), fls.StepLR(opt, 3)], [2])
    assert isinstance(seq, fls.LRScheduler) and seq.last_epoch == 0
    seq.last_epoch = 7
    assert seq.state_dict()["last_epoch"] == 7
    chain = fls.ChainedScheduler([fls.StepLR(opt, 2)])
    assert not hasattr(chain, "last_epoch") and not hasattr(chain, "base_lrs")  # as torch's
    plateau = fls.ReduceLROnPlateau(opt)
    assert not hasattr(plateau, "base_lrs") and plateau.get_last_lr() == [0.1]
    with pytest.raises(NotImplementedError):
        plateau.get_lr()


@requires_torch
@pytest.mark.parametrize("name", ["ReduceLROnPlateau", "SequentialLR", "ChainedScheduler"])
def test_hierarchy_matches_torch(name):
    import torch.optim.lr_scheduler as tls

    assert issubclass(getattr(tls, name), tls.LRScheduler) == issubclass(getattr(fls, name), fls.LRScheduler)


def one_cycle_new_group(module, opt, make_param, with_keys):
    """OneCycleLR stepped once, then a param group added (with or without the schedule's keys), then stepped
    three more times: the lrs and momenta seen, or the exception."""
    s = module.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    opt.step() if module is not fls else opt.step([np.ones(2)])
    s.step()
    group = {"params": [make_param()]}
    if with_keys:
        group.update(initial_lr=0.04, max_lr=2.0, min_lr=1e-5, max_momentum=0.95, base_momentum=0.85)
    opt.add_param_group(group)
    seen = []
    try:
        for _ in range(3):
            s.step()
            seen.append(s.get_last_lr() + [g["momentum"] for g in opt.param_groups])
    except Exception as e:  # noqa: BLE001 - the exception is the result compared
        return seen, type(e), e.args
    return seen, None, None


@pytest.mark.parametrize("with_keys", [False, True])
def test_one_cycle_group_added_after_construction(with_keys):
    # torch reads initial_lr, max_lr, min_lr and the momenta from every group at every step: a group added
    # with them is scheduled; one without is KeyError('initial_lr') (the first value the first phase reads).
    seen, exc, args = one_cycle_new_group(fls, fo_sgd(), lambda: np.zeros(2), with_keys)
    if with_keys:
        assert exc is None
        assert seen[0] == [1.0, 2.0, 0.85, 0.85]
        assert seen[2] == pytest.approx([0.811746, 1.623492, 0.868826, 0.868826], abs=1e-6)
    else:
        assert seen == [] and exc is KeyError and args == ("initial_lr",)


@requires_torch
@pytest.mark.parametrize("with_keys", [False, True])
def test_one_cycle_group_added_after_construction_torch(with_keys):
    import torch
    import torch.optim.lr_scheduler as tls

    def make():
        return torch.zeros(2, requires_grad=True)

    expected = one_cycle_new_group(tls, torch_sgd(), make, with_keys)
    assert one_cycle_new_group(fls, fo_sgd(), lambda: np.zeros(2), with_keys) == expected


def test_one_cycle_missing_max_lr_in_second_phase():
    # Past pct_start the first value read is max_lr: a group without it is KeyError('max_lr') there.
    opt = fo_sgd()
    s = fls.OneCycleLR(opt, max_lr=1.0, total_steps=10, pct_start=0.25)  # phase 1 ends at step 1.5
    opt.step([np.ones(2)])
    for _ in range(3):
        s.step()
    opt.add_param_group({"params": [np.zeros(2)], "initial_lr": 0.04})
    before = (s.last_epoch, [g["lr"] for g in opt.param_groups], s.get_last_lr())
    with pytest.raises(KeyError) as info:
        s.step()
    assert info.value.args == ("max_lr",)
    # A failed step changes nothing (the scheduler's design; torch would have advanced last_epoch).
    assert (s.last_epoch, [g["lr"] for g in opt.param_groups], s.get_last_lr()) == before


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_array_lr_is_filled_in_place(dtype):
    # The optimizers take a 0-d array as lr (torch: a 0-d tensor); the schedulers read it and write the new
    # lr into the same array, as torch fills a tensor lr.
    lr_array = np.array(0.1, dtype=dtype)
    opt = fastoptim.SGD([np.zeros(2)], lr=lr_array, momentum=0.9)
    s = fls.StepLR(opt, step_size=1, gamma=0.5)
    for expected in (0.05, 0.025):
        opt.step([np.ones(2)])
        s.step()
        assert opt.param_groups[0]["lr"] is lr_array
        assert float(lr_array) == float(dtype(expected)) and s.get_last_lr() == [pytest.approx(expected)]


@requires_torch
def test_array_lr_matches_tensor_lr():
    import torch

    lr_array = np.array(0.1)
    fo_opt = fastoptim.SGD([np.zeros(2)], lr=lr_array, momentum=0.9)
    t_opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=torch.tensor(0.1, dtype=torch.float64),
                            momentum=0.9)
    fo_s = fls.ExponentialLR(fo_opt, gamma=0.7)
    t_s = torch.optim.lr_scheduler.ExponentialLR(t_opt, gamma=0.7)
    for _ in range(4):
        fo_opt.step([np.ones(2)])
        t_opt.step()
        fo_s.step()
        t_s.step()
        assert float(lr_array) == t_opt.param_groups[0]["lr"].item()
