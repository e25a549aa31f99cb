"""SequentialLR, ChainedScheduler, SWALR beyond step-for-step parity (tests/sched_cases_compose.py):
state dicts (round trips, torch's layout, loading torch's), validation errors with torch's messages, the
C++ composites through the binding, ``preview`` and ``python -m fastoptim schedule``."""

import gc
import os
import pathlib
import struct
import subprocess
import sys

import numpy as np
import pytest

import fastoptim
import fastoptim.lr_scheduler as fls
import sched_parity as sp
from conftest import requires_torch

STEPS = 300


def _swalr(module):
    if hasattr(module, "SWALR"):
        return module.SWALR
    from torch.optim.swa_utils import SWALR

    return SWALR


def build_seq(m, o):
    return m.SequentialLR(o, [m.StepLR(o, 7, 0.8), _swalr(m)(o, swa_lr=0.004, anneal_epochs=30),
                              m.StepLR(o, 11, 0.5)], milestones=[60, 150])


def build_chain(m, o):
    return m.ChainedScheduler([m.StepLR(o, 9, 0.9), _swalr(m)(o, swa_lr=[0.02, 0.001], anneal_epochs=50,
                                                                 anneal_strategy="linear")])


def build_swalr(m, o):
    return _swalr(m)(o, swa_lr=0.01, anneal_epochs=80)


BUILDERS = {"SequentialLR": build_seq, "ChainedScheduler": build_chain, "SWALR": build_swalr}


def fast_run(build, steps, kind="sgd"):
    opt, params = sp.make_fastoptim_optimizer(kind)
    zeros = [np.zeros_like(p) for p in params]
    sched = build(fls, opt)
    for _ in range(steps):
        opt.step(zeros)
        sched.step()
    return opt, sched, zeros


def torch_run(build, steps, kind="sgd"):
    import torch

    opt, params = sp.make_torch_optimizer(kind)
    sched = build(torch.optim.lr_scheduler, opt)
    for _ in range(steps):
        for p in params:
            p.grad = torch.zeros_like(p)
        opt.step()
        sched.step()
    return opt, sched, params


def assert_same_state(ours, ref, path="state"):
    if isinstance(ref, dict):
        assert isinstance(ours, dict), path
        assert list(ours) == list(ref), f"{path}: keys {list(ours)} != {list(ref)}"
        for k in ref:
            assert_same_state(ours[k], ref[k], f"{path}[{k!r}]")
    elif isinstance(ref, (list, tuple)):
        assert len(ours) == len(ref), path
        for i, (a, b) in enumerate(zip(ours, ref)):
            assert_same_state(a, b, f"{path}[{i}]")
    elif isinstance(ref, float):
        assert ours == pytest.approx(ref, rel=1e-12, abs=0), path
    else:
        assert ours == ref, path


# ------------------------------------------------------------------------------------ state dicts

@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_state_dict_round_trip(name):
    build = BUILDERS[name]
    opt, sched, zeros = fast_run(build, 97)
    state = sched.state_dict()
    lrs = [g["lr"] for g in opt.param_groups]

    opt2, params2 = sp.make_fastoptim_optimizer("sgd")
    sched2 = build(fls, opt2)
    for g, lr in zip(opt2.param_groups, lrs):
        g["lr"] = lr
    sched2.load_state_dict(state)
    assert_same_state(sched2.state_dict(), state)
    for _ in range(200):
        opt.step(zeros)
        sched.step()
        opt2.step(zeros)
        sched2.step()
        assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
        assert sched2.get_last_lr() == sched.get_last_lr()


@requires_torch
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_state_dict_matches_torch_layout(name):
    _, ours, _ = fast_run(BUILDERS[name], 123)
    _, ref, _ = torch_run(BUILDERS[name], 123)
    assert_same_state(ours.state_dict(), ref.state_dict())


@requires_torch
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_loads_torch_state_dict(name):
    build = BUILDERS[name]
    topt, tsched, tparams = torch_run(build, 77)
    opt, params = sp.make_fastoptim_optimizer("sgd")
    zeros = [np.zeros_like(p) for p in params]
    sched = build(fls, opt)
    for g, tg in zip(opt.param_groups, topt.param_groups):
        g["lr"] = tg["lr"]
    sched.load_state_dict(tsched.state_dict())
    import torch

    for _ in range(STEPS):
        for p in tparams:
            p.grad = torch.zeros_like(p)
        topt.step()
        tsched.step()
        opt.step(zeros)
        sched.step()
        ours = [g["lr"] for g in opt.param_groups]
        ref = [g["lr"] for g in topt.param_groups]
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=0)


