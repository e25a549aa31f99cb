"""fastoptim.torch: the numpy optimizers behind torch.optim's API (skipped without torch).

Parity runs the adapter through every case of tests/parity.py: its trajectory must be bit-identical to the
numpy class's (same kernels, same inputs) and within the bound of torch's stored single-tensor one. The
adapter adds no arithmetic, so PARITY_STEPS (a fifth of the numpy classes' 500) suffice to cover what it
does handle: lazy state, step counts, and parameters without a gradient (every fifth step).
"""

from __future__ import annotations

import copy
import datetime
import inspect
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

import parity
from conftest import HAS_TORCH

pytestmark = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed (pip install torch==2.13.0)")

if HAS_TORCH:
    import torch

    import fastoptim
    import fastoptim.torch as ft

# Every optimizer fastoptim.torch adapts (SparseAdam takes (indices, values), not torch gradients).
CASES = [c for c in parity.cases() if c[0] in ft.__all__] if HAS_TORCH else []
IDS = [parity.case_id(*c) for c in CASES]
PARITY_STEPS = 100


def test_import_fastoptim_does_not_import_torch():
    code = ("import sys, fastoptim; assert 'torch' not in sys.modules; "
            "import fastoptim.torch; assert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_every_step_grads_optimizer_is_adapted():
    numpy_classes = [getattr(fastoptim, n) for n in fastoptim.__all__]
    expected = {c.__name__ for c in numpy_classes if ft._adaptable(c)}
    assert {"SGD", "Adam", "AdamW", "RMSprop", "Adagrad"} <= expected
    assert set(ft.__all__) == expected
    for name in ft.__all__:
        cls = getattr(ft, name)
        assert issubclass(cls, torch.optim.Optimizer) and cls.__name__ == name
        assert inspect.signature(cls) == inspect.signature(getattr(fastoptim, name))


def test_a_new_optimizer_gets_its_adapter_from_its_numpy_class():
    class HalfLrSGD(fastoptim.SGD):  # a stand-in for an optimizer that lands later
        def _hyper(self, group, stepping=False):
            lr, *rest = super()._hyper(group, stepping)
            return (lr / 2, *rest)

    class ClosureDriven(fastoptim.SGD):  # another kind of step (as LBFGS's): not adaptable generically
        def step(self, closure):
            raise NotImplementedError

    assert not ft._adaptable(ClosureDriven)
    cls = ft._adapter(HalfLrSGD)
    w = torch.ones(3, requires_grad=True)
    w.grad = torch.ones(3)
    cls([w], lr=0.5).step()
    assert torch.equal(w.detach(), torch.full((3,), 0.75))


# ---------------------------------------------------------------------------------------------- parity

@pytest.mark.parametrize("name,k,dtype", CASES, ids=IDS)
def test_parity(name, k, dtype):
    config = parity.OPTIMIZERS[name]["configs"][k]
    seed = parity.case_seed(name, k, dtype)
    ours = parity.run_torch(name, config, parity.DTYPES[dtype], seed, impl="fastoptim", steps=PARITY_STEPS)
    assert np.array_equal(ours, parity.run_fastoptim(name, config, parity.DTYPES[dtype], seed, steps=PARITY_STEPS))
    deviation, allowed = parity.golden_deviation(name, k, dtype, ours)
    assert deviation <= allowed, f"{parity.case_id(name, k, dtype)}: {deviation} ulps from torch, {allowed} allowed"


# ------------------------------------------------------------------------------------------- helpers

def _problem(dtype="float64", seed=3):
    """The parity problem's parameters as leaf tensors."""
    return [torch.from_numpy(p).requires_grad_(True) for p in parity.initial_params(parity.DTYPES[dtype], seed)]


def _set_grads(params, t, seed=3):
    """Sets each parameter's .grad to the parity problem's gradient at step t (None for some)."""
    for i, p in enumerate(params):
        g = parity.gradient(p.detach().numpy(), seed, t, i)
        p.grad = None if g is None else torch.from_numpy(g)


def _clone(params):
    return [p.detach().clone().requires_grad_(True) for p in params]


def _groups(params, **group1):
    return [{"params": params[:2]}, dict({"params": params[2:]}, **group1)]


def _twin(params):
    """numpy copies of the parameters, for the numpy class."""
    return [p.detach().numpy().copy() for p in params]


def _grads(params):
    return [None if p.grad is None else p.grad.numpy() for p in params]


# ------------------------------------------------------------------------------------------ memory

def test_updates_in_place_without_copies():
    params = _problem()
    opt = ft.Adam(_groups(params), lr=0.1, amsgrad=True)
    views = [p.detach().numpy() for p in params]
    ptrs = [p.data_ptr() for p in params]
    _set_grads(params, 3)
    opt.step()
    state_ptrs = {k: v.data_ptr() for k, v in opt.state[params[0]].items()}
    before = [v.copy() for v in views]
    _set_grads(params, 4)  # every parameter has a gradient at steps 3 and 4
    opt.step()
    assert [p.data_ptr() for p in params] == ptrs
    for view, old, p in zip(views, before, params):
        assert not np.array_equal(view, old)  # the kernel wrote into the tensors' own memory
        assert np.array_equal(view, p.detach().numpy())
    assert {k: v.data_ptr() for k, v in opt.state[params[0]].items()} == state_ptrs  # state updated in place
    assert opt.state[params[0]]["step"].item() == 2.0


def test_state_layout_matches_torch():
    cases = {
        "SGD": dict(lr=0.1, momentum=0.9, nesterov=True),
        "Adam": dict(lr=0.1, amsgrad=True),
        "AdamW": dict(lr=0.1, amsgrad=True),
        "RMSprop": dict(lr=0.01, momentum=0.9, centered=True),
        "Adagrad": dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
    }
    for name, kwargs in cases.items():
        dicts = []
        for cls in (getattr(ft, name), getattr(torch.optim, name)):
            params = _problem("float32")
            opt = cls(_groups(params, lr=0.05), **kwargs)
            dicts.append(opt.state_dict())  # before the first step: Adagrad has its state already
            for t in (1, 2, 3):
                _set_grads(params, t)
                opt.step()
            dicts.append(opt.state_dict())
        for ours, theirs in (dicts[0::2], dicts[1::2]):  # (fresh, fresh), (stepped, stepped)
            assert ours["param_groups"] == theirs["param_groups"]
            assert ours["state"].keys() == theirs["state"].keys()
            for i in theirs["state"]:
                assert list(ours["state"][i]) == list(theirs["state"][i]), (name, i)  # same keys, same order
                for key, value in theirs["state"][i].items():
                    assert (ours["state"][i][key].dtype, ours["state"][i][key].shape) == (value.dtype, value.shape)
                    assert ours["state"][i][key].device == value.device


# ------------------------------------------------------------------------------------------ interop

INTEROP = [
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, amsgrad=True)),
    ("RMSprop", dict(lr=0.001, momentum=0.9, centered=True)),
    ("Adagrad", dict(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1)),
]


