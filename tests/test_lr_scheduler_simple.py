"""MultiStepLR, ConstantLR, LinearLR, ExponentialLR, PolynomialLR, LambdaLR, MultiplicativeLR: closed form
vs chainable form, state-dict round trips (also into schedulers built with other arguments), state-dict
interop with torch in both directions, and argument validation. Parity of whole runs with torch is in
test_lr_scheduler_parity.py (cases in sched_cases_simple.py)."""

import collections
import copy
import inspect
import math
import re
import types

import numpy as np
import pytest

import fastoptim.lr_scheduler as fls
import sched_parity as sp
from conftest import requires_torch


class Scale:
    """A callable object: torch saves and restores its __dict__."""

    def __init__(self, a):
        self.a = a

    def __call__(self, epoch):
        return self.a ** epoch


class Mult:
    def __init__(self, g, period):
        self.g = g
        self.period = period

    def __call__(self, epoch):
        return self.g if epoch % self.period == 0 else 1.0


def _lam(epoch):
    return 1.0 / (1.0 + 0.01 * epoch)


# (name, kwargs, other kwargs for "load into a differently built scheduler")
SPECS = [
    ("MultiStepLR", dict(milestones=[30, 10, 80, 80, 150], gamma=0.5), dict(milestones=[3], gamma=0.9)),
    ("ConstantLR", dict(factor=0.25, total_iters=60), dict(factor=0.9, total_iters=2)),
    ("ConstantLR", dict(), dict(factor=1.0, total_iters=0)),
    ("LinearLR", dict(start_factor=0.1, end_factor=0.7, total_iters=90), dict()),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.0, total_iters=40), dict(start_factor=0.5)),
    ("ExponentialLR", dict(gamma=0.97), dict(gamma=0.5)),
    ("PolynomialLR", dict(total_iters=120, power=1.7), dict(total_iters=5, power=1.0)),
    ("PolynomialLR", dict(), dict(total_iters=300, power=0.5)),
]
CLOSED = [s for s in SPECS]  # every one of these has torch's _get_closed_form_lr
IDS = [f"{n}-{i}" for i, (n, _, _) in enumerate(SPECS)]


def lambda_specs():
    """(name, factory of lr_lambda, factory of a different lr_lambda); factories so each run owns its objects."""
    return [
        ("LambdaLR", lambda: Scale(0.99), lambda: Scale(0.5)),
        ("LambdaLR", lambda: [_lam, Scale(0.995)], lambda: [_lam, Scale(0.3)]),
        ("MultiplicativeLR", lambda: Mult(0.5, 25), lambda: Mult(0.9, 3)),
        ("MultiplicativeLR", lambda: [lambda e: 0.999, Mult(0.7, 40)], lambda: [lambda e: 0.999, Mult(0.1, 2)]),
    ]


LAMBDA_IDS = ["LambdaLR-obj", "LambdaLR-list", "MultiplicativeLR-obj", "MultiplicativeLR-list"]


def fopt(kind="sgd"):
    opt, params = sp.make_fastoptim_optimizer(kind)
    zeros = [np.zeros_like(p) for p in params]
    return opt, (lambda: opt.step(zeros))


def topt(kind="sgd"):
    import torch

    opt, params = sp.make_torch_optimizer(kind)

    def step():
        for p in params:
            p.grad = torch.zeros_like(p)
        opt.step()

    return opt, step


def lrs(opt):
    return [float(g["lr"]) for g in opt.param_groups]


def copy_lrs(src, dst):
    """What loading the optimizer's state dict does to the lrs."""
    for a, b in zip(src.param_groups, dst.param_groups):
        b["lr"] = float(a["lr"])
        b["initial_lr"] = float(a["initial_lr"])


def run(sched, step, n):
    out = []
    for _ in range(n):
        step()
        sched.step()
        out.append(list(sched.get_last_lr()))
    return np.array(out)


# ------------------------------------------------------------------------------------ closed form

@pytest.mark.parametrize("name,kwargs,other", CLOSED, ids=IDS)
def test_closed_form_matches_chainable(name, kwargs, other):
    for kind in sp.OPTIMIZERS:
        opt, step = fopt(kind)
        sched = getattr(fls, name)(opt, **kwargs)
        for t in range(400):
            closed = sched._core.closed_form_lr()
            assert closed is not None
            np.testing.assert_allclose(closed, sched.get_last_lr(), rtol=1e-11, atol=1e-300,
                                       err_msg=f"{name} at epoch {t}")
            step()
            sched.step()


