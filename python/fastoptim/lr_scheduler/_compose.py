"""SequentialLR, ChainedScheduler (schedulers made of schedulers) and SWALR.

A composite drives its children through their own Python objects: every child operation pulls the
optimizer's current ``param_groups`` into that child's values, runs the C++ core and pushes the result
back, so each child sees what the previous one wrote, in torch's order. (The C++ composites,
``_core.lr_scheduler.SequentialLR`` / ``ChainedScheduler``, do the same over one shared GroupsAccess.)
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, Dict, List, Sequence

from ._base import LRScheduler, _ls, check_optimizer, integer, param_property, per_group, real
from ._plateau import ReduceLROnPlateau

__all__ = ["SequentialLR", "ChainedScheduler", "SWALR"]


def _param_group_lrs(optimizer: Any) -> List[float]:
    return [group["lr"] for group in optimizer.param_groups]


def _check_children(owner: str, optimizer: Any, schedulers: Sequence[Any]) -> None:
    for idx, scheduler in enumerate(schedulers):
        if not hasattr(scheduler, "optimizer"):
            raise TypeError(f"{owner} at index {idx} should have `optimizer` as its attribute.")
        if isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError(
                f"{owner} does not support `ReduceLROnPlateau` scheduler as it "
                "requires additional kwargs to be specified when calling `step`, "
                f"but got one at index {idx} in the given schedulers sequence."
            )
        if optimizer != scheduler.optimizer:
            raise ValueError(
                f"{owner} expects all schedulers to belong to the same optimizer, but "
                f"got scheduler {scheduler.__class__.__name__} at index {idx} has {scheduler.optimizer}, "
                f"which is different from {optimizer.__class__.__name__}."
            )


class _Composite(LRScheduler):
    """What SequentialLR and ChainedScheduler share: children, state dicts with nested ``_schedulers``.

    An LRScheduler, as torch's composites are, but with no C++ core of its own: its state is plain
    attributes, which shadow the base class's properties over a core."""

    _keys: Sequence[str] = ()
    _schedulers: List[Any]
    optimizer: Any
    _last_lr: List[float] = []  # type: ignore[override]  # always set by the constructor
    _step_count = 0

    def get_last_lr(self) -> List[float]:
        return list(self._last_lr)

    def get_lr(self) -> List[float]:
        raise NotImplementedError

    def _update_lr(self, epoch: int) -> None:
        # torch's LRScheduler._update_lr on a composite reaches LRScheduler.get_lr, which raises.
        raise NotImplementedError

    def _initial_step(self) -> None:
        self._step_count = 0
        self.step()

    def step(self) -> None:  # type: ignore[override]  # pragma: no cover - overridden
        raise NotImplementedError

    def state_dict(self) -> Dict[str, Any]:
        """torch's layout: the composite's own entries and ``_schedulers``, the children's state dicts."""
        out: Dict[str, Any] = {}
        for key in self._keys:
            value = getattr(self, key)
            out[key] = list(value) if isinstance(value, (list, tuple)) else value
        out["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return out

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
        if "_schedulers" not in state_dict:
            raise KeyError("state_dict is missing ['_schedulers']")
        children = state_dict["_schedulers"]
        if not isinstance(children, (list, tuple)) or len(children) != len(self._schedulers):
            raise ValueError(f"state_dict holds {len(children) if isinstance(children, (list, tuple)) else '?'} "
                             f"scheduler states, {type(self).__name__} has {len(self._schedulers)} schedulers")
        own = self._checked_own_state(state_dict)
        # A child checks its own state only when it loads it: if a later one fails, all go back.
        saved_own = {key: getattr(self, key) for key in own}
        saved_children = [child.state_dict() for child in self._schedulers]
        try:
            for key, value in own.items():
                setattr(self, key, value)
            for child, child_state in zip(self._schedulers, children):
                child.load_state_dict(child_state)
        except BaseException:
            for key, value in saved_own.items():
                setattr(self, key, value)
            for child, child_state in zip(self._schedulers, saved_children):
                child.load_state_dict(child_state)
            raise

    def _checked_own_state(self, state_dict: Dict[str, Any]) -> Dict[str, Any]:
        own: Dict[str, Any] = {}
        if "_last_lr" in state_dict:
            own["_last_lr"] = [real(v, "_last_lr") for v in state_dict["_last_lr"]]
        return own


class SequentialLR(_Composite):
    r"""Run schedulers one after another, switching at the ``milestones`` epochs, as
    ``torch.optim.lr_scheduler.SequentialLR``.

    Construction resets every group's ``lr`` to its ``initial_lr``, undoes the initial step of every
    child, and performs the initial step of the scheduler active at epoch 0. At a milestone the next
    scheduler restarts from epoch 0 (its closed form where it has one); otherwise the active one steps.

    >>> import numpy as np, fastoptim
    >>> from fastoptim.lr_scheduler import SequentialLR, StepLR
    >>> opt = fastoptim.SGD([np.zeros(1)], lr=1.0)
    >>> sched = SequentialLR(opt, [StepLR(opt, 1, gamma=0.5), StepLR(opt, 2, gamma=0.1)], milestones=[3])
    >>> lrs = []
    >>> for epoch in range(6):
    ...     opt.step([np.ones(1)])
    ...     sched.step()
    ...     lrs.append(round(sched.get_last_lr()[0], 6))
    >>> lrs
    [0.5, 0.25, 1.0, 1.0, 0.1, 0.1]
    """

    _keys = ("_milestones", "last_epoch", "_last_lr")
    last_epoch = -1  # a plain attribute

    def __init__(self, optimizer: Any, schedulers: Sequence[Any], milestones: Sequence[int],
                 last_epoch: int = -1) -> None:
        if len(schedulers) < 1:
            raise ValueError(f"{self.__class__.__name__} expects at least one scheduler, but got no scheduler.")
        _check_children(self.__class__.__name__, optimizer, schedulers)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                "Sequential Schedulers expects number of schedulers provided to be one more "
                f"than the number of milestone points, but got number of schedulers {len(schedulers)} and the "
                f"number of milestones to be equal to {len(milestones)}"
            )
        self._schedulers = list(schedulers)
        self._milestones = [integer(m, "milestones") for m in milestones]
        self.last_epoch = integer(last_epoch, "last_epoch") + 1
        self.optimizer = optimizer

        # Reset learning rates back to initial values
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        # "Undo" the step performed by other schedulers
        self.recursive_undo()
        # Perform the initial step for only the scheduler meant to run at step 0.
        idx = bisect_right(self._milestones, 0)
        self._schedulers[idx]._initial_step()
        self._last_lr = list(self._schedulers[idx].get_last_lr())

    def recursive_undo(self, sched: Any = None) -> None:
        """Recursively undo any step performed by the initialization of schedulers."""
        scheds = self if sched is None else sched
        if hasattr(scheds, "_schedulers"):
            for s in scheds._schedulers:
                self.recursive_undo(s)
        elif hasattr(scheds, "last_epoch"):
            scheds.last_epoch -= 1

    def step(self) -> None:  # type: ignore[override]  # as torch's
        """Advance one epoch: step the active scheduler, or restart the next one at a milestone."""
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = list(scheduler.get_last_lr())

    def _checked_own_state(self, state_dict: Dict[str, Any]) -> Dict[str, Any]:
        own = super()._checked_own_state(state_dict)
        if "_milestones" in state_dict:
            milestones = [integer(m, "_milestones") for m in state_dict["_milestones"]]
            if len(milestones) != len(self._schedulers) - 1:
                raise ValueError(f"state_dict has {len(milestones)} milestones, expected {len(self._schedulers) - 1}")
            own["_milestones"] = milestones
        if "last_epoch" in state_dict:
            own["last_epoch"] = integer(state_dict["last_epoch"], "last_epoch")
        return own

    def __repr__(self) -> str:
        children = ", ".join(type(s).__name__ for s in self._schedulers)
        return f"SequentialLR([{children}], milestones={self._milestones}, last_epoch={self.last_epoch})"


