"""The main job: `python -m fastoptim demo` trains an MLP on the digits with an optimizer per batch and a
scheduler (ReduceLROnPlateau per epoch by default), prints the per-epoch table, draws the curves, and
replays the run with torch to report the parameter deviation."""

from __future__ import annotations

import re
import struct
import subprocess
import sys

import pytest

import fastoptim
from fastoptim import _demo
from fastoptim.__main__ import main
from conftest import requires_torch

ROW = re.compile(r"^\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+\S+ms  (.*)$")
HEADER = "epoch    train      val  val acc         lr patience     time  scheduler"


def table(out: str):
    """The per-epoch rows: epoch, train loss, val loss, val accuracy, lr, patience, scheduler event."""
    rows = []
    for line in out.split("\n"):  # not splitlines(), which also splits at the bar's carriage returns
        m = ROW.match(line.split("\r\033[K")[-1])  # what a terminal shows once the progress bar is erased
        if m:
            epoch, train, val, acc, lr, patience, event = m.groups()
            rows.append(dict(epoch=int(epoch), train=float(train), val=float(val), acc=float(acc), lr=float(lr),
                             patience=patience, event=event))
    return rows


def run_main(capsys, *args):
    status = main(["demo", *args])
    out, err = capsys.readouterr()
    return status, out, err


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24]), len(data)  # IHDR: width, height


def test_three_epochs_table_plot_and_falling_loss(capsys, tmp_path):
    plot = tmp_path / "curves.png"
    status, out, _ = run_main(capsys, "--epochs", "3", "--plot", str(plot))
    assert status == 0 and HEADER in out and "digits" in out
    rows = table(out)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["val"] < 0.5 * rows[0]["val"]  # the validation loss fell
    assert rows[0]["event"].startswith("improved (best ") and rows[0]["patience"] == "0/2"
    assert all(0 < r["acc"] <= 1 and r["lr"] == 5e-3 for r in rows)
    assert "\r" not in out  # stdout is not a terminal: no progress bar
    assert (_demo.PLOT_SIZE[0] * _demo.PLOT_DPI, _demo.PLOT_SIZE[1] * _demo.PLOT_DPI) == png_size(plot)[0]
    assert png_size(plot)[1] > 20_000  # two panels of curves, not an empty canvas
    assert f"wrote {plot}" in out


def test_default_run_plateaus_and_cuts_the_lr(capsys):
    status, out, _ = run_main(capsys)
    assert status == 0
    rows = table(out)
    assert len(rows) == _demo.EPOCHS
    cut = next(i for i, r in enumerate(rows) if r["event"].startswith("LR reduced"))
    # The seed's story: patience runs out over two epochs without improvement, then the LR halves.
    assert [r["patience"] for r in rows[cut - 2:cut + 1]] == ["1/2", "2/2", "0/2"]
    assert rows[cut - 1]["event"] == "no improvement (2 of patience 2)"
    assert rows[cut]["event"] == "LR reduced 0.005 → 0.0025"
    assert rows[cut - 1]["lr"] == 5e-3 and rows[cut]["lr"] == 2.5e-3
    assert min(r["val"] for r in rows) < 0.2 * rows[0]["val"]
    assert rows[-1]["acc"] > 0.95


def test_progress_bar_only_on_a_terminal(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # the built-in bar
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    _, out, _ = run_main(capsys, "--epochs", "2")
    assert "\repoch 1/2 [" in out and "\r\033[K" in out
    assert [r["epoch"] for r in table(out)] == [1, 2]  # each row starts after the erased bar
    _, out, _ = run_main(capsys, "--epochs", "2", "--no-progress")
    assert "\r" not in out and len(table(out)) == 2


def test_falls_back_to_generated_data_without_sklearn(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    status, out, err = run_main(capsys, "--epochs", "3")
    assert status == 0
    assert "scikit-learn is not available" in err and 'pip install "fastoptim[demo]"' in err
    assert "two spirals" in out and "MLP 2-64-2" in out
    rows = table(out)
    assert [r["epoch"] for r in rows] == [1, 2, 3] and rows[-1]["val"] < rows[0]["val"]


def test_per_batch_scheduler_steps_every_batch(capsys):
    status, out, _ = run_main(capsys, "--epochs", "2", "--scheduler", "OneCycleLR")
    assert status == 0 and "OneCycleLR(total_steps=90, max_lr=0.005) per batch" in out
    rows = table(out)
    # Stepped once per batch (45 per epoch), not once per epoch: the lrs are the schedule's at steps 45 and 90.
    schedule = fastoptim.lr_scheduler.preview(
        lambda opt: fastoptim.lr_scheduler.OneCycleLR(opt, max_lr=5e-3, total_steps=90), steps=90, optimizer="adam",
        lr=5e-3)
    assert [r["lr"] for r in rows] == [pytest.approx(schedule.lr[k][0], rel=1e-3) for k in (45, 90)]
    assert rows[0]["event"].endswith("(per batch)") and rows[0]["patience"] == "-"


@pytest.mark.parametrize("args, message", [
    (["--scheduler", "StepLR"], "StepLR needs step_size: add --sched-arg step_size=..."),
    (["--opt-arg", "lr"], "--opt-arg expects KEY=VALUE, got 'lr'"),
    (["--epochs", "0"], "--epochs must be >= 1"),
])
def test_bad_arguments_are_usage_errors(capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main(["demo", *args])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_bad_optimizer_argument_is_reported(capsys):
    status, _, err = run_main(capsys, "--opt-arg", "lr=-1")
    assert status == 2 and "error: Adam / ReduceLROnPlateau: Invalid learning rate: -1" in err


def deviation(out):
    m = re.search(r"= (\S+) ulps of the largest \|parameter\| \((within|OUTSIDE) the parity bound of (\S+) ulps", out)
    assert m, out
    return float(m.group(1)), m.group(2), float(m.group(3))


@requires_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_compare_torch_within_parity_bound(capsys, dtype):
    status, out, _ = run_main(capsys, "--epochs", "3", "--dtype", dtype, "--compare", "torch")
    ulps, verdict, bound = deviation(out)
    assert status == 0 and verdict == "within" and ulps <= bound
    assert bound >= _demo.PARITY_ULPS_FLOOR
    assert re.search(r"fastoptim +wall +\d+\.\d+ s", out) and re.search(r"torch\.optim +wall +\d+\.\d+ s", out)
    assert "learning rates: largest relative difference 0 over 135 steps" in out


@requires_torch
def test_compare_torch_catches_a_different_update(capsys, monkeypatch):
    class SlightlyOff(fastoptim.Adam):
        """Adam with eps 1e-7 instead of 1e-8: the kind of difference parity is about."""

        def __init__(self, params, **kwargs):
            super().__init__(params, **dict(kwargs, eps=1e-7))

    classes = dict(_demo.optimizer_classes(), Adam=SlightlyOff)
    monkeypatch.setattr(_demo, "optimizer_classes", lambda: classes)
    status, out, _ = run_main(capsys, "--epochs", "3", "--dtype", "float64", "--compare", "torch")
    ulps, verdict, bound = deviation(out)
    assert status == 1 and verdict == "OUTSIDE" and ulps > bound


def test_command_line():
    result = subprocess.run([sys.executable, "-m", "fastoptim", "demo", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--compare {torch}" in result.stdout and "ReduceLROnPlateau" in result.stdout
    result = subprocess.run([sys.executable, "-m", "fastoptim", "nope"], capture_output=True, text=True)
    assert result.returncode != 0 and "invalid choice" in result.stderr