def test_multistep_closed_form_counts_duplicates():
    opt, step = fopt()
    sched = fls.MultiStepLR(opt, milestones=[5, 2, 5], gamma=0.5)
    got = run(sched, step, 6)[:, 0]
    assert list(got) == [0.1, 0.05, 0.05, 0.05, 0.0125, 0.0125]
    assert sched.milestones == collections.Counter({5: 2, 2: 1})
    assert sched._core.closed_form_lr()[0] == 0.1 * 0.5 ** 3


def test_lambda_has_no_closed_form():
    opt, _ = fopt()
    assert fls.LambdaLR(opt, _lam)._core.closed_form_lr() is None


# ------------------------------------------------------------------------------------ state dict

@pytest.mark.parametrize("name,kwargs,other", SPECS, ids=IDS)
@pytest.mark.parametrize("different", [False, True])
def test_state_dict_roundtrip_resumes(name, kwargs, other, different):
    cls = getattr(fls, name)
    opt, step = fopt("adam")
    sched = cls(opt, **kwargs)
    run(sched, step, 57)
    sd = copy.deepcopy(sched.state_dict())
    saved_lrs = copy.deepcopy(opt.param_groups)
    expected = run(sched, step, 300)

    opt2, step2 = fopt("adam")
    sched2 = cls(opt2, **(other if different else kwargs))
    for g, s in zip(opt2.param_groups, saved_lrs):
        g["lr"], g["initial_lr"] = s["lr"], s["initial_lr"]
    sched2.load_state_dict(sd)
    assert sched2.state_dict() == sd
    got = run(sched2, step2, 300)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("spec", lambda_specs(), ids=LAMBDA_IDS)
@pytest.mark.parametrize("different", [False, True])
def test_lambda_state_dict_roundtrip(spec, different):
    name, make, make_other = spec
    cls = getattr(fls, name)
    opt, step = fopt("rmsprop")
    sched = cls(opt, make())
    run(sched, step, 31)
    sd = copy.deepcopy(sched.state_dict())
    # torch's rule: None for functions / lambdas, the __dict__ of callable objects
    for fn, entry in zip(sched.lr_lambdas, sd["lr_lambdas"]):
        assert entry == (None if isinstance(fn, types.FunctionType) else fn.__dict__)
    saved = copy.deepcopy(opt.param_groups)
    expected = run(sched, step, 200)

    opt2, step2 = fopt("rmsprop")
    sched2 = cls(opt2, (make_other if different else make)())
    for g, s in zip(opt2.param_groups, saved):
        g["lr"], g["initial_lr"] = s["lr"], s["initial_lr"]
    sd_before = copy.deepcopy(sd)
    sched2.load_state_dict(sd)
    assert sd == sd_before  # not mutated
    got = run(sched2, step2, 200)
    np.testing.assert_array_equal(got, expected)


def test_lambda_state_dict_layout():
    opt, step = fopt()
    sched = fls.LambdaLR(opt, [_lam, Scale(0.9)])
    sd = sched.state_dict()
    assert sd["lr_lambdas"] == [None, {"a": 0.9}]
    assert list(sd)[-1] == "lr_lambdas"
    with pytest.raises(KeyError):
        sched.load_state_dict({k: v for k, v in sd.items() if k != "lr_lambdas"})


# ------------------------------------------------------------------------------------ torch interop

def _torch_cls(name):
    import torch

    return getattr(torch.optim.lr_scheduler, name)


def _interop_specs():
    out = [(n, (lambda kw=kw: kw), (lambda ot=ot: ot), False) for n, kw, ot in SPECS]
    for name, make, make_other in lambda_specs():
        out.append((name, (lambda make=make: dict(lr_lambda=make())),
                    (lambda make_other=make_other: dict(lr_lambda=make_other())), True))
    return out


INTEROP = _interop_specs()
INTEROP_IDS = IDS + LAMBDA_IDS


@requires_torch
@pytest.mark.parametrize("name,kw,other,is_lambda", INTEROP, ids=INTEROP_IDS)
def test_torch_state_dict_into_ours(name, kw, other, is_lambda):
    t_opt, t_step = topt("sgd")
    t_sched = _torch_cls(name)(t_opt, **kw())
    run(t_sched, t_step, 45)
    sd = copy.deepcopy(t_sched.state_dict())
    expected = run(t_sched, t_step, 250)

    f_opt, f_step = fopt("sgd")
    f_sched = getattr(fls, name)(f_opt, **other())
    for g, s in zip(f_opt.param_groups, sd["base_lrs"]):
        g["initial_lr"] = s
    for g, s in zip(f_opt.param_groups, sd["_last_lr"]):
        g["lr"] = s
    f_sched.load_state_dict(sd)
    got = run(f_sched, f_step, 250)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