@pytest.mark.parametrize("name,kwargs", INTEROP, ids=[n for n, _ in INTEROP])
@pytest.mark.parametrize("direction", ["torch_to_fastoptim", "fastoptim_to_torch"])
def test_state_dict_interop(name, kwargs, direction):
    """Train 20 steps with one, load its state dict into the other, train 20 more: the result matches 40
    steps of torch alone to 1e-12 of each parameter's largest magnitude (float64, different kernels)."""
    first, second = (torch.optim, ft) if direction == "torch_to_fastoptim" else (ft, torch.optim)
    params, ref_params = _problem(), _problem()
    ref = getattr(torch.optim, name)(_groups(ref_params, lr=0.02), **kwargs)
    opt = getattr(first, name)(_groups(params, lr=0.02), **kwargs)
    for t in range(1, 21):
        _set_grads(params, t)
        _set_grads(ref_params, t)
        opt.step()
        ref.step()
    saved = opt.state_dict()
    resumed = _clone(params)
    opt = getattr(second, name)(_groups(resumed, lr=0.5), **kwargs)
    opt.load_state_dict(saved)
    assert opt.param_groups[1]["lr"] == 0.02
    for ours, theirs in zip(opt.state_dict()["state"].values(), saved["state"].values()):
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    for t in range(21, 41):
        _set_grads(resumed, t)
        _set_grads(ref_params, t)
        opt.step()
        ref.step()
    for p, q in zip(resumed, ref_params):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12 * q.abs().max().item())


def test_load_state_dict_checks_before_installing():
    params = _problem()
    opt = ft.Adam(_groups(params), lr=0.01)
    _set_grads(params, 1)
    opt.step()
    saved = opt.state_dict()
    bad = copy.deepcopy(saved)
    bad["param_groups"][1]["betas"] = (0.9, 1.5)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        opt.load_state_dict(bad)
    assert opt.param_groups[1]["betas"] == (0.9, 0.999)
    bad = copy.deepcopy(saved)
    del bad["param_groups"][0]["amsgrad"]  # a group from an older torch lacks keys: the defaults fill them
    opt.load_state_dict(bad)
    assert opt.param_groups[0]["amsgrad"] is False