class ChainedScheduler(_Composite):
    r"""Step every scheduler of a list at each step, so their effects compose, as
    ``torch.optim.lr_scheduler.ChainedScheduler``.

    >>> import numpy as np, fastoptim
    >>> from fastoptim.lr_scheduler import ChainedScheduler, StepLR
    >>> opt = fastoptim.SGD([np.zeros(1)], lr=1.0)
    >>> sched = ChainedScheduler([StepLR(opt, 1, gamma=0.5), StepLR(opt, 2, gamma=0.1)])
    >>> lrs = []
    >>> for epoch in range(4):
    ...     opt.step([np.ones(1)])
    ...     sched.step()
    ...     lrs.append(round(sched.get_last_lr()[0], 6))
    >>> lrs
    [0.5, 0.025, 0.0125, 0.000625]
    """

    _keys = ("_last_lr",)

    def __init__(self, schedulers: Sequence[Any], optimizer: Any = None) -> None:
        if len(schedulers) < 1:
            raise ValueError(
                f"{self.__class__.__name__} expects at least one scheduler to be chained, but got no scheduler."
            )
        optimizer = optimizer or schedulers[0].optimizer
        _check_children(self.__class__.__name__, optimizer, schedulers)
        self._schedulers = list(schedulers)
        self.optimizer = optimizer
        self._last_lr = _param_group_lrs(self._schedulers[-1].optimizer)

    def step(self) -> None:  # type: ignore[override]  # as torch's
        """Step every scheduler, in order."""
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = _param_group_lrs(self._schedulers[-1].optimizer)

    def __repr__(self) -> str:
        children = ", ".join(type(s).__name__ for s in self._schedulers)
        return f"ChainedScheduler([{children}])"