@requires_torch
@pytest.mark.parametrize("name,kw,other,is_lambda", INTEROP, ids=INTEROP_IDS)
def test_our_state_dict_into_torch(name, kw, other, is_lambda):
    f_opt, f_step = fopt("sgd")
    f_sched = getattr(fls, name)(f_opt, **kw())
    run(f_sched, f_step, 45)
    sd = copy.deepcopy(f_sched.state_dict())
    expected = run(f_sched, f_step, 250)

    t_opt, t_step = topt("sgd")
    t_sched = _torch_cls(name)(t_opt, **other())
    for g, lr, init in zip(t_opt.param_groups, sd["_last_lr"], sd["base_lrs"]):
        g["lr"], g["initial_lr"] = lr, init
    t_sched.load_state_dict(sd)
    got = run(t_sched, t_step, 250)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


@requires_torch
@pytest.mark.parametrize("name,kwargs,other", SPECS, ids=IDS)
def test_state_dict_keys_match_torch(name, kwargs, other):
    t_opt, _ = topt("sgd")
    f_opt, _ = fopt("sgd")
    t_sd = _torch_cls(name)(t_opt, **kwargs).state_dict()
    f_sd = getattr(fls, name)(f_opt, **kwargs).state_dict()
    assert set(f_sd) == set(t_sd)
    for key in (*getattr(fls, name)._params, "base_lrs", "last_epoch", "_step_count", "_last_lr"):
        assert f_sd[key] == t_sd[key], key
        assert type(f_sd[key]) is type(t_sd[key]), key


# ------------------------------------------------------------------------------------ validation

BAD = [
    ("ConstantLR", dict(factor=1.5), ValueError, "Constant multiplicative factor expected to be between 0 and 1."),
    ("ConstantLR", dict(factor=-0.1), ValueError, "Constant multiplicative factor expected to be between 0 and 1."),
    ("LinearLR", dict(start_factor=0.0), ValueError,
     "Starting multiplicative factor expected to be greater than 0 and less or equal to 1."),
    ("LinearLR", dict(start_factor=1.2), ValueError,
     "Starting multiplicative factor expected to be greater than 0 and less or equal to 1."),
    ("LinearLR", dict(end_factor=1.01), ValueError, "Ending multiplicative factor expected to be between 0 and 1."),
    ("LinearLR", dict(end_factor=-1.0), ValueError, "Ending multiplicative factor expected to be between 0 and 1."),
    ("LambdaLR", dict(lr_lambda=[_lam]), ValueError, "Expected 2 lr_lambdas, but got 1"),
    ("LambdaLR", dict(lr_lambda=[_lam, _lam, _lam]), ValueError, "Expected 2 lr_lambdas, but got 3"),
    ("MultiplicativeLR", dict(lr_lambda=(_lam,)), ValueError, "Expected 2 lr_lambdas, but got 1"),
    ("MultiplicativeLR", dict(lr_lambda=3), TypeError, "lr_lambda should be a function, but got int"),
    ("MultiplicativeLR", dict(lr_lambda=[_lam, None]), TypeError, "lr_lambda should be a function, but got NoneType"),
]
BAD_OURS_ONLY = [
    ("ConstantLR", dict(factor="0.5"), TypeError, "factor must be a real number"),
    ("LinearLR", dict(total_iters=2.5), TypeError, "total_iters must be an integer"),
    ("MultiStepLR", dict(milestones=[1, "2"]), TypeError, "milestones must be an integer"),
    ("MultiStepLR", dict(milestones=5), TypeError, "milestones must be an iterable"),
    ("ExponentialLR", dict(gamma=None), TypeError, "gamma must be a real number"),
    ("PolynomialLR", dict(power="x"), TypeError, "power must be a real number"),
    ("LambdaLR", dict(lr_lambda=3), TypeError, "lr_lambda should be a function, but got int"),
]


@pytest.mark.parametrize("name,kwargs,exc,msg", BAD + BAD_OURS_ONLY, ids=lambda v: str(v)[:40])
def test_invalid_arguments(name, kwargs, exc, msg):
    opt, _ = fopt("adam")
    before = copy.deepcopy(opt.param_groups)
    with pytest.raises(exc, match=re.escape(msg)):
        getattr(fls, name)(opt, **kwargs)
    after = opt.param_groups
    assert len(after) == len(before)
    for a, b in zip(after, before):
        assert set(a) == set(b)  # no initial_lr added
        assert a["lr"] == b["lr"]


@requires_torch
@pytest.mark.parametrize("name,kwargs,exc,msg", BAD, ids=lambda v: str(v)[:40])
def test_invalid_arguments_like_torch(name, kwargs, exc, msg):
    t_opt, _ = topt("adam")
    with pytest.raises(exc, match=re.escape(msg)):
        _torch_cls(name)(t_opt, **kwargs)


