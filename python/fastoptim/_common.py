"""Argument checks shared by the optimizers, with torch's messages."""

from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator

from .optimizer import _flag, _real


def check_unsupported(group: Dict[str, Any]) -> None:
    """torch's `foreach`/`fused` choose an implementation: we always run one fused kernel, so any value is
    accepted. `capturable`/`differentiable` need autograd or CUDA graphs, which numpy arrays do not have."""
    for key in ("foreach", "fused"):
        value = group.get(key)
        if value is not None:
            _flag(value, key)
    for key in ("capturable", "differentiable"):
        if key in group and _flag(group[key], key):
            raise ValueError(f"{key}=True is not supported: fastoptim updates numpy arrays on the CPU")


def check_fused_foreach(fused: Any, foreach: Any) -> None:
    """torch's SGD, Adam, AdamW and Adagrad refuse both implementations at once (after the groups' checks)."""
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


def nonneg(group: Dict[str, Any], key: str, label: str) -> float:
    value = _real(group[key], key)
    if not 0.0 <= value:
        raise ValueError(f"Invalid {label}: {group[key]}")
    return value


def learning_rate(group: Dict[str, Any], stepping: bool) -> float:
    """``lr >= 0`` at construction and in new groups, where torch checks it. At ``step()`` and in loaded
    groups any real lr but NaN is taken, as torch does: a scheduler may round it a hair below zero (LinearLR
    with end_factor=0 ends at -1.9e-18 for lr=0.1, total_iters=4, start_factor=1/3)."""
    if stepping:
        lr = _real(group["lr"], "lr")
        if lr != lr:
            raise ValueError(f"Invalid learning rate: {group['lr']}")
        return lr
    return nonneg(group, "lr", "learning rate")


# The C++ cores throw std::domain_error (a ValueError here) with Python's message where torch's arithmetic
# (its Python-number code: schedulers, LBFGS's line search) raises ZeroDivisionError.
_ZERO_DIVISION_MESSAGES = frozenset({
    "float division by zero", "division by zero", "integer modulo by zero",
    "0.0 cannot be raised to a negative power",
})


@contextlib.contextmanager
def zero_division() -> Iterator[None]:
    """Turns the C++ cores' division-by-zero errors into ZeroDivisionError, as torch raises."""
    try:
        yield
    except ValueError as e:
        if str(e) in _ZERO_DIVISION_MESSAGES:
            raise ZeroDivisionError(str(e)) from None
        raise