@pytest.mark.parametrize("corrupt,match", [
    (lambda st: st.__setitem__("exp_avg", torch.zeros(7)), "shape"),
    (lambda st: st.__setitem__("step", torch.tensor(-1.0)), "step"),
    (lambda st: st.__setitem__("bogus", torch.zeros(1)), "unknown state"),
])
def test_load_state_dict_checks_the_state_too(corrupt, match):
    """A state entry the numpy class would reject is rejected at load, not at the next step."""
    params = _problem()
    opt = ft.Adam(_groups(params), lr=0.01)
    _set_grads(params, 1)
    opt.step()
    bad = copy.deepcopy(opt.state_dict())
    corrupt(bad["state"][0])
    before = {k: v.clone() for k, v in opt.state[params[0]].items()}
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(bad)
    assert all(torch.equal(opt.state[params[0]][k], v) for k, v in before.items())
    opt.step()


def test_schedulefree_train_and_eval_move_the_parameters_as_the_numpy_class():
    torch.manual_seed(0)
    t = torch.randn(5, dtype=torch.float64)
    p, a = t.clone().requires_grad_(), t.numpy().copy()
    opt, ref = ft.ScheduleFreeAdamW([p], lr=0.1), fastoptim.ScheduleFreeAdamW([a], lr=0.1)
    for i in range(3):
        opt.train()
        ref.train()
        g = torch.randn(5, dtype=torch.float64)
        p.grad = g.clone()
        opt.step()
        ref.step([g.numpy()])
        opt.eval()
        ref.eval()
        assert np.array_equal(p.detach().numpy(), a), i
        assert opt.param_groups[0]["train_mode"] is False
    assert np.array_equal(opt.state[p]["z"].numpy(), ref.state[0]["z"])
    with pytest.raises(RuntimeError, match="train mode"):
        opt.step()


@pytest.mark.parametrize("name", ft.__all__ if HAS_TORCH else [])
def test_adapter_steps_as_its_numpy_class(name):
    """Every adapter over several steps equals its numpy class bit for bit, counts kept in the param groups
    included (Adan's step, ScheduleFreeAdamW's k and weight_sum once stayed at their start)."""
    torch.manual_seed(1)
    t = torch.randn(2, 6, dtype=torch.float64)
    p, a = t.clone().requires_grad_(), t.numpy().copy()
    kwargs = {"lr": 0.01} if name != "LBFGS" else {}
    opt, ref = getattr(ft, name)([p], **kwargs), getattr(fastoptim, name)([a], **kwargs)
    for o in (opt, ref):
        if hasattr(o, "train"):
            o.train()
    for i in range(4):
        g = torch.randn(2, 6, dtype=torch.float64)
        p.grad = g.clone()
        opt.step()
        ref.step([g.numpy()])
        assert np.array_equal(p.detach().numpy(), a), i
    keys = [k for k in ref.param_groups[0] if k != "params"]
    assert {k: opt.param_groups[0][k] for k in keys} == {k: ref.param_groups[0][k] for k in keys}


def test_asgd_float64_scalars_stay_float64_across_steps_as_torch():
    def run(cls):
        p = torch.ones(3, dtype=torch.float64, requires_grad=True)
        opt = cls([p], lr=0.01, t0=1)
        for _ in range(2):
            p.grad = torch.full((3,), 0.5, dtype=torch.float64)
            opt.step()
        opt.load_state_dict(opt.state_dict())
        p.grad = torch.full((3,), 0.5, dtype=torch.float64)
        opt.step()
        return {k: opt.state[p][k] for k in ("eta", "mu")}

    ours, theirs = run(ft.ASGD), run(torch.optim.ASGD)
    for k in ("eta", "mu"):
        assert ours[k].dtype == theirs[k].dtype == torch.float64, k
        assert ours[k].item() == theirs[k].item(), k


def test_adamw_forces_decoupled_weight_decay_on_load():
    params = _problem()
    adam = torch.optim.Adam(_groups(params), lr=0.01)
    opt = ft.AdamW(_groups(_clone(params)))
    opt.load_state_dict(adam.state_dict())
    assert all(g["decoupled_weight_decay"] is True for g in opt.param_groups)


