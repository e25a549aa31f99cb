"""fastoptim.LBFGS, as torch.optim.LBFGS."""

from __future__ import annotations

import collections.abc
import numbers
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from . import _core
from ._common import learning_rate
from .optimizer import Optimizer, _real, _typename, serialized

__all__ = ["LBFGS"]

_SCALAR_KEYS = ("func_evals", "n_iter", "prev_loss")
_STATE_KEYS = ("func_evals", "n_iter", "d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad",
               "prev_loss", "al")


_COUNT_MAX = 2**53  # counts and limits (as the C++ library): sums of them stay within an int64, and exact as doubles


def _integer(group: Dict[str, Any], key: str) -> int:
    value = group[key]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{key} must be an integer, got {_typename(value)}")
    value = int(value)
    if value < 1:
        raise ValueError(f"Invalid {key} value: {value}")
    if value > _COUNT_MAX:  # the step counts in int64
        raise ValueError(f"Invalid {key} value: {value} (at most 2**53)")
    return value


class LBFGS(Optimizer):
    r"""L-BFGS (Liu & Nocedal, 1989), as ``torch.optim.LBFGS`` (torch 2.13), heavily inspired by minFunc.

    All parameters are treated as one flat vector; there is a single parameter group. ``step(closure)``
    runs up to ``max_iter`` iterations and ``max_eval`` closure calls, with a fixed step ``lr`` or, with
    ``line_search_fn="strong_wolfe"``, torch's strong-Wolfe line search (c1 = 1e-4, c2 = 0.9)::

        def closure():
            loss, grads = loss_and_grads(params)   # grads: one array (or None) per parameter
            return loss, grads
        opt.step(closure)                          # returns the first call's loss

    Where torch's closure calls ``backward()``, ours returns the gradients, a list aligned with the
    parameters like ``step(grads)`` of the other optimizers (each exactly the parameter's dtype and shape,
    or ``None`` for zero). The arithmetic follows torch's, rounding to the parameters' dtype where torch
    holds a 0-d tensor and in double where it holds a Python float; dot products and sums are computed
    deterministically in double, which is where we differ from torch (by about one rounding each).

    State, kept for parameter 0 as torch does: ``func_evals``, ``n_iter``, ``d``, ``t``, ``old_dirs``,
    ``old_stps``, ``ro``, ``H_diag``, ``prev_flat_grad``, ``prev_loss``, ``al``, in torch's layout (vectors
    as 1-d arrays, 0-d tensors as 0-d arrays). It lives in C++: ``opt.state`` gives copies, as
    ``state_dict()`` does, and ``load_state_dict`` installs one.

    Unlike torch's: every parameter must have the same dtype; ``max_iter``, ``max_eval`` and
    ``history_size`` must be integers >= 1 and ``line_search_fn`` is checked when the optimizer is made;
    a step that raises (its closure, or torch's ZeroDivisionError in the line search at lr=0) leaves the
    parameters and the state as they were; and a ``history_size`` lowered between steps trims the history to
    the new size (torch's keeps the longer history, or fails with an IndexError).

    Example (the closure returns the loss and the gradients; strong Wolfe line search)::

        >>> import numpy as np, fastoptim
        >>> x = np.array([1.5, -0.5])
        >>> opt = fastoptim.LBFGS([x], lr=1, line_search_fn="strong_wolfe")
        >>> def closure():
        ...     return float(((x - 3.0) ** 2).sum()), [2 * (x - 3.0)]
        >>> opt.step(closure)          # the loss at the start of the step
        14.5
        >>> x
        array([3., 3.])
    """

    _load_replaces = Optimizer._load_replaces + ("_holder",)

    def __init__(
        self,
        params: Iterable,
        lr: float = 1,
        max_iter: int = 20,
        max_eval: Optional[int] = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: Optional[str] = None,
    ) -> None:
        if max_eval is None:
            max_eval = _integer({"max_iter": max_iter}, "max_iter") * 5 // 4
        defaults = dict(
            lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change, history_size=history_size, line_search_fn=line_search_fn,
        )
        self._hyper(defaults)
        super().__init__(params, defaults)
        params = self.param_groups[0]["params"]
        dtypes = {p.dtype for p in params}
        if len(dtypes) != 1:
            raise TypeError(f"LBFGS needs every parameter in one dtype, got {sorted(map(str, dtypes))}")
        if sum(p.size for p in params) == 0:
            raise ValueError("LBFGS needs at least one parameter element")
        self._dtype = params[0].dtype  # type: ignore[index]
        self._holder = self._new_holder()
        self.state = _StateView(self)  # type: ignore[assignment]  # a read-mostly view of the C++ state

    def _new_holder(self):
        return _core.LBFGSState_float32() if self._dtype == np.float32 else _core.LBFGSState_float64()

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        if self.param_groups:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        super().add_param_group(param_group)

    def _hyper(self, group: Dict[str, Any], stepping: bool = False) -> tuple:
        lr = learning_rate(group, stepping)
        max_iter = _integer(group, "max_iter")
        max_eval = _integer(group, "max_eval")
        tolerance_grad = _real(group["tolerance_grad"], "tolerance_grad")
        tolerance_change = _real(group["tolerance_change"], "tolerance_change")
        history_size = _integer(group, "history_size")
        line_search_fn = group["line_search_fn"]
        if line_search_fn is not None and line_search_fn != "strong_wolfe":
            raise RuntimeError("only 'strong_wolfe' is supported")
        return (lr, max_iter, max_eval, tolerance_grad, tolerance_change, history_size, line_search_fn is not None)

    @serialized
    def step(self, closure: Callable[[], Tuple[Any, Sequence[Optional[np.ndarray]]]]) -> Any:  # type: ignore[override]
        """One LBFGS step (up to ``max_iter`` iterations); returns the loss of the first closure call, as
        the closure returned it."""
        if not callable(closure):
            raise TypeError(f"LBFGS.step needs a closure returning (loss, grads), got {_typename(closure)}")
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        group = self.param_groups[0]
        hyper = self._hyper(group, stepping=True)
        first: List[Any] = []
        closure_failed: List[bool] = []  # a closure's own exception passes through as it is

        def evaluate() -> Tuple[float, Sequence[Optional[np.ndarray]]]:
            try:
                out = closure()
            except BaseException:
                closure_failed.append(True)
                raise
            if not isinstance(out, tuple) or len(out) != 2:
                raise TypeError(
                    "the closure must return a (loss, grads) tuple, with grads one array (or None) per parameter; "
                    f"got {_typename(out)}"
                )
            loss, grads = out
            if not first:
                first.append(loss)
            return float(loss), grads

        try:
            _core.lbfgs_step(list(group["params"]), self._holder, hyper, evaluate)
        except ValueError as e:
            # The line search's Python-number arithmetic divided by zero (lr=0): torch's ZeroDivisionError.
            if not closure_failed and str(e) == "float division by zero":
                raise ZeroDivisionError(str(e)) from None
            raise
        self._opt_called = True
        return first[0]

    # ---------------------------------------------------------------------------------- state dict

    def _state_shape(self, key: str, p: np.ndarray) -> Optional[tuple]:  # type: ignore[override]
        """The shape of state ``key`` (of a list's elements for ``old_dirs``, ``old_stps``, ``ro``, ``al``):
        the flat vector of all parameters, or 0-d (fastoptim.load checks files against it)."""
        n = sum(q.size for q in self.param_groups[0]["params"])
        return {"d": (n,), "prev_flat_grad": (n,), "old_dirs": (n,), "old_stps": (n,)}.get(
            key, () if key in ("t", "H_diag", "ro", "al") else None)

    def _state_entry(self) -> Dict[str, Any]:
        return _core.lbfgs_state_get(self._holder)

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Loads a state dict from ``state_dict()`` or torch's (tensors converted with ``.numpy()``): the
        state is checked against the parameters before anything is installed."""
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("state_dict must be a dict with 'state' and 'param_groups' entries")
        saved_state = state_dict["state"]
        if not isinstance(saved_state, dict):
            raise ValueError("state_dict['param_groups'] must be a list and state_dict['state'] a dict")
        entries = list(saved_state.items())
        if len(entries) > 1:
            raise ValueError(f"LBFGS keeps its state on one parameter; the state dict has {len(entries)} entries")
        holder = self._new_holder()
        if entries:
            entry = entries[0][1]
            n = sum(p.size for p in self.param_groups[0]["params"])
            _core.lbfgs_state_set(holder, _normalise_entry(entry, self._dtype), n)
        # The groups: the base class checks and installs them (with an empty state, replaced below).
        super().load_state_dict({"state": {}, "param_groups": state_dict["param_groups"]})
        self._holder = holder
        self.state = _StateView(self)  # type: ignore[assignment]  # a read-mostly view of the C++ state


class _StateView(collections.abc.Mapping):
    """``opt.state``: ``{0: entry}`` once LBFGS has stepped, each access a fresh copy from the C++ state."""

    def __init__(self, opt: LBFGS) -> None:
        self._opt = opt

    def _entry(self) -> Optional[Dict[str, Any]]:
        entry = self._opt._state_entry()
        return entry if entry["func_evals"] > 0 or entry["n_iter"] > 0 else None

    def __getitem__(self, key: Any) -> Dict[str, Any]:
        entry = self._entry()
        if key != 0 or entry is None:
            raise KeyError(key)
        return entry

    def __iter__(self) -> Iterator[int]:
        return iter([0] if self._entry() is not None else [])

    def __len__(self) -> int:
        return 0 if self._entry() is None else 1

    def __repr__(self) -> str:
        return repr(dict(self))


def _normalise_entry(entry: Any, dtype: np.dtype) -> Dict[str, Any]:
    """A saved LBFGS state entry (ours or torch's) as lbfgs_state_set takes it, with clear errors."""
    if not isinstance(entry, dict):
        raise ValueError(f"state of parameter 0 must be a dict, got {_typename(entry)}")
    unknown = set(entry) - set(_STATE_KEYS)
    if unknown:
        raise ValueError(f"unknown state {sorted(unknown)} for LBFGS")

    def count(key: str) -> int:
        value = entry.get(key, 0)
        if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind in "iu":
            value = int(value)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)) \
                or not 0 <= int(value) <= _COUNT_MAX:
            raise ValueError(f"state '{key}' must be an integer in [0, 2**53], got {value!r}")
        return int(value)

    def vector(value: Any, key: str) -> np.ndarray:
        arr = np.asarray(value)
        if arr.dtype.kind not in "fiu" or arr.ndim != 1:
            raise ValueError(f"state '{key}' must be a 1-d real array, got {arr.dtype} of shape {arr.shape}")
        return np.ascontiguousarray(arr, dtype=dtype)

    def scalar(value: Any, key: str) -> Tuple[float, bool]:
        # a Python number stays one; a 0-d array is torch's 0-d tensor, rounded to the parameters' dtype
        if isinstance(value, np.ndarray) or hasattr(value, "__array__"):
            arr = np.asarray(value)
            if arr.shape != () or arr.dtype.kind not in "fiu":
                raise ValueError(f"state '{key}' must be a number or a 0-d array, got shape {arr.shape}")
            return float(arr.astype(dtype)), True
        return _real(value, f"state '{key}'"), False

    def listed(key: str) -> list:
        value = entry[key]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"state '{key}' must be a list, got {_typename(value)}")
        return list(value)

    out: Dict[str, Any] = {"func_evals": count("func_evals"), "n_iter": count("n_iter")}
    if entry.get("al") is not None:
        out["al"] = [None if a is None else scalar(a, "al")[0] for a in listed("al")]
    if entry.get("d") is not None:
        missing = [k for k in _STATE_KEYS if k not in ("al",) and entry.get(k) is None]
        if missing:
            raise ValueError(f"LBFGS state has 'd' but lacks {missing}")
        out["d"] = vector(entry["d"], "d")
        out["t"] = scalar(entry["t"], "t")
        out["old_dirs"] = [vector(v, "old_dirs") for v in listed("old_dirs")]
        out["old_stps"] = [vector(v, "old_stps") for v in listed("old_stps")]
        out["ro"] = [scalar(v, "ro")[0] for v in listed("ro")]
        out["H_diag"] = scalar(entry["H_diag"], "H_diag")
        out["prev_flat_grad"] = vector(entry["prev_flat_grad"], "prev_flat_grad")
        out["prev_loss"] = _real(entry["prev_loss"], "state 'prev_loss'")
    elif out["n_iter"] > 0:
        raise ValueError("LBFGS state has n_iter > 0 but no 'd'")
    return out
