"""The main job: `python -m fastoptim demo` trains and the loss goes down."""

import re
import subprocess
import sys

import pytest


@pytest.mark.parametrize("optimizer", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_demo_trains(optimizer):
    out = subprocess.run(
        [sys.executable, "-m", "fastoptim", "demo", "--optimizer", optimizer, "--epochs", "6"],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout
    rows = [line.split() for line in out.splitlines() if re.match(r"\s+\d+\s", line)]
    assert [int(r[0]) for r in rows] == list(range(1, 7))
    losses = [float(r[1]) for r in rows]
    assert losses[-1] < 0.7 * losses[0]
    assert float(rows[-1][3]) == pytest.approx(float(rows[0][3]) / 2)  # the step decay after epoch 4


def test_cli_rejects_unknown_command():
    result = subprocess.run([sys.executable, "-m", "fastoptim", "nope"], capture_output=True, text=True)
    assert result.returncode != 0 and "invalid choice" in result.stderr