def test_load_state_dict_rejects_wrong_child_count():
    _, sched, _ = fast_run(build_seq, 3)
    state = sched.state_dict()
    state["_schedulers"] = state["_schedulers"][:2]
    with pytest.raises(ValueError, match="scheduler states"):
        sched.load_state_dict(state)


# ------------------------------------------------------------------------------------ validation

def _both(make):
    """The exception fastoptim raises and, with torch installed, torch's, for make(module, optimizer)."""
    opt, _ = sp.make_fastoptim_optimizer("sgd")
    with pytest.raises(Exception) as ours:
        make(fls, opt)
    ref = None
    if sp_has_torch():
        import torch

        topt, _ = sp.make_torch_optimizer("sgd")
        with pytest.raises(Exception) as ref:
            make(torch.optim.lr_scheduler, topt)
    return ours.value, None if ref is None else ref.value


def sp_has_torch():
    import importlib.util

    return importlib.util.find_spec("torch") is not None


INVALID = {
    "seq-empty": (lambda m, o: m.SequentialLR(o, [], milestones=[]),
                  ValueError, "SequentialLR expects at least one scheduler, but got no scheduler."),
    "seq-milestones": (lambda m, o: m.SequentialLR(o, [m.StepLR(o, 2), m.StepLR(o, 3)], milestones=[1, 2]),
                       ValueError, "Sequential Schedulers expects number of schedulers provided to be one more"),
    "seq-plateau": (lambda m, o: m.SequentialLR(o, [m.StepLR(o, 2), m.ReduceLROnPlateau(o)], milestones=[3]),
                    ValueError, "SequentialLR does not support `ReduceLROnPlateau` scheduler"),
    "seq-no-optimizer": (lambda m, o: m.SequentialLR(o, [m.StepLR(o, 2), object()], milestones=[3]),
                         TypeError, "SequentialLR at index 1 should have `optimizer` as its attribute."),
    "chain-empty": (lambda m, o: m.ChainedScheduler([]),
                    ValueError, "ChainedScheduler expects at least one scheduler to be chained"),
    "chain-plateau": (lambda m, o: m.ChainedScheduler([m.StepLR(o, 2), m.ReduceLROnPlateau(o)]),
                      ValueError, "ChainedScheduler does not support `ReduceLROnPlateau` scheduler"),
    "swalr-strategy": (lambda m, o: _swalr(m)(o, swa_lr=0.1, anneal_strategy="exp"),
                       ValueError, "anneal_strategy must be one of 'cos' or 'linear', instead got exp"),
    "swalr-epochs": (lambda m, o: _swalr(m)(o, swa_lr=0.1, anneal_epochs=-1),
                     ValueError, "anneal_epochs must be equal or greater than 0, got -1"),
    "swalr-epochs-float": (lambda m, o: _swalr(m)(o, swa_lr=0.1, anneal_epochs=2.5),
                           ValueError, "anneal_epochs must be equal or greater than 0, got 2.5"),
    "swalr-lengths": (lambda m, o: _swalr(m)(o, swa_lr=[0.1, 0.2, 0.3]),
                      ValueError, "swa_lr must have the same length as optimizer.param_groups"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_validation_errors_match_torch(case):
    make, exc_type, message = INVALID[case]
    ours, ref = _both(make)
    assert type(ours) is exc_type, repr(ours)
    assert str(ours).startswith(message), str(ours)
    if ref is not None:
        assert type(ref) is exc_type
        assert str(ours) == str(ref)


def test_different_optimizer_rejected():
    opt, _ = sp.make_fastoptim_optimizer("sgd")
    other, _ = sp.make_fastoptim_optimizer("sgd")
    for make in (lambda: fls.SequentialLR(opt, [fls.StepLR(opt, 2), fls.StepLR(other, 3)], milestones=[4]),
                 lambda: fls.ChainedScheduler([fls.StepLR(opt, 2), fls.StepLR(other, 3)])):
        with pytest.raises(ValueError, match="expects all schedulers to belong to the same optimizer, but got "
                                             "scheduler StepLR at index 1"):
            make()


# ------------------------------------------------------------------------------------ nesting

@requires_torch
def test_chained_inside_sequential_matches_torch():
    def build(m, o):
        return m.SequentialLR(o, [m.ChainedScheduler([m.StepLR(o, 5, 0.9), m.StepLR(o, 7, 0.8)]),
                                  m.StepLR(o, 3, 0.5)], milestones=[40])

    # Stepping the chained children at construction precedes any optimizer step: torch warns, so do we.
    with pytest.warns(UserWarning, match="Detected call of `lr_scheduler.step\\(\\)` before"):
        ref = sp.run_torch("sgd", build, 120)
    with pytest.warns(UserWarning, match="Detected call of `lr_scheduler.step\\(\\)` before"):
        ours = sp.run_fastoptim("sgd", build, 120)
    sp.assert_close(ours, ref, "chained-in-sequential")


def test_swalr_follows_edited_swa_lr():
    opt, params = sp.make_fastoptim_optimizer("sgd")
    zeros = [np.zeros_like(p) for p in params]
    sched = fls.SWALR(opt, swa_lr=0.01, anneal_epochs=5, anneal_strategy="linear")
    assert [g["swa_lr"] for g in opt.param_groups] == [0.01, 0.01]
    for g in opt.param_groups:
        g["swa_lr"] = 0.02
    for _ in range(8):
        opt.step(zeros)
        sched.step()
    assert sched.get_last_lr() == pytest.approx([0.02, 0.02], rel=1e-12)


# ------------------------------------------------------------------------------------ C++ composites

def test_cpp_composites_keep_children_alive():
    ls = fastoptim._core.lr_scheduler
    values = ls.GroupValues()
    values.set_all([1.0, 0.5], [None, None], [None, None], [False, False])
    seq = ls.SequentialLR(values, (ls.StepLR(values, 2, 0.5, -1), ls.StepLR(values, 3, 0.1, -1)), [4], -1)
    chain = ls.ChainedScheduler((ls.StepLR(values, 1, 0.9, -1),))
    del values
    gc.collect()
    got = []
    for _ in range(7):
        seq.step()
        got.append(seq.get_last_lr()[0])
    assert got == pytest.approx([1.0, 0.5, 0.5, 1.0, 1.0, 1.0, 0.1], rel=1e-15)
    assert seq.milestones == [4]
    chain.step()
    assert chain.get_last_lr()[0] == pytest.approx(0.09, rel=1e-15)
    with pytest.raises(TypeError):
        ls.ChainedScheduler((object(),))
    with pytest.raises(ValueError, match="at least one scheduler"):
        ls.ChainedScheduler(())


# ------------------------------------------------------------------------------------ preview

def test_preview_matches_a_real_run():
    def factory(o):
        return fls.SequentialLR(o, [fls.StepLR(o, 4, 0.5), fls.SWALR(o, swa_lr=0.003, anneal_epochs=6)],
                                milestones=[10])

    p = fls.preview(factory, 30, lr=0.1)
    opt = fastoptim.SGD([np.zeros(1)], lr=0.1, momentum=0.9)
    sched = factory(opt)
    lrs = [[g["lr"] for g in opt.param_groups]]
    for _ in range(30):
        opt.step([np.zeros(1)])
        sched.step()
        lrs.append([g["lr"] for g in opt.param_groups])
    assert p.step == list(range(31))
    assert p.lr == lrs
    assert p.momentum == [[0.9]] * 31
    assert p.as_dict()["lr"] == lrs


def test_preview_copies_an_optimizer_without_touching_it():
    opt, params = sp.make_fastoptim_optimizer("adam")
    before = [dict((k, v) for k, v in g.items() if k != "params") for g in opt.param_groups]
    p = fls.preview(lambda o: fls.StepLR(o, 2, 0.5), 5, optimizer=opt)
    assert [dict((k, v) for k, v in g.items() if k != "params") for g in opt.param_groups] == before
    assert p.lr[-1] == pytest.approx([1e-3 * 0.25, 3e-4 * 0.25], rel=1e-15)
    assert p.momentum[0] == [0.9, 0.85]


def test_preview_with_metrics_and_errors():
    p = fls.preview(lambda o: fls.ReduceLROnPlateau(o, patience=0, factor=0.5), 3, metrics=[1.0, 2.0, 3.0], lr=1.0)
    assert [r[0] for r in p.lr] == [1.0, 1.0, 0.5, 0.25]
    with pytest.raises(ValueError, match="metrics has 1 values"):
        fls.preview(lambda o: fls.ReduceLROnPlateau(o), 3, metrics=[1.0])
    with pytest.raises(ValueError, match="steps must be"):
        fls.preview(lambda o: fls.StepLR(o, 2), -1)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        fls.preview(lambda o: fls.StepLR(o, 2), 1, optimizer="lbfgs")


# ------------------------------------------------------------------------------------ CLI

def _cli(*args, cwd=None):
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "fastoptim", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


def test_cli_schedule_table():
    r = _cli("schedule", "StepLR", "--arg", "step_size=3", "--steps", "10")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0].split() == ["step", "lr", "momentum"]
    rows = [line.split() for line in lines[1:]]
    assert [int(row[0]) for row in rows] == list(range(11))
    expected = [0.1 * 0.1 ** (k // 3) for k in range(11)]
    assert [float(row[1]) for row in rows] == pytest.approx(expected, rel=1e-7)
    assert {row[2] for row in rows} == {"0.9"}


def test_cli_schedule_args_and_errors(tmp_path):
    r = _cli("schedule", "SWALR", "--arg", "swa_lr=0.01", "--arg", "anneal_strategy=linear", "--arg",
             "anneal_epochs=4", "--steps", "5", "--lr", "0.05", "--optimizer", "adam")
    assert r.returncode == 0, r.stderr
    lrs = [float(line.split()[1]) for line in r.stdout.strip().splitlines()[1:]]
    assert lrs == pytest.approx([0.05, 0.04, 0.03, 0.02, 0.01, 0.01], rel=1e-7)
    metrics = tmp_path / "m.txt"
    metrics.write_text("1 2 3\n4\n")
    r = _cli("schedule", "ReduceLROnPlateau", "--arg", "patience=0", "--arg", "factor=0.5", "--steps", "4",
             "--lr", "1", "--metric-file", str(metrics))
    assert r.returncode == 0, r.stderr
    assert [float(line.split()[1]) for line in r.stdout.strip().splitlines()[1:]] == [1, 1, 0.5, 0.25, 0.125]
    assert _cli("schedule", "NoSuchLR").returncode == 2
    assert "unknown scheduler" in _cli("schedule", "NoSuchLR").stderr
    assert _cli("schedule", "ReduceLROnPlateau").returncode == 2
    r = _cli("schedule", "StepLR", "--arg", "step_size=0")
    assert r.returncode == 2 and "step_size must be a positive integer" in r.stderr
    assert _cli("schedule", "StepLR", "--arg", "oops").returncode == 2


def test_cli_demo_still_listed():
    r = _cli("--help")
    assert r.returncode == 0 and "demo" in r.stdout and "schedule" in r.stdout


def _png_size(path):
    data = pathlib.Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_cli_schedule_plot(tmp_path):
    pytest.importorskip("matplotlib")
    from fastoptim.lr_scheduler import _preview

    out = tmp_path / "lr.png"
    r = _cli("schedule", "StepLR", "--arg", "step_size=3", "--steps", "10", "--plot", str(out))
    assert r.returncode == 0, r.stderr
    w, h = _png_size(out)
    assert (w, h) == (round(_preview.PLOT_SIZE[0] * _preview.PLOT_DPI), round(_preview.PLOT_SIZE[1] * _preview.PLOT_DPI))
    assert (w, h) == (800, 450)


def test_cli_schedule_plot_without_matplotlib(tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None; from fastoptim.__main__ import main; "
            f"sys.exit(main(['schedule', 'StepLR', '--arg', 'step_size=3', '--steps', '4', '--plot', "
            f"{str(tmp_path / 'x.png')!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 3
    assert "--plot needs matplotlib" in r.stderr
    assert not (tmp_path / "x.png").exists()
