"""torch.optim's optimizer contract beyond the numbers: param_groups and defaults as built (values, types,
key order), the caller's group dicts, named parameters, state_dict layout, load_state_dict and __repr__."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import fastoptim
from conftest import requires_torch

# A non-default configuration of every optimizer with a torch.optim counterpart; list-valued arguments are
# given as lists, which torch keeps as lists (except Adam/AdamW's betas, which torch turns into a tuple).
CONFIGS = {
    "SGD": dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1, maximize=True),
    "Adam": dict(lr=1, betas=[0.8, 0.9], amsgrad=True, foreach=True, decoupled_weight_decay=True),
    "AdamW": dict(lr=1, betas=[0.8, 0.9], amsgrad=True, fused=False),
    "RMSprop": dict(lr=1, alpha=0.5, momentum=1, centered=True),
    "Adagrad": dict(lr=1, lr_decay=1, initial_accumulator_value=1, eps=1),
    "Adadelta": dict(lr=1, rho=0.5, eps=1, weight_decay=1),
    "ASGD": dict(lr=1, lambd=1, alpha=1, t0=10, weight_decay=1),
    "Rprop": dict(lr=1, etas=[0.4, 1.5], step_sizes=[1, 2]),
    "Adamax": dict(lr=1, betas=[0.5, 0.6]),
    "NAdam": dict(lr=1, betas=[0.5, 0.6], momentum_decay=1, decoupled_weight_decay=True),
    "RAdam": dict(lr=1, betas=[0.5, 0.6], decoupled_weight_decay=True),
    "SparseAdam": dict(lr=1, betas=[0.5, 0.6], eps=1),
    "LBFGS": dict(lr=0.5, max_iter=5, history_size=3, line_search_fn="strong_wolfe"),
    "Muon": dict(lr=1, momentum=0.5, nesterov=False, ns_coefficients=[1, 2, 3], ns_steps=3,
                 adjust_lr_fn="match_rms_adamw"),
    "Adafactor": dict(lr=1, beta2_decay=-1, eps=[1e-30, 1], d=2, weight_decay=1, maximize=True),
}
NAMES = list(CONFIGS)
LIST_ARGS = [("NAdam", "betas"), ("RAdam", "betas"), ("Adamax", "betas"), ("SparseAdam", "betas"),
             ("Adafactor", "eps")]


def _typed(value):
    """A value with the types of everything in it, so that 1 != 1.0, True != 1 and [..] != (..)."""
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_typed(v) for v in value])
    return (type(value).__name__, value)


def _groups(opt):
    return [[(k, _typed(v)) for k, v in g.items() if k != "params"] for g in opt.param_groups]


@pytest.mark.parametrize("name,key", LIST_ARGS)
def test_list_arguments_are_kept_as_given(name, key):
    # torch keeps these lists as lists (only Adam and AdamW make betas a tuple); we made them tuples, so
    # state_dict()["param_groups"] differed from torch's
    p = np.zeros((2, 2), np.float32)
    opt = getattr(fastoptim, name)([p], **{key: list(CONFIGS[name][key])})
    assert type(opt.defaults[key]) is list
    assert type(opt.param_groups[0][key]) is list
    assert type(opt.state_dict()["param_groups"][0][key]) is list
    assert type(fastoptim.Adam([np.zeros(2)], betas=[0.8, 0.9]).defaults["betas"]) is tuple  # as torch


def test_load_state_dict_keeps_saved_values_and_order():
    # torch takes the saved group as it is: a list stays a list, keys stay in the saved order
    p = np.zeros(3, np.float32)
    opt = fastoptim.NAdam([p])
    sd = opt.state_dict()
    sd["param_groups"][0]["betas"] = [0.5, 0.6]
    sd["param_groups"][0]["extra"] = 5
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["betas"] == [0.5, 0.6]
    assert list(opt.param_groups[0])[-2:] == ["params", "extra"]
    assert opt.param_groups[0]["params"][0] is p


@pytest.mark.parametrize("name", ["Adam", "NAdam", "Adafactor"])
def test_checkpoint_restores_tuples(tmp_path, name):
    # JSON has no tuples: a checkpoint gives back a tuple where the optimizer's group has one
    key = "eps" if name == "Adafactor" else "betas"
    for value in (None, list(CONFIGS[name][key])):
        kw = {} if value is None else {key: value}
        p = np.ones((2, 3), np.float32)
        opt = getattr(fastoptim, name)([p], **kw)
        opt.step([np.ones((2, 3), np.float32)])
        fastoptim.save(tmp_path / "c.safetensors", opt)
        other = getattr(fastoptim, name)([p.copy()], **kw)
        fastoptim.load(tmp_path / "c.safetensors", other)
        assert _groups(other) == _groups(opt)


def test_groups_are_the_callers_dicts():
    # torch completes the caller's group dict in place and keeps that very dict in param_groups
    a, b, c = np.zeros(2), np.zeros(3), np.zeros(4)
    g0 = {"params": [a], "lr": 0.5}
    opt = fastoptim.SGD([g0], lr=0.1, momentum=0.9)
    assert opt.param_groups[0] is g0
    assert list(g0) == ["params", "lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize",
                        "foreach", "differentiable", "fused"]
    g1 = {"params": (x for x in [b]), "momentum": 0.0}
    opt.add_param_group(g1)
    assert opt.param_groups[1] is g1 and g1["params"] == [b] and g1["lr"] == 0.1
    g0["lr"] = 0.25  # takes effect, as in torch
    opt.step([np.ones(2), None])
    assert np.allclose(a, -0.25)
    # a group that fails the checks leaves the caller's dict alone
    bad = {"params": [c], "lr": -1.0}
    with pytest.raises(ValueError):
        opt.add_param_group(bad)
    assert bad == {"params": [c], "lr": -1.0} and len(opt.param_groups) == 2
    dup = {"params": [a]}
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group(dup)
    assert dup == {"params": [a]}


def test_named_parameters():
    # torch 2.6+ takes (name, parameter) pairs and keeps the names in group["param_names"]
    a, b, c = np.zeros(2, np.float32), np.zeros(3, np.float32), np.zeros(1, np.float32)
    opt = fastoptim.Adam([("w", a), ("b", b)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["w", "b"]
    assert opt.param_groups[0]["params"][0] is a and opt.param_groups[0]["params"][1] is b
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["w", "b"]
    with pytest.raises(ValueError, match="cannot add param group without names"):
        opt.add_param_group({"params": [c]})
    with pytest.raises(ValueError, match="Some param names are missing"):
        fastoptim.Adam([("w", a), b])
    with pytest.raises(ValueError, match="cannot add param group with names"):
        fastoptim.Adam([{"params": [a]}, {"params": [("b", b)]}])
    opt.add_param_group({"params": [("c", c)], "lr": 0.5})
    opt.step([np.ones(2, np.float32), None, np.ones(1, np.float32)])
    assert np.allclose(a, -0.1) and np.allclose(c, -0.5)
    # loading a state dict without names keeps the optimizer's, as torch
    fresh = fastoptim.Adam([("x", a.copy()), ("y", b.copy())])
    fresh.load_state_dict(fastoptim.Adam([a.copy(), b.copy()]).state_dict())
    assert fresh.param_groups[0]["param_names"] == ["x", "y"]
    two = fastoptim.Adam([{"params": [a.copy(), b.copy()]}, {"params": [c.copy()]}])
    two.load_state_dict(opt.state_dict())  # saved names come along
    assert [g["param_names"] for g in two.param_groups] == [["w", "b"], ["c"]]


def test_repr_separates_groups_by_a_blank_line():
    opt = fastoptim.SGD([{"params": [np.zeros(1)]}, {"params": [np.zeros(1)], "lr": 0.5}], lr=0.1)
    text = repr(opt)
    assert "weight_decay: 0\n\nParameter Group 1\n" in text and text.endswith("weight_decay: 0\n)")


# ------------------------------------------------------------------------------------- against torch


def _pair(name, named=False):
    import torch

    shapes = [(3, 4), (4, 2)] if name == "Muon" else [(3, 4), (5,)]
    t_params = [torch.zeros(s, requires_grad=True) for s in shapes]
    o_params = [np.zeros(s, np.float32) for s in shapes]
    if named:
        t_params = [(f"p{i}", p) for i, p in enumerate(t_params)]
        o_params = [(f"p{i}", p) for i, p in enumerate(o_params)]
    if name == "LBFGS":  # one group only, as torch
        return t_params, o_params
    return ([{"params": t_params[:1]}, {"params": t_params[1:], "lr": 0.5}],
            [{"params": o_params[:1]}, {"params": o_params[1:], "lr": 0.5}])


@requires_torch
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("config", ["default", "custom", "named"])
def test_groups_defaults_repr_and_state_dict_match_torch(name, config):
    import torch

    kw = {} if config == "default" else CONFIGS[name]
    t_groups, o_groups = _pair(name, named=config == "named")
    t = getattr(torch.optim, name)(t_groups, **kw)
    o = getattr(fastoptim, name)(o_groups, **kw)
    assert [(k, _typed(v)) for k, v in o.defaults.items()] == [(k, _typed(v)) for k, v in t.defaults.items()]
    assert _groups(o) == _groups(t)
    assert repr(o) == repr(t)
    assert _typed(o.state_dict()["param_groups"]) == _typed(t.state_dict()["param_groups"])


@requires_torch
@pytest.mark.parametrize("name", [n for n in NAMES if n not in ("LBFGS", "SparseAdam")])
def test_add_param_group_matches_torch(name):
    import torch

    t_groups, o_groups = _pair(name)
    t = getattr(torch.optim, name)(t_groups[:1], **CONFIGS[name])
    o = getattr(fastoptim, name)(o_groups[:1], **CONFIGS[name])
    extra = {"lr": 0.25}
    t_new, o_new = dict(t_groups[1], **extra), dict(o_groups[1], **extra)
    t.add_param_group(t_new)
    o.add_param_group(o_new)
    assert t.param_groups[1] is t_new and o.param_groups[1] is o_new
    assert _groups(o) == _groups(t)
    assert _typed(o.state_dict()["param_groups"]) == _typed(t.state_dict()["param_groups"])


@requires_torch
@pytest.mark.parametrize("name", ["NAdam", "Adafactor", "Adam"])
def test_torch_state_dict_with_list_hyperparameters_loads_as_torch(name):
    import torch

    t_groups, o_groups = _pair(name)
    t = getattr(torch.optim, name)(t_groups, **CONFIGS[name])
    sd = t.state_dict()
    t2 = getattr(torch.optim, name)(_pair(name)[0])
    t2.load_state_dict(copy.deepcopy(sd))
    o = getattr(fastoptim, name)(o_groups)
    o.load_state_dict(copy.deepcopy(sd))  # no state yet: nothing to convert
    assert _groups(o) == _groups(t2)


# torch 2.13's key order in a parameter's state after its first step (configs that create every buffer).
STATE_KEY_ORDER = {
    "SGD": (dict(momentum=0.9), ["momentum_buffer"]),
    "Adam": (dict(amsgrad=True), ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]),
    "AdamW": ({}, ["step", "exp_avg", "exp_avg_sq"]),
    "RMSprop": (dict(momentum=0.9, centered=True), ["step", "square_avg", "momentum_buffer", "grad_avg"]),
    "Adagrad": ({}, ["step", "sum"]),
    "Adadelta": ({}, ["step", "square_avg", "acc_delta"]),
    "ASGD": ({}, ["step", "eta", "mu", "ax"]),
    "Rprop": ({}, ["step", "prev", "step_size"]),
    "Adamax": ({}, ["step", "exp_avg", "exp_inf"]),
    "NAdam": ({}, ["step", "mu_product", "exp_avg", "exp_avg_sq"]),
    "RAdam": ({}, ["step", "exp_avg", "exp_avg_sq"]),
    "Adafactor": ({}, ["step", "row_var", "col_var"]),
    "Muon": ({}, ["momentum_buffer"]),
}


class _StateDict(dict):
    """A state that is not exactly a dict: step() takes its Python path instead of the C++ driver."""


@pytest.mark.parametrize("name", list(STATE_KEY_ORDER))
@pytest.mark.parametrize("path", ["driver", "python"])
def test_state_keys_in_torch_order(name, path):
    kw, expected = STATE_KEY_ORDER[name]
    p = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    opt = getattr(fastoptim, name)([p], **kw)
    if path == "python":
        opt.state = _StateDict()
    opt.step([np.full_like(p, 0.5)])
    assert list(opt.state[0]) == expected
    assert list(opt.state_dict()["state"][0]) == expected


@requires_torch
@pytest.mark.parametrize("name", list(STATE_KEY_ORDER))
def test_state_key_order_is_torchs(name):
    import torch

    kw, expected = STATE_KEY_ORDER[name]
    t = torch.zeros(4, 3, requires_grad=True)
    t.grad = torch.full((4, 3), 0.5)
    opt = getattr(torch.optim, name)([t], **kw)
    opt.step()
    assert list(opt.state_dict()["state"][0]) == expected


# ------------------------------------------------- what the randomized fuzz (test_fuzz_torch.py) turned up


@pytest.mark.parametrize("name", ["Adam", "AdamW", "Adamax", "NAdam", "RAdam"])
def test_step_takes_betas_a_schedule_pushed_past_one(name):
    """torch checks betas only in new groups; OneCycleLR's last step can push betas[0] past its maximum (and
    1), and torch's next step runs. So do ours (but a NaN beta is refused, as a NaN lr is)."""
    p = np.ones(3)
    opt = getattr(fastoptim, name)([p], lr=0.1)
    opt.param_groups[0]["betas"] = (1.01, 0.999)
    opt.step([np.full(3, 0.5)])
    assert np.all(np.isfinite(p)) and not np.array_equal(p, np.ones(3))
    opt.param_groups[0]["betas"] = (float("nan"), 0.999)
    before = p.copy()
    with pytest.raises(ValueError, match="beta parameter at index 0"):
        opt.step([np.full(3, 0.5)])
    assert np.array_equal(p, before)
    with pytest.raises(ValueError, match="beta parameter at index 0"):  # new groups are checked as torch's
        opt.add_param_group({"params": [np.ones(2)], "betas": (1.01, 0.999)})


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "Adagrad"])
def test_fused_and_foreach_together_is_torchs_runtime_error(name):
    with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True` together."):
        getattr(fastoptim, name)([np.ones(2)], lr=0.1, fused=True, foreach=True)


@requires_torch
@pytest.mark.parametrize("name", ["SparseAdam", "Adam"])
def test_groups_added_after_a_load_get_torchs_differentiable_default(name):
    """torch's load_state_dict (its __setstate__) adds differentiable=False to the defaults, so groups added
    afterwards carry it, while loaded groups stay as saved."""
    import torch

    ours = getattr(fastoptim, name)([np.zeros(2)])
    theirs = getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)])
    ours.load_state_dict(ours.state_dict())
    theirs.load_state_dict(theirs.state_dict())
    ours.add_param_group({"params": [np.zeros(2)]})
    theirs.add_param_group({"params": [torch.zeros(2, requires_grad=True)]})
    for mine, torchs in zip(ours.param_groups, theirs.param_groups):
        assert mine.get("differentiable", "missing") == torchs.get("differentiable", "missing")
    assert ours.defaults.get("differentiable") == theirs.defaults.get("differentiable")


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_state_after_linear_lr_to_zero_loads_back(name, tmp_path):
    """LinearLR(end_factor=0) can end a hair below 0 (-1.9e-18 here); torch steps and loads such groups, and
    our own state dicts and checkpoints must load back too (they once failed with "Invalid learning rate")."""
    from fastoptim.lr_scheduler import LinearLR

    p = np.zeros(3)
    opt = getattr(fastoptim, name)([p], lr=0.1)
    sched = LinearLR(opt, start_factor=1 / 3, end_factor=0.0, total_iters=4)
    for _ in range(5):
        opt.step([np.ones(3)])
        sched.step()
    assert opt.param_groups[0]["lr"] < 0
    opt.load_state_dict(opt.state_dict())
    path = tmp_path / "ckpt"
    fastoptim.save(path, opt, sched)
    fastoptim.load(path, opt, sched)
    assert opt.param_groups[0]["lr"] < 0
    bad = opt.state_dict()
    bad["param_groups"][0]["lr"] = float("nan")
    with pytest.raises(ValueError, match="learning rate"):
        opt.load_state_dict(bad)


def test_adagrad_state_exists_from_construction():
    # torch's Adagrad creates step 0 and the filled sum for the constructor's parameters; a group added later
    # gets its state at its first step.
    opt = fastoptim.Adagrad([np.zeros(3, np.float32), np.zeros((), np.float64)], initial_accumulator_value=0.5)
    state = opt.state_dict()["state"]
    assert sorted(state) == [0, 1]
    for entry, dtype in zip(state.values(), (np.float32, np.float64)):
        assert list(entry) == ["step", "sum"]
        assert entry["step"].dtype == np.float32 and entry["step"].shape == () and float(entry["step"]) == 0.0
        assert entry["sum"].dtype == dtype and np.all(entry["sum"] == 0.5)
    opt.add_param_group({"params": [np.zeros(2, np.float32)]})
    assert sorted(opt.state_dict()["state"]) == [0, 1]
    opt.step([None, np.ones((), np.float64), np.ones(2, np.float32)])
    after = opt.state_dict()["state"]
    assert float(after[0]["step"]) == 0.0 and float(after[1]["step"]) == 1.0 and float(after[2]["step"]) == 1.0
    assert after[1]["sum"] == 1.5 and np.all(after[2]["sum"] == 1.5)


@requires_torch
@pytest.mark.parametrize("name", NAMES)
def test_state_dict_before_the_first_step_matches_torch(name):
    import torch

    import parity

    t_groups, o_groups = _pair(name)
    t = getattr(torch.optim, name)(t_groups, **CONFIGS[name])
    o = getattr(fastoptim, name)(o_groups, **CONFIGS[name])
    ours, ref = o.state_dict()["state"], parity.torch_to_numpy(t.state_dict())["state"]
    assert sorted(ours) == sorted(ref)
    for i, entry in ref.items():
        assert list(ours[i]) == list(entry)
        for k, v in entry.items():
            assert type(ours[i][k]) is type(v) and ours[i][k].dtype == v.dtype and np.array_equal(ours[i][k], v)


BETA_CASES = [((0.9, 0.999), None), ([0.0, 0.99], None), ((np.float64(0.9), 0.999), None),
              ((np.array(0.9), np.array(0.999)), None), ((0, 0.99), "both floats"), ((1e-300, 0), "both floats"),
              ((np.float32(0.9), 0.999), "both floats"), ((np.array(0.9), 0.999), "both floats")]


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("betas, error", BETA_CASES)
def test_adam_betas_are_both_floats_or_both_arrays(name, betas, error):
    # torch's Adam and AdamW (not the other optimizers) take betas that are both Python floats (np.float64
    # is one) or both tensors (here: 0-d arrays); an int or np.float32 beta is a ValueError there.
    make = lambda: getattr(fastoptim, name)([np.zeros(2)], betas=betas)  # noqa: E731
    if error is None:
        make()
    else:
        with pytest.raises(ValueError, match="betas must be either both floats or both Tensors"):
            make()
    assert fastoptim.NAdam([np.zeros(2)], betas=(0, 0.99)).param_groups[0]["betas"] == (0, 0.99)


@requires_torch
@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("betas, error", BETA_CASES + [((np.array(0.9), np.array(0.999)), "foreach")])
def test_adam_betas_types_match_torch(name, betas, error):
    import torch

    foreach = error == "foreach"
    t_betas = tuple(torch.tensor(float(b), dtype=torch.float64) if isinstance(b, np.ndarray) else b for b in betas)
    outcomes = []
    for make in (lambda: getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], betas=t_betas,
                                                     foreach=foreach),
                 lambda: getattr(fastoptim, name)([np.zeros(2)], betas=betas, foreach=foreach)):
        try:
            make()
            outcomes.append("ok")
        except ValueError as e:
            outcomes.append(str(e))
    assert outcomes[0] == outcomes[1]
