"""The main job: `python -m fastoptim demo` trains with an optimizer per batch and ReduceLROnPlateau per
epoch, prints the per-epoch table, and the validation loss goes down."""

import re
import subprocess
import sys

import pytest


def run_demo(*args):
    return subprocess.run([sys.executable, "-m", "fastoptim", "demo", *args],
                          check=True, capture_output=True, text=True, timeout=120).stdout


@pytest.mark.parametrize("optimizer", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_demo_trains(optimizer):
    out = run_demo("--optimizer", optimizer, "--epochs", "6")
    rows = [line.split() for line in out.splitlines() if re.match(r"\s+\d+\s", line)]
    assert [int(r[0]) for r in rows] == list(range(1, 7))
    val_losses = [float(r[2]) for r in rows]
    assert min(val_losses[-2:]) < 0.8 * val_losses[0]
    assert "improved (best" in out


def test_demo_reports_plateau_and_reduction():
    out = run_demo("--optimizer", "Adam", "--epochs", "20")
    assert "no improvement (2 of patience 2)" in out
    reduced = [line for line in out.splitlines() if "LR reduced" in line]
    assert reduced and "0.02 → 0.01" in reduced[0]
    last = [line.split() for line in out.splitlines() if re.match(r"\s+20\s", line)][0]
    assert float(last[3]) > 0.85  # validation accuracy (5% of labels are flipped)


def test_cli_rejects_unknown_command():
    result = subprocess.run([sys.executable, "-m", "fastoptim", "nope"], capture_output=True, text=True)
    assert result.returncode != 0 and "invalid choice" in result.stderr
