"""Functional updates for users who keep their own state: one call updates one parameter in place.

Each function validates like the optimizer classes (dtype, shape, contiguity, writeability, overlap,
hyperparameters) before writing anything, runs the same C++ kernel, and releases the GIL. ``step`` is the
1-based number of the update being made (``t`` in the formulas), i.e. the value the class would store
after this step.

    >>> import numpy as np
    >>> from fastoptim import functional as F
    >>> p, g = np.ones(3), np.full(3, 0.5)
    >>> m, v = np.zeros(3), np.zeros(3)
    >>> F.adam_(p, g, m, v, step=1, lr=0.1)
    >>> p
    array([0.9, 0.9, 0.9])
"""

from __future__ import annotations

import math
import numbers
from typing import Optional, Tuple

import numpy as np

from . import _core
from .optimizer import _flag
from .adam import Adam
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["sgd_", "adam_", "adamw_", "rmsprop_"]


def _step_number(step) -> float:
    if isinstance(step, (bool, np.bool_, str, bytes)) or not isinstance(step, (numbers.Real, np.integer, np.floating)):
        raise TypeError(f"step must be a positive integer (the 1-based number of this update), got {step!r}")
    try:
        s = float(step)
    except OverflowError:  # an int past float's range
        s = math.inf
    if not (s >= 1 and s != math.inf and s == int(s)):
        raise ValueError(f"step must be a positive integer (the 1-based number of this update), got {step!r}")
    return s


def sgd_(param: np.ndarray, grad: np.ndarray, momentum_buffer: Optional[np.ndarray] = None, *, lr: float = 1e-3,
         momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
         maximize: bool = False, first_step: bool = False) -> None:
    """One SGD update (see :class:`fastoptim.SGD`). With ``momentum != 0`` a ``momentum_buffer`` is required;
    ``first_step=True`` initialises it from the gradient, as torch does on the first step."""
    group = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                 maximize=maximize)
    hyper = SGD._hyper(None, group)  # type: ignore[arg-type]
    if momentum != 0 and momentum_buffer is None:
        raise ValueError("momentum != 0 needs a momentum_buffer")
    _core.sgd_step([(0, 0, param, grad, momentum_buffer, _flag(first_step, "first_step"))], [hyper])


def adam_(param: np.ndarray, grad: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray, step: int, *,
          lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
          amsgrad: bool = False, max_exp_avg_sq: Optional[np.ndarray] = None, maximize: bool = False,
          decoupled_weight_decay: bool = False) -> None:
    """One Adam update (see :class:`fastoptim.Adam`); ``max_exp_avg_sq`` is required with ``amsgrad``."""
    group = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                 decoupled_weight_decay=decoupled_weight_decay)
    hyper = Adam._hyper(None, group)  # type: ignore[arg-type]
    if amsgrad and max_exp_avg_sq is None:
        raise ValueError("amsgrad=True needs max_exp_avg_sq")
    _core.adam_step([(0, 0, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, _step_number(step))], [hyper])


def adamw_(param: np.ndarray, grad: np.ndarray, exp_avg: np.ndarray, exp_avg_sq: np.ndarray, step: int, *,
           lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
           weight_decay: float = 1e-2, amsgrad: bool = False, max_exp_avg_sq: Optional[np.ndarray] = None,
           maximize: bool = False) -> None:
    """One AdamW update: Adam with decoupled weight decay (default 1e-2)."""
    adam_(param, grad, exp_avg, exp_avg_sq, step, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
          amsgrad=amsgrad, max_exp_avg_sq=max_exp_avg_sq, maximize=maximize, decoupled_weight_decay=True)


def rmsprop_(param: np.ndarray, grad: np.ndarray, square_avg: np.ndarray, *, lr: float = 1e-2, alpha: float = 0.99,
             eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
             grad_avg: Optional[np.ndarray] = None, momentum_buffer: Optional[np.ndarray] = None,
             maximize: bool = False) -> None:
    """One RMSprop update (see :class:`fastoptim.RMSprop`); ``grad_avg`` is required when centered and
    ``momentum_buffer`` when momentum > 0."""
    group = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered,
                 maximize=maximize)
    hyper = RMSprop._hyper(None, group)  # type: ignore[arg-type]
    if centered and grad_avg is None:
        raise ValueError("centered=True needs grad_avg")
    if momentum > 0 and momentum_buffer is None:
        raise ValueError("momentum > 0 needs momentum_buffer")
    _core.rmsprop_step([(0, 0, param, grad, square_avg, grad_avg, momentum_buffer)], [hyper])