def test_resume_requires_initial_lr():
    opt, _ = fopt()
    with pytest.raises((KeyError, ValueError), match="initial_lr"):
        fls.ExponentialLR(opt, gamma=0.9, last_epoch=3)
    assert all("initial_lr" not in g for g in opt.param_groups)


@pytest.mark.parametrize("name,kwargs,bad", [
    ("ConstantLR", dict(factor=0.5), dict(factor=2.0)),
    ("LinearLR", dict(), dict(start_factor=0.0)),
    ("LinearLR", dict(), dict(end_factor=3.0)),
])
def test_load_state_dict_validates_before_setting(name, kwargs, bad):
    opt, step = fopt()
    sched = getattr(fls, name)(opt, **kwargs)
    step()
    sched.step()
    sd = sched.state_dict()
    before = copy.deepcopy(sd)
    with pytest.raises(ValueError):
        sched.load_state_dict(dict(sd, **bad))
    assert sched.state_dict() == before


def test_resumed_schedulers_do_not_step_ahead():
    """last_epoch >= 0 resumes: the initial step keeps the lrs for the _is_initial schedulers, as torch."""
    for name, kwargs in [("ExponentialLR", dict(gamma=0.5)), ("PolynomialLR", dict(total_iters=10)),
                         ("LinearLR", dict(total_iters=10)), ("MultiplicativeLR", dict(lr_lambda=lambda e: 0.5))]:
        opt, _ = fopt()
        for g in opt.param_groups:
            g["initial_lr"] = g["lr"]
            g["lr"] = g["lr"] * 0.25
        before = lrs(opt)
        getattr(fls, name)(opt, last_epoch=3, **kwargs)
        assert lrs(opt) == before, name


@requires_torch
def test_resumed_schedulers_like_torch():
    cases = [("ExponentialLR", dict(gamma=0.5)), ("PolynomialLR", dict(total_iters=10, power=2.0)),
             ("LinearLR", dict(start_factor=0.2, total_iters=10)), ("ConstantLR", dict(factor=0.5, total_iters=4)),
             ("MultiStepLR", dict(milestones=[4, 4, 7])), ("LambdaLR", dict(lr_lambda=_lam)),
             ("MultiplicativeLR", dict(lr_lambda=Mult(0.5, 3)))]
    for name, kwargs in cases:
        results = []
        for module, make in ((fls, fopt), (_torch_mod(), topt)):
            opt, step = make("sgd")
            for g in opt.param_groups:
                g["initial_lr"] = g["lr"]
                g["lr"] = g["lr"] * 0.25
            sched = getattr(module, name)(opt, last_epoch=3, **kwargs)
            results.append([lrs(opt)] + run(sched, step, 20).tolist())
        np.testing.assert_allclose(results[0], results[1], rtol=1e-12, atol=0, err_msg=name)


def _torch_mod():
    import torch

    return torch.optim.lr_scheduler


E = inspect.Parameter.empty


def _has_torch():
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def test_exports_and_signatures():
    for name in ("MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR", "LambdaLR",
                 "MultiplicativeLR"):
        assert name in fls.__all__
    sig = inspect.signature(fls.LinearLR)
    assert [(p.name, p.default) for p in sig.parameters.values()] == [
        ("optimizer", inspect.Parameter.empty), ("start_factor", 1.0 / 3), ("end_factor", 1.0),
        ("total_iters", 5), ("last_epoch", -1)]
    expected = {
        "MultiStepLR": [("optimizer", E), ("milestones", E), ("gamma", 0.1), ("last_epoch", -1)],
        "ConstantLR": [("optimizer", E), ("factor", 1.0 / 3), ("total_iters", 5), ("last_epoch", -1)],
        "ExponentialLR": [("optimizer", E), ("gamma", E), ("last_epoch", -1)],
        "PolynomialLR": [("optimizer", E), ("total_iters", 5), ("power", 1.0), ("last_epoch", -1)],
        "LambdaLR": [("optimizer", E), ("lr_lambda", E), ("last_epoch", -1)],
        "MultiplicativeLR": [("optimizer", E), ("lr_lambda", E), ("last_epoch", -1)],
    }
    for name, params in expected.items():
        got = [(p.name, p.default) for p in inspect.signature(getattr(fls, name)).parameters.values()]
        assert got == params, name
        t_got = [(p.name, p.default) for p in inspect.signature(getattr(_torch_mod(), name)).parameters.values()] \
            if _has_torch() else params
        assert t_got == params, name
    assert math.isclose(fls.ConstantLR(fopt()[0]).factor, 1 / 3)