class SWALR(LRScheduler):
    r"""Anneal each group's learning rate to ``swa_lr`` over ``anneal_epochs`` steps, then hold it, as
    ``torch.optim.swa_utils.SWALR`` (for stochastic weight averaging).

    With ``alpha(t) = (1 - cos(pi t)) / 2`` (``"cos"``) or ``t`` (``"linear"``) and
    ``t = clamp(step / max(1, anneal_epochs), 0, 1)``, each step recovers the annealing's start from the
    current ``lr`` and the previous ``alpha``, and sets ``lr = swa_lr * alpha + start * (1 - alpha)``.
    ``swa_lr`` (a scalar or one per group) is stored in each group as ``group["swa_lr"]``, as torch.

    >>> import numpy as np, fastoptim
    >>> opt = fastoptim.SGD([np.zeros(1)], lr=1.0)
    >>> sched = fastoptim.lr_scheduler.SWALR(opt, swa_lr=0.1, anneal_epochs=3, anneal_strategy="linear")
    >>> lrs = []
    >>> for epoch in range(4):
    ...     opt.step([np.ones(1)])
    ...     sched.step()
    ...     lrs.append(round(sched.get_last_lr()[0], 6))
    >>> lrs
    [0.7, 0.4, 0.1, 0.1]
    """

    _params = ("_anneal_strategy", "anneal_epochs")

    def __init__(self, optimizer: Any, swa_lr: Any, anneal_epochs: int = 10, anneal_strategy: str = "cos",
                 last_epoch: int = -1) -> None:
        check_optimizer(optimizer)
        swa_lrs = per_group(swa_lr, len(optimizer.param_groups), "swa_lr")
        if anneal_strategy not in ["cos", "linear"]:
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self._init_args = (swa_lrs, int(anneal_epochs), anneal_strategy)
        # torch stores swa_lr in the groups first (the initial step reads it there); a construction that
        # fails afterwards (a bad lr, say) puts the groups back as they were.
        before = [dict(group) for group in optimizer.param_groups]
        for value, group in zip(swa_lrs, optimizer.param_groups):
            group["swa_lr"] = value
        try:
            super().__init__(optimizer, last_epoch)
        except BaseException:
            for group, saved in zip(optimizer.param_groups, before):
                group.clear()
                group.update(saved)
            raise

    def _make_core(self, groups, last_epoch):
        swa_lrs, anneal_epochs, strategy = self._init_args
        return _ls.SWALR(groups, swa_lrs, anneal_epochs, strategy, last_epoch)

    def _prepare_step(self) -> None:
        # torch reads group["swa_lr"] at every step.
        self._core.params.swa_lrs = [real(g["swa_lr"], "swa_lr") for g in self.optimizer.param_groups]

    def _get_param(self, key: str) -> Any:
        if key == "_anneal_strategy":
            return self._core.params.anneal_strategy
        return getattr(self._core.params, key)

    def _set_param(self, key: str, value: Any) -> None:
        if key == "_anneal_strategy":
            self._core.params.anneal_strategy = value
        else:
            setattr(self._core.params, key, value)

    def _check_params(self, params: Dict[str, Any]) -> None:
        if "_anneal_strategy" in params and params["_anneal_strategy"] not in ["cos", "linear"]:
            raise ValueError("anneal_strategy must be one of 'cos' or 'linear', "
                             f"instead got {params['_anneal_strategy']}")
        if "anneal_epochs" in params:
            value = params["anneal_epochs"]
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"anneal_epochs must be equal or greater than 0, got {value}")

    anneal_epochs = param_property("anneal_epochs")

    @property
    def anneal_strategy(self) -> str:
        return self._core.params.anneal_strategy