# --------------------------------------------------------------------------------------- schedulers

def _drive(name, kwargs, make_scheduler, scheduler_step, steps=60):
    """Runs the adapter under a scheduler and the numpy class stepped with the very group values the
    scheduler set (copied before each step); returns both parameter lists and the lrs seen."""
    params = _problem()
    twin = _twin(params)
    opt = getattr(ft, name)(_groups(params, lr=0.02), **kwargs)
    np_opt = getattr(fastoptim, name)(_groups(twin, lr=0.02), **kwargs)
    sched = make_scheduler(opt)
    lrs = []
    for t in range(1, steps + 1):
        _set_grads(params, t)
        for g, h in zip(np_opt.param_groups, opt.param_groups):
            g.update({k: v for k, v in h.items() if k in g and k != "params"})
        opt.step()
        np_opt.step(_grads(params))
        scheduler_step(sched, t)
        lrs.append(opt.param_groups[0]["lr"])
    return params, twin, lrs


SCHEDULERS = {  # (build on the optimizer, step at step t)
    "torch.StepLR": (lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=10, gamma=0.5), lambda s, t: s.step()),
    "torch.OneCycleLR": (lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=60),
                         lambda s, t: s.step()),
    "fastoptim.OneCycleLR": (lambda o: fastoptim.lr_scheduler.OneCycleLR(o, max_lr=0.05, total_steps=60),
                             lambda s, t: s.step()),
    "fastoptim.ReduceLROnPlateau": (lambda o: fastoptim.lr_scheduler.ReduceLROnPlateau(o, patience=1, factor=0.5),
                                    lambda s, t: s.step(1.0 if t < 5 else 2.0)),
}


@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
def test_schedulers_drive_the_adapter(scheduler):
    params, twin, lrs = _drive("Adam", dict(amsgrad=True), *SCHEDULERS[scheduler])
    assert len(set(lrs)) > 2  # the schedule did move the learning rate
    for p, a in zip(params, twin):
        assert np.array_equal(p.detach().numpy(), a)


def test_fastoptim_scheduler_matches_on_numpy_and_torch_optimizers():
    """fastoptim's scheduler sets the same values on the adapter's torch groups as on the numpy class's."""
    params = _problem()
    twin = _twin(params)
    opt = ft.SGD(_groups(params), lr=0.1, momentum=0.9)
    np_opt = fastoptim.SGD(_groups(twin), lr=0.1, momentum=0.9)
    scheds = [fastoptim.lr_scheduler.OneCycleLR(o, max_lr=0.2, total_steps=30) for o in (opt, np_opt)]
    for t in range(1, 31):
        _set_grads(params, t)
        opt.step()
        np_opt.step(_grads(params))
        for s in scheds:
            s.step()
    for p, a in zip(params, twin):
        assert np.array_equal(p.detach().numpy(), a)
    assert [g["momentum"] for g in opt.param_groups] == [g["momentum"] for g in np_opt.param_groups]


# ------------------------------------------------------------------------------------ torch's contract

def test_closure_runs_with_grad_enabled_and_its_loss_is_returned():
    w = torch.ones(3, requires_grad=True)
    opt = ft.SGD([w], lr=0.5)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with torch.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 3.0
    assert torch.equal(w.detach(), torch.zeros(3))  # w - 0.5 * 2w


def test_params_without_grad_are_skipped():
    params = _problem()
    opt = ft.Adam(params, lr=0.1)
    _set_grads(params, 1)
    params[1].grad = None
    before = params[1].detach().clone()
    opt.step()
    assert torch.equal(params[1].detach(), before)
    assert params[1] not in opt.state and params[0] in opt.state


def test_autograd_sees_the_in_place_update():
    """As with torch.optim, a backward through a graph that saved a parameter before the step fails."""
    for cls in (torch.optim.SGD, ft.SGD):
        w = torch.ones(3, requires_grad=True)
        opt = cls([w], lr=0.1)
        loss = (w * w).sum()
        w.grad = torch.ones(3)
        opt.step()
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            loss.backward()


