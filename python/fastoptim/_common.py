"""Argument checks shared by the optimizers, with torch's messages."""

from __future__ import annotations

from typing import Any, Dict

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


def nonneg(group: Dict[str, Any], key: str, label: str) -> float:
    value = _real(group[key], key)
    if not 0.0 <= value:
        raise ValueError(f"Invalid {label}: {group[key]}")
    return value


def learning_rate(group: Dict[str, Any], stepping: bool) -> float:
    """``lr >= 0`` where torch checks it (construction, new and loaded groups). At ``step()`` any real lr is
    taken, as torch does: a scheduler may round it a hair below zero (LinearLR with end_factor=0)."""
    if stepping:
        lr = _real(group["lr"], "lr")
        if lr != lr:
            raise ValueError(f"Invalid learning rate: {group['lr']}")
        return lr
    return nonneg(group, "lr", "learning rate")
