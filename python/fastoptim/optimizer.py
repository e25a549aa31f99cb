"""The torch.optim-shaped front end shared by every fastoptim optimizer.

An optimizer holds ``param_groups`` (a list of dicts, as torch) over numpy arrays that it updates in
place, and ``state`` keyed by parameter index in group order (torch keys it by tensor; its state_dict
uses the same indices we use everywhere). ``step(grads)`` hands every array of every group to one C++
call that validates all of them before any byte is written, so a call that raises changes nothing.
"""

from __future__ import annotations

import copy
import functools
import math
import numbers
import threading
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from . import _core

__all__ = ["Optimizer", "required"]


class _Required:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_F16 = np.dtype(np.float16)


def _bfloat16() -> Optional[np.dtype]:
    """ml_dtypes' bfloat16, when ml_dtypes is installed (numpy has no bfloat16 of its own)."""
    try:
        import ml_dtypes
    except ImportError:
        return None
    return np.dtype(ml_dtypes.bfloat16)


def _is_16bit(dtype: np.dtype) -> bool:
    return dtype == _F16 or (dtype.kind == "V" and dtype.itemsize == 2 and dtype.name == "bfloat16")


def _state_dtype(value: Any) -> Optional[np.dtype]:
    """The ``state_dtype`` argument: None (the parameter's dtype, as torch), or float32/float16/bfloat16."""
    if value is None:
        return None
    if isinstance(value, str) and value == "bfloat16":
        bf16 = _bfloat16()
        if bf16 is None:
            raise ValueError("state_dtype='bfloat16' needs the ml_dtypes package (pip install ml_dtypes)")
        return bf16
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise TypeError(f"state_dtype must be None or a dtype such as 'bfloat16', got {_typename(value)}") from None
    if dtype == np.float32 or _is_16bit(dtype):
        return dtype
    raise ValueError(f"state_dtype must be None, 'float32', 'float16' or 'bfloat16', got {dtype}")


def _typename(obj: Any) -> str:
    t = type(obj)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _check_param_array(p: Any, where: str, low_precision: bool = False) -> None:
    """Checks an array can be updated in place, with torch-like messages."""
    if not isinstance(p, np.ndarray):
        raise TypeError(f"optimizer can only optimize numpy arrays, but {where} is {_typename(p)}")
    if isinstance(p, np.ma.MaskedArray):
        raise TypeError(f"{where} is a numpy masked array: the optimizer would update the masked elements and "
                        "ignore the mask; pass its .data to optimize the underlying array")
    if low_precision and _is_16bit(p.dtype) and p.dtype.isnative:
        pass
    elif p.dtype not in _FLOAT_DTYPES or not p.dtype.isnative:
        kinds = "float32, float64, float16 or bfloat16" if low_precision else "float32 or float64"
        raise TypeError(f"{where} has dtype {p.dtype}; this optimizer updates {kinds} arrays (native byte order)")
    if not p.flags.c_contiguous:
        raise ValueError(f"{where} is not C-contiguous (a strided view?); in-place updates need a contiguous array")
    if not p.flags.writeable:
        raise ValueError(f"{where} is read-only")
    if not p.flags.aligned:
        raise ValueError(f"{where} is not aligned to its dtype")


_INT_FLOAT_MAX = 2**1000  # ints up to this convert to float without overflow


def _real(value: Any, name: str) -> float:
    """A hyperparameter as a Python float; bools and non-numbers are rejected."""
    if type(value) is float:  # the common cases, without the checks below
        return value
    if type(value) is int and -_INT_FLOAT_MAX <= value <= _INT_FLOAT_MAX:
        return float(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating, np.integer)):
        if not (isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "fi"):
            raise TypeError(f"{name} must be a real number, got {_typename(value)}")
    try:
        return float(value)
    except OverflowError:  # an int past the float range
        raise ValueError(f"{name} is too large for a float: an integer of {len(str(abs(int(value))))} digits") from None


def _flag(value: Any, name: str) -> bool:
    if value is True or value is False:
        return value
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {_typename(value)}")
    return bool(value)


def _byte_range(a: np.ndarray) -> tuple:
    start = a.__array_interface__["data"][0]
    return start, start + a.nbytes