def test_add_param_group_and_deepcopy():
    params = _problem()
    opt = ft.Adam(params[:2], lr=0.01, betas=[0.8, 0.9])
    opt.add_param_group({"params": params[2:], "lr": 0.1})
    assert opt.param_groups[1]["betas"] == (0.8, 0.9) and opt.param_groups[1]["lr"] == 0.1
    _set_grads(params, 1)
    opt.step()
    clone = copy.deepcopy(opt)  # torch's pickling protocol: defaults, state, groups (and our arguments)
    clone_params = [p for g in clone.param_groups for p in g["params"]]
    assert clone_params[0] is not params[0] and torch.equal(clone_params[0], params[0])
    _set_grads(params, 2)
    _set_grads(clone_params, 2)
    opt.step()
    clone.step()
    for p, q in zip(clone_params, params):
        assert torch.equal(p, q)
    with pytest.raises(TypeError, match="dtype torch.float8_e5m2"):
        opt.add_param_group({"params": [torch.zeros(2, dtype=torch.float8_e5m2, requires_grad=True)]})
    with pytest.raises(ValueError, match="Invalid learning rate"):
        opt.add_param_group({"params": [torch.zeros(2, dtype=torch.float64, requires_grad=True)], "lr": -1.0})
    with pytest.raises(ValueError, match="overlaps parameter"):
        opt.add_param_group({"params": [params[0].detach()[1:3]]})  # a view of a parameter
    assert len(opt.param_groups) == 2


# ------------------------------------------------------------------------------------------ errors

def _leaf(t):
    return t.requires_grad_(True)


@pytest.mark.parametrize("param,error,match", [
    (lambda: _leaf(torch.zeros(3, device="meta")), ValueError, "parameter 0 is on meta"),
    (lambda: _leaf(torch.zeros(3, 4).t()), ValueError, "parameter 0 is not contiguous"),
    (lambda: _leaf(torch.zeros(3, dtype=torch.float8_e5m2)), TypeError, "parameter 0 has dtype torch.float8_e5m2"),
    (lambda: _leaf(torch.zeros(3, dtype=torch.float8_e4m3fn)), TypeError, "parameter 0 has dtype torch.float8_e4m3fn"),
    (lambda: _leaf(torch.zeros(3, dtype=torch.complex64)), TypeError, "has dtype torch.complex64"),
    (lambda: _leaf(torch.zeros(3, 3).to_sparse()), TypeError, "layout torch.sparse_coo"),
    (lambda: torch.zeros(3, requires_grad=True) * 2, ValueError, "can't optimize a non-leaf Tensor"),
    (lambda: np.zeros(3), TypeError, "optimizer can only optimize Tensors"),
], ids=["meta", "strided", "float8_e5m2", "float8_e4m3", "complex", "sparse", "non-leaf", "ndarray"])
def test_bad_parameters_are_rejected_at_construction(param, error, match):
    with pytest.raises(error, match=match):
        ft.Adam([param()])


def test_bad_hyperparameters_raise_fastoptims_errors():
    w = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        ft.Adam([w], lr=-1)
    with pytest.raises(ValueError, match="capturable=True is not supported"):
        ft.Adam([w], capturable=True)
    with pytest.raises(ValueError, match="Nesterov momentum requires a momentum"):
        ft.SGD([w], nesterov=True)


def test_inference_tensors_are_rejected():
    with torch.inference_mode():
        w = torch.zeros(3)
    with pytest.raises(RuntimeError, match="inference tensor"):
        ft.SGD([w])


@pytest.mark.parametrize("bad,error,match", [
    (lambda p: setattr(p, "grad", torch.zeros(4, 3).to_sparse()), RuntimeError, "Adam does not support sparse"),
    (lambda p: setattr(p, "grad", torch.zeros(3, 4).t()), ValueError, "gradient of parameter 1 is not contiguous"),
    (lambda p: setattr(p, "data", torch.zeros(3, 4).t()), ValueError, "parameter 1 is not contiguous"),
    (lambda p: setattr(p, "data", torch.zeros(4, 3, dtype=torch.float64)), TypeError, "gradient of parameter 1 has dtype"),
], ids=["sparse-grad", "strided-grad", "strided-param", "param-became-float64"])
def test_a_step_that_raises_changes_nothing(bad, error, match):
    good = torch.ones(5, requires_grad=True)
    p = torch.ones(4, 3, requires_grad=True)
    opt = ft.Adam([good, p], lr=0.1)
    good.grad = torch.ones(5)
    p.grad = torch.ones(4, 3)
    bad(p)
    with pytest.raises(error, match=match):
        opt.step()
    assert torch.equal(good.detach(), torch.ones(5))
    assert len(opt.state) == 0


# ---------------------------------------------------------------------------------------------- ZeRO

