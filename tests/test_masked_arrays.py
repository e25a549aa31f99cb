"""numpy masked arrays are refused, not silently updated through the mask: the kernels see only .data, so a
masked gradient would step the masked elements too, and a masked parameter would have its masked elements
updated. Other ndarray subclasses (np.memmap, np.matrix, user subclasses) stay accepted."""

import inspect

import numpy as np
import pytest

import fastoptim

OPTIMIZERS = sorted(
    name for name, obj in vars(fastoptim).items()
    if inspect.isclass(obj) and issubclass(obj, fastoptim.Optimizer) and obj is not fastoptim.Optimizer
)
# Steps that take a list of dense gradients, one per parameter (LBFGS takes a closure, SparseAdam rows).
DENSE = [n for n in OPTIMIZERS if n not in ("LBFGS", "SparseAdam")]


def _masked(shape=(4, 4), dtype=np.float32):
    data = np.arange(np.prod(shape), dtype=dtype).reshape(shape) / 16 + 1
    return np.ma.masked_array(data, mask=np.arange(data.size).reshape(shape) % 2 == 0)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_masked_parameter_is_refused_at_construction(name):
    with pytest.raises(TypeError, match="masked array"):
        getattr(fastoptim, name)([_masked()], lr=0.1)


@pytest.mark.parametrize("name", DENSE)
def test_masked_gradient_is_refused_and_nothing_changes(name):
    p = np.linspace(0.5, 1.5, 16, dtype=np.float32).reshape(4, 4)
    opt = getattr(fastoptim, name)([p], lr=0.1)
    if hasattr(opt, "train"):  # ScheduleFreeAdamW steps in train mode
        opt.train()
    opt.step([np.full((4, 4), 0.25, np.float32)])
    before = p.copy()
    state_before = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in opt.state.get(0, {}).items()}
    with pytest.raises(TypeError, match="masked array"):
        opt.step([_masked()])
    np.testing.assert_array_equal(p, before)
    for k, v in state_before.items():
        np.testing.assert_array_equal(np.asarray(opt.state[0][k]), np.asarray(v))


def test_masked_state_buffer_is_refused():
    p = np.ones(16, np.float32)
    opt = fastoptim.Adam([p], lr=0.1)
    opt.step([np.ones(16, np.float32)])
    before = p.copy()
    opt.state[0]["exp_avg"] = np.ma.masked_array(opt.state[0]["exp_avg"], mask=np.zeros(16, bool))
    with pytest.raises(TypeError, match="state 'exp_avg' of parameter 0 is a numpy masked array"):
        opt.step([np.ones(16, np.float32)])
    np.testing.assert_array_equal(p, before)


def test_other_subclasses_are_still_updated_in_place(tmp_path):
    class Tagged(np.ndarray):
        pass

    p = np.ones(8, np.float32).view(Tagged)
    g = np.ones(8, np.float32).view(Tagged)
    opt = fastoptim.SGD([p], lr=0.5)
    opt.step([g])
    np.testing.assert_array_equal(p, np.full(8, 0.5, np.float32))
