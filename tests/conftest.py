import importlib.util
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

HAS_TORCH = importlib.util.find_spec("torch") is not None

requires_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed (pip install torch==2.13.0)")


def assert_same_state(a, b):
    """Two optimizers' state: the same entries, each of the same type, dtype, shape and bytes."""
    assert sorted(a.state) == sorted(b.state)
    for i in a.state:
        assert sorted(a.state[i]) == sorted(b.state[i]), i
        for k in a.state[i]:
            x, y = a.state[i][k], b.state[i][k]
            ax, ay = np.asarray(x), np.asarray(y)
            assert type(x) is type(y) and ax.dtype == ay.dtype and ax.shape == ay.shape, (i, k)
            assert ax.tobytes() == ay.tobytes(), (i, k)