def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _zero_worker(rank, world_size, port, out):
    """Trains one model from the same start on the same full-batch gradients with ZeRO over both processes
    (with and without bucket views), ZeRO over this process alone, and plain fastoptim.torch.Adam; saves
    the final parameters of each, and the initial ones."""
    import torch.distributed as dist
    from torch.distributed.optim import ZeroRedundancyOptimizer

    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # loopback only, whatever the host's name resolves to
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size,
                            timeout=datetime.timedelta(seconds=30))
    alone = [dist.new_group([r]) for r in range(world_size)][rank]  # every rank takes part in creating each
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 8, generator=gen), torch.randn(64, 3, generator=gen)

    def train(make_optimizer, steps=15):
        torch.manual_seed(1)
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 16),
                                    torch.nn.Tanh(), torch.nn.Linear(16, 3))
        opt = make_optimizer(model.parameters())
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            opt.step()
        return torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    kwargs = dict(lr=0.01, amsgrad=True, weight_decay=0.01)
    runs = {
        "untrained": train(lambda ps: ft.Adam(ps), steps=0),
        "zero2": train(lambda ps: ZeroRedundancyOptimizer(ps, optimizer_class=ft.Adam, **kwargs)),
        "zero2_buckets": train(lambda ps: ZeroRedundancyOptimizer(ps, optimizer_class=ft.Adam,
                                                                  parameters_as_bucket_view=True, **kwargs)),
        "zero1": train(lambda ps: ZeroRedundancyOptimizer(ps, optimizer_class=ft.Adam, process_group=alone, **kwargs)),
        "plain": train(lambda ps: ft.Adam(ps, **kwargs)),
    }
    np.savez(os.path.join(out, f"rank{rank}.npz"), **{k: v.numpy() for k, v in runs.items()})
    dist.barrier()
    dist.destroy_process_group()


def test_zero_redundancy_optimizer_two_processes():
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as out:
        ctx = mp.start_processes(_zero_worker, args=(2, _free_port(), out), nprocs=2, join=False,
                                 start_method="spawn")
        deadline = time.monotonic() + 120
        try:
            while not ctx.join(timeout=1):
                if time.monotonic() > deadline:
                    pytest.fail("the ZeRO processes did not finish within 120 s")
        finally:
            for p in ctx.processes:
                if p.is_alive():
                    p.kill()
        results = []
        for rank in range(2):
            with np.load(os.path.join(out, f"rank{rank}.npz"), allow_pickle=False) as f:
                results.append({k: f[k] for k in f.files})
    plain = results[0]["plain"]
    assert not np.array_equal(plain, results[0].pop("untrained"))  # it trained
    for rank, runs in enumerate(results):
        runs.pop("untrained", None)
        for name, values in runs.items():
            assert np.array_equal(values, plain), f"rank {rank}: {name} differs from one-process fastoptim.torch.Adam"


# ------------------------------------------------------------------------------------ low precision

@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_16_bit_tensors_use_the_low_precision_kernels(dtype):
    pytest.importorskip("ml_dtypes")
    import ml_dtypes

    npdtype = np.float16 if dtype == torch.float16 else ml_dtypes.bfloat16
    torch.manual_seed(0)
    params = [torch.randn(300, dtype=dtype, requires_grad=True), torch.randn(4, 5, dtype=dtype, requires_grad=True)]
    arrays = [p.detach().view(torch.int16).numpy().copy().view(npdtype) for p in params]
    kw = dict(lr=1e-2, weight_decay=0.1, state_dtype="bfloat16", master_weights=True, stochastic_rounding=True)
    opt = ft.AdamW(params, **kw)
    ref = fastoptim.AdamW(arrays, **kw)
    for _ in range(4):
        grads = [torch.randn_like(p) for p in params]
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
        ref.step([g.view(torch.int16).numpy().copy().view(npdtype) for g in grads])
    for p, a in zip(params, arrays):
        assert p.dtype == dtype
        assert np.array_equal(p.detach().view(torch.int16).numpy(), a.view(np.int16))
    state = opt.state[params[0]]
    assert state["exp_avg"].dtype == torch.bfloat16 and state["master_param"].dtype == torch.float32
    assert np.array_equal(state["exp_avg"].view(torch.int16).numpy(), ref.state[0]["exp_avg"].view(np.int16))
    with pytest.raises(TypeError, match="parameter 0 has dtype torch.bfloat16"):
        ft.LAMB([torch.zeros(3, dtype=torch.bfloat16, requires_grad=True)])
