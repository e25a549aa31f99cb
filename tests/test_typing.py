"""Static typing: the installed package (py.typed, inline annotations, and the _core.pyi stub of the compiled
module) passes mypy, and the stub matches the runtime module (mypy's stubtest). Skipped without mypy (the
test extra installs it)."""

import os
import shutil
import subprocess
import sys

import pytest

import fastoptim

mypy_api = pytest.importorskip("mypy.api")

PACKAGE_DIR = os.path.dirname(fastoptim.__file__)


def test_package_is_marked_typed():
    assert os.path.exists(os.path.join(PACKAGE_DIR, "py.typed"))
    assert os.path.exists(os.path.join(PACKAGE_DIR, "_core.pyi"))


def test_mypy_passes_on_the_installed_package(tmp_path):
    # Checked from a copy of its sources: mypy handed a directory inside site-packages treats all of
    # site-packages as our sources (and then trips over other packages' files).
    src = tmp_path / "src" / "fastoptim"
    shutil.copytree(PACKAGE_DIR, src, ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    # Optional dependencies (torch, scikit-learn, tqdm) may be untyped or absent: not ours to check.
    out, err, status = mypy_api.run([str(src), "--cache-dir", str(tmp_path / "cache"), "--no-error-summary",
                                     "--ignore-missing-imports"])
    assert status == 0, out + err


def test_user_code_type_checks(tmp_path):
    """What a user writes type-checks, and a wrong type in user code is caught."""
    good = tmp_path / "good.py"
    good.write_text(
        "import numpy as np\nimport fastoptim\n"
        "w = np.zeros(3, np.float32)\n"
        "opt = fastoptim.Adam([w], lr=1e-3, betas=(0.9, 0.99))\n"
        "sched = fastoptim.lr_scheduler.ReduceLROnPlateau(opt, patience=2)\n"
        "opt.step([np.ones(3, np.float32)])\n"
        "sched.step(0.5)\n"
        "lr: float = opt.param_groups[0]['lr']\n"
    )
    bad = tmp_path / "bad.py"
    bad.write_text("import fastoptim\nfastoptim.set_num_threads('two')\n")
    cache = str(tmp_path / "cache")
    out, err, status = mypy_api.run([str(good), "--cache-dir", cache, "--no-error-summary"])
    assert status == 0, out + err
    out, err, status = mypy_api.run([str(bad), "--cache-dir", cache, "--no-error-summary"])
    assert status == 1 and "set_num_threads" in out, out + err


def test_stub_matches_the_compiled_module():
    result = subprocess.run([sys.executable, "-m", "mypy.stubtest", "fastoptim._core"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
