"""fastoptim.Muon, as torch.optim.Muon."""

from __future__ import annotations

import numbers
from typing import Any, Dict, Iterable, Optional, Tuple

import numpy as np

from . import _core
from .optimizer import Optimizer, _flag, _real, _typename

__all__ = ["Muon"]

# Keller Jordan's constants, as torch's defaults (https://kellerjordan.github.io/posts/muon/).
EPS = 1e-7
DEFAULT_A = 3.4445
DEFAULT_B = -4.7750
DEFAULT_C = 2.0315
DEFAULT_NS_STEPS = 5


class Muon(Optimizer):
    r"""Muon (Jordan et al., 2024), as ``torch.optim.Muon`` (torch 2.13): momentum, then Newton-Schulz
    orthogonalization of each 2-D parameter's update::

        buf = lerp(buf, grad, 1 - momentum)
        u = lerp(grad, buf, momentum) if nesterov else buf
        O = NS(u)                               # ns_steps quintic iterations with ns_coefficients (a, b, c)
        p = p * (1 - lr * weight_decay)
        p = p - adjusted_lr * O

    ``adjusted_lr`` is ``lr * sqrt(max(1, rows / cols))`` (``adjust_lr_fn=None`` or ``"original"``) or
    ``lr * 0.2 * sqrt(max(rows, cols))`` (``"match_rms_adamw"``, Liu et al. 2025, "Muon is Scalable for LLM
    Training", so AdamW's lr and weight decay carry over).

    As torch's, NS runs in bfloat16 whatever the parameters' dtype: matrix products multiply exactly and
    accumulate in float (sequentially over the inner dimension here, in oneDNN's order in torch), each
    result rounded to bfloat16. The update is therefore a bfloat16 matrix for float64 parameters too, and
    differs from torch's where the two accumulation orders round a float sum to different bfloat16
    neighbours (tests/test_muon.py measures it against torch's own spread between its oneDNN and ATen
    products). Results depend neither on the thread count nor on the CPU's instruction set.

    Muon is meant for the 2-D weights of hidden layers; optimize biases, embeddings and other parameters
    with e.g. AdamW. State per parameter: ``momentum_buffer``.

    Example (a 2-D parameter; the momentum is orthogonalized before the step)::

        >>> import numpy as np, fastoptim
        >>> w = np.array([[1.0, 2.0], [3.0, 4.0]])
        >>> opt = fastoptim.Muon([w], lr=0.1)
        >>> opt.step([np.eye(2)])
        >>> w
        array([[0.8775, 1.98  ],
               [2.97  , 3.8475]])
    """

    _state_keys = ("momentum_buffer",)
    _kernel = staticmethod(_core.muon_step)

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: Tuple[float, float, float] = (DEFAULT_A, DEFAULT_B, DEFAULT_C),
        eps: float = EPS,
        ns_steps: int = DEFAULT_NS_STEPS,
        adjust_lr_fn: Optional[str] = None,
    ) -> None:
        defaults = dict(
            lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
            ns_coefficients=ns_coefficients, eps=eps, ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn,
        )
        self._hyper(defaults)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        params = param_group.get("params") if isinstance(param_group, dict) else None
        for p in [params] if isinstance(params, np.ndarray) else (params if isinstance(params, (list, tuple)) else []):
            if isinstance(p, np.ndarray) and p.ndim != 2:
                raise ValueError(
                    f"Muon only supports 2D parameters whereas we found a parameter with size: {p.shape}"
                )
        super().add_param_group(param_group)

    def _hyper(self, group: Dict[str, Any], stepping: bool = False) -> tuple:
        lr = _real(group["lr"], "lr")
        if stepping:
            if lr != lr:
                raise ValueError(f"Learning rate should be >= 0 but is: {group['lr']}")
        elif not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {group['lr']}")
        momentum = _real(group["momentum"], "momentum")
        if not 0.0 <= momentum:
            raise ValueError(f"momentum should be >= 0 but is: {group['momentum']}")
        weight_decay = _real(group["weight_decay"], "weight_decay")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight decay should be >= 0 but is: {group['weight_decay']}")
        adjust_lr_fn = group["adjust_lr_fn"]
        if adjust_lr_fn is not None and adjust_lr_fn not in ("original", "match_rms_adamw"):
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        nesterov = _flag(group["nesterov"], "nesterov")
        coefficients = group["ns_coefficients"]
        if not isinstance(coefficients, (tuple, list)):
            raise TypeError(f"ns_coefficients must be a tuple of 3 floats, got {_typename(coefficients)}")
        if len(coefficients) != 3:
            raise ValueError("Coefficients must be a tuple of exactly 3 values")
        a, b, c = (_real(x, "ns_coefficients") for x in coefficients)
        eps = _real(group["eps"], "eps")
        ns_steps = group["ns_steps"]
        if isinstance(ns_steps, (bool, np.bool_)) or not isinstance(ns_steps, (numbers.Integral, np.integer)):
            raise TypeError(f"ns_steps must be an integer, got {_typename(ns_steps)}")
        if int(ns_steps) >= 100:
            raise ValueError("Number of steps must be less than 100 for computational efficiency")
        return (lr, weight_decay, momentum, nesterov, a, b, c, eps, int(ns_steps), adjust_lr_fn == "match_rms_adamw")

    def _item(self, index, group_index, p, g, state, added, group):
        if p.ndim == 2 and p.shape[1] == 0 and group["adjust_lr_fn"] in (None, "original"):
            raise ZeroDivisionError("division by zero")  # torch's _adjust_lr: rows / cols
        buf = self._buffer(state, added, "momentum_buffer", p)
        return (index, group_index, p, g, buf), None
