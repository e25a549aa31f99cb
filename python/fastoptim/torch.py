"""fastoptim's optimizers as ``torch.optim.Optimizer`` subclasses, for torch training loops on the CPU.

    import torch
    import fastoptim.torch

    opt = fastoptim.torch.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=1000)
    for x, y in batches:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        sched.step()

Every numpy optimizer of fastoptim whose step takes one gradient per parameter (``step(grads)``) gets a
class here with the same name and arguments, built from it: ``step()`` hands numpy views of the tensors
(``tensor.numpy()`` shares memory) to that class's validation and C++ kernel, so parameters and state are
updated in place and nothing is copied. Everything else is torch's own: ``param_groups`` (what torch's and
fastoptim's lr schedulers drive), ``state`` keyed by tensor with torch's keys and tensors (so ``state_dict()``
and ``load_state_dict()`` interoperate with ``torch.optim`` both ways), hooks, ``zero_grad()``, and what
``torch.distributed.optim.ZeroRedundancyOptimizer`` needs.

Tensors must be on the CPU, dense, contiguous and of a dtype fastoptim updates (float32, float64; float16
and bfloat16 too for the optimizers with low-precision kernels, whose ``state_dtype``, ``master_weights`` and
``stochastic_rounding`` arguments work here as well: bfloat16 through ml_dtypes views); anything else
raises, as it would need a copy. ``import fastoptim`` does not import torch; this module does.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

import fastoptim
from .optimizer import _FLOAT_DTYPES, Optimizer as _NumpyOptimizer

# torch dtypes whose numpy views fastoptim's kernels update (follows fastoptim.optimizer's list)
_DTYPES = {torch.from_numpy(np.empty(0, dtype=d)).dtype for d in _FLOAT_DTYPES}
_DTYPE_NAMES = " or ".join(sorted(str(d).replace("torch.", "") for d in _DTYPES))
# and, for the optimizers with low-precision kernels (``_low_precision``), these
_DTYPES_16 = {torch.float16, torch.bfloat16}


def _bf16_numpy(t: torch.Tensor) -> np.ndarray:
    """A numpy view of a bfloat16 tensor as ml_dtypes.bfloat16 (torch's numpy() has no bfloat16)."""
    from .optimizer import _bfloat16

    bf16 = _bfloat16()
    if bf16 is None:
        raise TypeError("bfloat16 tensors need the ml_dtypes package (pip install ml_dtypes)")
    return t.view(torch.int16).numpy().view(bf16)


def _tensor(a: np.ndarray) -> torch.Tensor:
    """A tensor over the array's memory (bfloat16 through its int16 bits)."""
    if a.dtype.kind == "V" and a.dtype.name == "bfloat16":
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def _where(index: int, what: str) -> str:
    """Names a tensor in messages as fastoptim's numpy checks do."""
    if what == "parameter":
        return f"parameter {index}"
    if what == "gradient":
        return f"gradient of parameter {index}"
    return f"state '{what}' of parameter {index}"


def _array(t: Any, index: int, what: str, low_precision: bool = False) -> np.ndarray:
    """A numpy view sharing ``t``'s memory; whatever would need a copy raises instead. (The message is
    built only on failure: this runs for every tensor at every step.)"""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{_where(index, what)} must be a torch.Tensor, got {torch.typename(t)}")
    if t.layout is not torch.strided:
        raise TypeError(f"{_where(index, what)} has layout {t.layout}; fastoptim.torch updates dense (strided) tensors")
    if not t.is_cpu:
        raise ValueError(
            f"{_where(index, what)} is on {t.device}; fastoptim.torch updates CPU tensors in place and never "
            "copies them to or from a device"
        )
    if t.dtype not in _DTYPES and not (low_precision and t.dtype in _DTYPES_16):
        names = _DTYPE_NAMES + (", float16 or bfloat16" if low_precision else "")
        raise TypeError(f"{_where(index, what)} has dtype {t.dtype}; fastoptim updates {names} tensors (no conversion)")
    if not t.is_contiguous():
        raise ValueError(
            f"{_where(index, what)} is not contiguous (a transposed or strided view, or channels_last?); "
            "fastoptim.torch updates contiguous tensors in place and never copies: make it contiguous first"
        )
    # numpy() refuses tensors that require grad; detach() is a view of the same memory
    if t.requires_grad:
        t = t.detach()
    return _bf16_numpy(t) if t.dtype == torch.bfloat16 else t.numpy()


def _param_array(p: torch.Tensor, index: int, low_precision: bool = False) -> np.ndarray:
    if p.is_inference() and not torch.is_inference_mode_enabled():
        raise RuntimeError(
            f"parameter {index}: Inplace update to inference tensor outside InferenceMode is not allowed"
        )
    return _array(p, index, "parameter", low_precision)


def _grad_array(p: torch.Tensor, index: int, owner: str, low_precision: bool = False) -> np.ndarray:
    assert p.grad is not None
    if p.grad.layout is not torch.strided:  # torch's message for the dense optimizers
        raise RuntimeError(f"{owner} does not support sparse gradients (gradient of parameter {index})")
    return _array(p.grad, index, "gradient", low_precision)


def _state_value(value: Any, key: str, index: int, low_precision: bool = False) -> Any:
    return _array(value, index, key, low_precision) if isinstance(value, torch.Tensor) else value


def _hyperparameters(group: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in group.items() if k != "params"}


class _TorchOptimizer(torch.optim.Optimizer):
    """A fastoptim numpy optimizer (``_numpy_class``, set by each class of this module) behind torch's API.

    The numpy optimizer (``_engine``) holds nothing between steps: each ``step()`` lends it numpy views of
    this optimizer's groups, gradients and state, runs its ``step``, and takes the state buffers it
    created into ``self.state`` as tensors over the same memory.
    """

    _numpy_class: Any  # the fastoptim optimizer class whose checks and kernel run

    def __init__(self, params: Any, *args: Any, **kwargs: Any) -> None:
        # torch normalizes the groups and checks the tensors (leaves, names, duplicates); the defaults come
        # from the numpy class, which checks the arrays and hyperparameters with fastoptim's rules
        super().__init__(params, {})
        self._fastoptim_args = (args, kwargs)
        engine = self._new_engine()
        self.defaults = dict(engine.defaults)
        for group, checked in zip(self.param_groups, engine.param_groups):
            group.update(_hyperparameters(checked))
        # State the numpy class makes at construction (Adagrad's, as torch's) becomes tensors here.
        params = [p for group in self.param_groups for p in group["params"]]
        for index, entry in engine.state.items():
            self.state[params[index]] = {k: _tensor(v) if isinstance(v, np.ndarray) else v for k, v in entry.items()}
        engine.param_groups, engine.state = [], {}  # views would keep storage alive that a parameter may drop

    def _new_engine(self) -> _NumpyOptimizer:
        args, kwargs = self._fastoptim_args
        self._engine = self._numpy_class(self._array_groups(), *args, **kwargs)
        return self._engine

    def _get_engine(self) -> _NumpyOptimizer:
        engine = self.__dict__.get("_engine")
        if engine is None:  # unpickled: rebuilt from the groups
            engine = self._new_engine()
            engine.param_groups = []
        return engine

    def _array_groups(self) -> List[Dict[str, Any]]:
        groups, index = [], 0
        for group in self.param_groups:
            arrays = []
            for p in group["params"]:
                arrays.append(_param_array(p, index, self._numpy_class._low_precision))
                index += 1
            groups.append(dict(group, params=arrays))
        return groups

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        if "_fastoptim_args" not in self.__dict__:  # in __init__: the groups are checked together after
            super().add_param_group(param_group)
            return
        engine = self._get_engine()
        super().add_param_group(param_group)
        try:  # fastoptim's checks of the new group against the others
            arrays = self._array_groups()
            engine.param_groups = arrays[:-1]
            engine.add_param_group(arrays[-1])
            checked = engine.param_groups[-1]
        except Exception:
            self.param_groups.pop()  # a group that fails them is not added
            raise
        finally:
            engine.param_groups = []
        self.param_groups[-1].update(_hyperparameters(checked))

    def _lend(self, with_grads: bool) -> Tuple[List[torch.Tensor], List[Optional[np.ndarray]],
                                                List[Dict[str, Any]], Dict[int, Dict[str, Any]]]:
        """Views for the numpy optimizer: (every parameter, the gradients as arrays, the groups over array views
        of the parameters, the state entries by index as arrays). with_grads: a parameter without ``.grad`` is
        None in its group and in the gradients (the numpy optimizer skips it without looking at it), and
        lends no state."""
        owner = type(self).__name__
        low = self._numpy_class._low_precision
        params: List[torch.Tensor] = []
        grads: List[Optional[np.ndarray]] = []
        groups: List[Dict[str, Any]] = []
        lent: Dict[int, Dict[str, Any]] = {}
        for group in self.param_groups:
            arrays: List[Optional[np.ndarray]] = []
            for p in group["params"]:
                index = len(params)
                params.append(p)
                if with_grads and p.grad is None:
                    arrays.append(None)
                    grads.append(None)
                    continue
                arrays.append(_param_array(p, index, low))
                if with_grads:
                    grads.append(_grad_array(p, index, owner, low))
                state = self.state.get(p)
                if state:
                    lent[index] = {k: _state_value(v, k, index, low) for k, v in state.items()}
            groups.append(dict(group, params=arrays))
        return params, grads, groups, lent

    def _run(self, groups: List[Dict[str, Any]], lent: Dict[int, Dict[str, Any]],
             call: Callable[[Any], Any]) -> Dict[int, Dict[str, Any]]:
        """call(engine) with the lent groups and state, keeping no views past it; takes back the counts
        kept in the groups (Adan, ScheduleFree) and returns the engine's state as the call left it."""
        engine = self._get_engine()
        engine.param_groups, engine.state = groups, lent
        try:
            call(engine)
            state = engine.state
        finally:
            engine.param_groups, engine.state = [], {}
        for group, changed in zip(self.param_groups, groups):
            group.update(_hyperparameters(changed))
        return state

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Performs one step over every parameter whose ``.grad`` is set (others are skipped, as torch).

        ``closure``, if given, is called under ``torch.enable_grad()`` first and its loss returned.
        Every tensor is checked before anything is written, so a step that raises changes nothing.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        params, grads, groups, lent = self._lend(with_grads=True)
        before = {index: dict(entry) for index, entry in lent.items()}
        stepped = self._run(groups, lent, lambda engine: engine.step(grads))
        order = {key: i for i, key in enumerate(("step",) + self._numpy_class._state_keys)}
        for index, entry in stepped.items():
            old = before.get(index, {})
            new = [key for key, value in entry.items() if value is not old.get(key)]  # the rest was updated in place
            state = self.state[params[index]]
            for key in sorted(new, key=lambda k: order.get(k, len(order))):  # torch's order: step, then buffers
                value = entry[key]
                state[key] = _tensor(value) if isinstance(value, np.ndarray) else value
        # The kernel wrote behind autograd's back: bump the version counters as an in-place op would, so
        # a backward through graphs that saved these parameters fails as it does with torch.optim.
        torch.autograd.graph.increment_version([p for p, g in zip(params, grads) if g is not None])
        self._opt_called = True  # fastoptim's lr schedulers check it, as torch's do
        return loss

    def _run_engine(self, method: str) -> None:
        """Runs the numpy optimizer's gradient-free ``method`` (ScheduleFreeAdamW's train/eval) on views of
        every parameter and its state, then takes back the groups' keys it changed."""
        params, _, groups, lent = self._lend(with_grads=False)
        self._run(groups, lent, lambda engine: getattr(engine, method)())
        torch.autograd.graph.increment_version(params)  # written in place, as in step()

    def __getstate__(self) -> Dict[str, Any]:
        return dict(super().__getstate__(), _fastoptim_args=self._fastoptim_args)

    def __setstate__(self, state: Dict[str, Any]) -> None:
        # load_state_dict() comes here with the loaded groups; they are completed and checked before any
        # of them is installed, so a bad state dict changes nothing
        defaults = state.get("defaults", self.__dict__.get("defaults", {}))
        for group in state["param_groups"]:
            for key, value in defaults.items():
                group.setdefault(key, value)
            group.update(self._numpy_class._forced)
            self._numpy_class._hyper(self.__dict__.get("_engine"), group)
        engine = self.__dict__.get("_engine")
        if engine is not None:  # load_state_dict (not unpickling): the state entries pass the numpy class's checks
            low = self._numpy_class._low_precision
            params = [p for group in state["param_groups"] for p in group["params"]]
            for index, p in enumerate(params):
                entry = state["state"].get(p)
                if entry:
                    engine._load_entry({k: _state_value(v, k, index, low) for k, v in entry.items()},
                                       _param_array(p, index, low), index)
        super().__setstate__(state)


def _adaptable(obj: Any) -> bool:
    """A fastoptim optimizer driven by one gradient per parameter (``step(grads)``); those with another
    step (e.g. a closure returning gradients) need their own adapter."""
    return (
        isinstance(obj, type)
        and issubclass(obj, _NumpyOptimizer)
        and obj is not _NumpyOptimizer
        and list(inspect.signature(obj.step).parameters) == ["self", "grads"]
        and not getattr(obj, "_sparse_gradients", False)
    )


def _switch_method(method: str, doc: Optional[str]) -> Callable[[_TorchOptimizer], None]:
    def switch(self: _TorchOptimizer) -> None:
        self._run_engine(method)

    switch.__name__ = switch.__qualname__ = method
    switch.__doc__ = doc
    return switch


def _adapter(numpy_class: type) -> type:
    name = numpy_class.__name__
    # The numpy class's docstring is referred to, not copied: its examples would run again as doctests here.
    doc = (
        f"``fastoptim.{name}`` as a ``torch.optim.Optimizer``: the same arguments, defaults and update rule "
        f"(see ``help(fastoptim.{name})``), run by its kernel on CPU tensors in place (see ``fastoptim.torch``)."
    )
    body: Dict[str, Any] = {"_numpy_class": numpy_class, "__doc__": doc, "__module__": __name__}
    for method in ("train", "eval"):  # ScheduleFreeAdamW's switches between the iterate and the average
        if callable(getattr(numpy_class, method, None)):
            body[method] = _switch_method(method, getattr(numpy_class, method).__doc__)
    cls: Any = type(name, (_TorchOptimizer,), body)
    cls.__signature__ = inspect.signature(numpy_class)  # help() and inspect show the numpy class's arguments
    return cls


__all__: List[str] = []
for _name in fastoptim.__all__:
    if _adaptable(getattr(fastoptim, _name)):
        globals()[_name] = _adapter(getattr(fastoptim, _name))
        __all__.append(_name)
del _name
