"""The examples in the docstrings run: every module of the installed package is doctested, and every public
optimizer and scheduler class has an example to run."""

import doctest
import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import fastoptim
import fastoptim.lr_scheduler as fls


def _modules():
    names = ["fastoptim"]
    for info in pkgutil.walk_packages(fastoptim.__path__, "fastoptim."):
        if info.name in ("fastoptim.__main__", "fastoptim.torch") or info.name.startswith("fastoptim.torch."):
            continue  # the CLI entry point runs on import; the torch adapter needs torch (tested on its own)
        names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    np_print = np.get_printoptions()
    try:
        np.set_printoptions(legacy="1.25")  # numpy 1.x and 2.x print scalars alike
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    finally:
        np.set_printoptions(**np_print)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples in {name} failed"


def _public_classes():
    out = []
    for name in fastoptim.__all__:
        obj = getattr(fastoptim, name)
        if inspect.isclass(obj) and issubclass(obj, fastoptim.Optimizer) and obj is not fastoptim.Optimizer:
            out.append(obj)
    for name in fls.__all__:
        obj = getattr(fls, name)
        if inspect.isclass(obj) and name not in ("LRScheduler", "PlateauEvent", "SchedulePreview"):
            out.append(obj)
    return sorted(set(out), key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", _public_classes(), ids=lambda c: c.__name__)
def test_every_public_class_has_a_runnable_example(cls):
    assert ">>>" in (cls.__doc__ or ""), f"{cls.__name__}'s docstring has no example"
