"""The betas check shared by the optimizers beyond torch.optim, with torch's messages."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from .optimizer import _real


def check_betas(group: Dict[str, Any], count: int, *, closed: bool = False,
                positive_first: bool = False) -> Tuple[float, ...]:
    """``group["betas"]`` as ``count`` floats, each in [0, 1) ([0, 1] with ``closed``; the first > 0 with
    ``positive_first``), or a TypeError/ValueError naming the bad one."""
    betas = group["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != count:
        words = {2: "a pair", 3: "a triple"}[count]
        raise TypeError(f"betas must be {words} of floats, got {betas!r}")
    out = []
    for k, value in enumerate(betas):
        beta = _real(value, f"betas[{k}]")
        low_ok = beta > 0.0 if (positive_first and k == 0) else beta >= 0.0
        high_ok = beta <= 1.0 if closed else beta < 1.0
        if not (low_ok and high_ok):
            raise ValueError(f"Invalid beta parameter at index {k}: {value}")
        out.append(beta)
    return tuple(out)
