"""fastoptim.LAMB: You et al. 2019, not in torch.optim."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Tuple

from . import _core
from ._betas import check_betas
from ._common import check_unsupported, learning_rate, nonneg
from .optimizer import Optimizer, _flag

__all__ = ["LAMB"]


class LAMB(Optimizer):
    r"""LAMB (You et al., 2019): Adam's direction scaled per tensor by the trust ratio ||p|| / ||u||.

    Layer-wise adaptive moments, from "Large Batch Optimization for Deep Learning: Training BERT in 76
    minutes", arXiv:1904.00962, Algorithm 2. Per parameter tensor::

        g = -grad if maximize else grad
        m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g * g
        u = m_hat / (sqrt(v_hat) + eps) + weight_decay * p
            m_hat = m / (1 - beta1**t), v_hat = v / (1 - beta2**t)   (m, v themselves without bias_correction)
        trust = min(||p||, clamp_value) / ||u||     (1 if either norm is 0)
        trust = min(trust, 1)                       if trust_clip (LAMBC)
        trust = 1                                   if exclude_from_layer_adaptation (e.g. biases, norms)
        p = p - lr * trust * u

    ``min(||p||, clamp_value)`` is the paper's scaling function phi with the upper bound of the
    torch-optimizer (cybertronai) implementation, whose Lamb this matches with ``bias_correction=False``
    (its ``debias=True`` applies the correction to lr outside the trust ratio, which the paper does not).
    Exclusions are per param group, since arrays have no names: put biases and norm weights in a group with
    ``weight_decay=0, exclude_from_layer_adaptation=True``.

    The norms do not depend on the thread count or the CPU: each tensor is summed in fixed blocks of 256
    elements, each block with 8 interleaved accumulators added pairwise, the blocks in order, in double
    (see ``cpp/include/fastoptim/lamb/lamb_kernel.hpp``). State per parameter: ``step``, ``exp_avg``,
    ``exp_avg_sq``.

    Example::

        >>> import numpy as np, fastoptim
        >>> w = np.array([3.0, 4.0])
        >>> opt = fastoptim.LAMB([w], lr=0.1)
        >>> opt.step([np.array([1.0, -1.0])])
        >>> w                                     # u ~ sign(g); the step's norm is lr * ||w|| = 0.5
        array([2.64644661, 4.35355339])
    """

    _state_keys = ("exp_avg", "exp_avg_sq")
    _kernel = staticmethod(_core.lamb_step)
    _drive = staticmethod(_core.lamb_drive)

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        *,
        bias_correction: bool = True,
        clamp_value: float = 10.0,
        trust_clip: bool = False,
        exclude_from_layer_adaptation: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults: Dict[str, Any] = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, bias_correction=bias_correction,
            clamp_value=clamp_value, trust_clip=trust_clip,
            exclude_from_layer_adaptation=exclude_from_layer_adaptation, maximize=maximize,
        )
        self._hyper(defaults)
        defaults["betas"] = tuple(defaults["betas"])
        super().__init__(params, defaults)

    def _hyper(self, group: Dict[str, Any], stepping: bool = False) -> tuple:
        lr = learning_rate(group, stepping)
        beta1, beta2 = check_betas(group, 2)
        eps = nonneg(group, "eps", "epsilon value")
        weight_decay = nonneg(group, "weight_decay", "weight_decay value")
        bias_correction = _flag(group["bias_correction"], "bias_correction")
        clamp_value = nonneg(group, "clamp_value", "clamp value")
        trust_clip = _flag(group["trust_clip"], "trust_clip")
        exclude = _flag(group["exclude_from_layer_adaptation"], "exclude_from_layer_adaptation")
        maximize = _flag(group["maximize"], "maximize")
        check_unsupported(group)
        return (lr, beta1, beta2, eps, weight_decay, bias_correction, clamp_value, trust_clip, exclude, maximize)

    def _item(self, index, group_index, p, g, state, added, group):
        step = self._next_step(state, index)
        exp_avg = self._buffer(state, added, "exp_avg", p)
        exp_avg_sq = self._buffer(state, added, "exp_avg_sq", p)
        return (index, group_index, p, g, exp_avg, exp_avg_sq, step), step
