"""fastoptim.Adamax, as torch.optim.Adamax."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Tuple

from . import _core
from ._common import check_unsupported, learning_rate, nonneg
from .optimizer import Optimizer, _flag, _real

__all__ = ["Adamax"]


def _betas(group: Dict[str, Any], stepping: bool = False) -> Tuple[float, float]:
    """A group's betas, checked with torch's messages (shared by the Adam-family optimizers here). At
    ``step()`` any beta but NaN is taken, as torch checks only new groups: OneCycleLR's last step can push
    ``betas[0]`` past its maximum (and 1)."""
    betas = group["betas"]
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair of floats, got {betas!r}")
    beta1, beta2 = _real(betas[0], "betas[0]"), _real(betas[1], "betas[1]")
    if beta1 != beta1 if stepping else not 0.0 <= beta1 < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if beta2 != beta2 if stepping else not 0.0 <= beta2 < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    return beta1, beta2


class Adamax(Optimizer):
    r"""Adamax (Kingma & Ba, 2015, section 7.1): Adam with the infinity norm. Matches
    ``torch.optim.Adamax`` (torch 2.13) step for step::

        g = -grad if maximize else grad;  g = g + weight_decay * p
        m = lerp(m, g, 1 - beta1)
        u = max(beta2 * u, |g| + eps)
        p = p - lr / (1 - beta1**t) * m / u

    Note that ``eps`` is added to ``|g|`` inside the max, as torch does. State per parameter: ``step``,
    ``exp_avg``, ``exp_inf``.

    Example (two steps on the same gradient)::

        >>> import numpy as np, fastoptim
        >>> w = np.array([1.0, -2.0])
        >>> opt = fastoptim.Adamax([w], lr=0.1)
        >>> for _ in range(2):
        ...     opt.step([np.array([0.5, -4.0])])
        >>> w
        array([ 0.8, -1.8])
        >>> sorted(opt.state[0])
        ['exp_avg', 'exp_inf', 'step']
    """

    _low_precision = True
    _state_keys = ("exp_avg", "exp_inf")
    _kernel = staticmethod(_core.adamax_step)
    _drive = staticmethod(_core.adamax_drive)

    def __init__(
        self,
        params: Iterable,
        lr: float = 2e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: Optional[bool] = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
        state_dtype: Any = None,
        master_weights: bool = False,
        stochastic_rounding: bool = False,
        rounding_seed: int = 0,
    ) -> None:
        defaults: Dict[str, Any] = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach, maximize=maximize,
            differentiable=differentiable, capturable=capturable,
        )
        self._hyper(defaults)
        super().__init__(
            params, defaults, state_dtype=state_dtype, master_weights=master_weights,
            stochastic_rounding=stochastic_rounding, rounding_seed=rounding_seed,
        )

    def _hyper(self, group: Dict[str, Any], stepping: bool = False) -> tuple:
        lr = learning_rate(group, stepping)
        eps = nonneg(group, "eps", "epsilon value")
        beta1, beta2 = _betas(group, stepping)
        weight_decay = nonneg(group, "weight_decay", "weight_decay value")
        maximize = _flag(group["maximize"], "maximize")
        check_unsupported(group)
        return (lr, beta1, beta2, eps, weight_decay, maximize)

    def _item(self, index, group_index, p, g, state, added, group):
        step = self._next_step(state, index)
        exp_avg = self._buffer(state, added, "exp_avg", p)
        exp_inf = self._buffer(state, added, "exp_inf", p)
        return (index, group_index, p, g, exp_avg, exp_inf, step), step