def serialized(step: Callable) -> Callable:
    """Makes a subclass's ``step`` hold the optimizer's step lock (``Optimizer.__init__``; the base class's
    ``step`` takes it inline)."""

    @functools.wraps(step)
    def locked(self: "Optimizer", *args: Any, **kwargs: Any) -> Any:
        with self._step_lock:
            return step(self, *args, **kwargs)

    return locked


class Optimizer:
    """Base class: parameter groups, per-parameter state, state_dict, and the validated step."""

    # Keys a state entry may hold, besides "step"; set by each optimizer.
    _state_keys: tuple = ()
    # Group keys a subclass forces whatever is loaded (AdamW: decoupled_weight_decay=True).
    _forced: Dict[str, Any] = {}
    # Whether the kernels take float16/bfloat16 storage (elementwise rules: cpp/bindings/lowp_run.hpp).
    _low_precision: bool = False
    # The attributes load_state_dict replaces (fastoptim.load puts them back when a scheduler's part fails).
    _load_replaces: Tuple[str, ...] = ("param_groups", "state", "defaults", "_rounding_step")

    def __init__(self, params: Iterable, defaults: Dict[str, Any], *, state_dtype: Any = None,
                 master_weights: bool = False, stochastic_rounding: bool = False, rounding_seed: int = 0) -> None:
        if not self._low_precision and (state_dtype is not None or master_weights or stochastic_rounding):
            raise ValueError(f"{type(self).__name__} does not support low-precision storage")
        self._state_dtype_arg = _state_dtype(state_dtype)
        self.master_weights = _flag(master_weights, "master_weights")
        self.stochastic_rounding = _flag(stochastic_rounding, "stochastic_rounding")
        if isinstance(rounding_seed, (bool, np.bool_)) or not isinstance(rounding_seed, (int, np.integer)) \
                or not 0 <= int(rounding_seed) < 2**64:
            raise ValueError(f"rounding_seed must be an integer in [0, 2**64), got {rounding_seed!r}")
        self.rounding_seed = int(rounding_seed)
        self._rounding_step = 0  # stochastic rounding draws fresh bits at every step
        # Held by step(): the kernels run without the GIL, so two threads stepping one optimizer at once would
        # read the same step count and update the same buffers together; this way their steps take turns.
        # Re-entrant: an LBFGS closure may step another optimizer, or this one.
        self._step_lock = threading.RLock()
        self._has_16bit = False  # any float16/bfloat16 parameter (low-precision storage is on)
        self.defaults = dict(defaults)
        self.state: Dict[int, Dict[str, Any]] = {}
        self.param_groups: List[Dict[str, Any]] = []
        if isinstance(params, np.ndarray):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of arrays or dicts, "
                f"but got {_typename(params)}"
            )
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------------------------ groups

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        """Adds a group, as torch's ``add_param_group``; its parameters take the next indices. As torch, the
        dict itself becomes the group (completed with the defaults), and ``(name, array)`` pairs put the
        names in ``group["param_names"]``."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {_typename(param_group)}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry")
        # Checked on a copy; once it passes, the caller's dict itself becomes the group (completed in place),
        # as torch's (so `opt.param_groups[i] is group`), and a group that fails leaves it untouched.
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, np.ndarray):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but "
                "the ordering of tensors in sets will change between runs. Please use a list instead."
            )
        else:
            params = list(params)
        # Named parameters, as torch's: (name, array) pairs put the names in group["param_names"].
        names = [p[0] for p in params if isinstance(p, tuple) and len(p) == 2]
        if names:
            if len(names) != len(params):
                raise ValueError("all optimizer params should be with/without names. Some param names are missing")
            params = [p[1] for p in params]
            group["param_names"] = names
        for other in self.param_groups:
            if ("param_names" in group) != ("param_names" in other):
                raise ValueError(
                    "all optimizer param groups should be with/without names. cannot add param group "
                    + ("with names" if "param_names" in group else "without names") + " to the optimizer"
                )
        first = self._num_params()
        for k, p in enumerate(params):
            _check_param_array(p, f"parameter {first + k}", self._low_precision)
            self._has_16bit = self._has_16bit or _is_16bit(p.dtype)
            if self._state_dtype_arg is not None and p.dtype == np.float64:
                raise ValueError(f"parameter {first + k} is float64: state_dtype applies to float32, float16 and "
                                 "bfloat16 parameters")
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(
                    f"parameter group didn't specify a value of required optimization parameter {name}"
                )
            group.setdefault(name, default)
        group.update(self._forced)
        group["params"] = params
        self._hyper(group)  # validates the group's values
        existing = [p for g in self.param_groups for p in g["params"]]
        self._check_disjoint(existing, params)
        param_group.update(group)
        self.param_groups.append(param_group)

    @staticmethod
    def _check_disjoint(existing: List[np.ndarray], new: List[np.ndarray]) -> None:
        """No parameter may share memory with another: in-place updates would clobber each other."""
        n_old = len(existing)
        seen: Dict[int, int] = {id(p): i for i, p in enumerate(existing)}
        for k, p in enumerate(new):
            j = n_old + k
            if id(p) in seen:
                if seen[id(p)] < n_old:
                    raise ValueError("some parameters appear in more than one parameter group")
                raise ValueError(f"parameter {j} is the same array as parameter {seen[id(p)]} (duplicate parameter)")
            seen[id(p)] = j
        spans = sorted(
            (_byte_range(p) + (i,) for i, p in enumerate(existing + list(new)) if p.nbytes),
            key=lambda s: s[0],
        )
        # Sorted by start, any overlap shows up between neighbours.
        for (b0, e0, i), (b1, e1, j) in zip(spans, spans[1:]):
            if b1 < e0:
                i, j = min(i, j), max(i, j)
                raise ValueError(f"parameter {j} overlaps parameter {i} in memory; parameters must be disjoint")

    def _num_params(self) -> int:
        return sum(len(g["params"]) for g in self.param_groups)

    # ------------------------------------------------------------------------------ subclass hooks

    def _hyper(self, group: Dict[str, Any], stepping: bool = False) -> tuple:
        """Validates a group's hyperparameters and returns them as the kernel's tuple (``stepping``: called
        by ``step()``, where torch checks nothing and schedulers may have rounded lr below zero)."""
        raise NotImplementedError

    def _item(self, index: int, group_index: int, p: np.ndarray, g: np.ndarray, state: Dict[str, Any],
              added: Dict[str, np.ndarray], group: Dict[str, Any]) -> Tuple[tuple, Optional[float]]:
        """Returns the kernel item for one parameter and its new step count (None if it keeps none).
        ``state`` must not be modified: buffers it lacks go into ``added`` (see ``_buffer``)."""
        raise NotImplementedError

    _kernel: Callable[..., None]
    # Optional: the same step with the per-parameter bookkeeping (state lookup, lazy buffers, step counts)
    # done in C++ as well (cpp/bindings/driver.hpp); it must behave exactly as _item + _kernel.
    _drive: Optional[Callable[..., None]] = None

    @staticmethod
    def _state_shape(key: str, p: np.ndarray) -> Optional[tuple]:
        """The shape of state buffer ``key`` of parameter ``p`` (None: ``p`` has no such buffer)."""
        return p.shape

    # ---------------------------------------------------------------------------------------- step

    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()  # copy.copy / deepcopy: a copy gets a lock of its own
        state.pop("_step_lock", None)
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._step_lock = threading.RLock()

    def step(self, grads: Sequence[Optional[np.ndarray]]) -> None:
        """Updates every parameter in place from ``grads``, aligned with the parameters in group order.

        ``grads[i]`` is an array of exactly parameter i's dtype and shape (C-contiguous), or ``None``
        for "no gradient this step" (parameter and state untouched). Nothing is converted or copied:
        anything else raises, and a call that raises has modified nothing. Two threads stepping the same
        optimizer take turns.
        """
        lock = self._step_lock
        lock.acquire()  # not `serialized`: its extra frame costs a few % of a 16-element step
        try:
            self._step(grads)
        finally:
            lock.release()

    def _step(self, grads: Sequence[Optional[np.ndarray]]) -> None:
        if isinstance(grads, np.ndarray) or not isinstance(grads, (list, tuple)):
            raise TypeError(
                f"grads must be a list or tuple with one array (or None) per parameter, got {_typename(grads)}"
            )
        n = self._num_params()
        if len(grads) != n:
            raise ValueError(
                f"expected {n} gradients (one per parameter, in param-group order), got {len(grads)}"
            )
        drive = type(self)._drive
        wrap = self._uses_low_precision()
        if drive is not None and type(self.state) is dict and all(type(g["params"]) is list for g in self.param_groups):
            hypers = [self._hyper(group, stepping=True) for group in self.param_groups]
            # With low-precision storage on, the driver also does _wrap_param's part.
            low_precision = (self._state_dtype_arg, self.master_weights,
                             self.rounding_seed if self.stochastic_rounding else None, self._rounding_step + 1) if wrap else None
            drive([g["params"] for g in self.param_groups], self.state, grads, hypers, _step_value, low_precision)
            if self.stochastic_rounding:
                self._rounding_step += 1  # only once the step has happened
            self._opt_called = True
            return
        hypers = []
        items = []
        updates = []  # applied only once the kernel has run: (index, state, new buffers, new step)
        index = 0
        for gi, group in enumerate(self.param_groups):
            hypers.append(self._hyper(group, stepping=True))
            for p in group["params"]:
                g = grads[index]
                if g is not None:
                    if not isinstance(p, np.ndarray):
                        raise TypeError(f"parameter {index} must be a numpy.ndarray, got {_typename(p)}")
                    state = self.state.get(index)
                    if not isinstance(state, dict):
                        if state is not None:
                            raise TypeError(f"state of parameter {index} must be a dict, got {_typename(state)}")
                        state = {}
                    added: Dict[str, np.ndarray] = {}
                    item, step = self._item(index, gi, p, g, state, added, group)
                    if wrap:
                        item = self._wrap_param(item, index, p, state, added)
                    items.append(item)
                    updates.append((index, state, added, step))
                index += 1
        if items:
            type(self)._kernel(items, hypers)
        if self.stochastic_rounding:
            self._rounding_step += 1  # only once the step has happened
        self._opt_called = True  # lets schedulers warn when stepped before the optimizer, as torch
        for index, state, added, step in updates:
            if step is not None:  # first: torch's key order in a new entry is `step`, then the buffers
                _set_step(state, step)
            state.update(added)
            if state:  # SGD without momentum keeps no state, as torch
                self.state[index] = state

    def _buffer(self, state: Dict[str, Any], added: Dict[str, np.ndarray], key: str, p: np.ndarray) -> np.ndarray:
        """The state buffer ``key``; when missing, zeros like ``p`` (in the state dtype) go into ``added``
        (lazy init, as torch), which joins the state only if the step succeeds."""
        buf = state.get(key)
        if buf is None:
            buf = added[key] = np.zeros(p.shape, dtype=self._state_dtype_of(p))
        return buf

    # ------------------------------------------------------------------------- low precision

    def _state_dtype_of(self, p: np.ndarray) -> np.dtype:
        """The dtype of p's state buffers: ``state_dtype`` when given, else p's (torch's rule)."""
        return p.dtype if self._state_dtype_arg is None or p.dtype == np.float64 else self._state_dtype_arg

    def _uses_low_precision(self) -> bool:
        return (self._state_dtype_arg is not None or self.master_weights or self.stochastic_rounding
                or self._has_16bit)

    def _wrap_param(self, item: tuple, index: int, p: np.ndarray, state: Dict[str, Any],
                    added: Dict[str, np.ndarray]) -> tuple:
        """Puts (param, master | None, rounding key, state dtype) in the item's parameter slot (binding.hpp's
        Validator)."""
        master = None
        if self.master_weights and isinstance(p, np.ndarray) and _is_16bit(p.dtype):
            master = state.get("master_param")
            if master is None:  # the float32 copy starts from the parameter's value
                master = added["master_param"] = p.astype(np.float32)
        key = _core.rounding_key(self.rounding_seed, self._rounding_step + 1, index) if self.stochastic_rounding else 0
        state_dtype = self._state_dtype_of(p).name if isinstance(p, np.ndarray) else None
        return item[:2] + ((item[2], master, key, state_dtype),) + item[3:]

    @staticmethod
    def _next_step(state: Dict[str, Any], index: int) -> float:
        # torch keeps `step` as a float32 tensor (so it stops counting at 2**24); so do we.
        return float(np.float32(_step_value(state.get("step", 0.0), index) + 1.0))

    # ---------------------------------------------------------------------------------- state dict

    def state_dict(self) -> Dict[str, Any]:
        """A snapshot in torch's layout: ``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``.

        Arrays are copies (torch returns references), so the snapshot stays valid as training goes on.
        """
        groups = []
        start = 0
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = list(range(start, start + len(group["params"])))
            start += len(group["params"])
            groups.append(packed)
        state = {
            index: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in entry.items()}
            for index, entry in sorted(self.state.items())
        }
        out: Dict[str, Any] = {"state": state, "param_groups": groups}
        if self.stochastic_rounding:  # where the random bits resume (torch ignores extra keys)
            out["rounding"] = {"seed": self.rounding_seed, "step": self._rounding_step}
        return out

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Loads a state dict from ``state_dict()`` or from torch (tensors converted with ``.numpy()``).

        Everything is checked first (group counts and sizes, hyperparameters, state keys, shapes), then
        installed at once; arrays are copied into the parameters' dtype.
        """
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict or "state" not in state_dict:
            raise ValueError("state_dict must be a dict with 'state' and 'param_groups' entries")
        saved_groups = state_dict["param_groups"]
        saved_state = state_dict["state"]
        if not isinstance(saved_groups, (list, tuple)) or not isinstance(saved_state, dict):
            raise ValueError("state_dict['param_groups'] must be a list and state_dict['state'] a dict")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        for saved, group in zip(saved_groups, self.param_groups):
            if not isinstance(saved, dict) or not isinstance(saved.get("params"), (list, tuple)):
                raise ValueError("each saved param group must be a dict with a 'params' list")
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    "loaded state dict contains a parameter group that doesn't match the size of optimizer's group"
                )
        # Saved indices map onto ours in order, as torch's id_map does.
        id_map = {}
        params: List[np.ndarray] = []
        for saved, group in zip(saved_groups, self.param_groups):
            for saved_id, p in zip(saved["params"], group["params"]):
                id_map[_as_index(saved_id)] = len(params)
                params.append(p)
        new_groups = []
        for saved, group in zip(saved_groups, self.param_groups):
            # The saved hyperparameters as they are (a list stays a list, as torch), in the saved order
            new = {k: (group["params"] if k == "params" else copy.deepcopy(v)) for k, v in saved.items()}
            if "param_names" in group and "param_names" not in saved:  # torch keeps the current names
                new["param_names"] = group["param_names"]
            for k, v in self.defaults.items():
                if k == "differentiable" and k not in group:
                    continue  # only in defaults since a load (see below): torch leaves loaded groups alone
                new.setdefault(k, v)
            new.update(self._forced)
            # What step() takes (torch checks nothing here): a schedule may have left lr a hair below 0
            # (LinearLR with end_factor=0) or betas[0] past 1 (OneCycleLR), and such a state dict must load.
            self._hyper(new, stepping=True)
            new_groups.append(new)
        new_state: Dict[int, Dict[str, Any]] = {}
        for key, entry in saved_state.items():
            saved_id = _as_index(key)
            if saved_id not in id_map:
                continue  # as torch: state of parameters not in the groups is dropped
            index = id_map[saved_id]
            new_state[index] = self._load_entry(entry, params[index], index)
        rounding_step = self._rounding_step
        rounding = state_dict.get("rounding")
        if self.stochastic_rounding and rounding is not None:
            if not isinstance(rounding, dict) or not isinstance(rounding.get("step"), (int, np.integer)) \
                    or isinstance(rounding.get("step"), (bool, np.bool_)) or not 0 <= int(rounding["step"]) < 2**63:
                raise ValueError("state_dict['rounding'] must be a dict with an integer 'step' in [0, 2**63)")
            rounding_step = int(rounding["step"])
        self.param_groups = new_groups
        self.state = new_state
        self._rounding_step = rounding_step
        if "differentiable" not in self.defaults:  # torch's load (its __setstate__) adds it for later groups
            self.defaults = {**self.defaults, "differentiable": False}

    def _load_entry(self, entry: Any, p: np.ndarray, index: int) -> Dict[str, Any]:
        if not isinstance(entry, dict):
            raise ValueError(f"state of parameter {index} must be a dict, got {_typename(entry)}")
        out: Dict[str, Any] = {}
        for key, value in entry.items():
            if key == "step":
                out["step"] = _float32_state(_step_value(value, index), f"state 'step' of parameter {index}")
            elif key in self._state_keys or (key == "master_param" and self.master_weights and _is_16bit(p.dtype)):
                if value is None:
                    continue  # e.g. an SGD momentum_buffer not yet created
                arr = np.asarray(value)
                if arr.dtype.kind not in "fiu" and not _is_16bit(arr.dtype):
                    raise TypeError(f"state '{key}' of parameter {index} has dtype {arr.dtype}, expected a real array")
                want = self._state_shape(key, p)
                if want is None:
                    raise ValueError(f"state '{key}' of parameter {index} does not apply to a parameter of shape {p.shape}")
                if arr.shape != want:
                    expected = "but" if want == p.shape else f"expected {want}:"
                    raise ValueError(
                        f"state '{key}' of parameter {index} has shape {arr.shape}, {expected} the parameter has shape {p.shape}"
                    )
                dtype = np.float32 if key == "master_param" else self._state_dtype_of(p)
                out[key] = np.array(arr, dtype=dtype, order="C", copy=True)
            else:
                raise ValueError(f"unknown state '{key}' for parameter {index} of {type(self).__name__}")
        return out

    # ----------------------------------------------------------------------------------- niceties

    def zero_grad(self, set_to_none: bool = True) -> None:
        """No-op kept for drop-in use: gradients are passed to ``step`` explicitly."""

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            if i:
                lines.append("")  # torch puts a blank line between groups
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _as_index(key: Any) -> int:
    if isinstance(key, (bool, np.bool_)):
        raise ValueError(f"state dict parameter ids must be integers, got {key!r}")
    if isinstance(key, (int, np.integer)):
        return int(key)
    if isinstance(key, str) and key.isdigit():  # JSON turns int keys into strings
        return int(key)
    raise ValueError(f"state dict parameter ids must be integers, got {key!r}")


def _set_step(state: Dict[str, Any], step: float) -> None:
    """Writes the step count in place when it is our 0-d float32 array (torch updates its tensor in place);
    an array that does not own its memory may be a view of a parameter or buffer, so it is replaced instead."""
    current = state.get("step")
    if (type(current) is np.ndarray and current.shape == () and current.dtype == np.float32 and current.flags.writeable
            and current.flags.owndata):
        current[()] = step
    else:
        state["step"] = np.array(step, dtype=np.float32)


def _step_value(value: Any, index: int) -> float:
    """A state 'step' (number or 0-d array) as a float, checked finite and >= 0."""
    if type(value) is np.ndarray and value.shape == () and value.dtype.kind in "fiu":
        step = float(value)
        if step >= 0 and step != math.inf:
            return step
    where = f"state 'step' of parameter {index}"
    if isinstance(value, str):
        raise TypeError(f"{where} must be a number, got str")
    step = _real(_scalar(value, where), where)
    if not (np.isfinite(step) and step >= 0):
        raise ValueError(f"{where} must be finite and >= 0, got {step}")
    return step


def _float32_state(value: float, where: str) -> np.ndarray:
    """A loaded scalar state as torch keeps it, a 0-d float32 array; one past float32's range would be inf,
    which every later step would reject, so the load does."""
    with np.errstate(over="ignore"):
        arr = np.array(value, dtype=np.float32)
    if not np.isfinite(arr):
        raise ValueError(f"{where} is out of float32's range, got {value}")
    return arr


def _scalar(value: Any, where: str) -> Any:
    if isinstance(value, np.ndarray) or hasattr(value, "__array__"):
        arr = np.asarray(value)
        if arr.size != 1:
            raise ValueError(f"{where} must be a scalar, got shape {arr.shape}")
        return arr.reshape(()).item()
    return value
