"""Bad inputs: every one raises a clear TypeError/ValueError and modifies nothing.

Registry-driven: every test runs for each optimizer of ``REGISTRY`` with a valid configuration whose state
uses every buffer the optimizer has. Each model has two parameter groups of three parameters:

    group 0 (float32): parameter 0 (3, 4), parameter 1 (3, 4), parameter 2 (20,)
    group 1 (float64): parameter 3 (2, 3), parameter 4 (2, 3), parameter 5 (10,)

A bad input is aimed at parameter 0 (first group) or parameter 3 (second group, while every gradient of the
first group is fine), so messages must name the right index. Each bad call runs on the very first step
(no state yet, and none may appear) and after good steps (state exists and must not change). ``Snapshot``
records the parameters (identity and bits), a deep copy of ``opt.state`` (and the identity of every state
buffer) and the ``param_groups`` hyperparameters before the bad call, and checks them bit for bit after.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any, Callable, Dict, List, NamedTuple, Sequence, Tuple

import numpy as np
import pytest

import fastoptim
from conftest import requires_torch

# ------------------------------------------------------------------------------------------- registry


class Hyper(NamedTuple):
    """An invalid hyperparameter setting: the group values, the error, words its message must contain."""

    id: str
    values: Dict[str, Any]
    exc: type
    words: Tuple[str, ...]
    torch_same: bool = False  # torch raises the very same exception and message
    at_step: bool = True  # step() refuses it too (torch checks nothing there; we refuse what is unusable)


COMMON_HYPERS = [
    Hyper("negative_lr", {"lr": -0.1}, ValueError, ("Invalid learning rate: -0.1",), True),
    Hyper("nan_lr", {"lr": math.nan}, ValueError, ("Invalid learning rate",)),
    Hyper("string_lr", {"lr": "0.1"}, TypeError, ("lr",)),
    Hyper("none_lr", {"lr": None}, TypeError, ("lr",)),
    Hyper("negative_weight_decay", {"weight_decay": -0.01}, ValueError, ("Invalid weight_decay value: -0.01",), True),
    Hyper("differentiable", {"differentiable": True}, ValueError, ("differentiable", "not supported")),
    Hyper("non_bool_maximize", {"maximize": "yes"}, TypeError, ("maximize",)),
]

# Out-of-range betas are refused at construction, in new groups and in loads; step() takes them, as torch
# does (OneCycleLR's last step can push betas[0] past 1): test_contract_audit.py.
ADAM_HYPERS = [
    Hyper("negative_eps", {"eps": -1e-8}, ValueError, ("Invalid epsilon value: -1e-08",), True),
    Hyper("beta1_is_1", {"betas": (1.0, 0.999)}, ValueError, ("Invalid beta parameter at index 0: 1.0",), True,
          at_step=False),
    Hyper("beta1_negative", {"betas": (-0.1, 0.999)}, ValueError, ("Invalid beta parameter at index 0: -0.1",), True,
          at_step=False),
    Hyper("beta2_is_1", {"betas": (0.9, 1.0)}, ValueError, ("Invalid beta parameter at index 1: 1.0",), True,
          at_step=False),
    Hyper("beta2_negative", {"betas": (0.9, -0.5)}, ValueError, ("Invalid beta parameter at index 1: -0.5",), True,
          at_step=False),
    Hyper("betas_not_a_pair", {"betas": (0.9,)}, TypeError, ("betas",)),
    Hyper("beta_not_a_number", {"betas": ("a", 0.9)}, TypeError, ("betas[0]",)),
    Hyper("capturable", {"capturable": True}, ValueError, ("capturable", "not supported")),
]

def _ours_only(hypers):
    return [h._replace(torch_same=False) for h in hypers]


BEYOND_COMMON = _ours_only(h for h in COMMON_HYPERS if h.id != "differentiable")
ADAFACTOR_HYPERS = [
    Hyper("negative_lr", {"lr": -0.1}, ValueError, ("Learning rate should be >= 0 but is: -0.1",), True),
    Hyper("nan_lr", {"lr": math.nan}, ValueError, ("Learning rate should be >= 0 but is: nan",), True),
    Hyper("string_lr", {"lr": "0.1"}, TypeError, ("lr",)),
    Hyper("none_lr", {"lr": None}, TypeError, ("lr",)),
    Hyper("positive_beta2_decay", {"beta2_decay": 0.5}, ValueError, ("beta2_decay should be <= 0 but is: 0.5",), True),
    Hyper("negative_eps1", {"eps": (-1e-30, 1e-3)}, ValueError, ("epsilon1 should be >= 0 but is: -1e-30",), True),
    Hyper("negative_eps2", {"eps": (None, -1e-3)}, ValueError, ("epsilon2 should be >= 0 but is: -0.001",), True),
    Hyper("eps_not_a_pair", {"eps": 1e-3}, TypeError, ("eps",)),
    Hyper("eps1_not_a_number", {"eps": ("a", 1e-3)}, TypeError, ("eps[0]",)),
    Hyper("d_below_one", {"d": 0.5}, ValueError, ("Clipping threshold d should be >= 1 but is: 0.5",), True),
    Hyper("negative_weight_decay", {"weight_decay": -0.01}, ValueError, ("weight_decay should be >= 0 but is: -0.01",),
          True),
    Hyper("non_bool_maximize", {"maximize": "yes"}, TypeError, ("maximize",)),
    Hyper("non_bool_foreach", {"foreach": "yes"}, TypeError, ("foreach",)),
]

SPARSE_ADAM_HYPERS = [
    Hyper("negative_lr", {"lr": -0.1}, ValueError, ("Invalid learning rate: -0.1",), True),
    Hyper("zero_lr", {"lr": 0.0}, ValueError, ("Invalid learning rate: 0.0",), True, at_step=False),
    Hyper("nan_lr", {"lr": math.nan}, ValueError, ("Invalid learning rate",)),
    Hyper("string_lr", {"lr": "0.1"}, TypeError, ("lr",)),
    Hyper("zero_eps", {"eps": 0.0}, ValueError, ("Invalid epsilon value: 0.0",), True),
    Hyper("non_bool_maximize", {"maximize": "yes"}, TypeError, ("maximize",)),
] + [h for h in ADAM_HYPERS if h.id.startswith("beta")]

REGISTRY: Dict[str, Dict[str, Any]] = {
    "SGD": dict(
        cls=fastoptim.SGD,
        kwargs=dict(lr=0.1, momentum=0.9, weight_decay=0.01),
        state_keys=("momentum_buffer",),
        has_step=False,
        hypers=COMMON_HYPERS + [
            Hyper("negative_momentum", {"momentum": -0.1}, ValueError, ("Invalid momentum value: -0.1",), True),
            Hyper("nesterov_without_momentum", {"nesterov": True, "momentum": 0}, ValueError,
                  ("Nesterov momentum requires a momentum and zero dampening",), True),
            Hyper("nesterov_with_dampening", {"nesterov": True, "dampening": 0.1}, ValueError,
                  ("Nesterov momentum requires a momentum and zero dampening",), True),
        ],
    ),
    "Adam": dict(
        cls=fastoptim.Adam,
        kwargs=dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01, amsgrad=True),
        state_keys=("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
        has_step=True,
        hypers=COMMON_HYPERS + ADAM_HYPERS,
    ),
    "AdamW": dict(
        cls=fastoptim.AdamW,
        kwargs=dict(lr=0.01, weight_decay=0.1),
        state_keys=("exp_avg", "exp_avg_sq"),
        has_step=True,
        hypers=COMMON_HYPERS + ADAM_HYPERS,
    ),
    "RMSprop": dict(
        cls=fastoptim.RMSprop,
        kwargs=dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01),
        state_keys=("square_avg", "grad_avg", "momentum_buffer"),
        has_step=True,
        hypers=COMMON_HYPERS + [
            Hyper("negative_eps", {"eps": -1e-8}, ValueError, ("Invalid epsilon value: -1e-08",), True),
            Hyper("negative_alpha", {"alpha": -0.1}, ValueError, ("Invalid alpha value: -0.1",), True),
            Hyper("negative_momentum", {"momentum": -0.1}, ValueError, ("Invalid momentum value: -0.1",), True),
            Hyper("capturable", {"capturable": True}, ValueError, ("capturable", "not supported")),
        ],
    ),
    "Adagrad": dict(
        cls=fastoptim.Adagrad,
        kwargs=dict(lr=0.01, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1),
        state_keys=("sum",),
        has_step=True,
        hypers=COMMON_HYPERS + [
            Hyper("negative_lr_decay", {"lr_decay": -0.1}, ValueError, ("Invalid lr_decay value: -0.1",), True),
            Hyper("negative_initial_accumulator_value", {"initial_accumulator_value": -0.1}, ValueError,
                  ("Invalid initial_accumulator_value value: -0.1",), True),
            Hyper("negative_eps", {"eps": -1e-8}, ValueError, ("Invalid epsilon value: -1e-08",), True),
        ],
    ),
    "Adadelta": dict(
        cls=fastoptim.Adadelta,
        kwargs=dict(lr=1.0, rho=0.8, eps=1e-5, weight_decay=0.01),
        state_keys=("square_avg", "acc_delta"),
        has_step=True,
        hypers=COMMON_HYPERS + [
            Hyper("negative_eps", {"eps": -1e-8}, ValueError, ("Invalid epsilon value: -1e-08",), True),
            Hyper("rho_above_1", {"rho": 1.5}, ValueError, ("Invalid rho value: 1.5",), True),
            Hyper("negative_rho", {"rho": -0.1}, ValueError, ("Invalid rho value: -0.1",), True),
            Hyper("nan_rho", {"rho": math.nan}, ValueError, ("Invalid rho value: nan",), True),
            Hyper("string_rho", {"rho": "0.9"}, TypeError, ("rho",)),
            Hyper("capturable", {"capturable": True}, ValueError, ("capturable", "not supported")),
        ],
    ),
    "ASGD": dict(
        cls=fastoptim.ASGD,
        # t0=0: mu < 1 from the second step on, so ax averages and eta and mu change at every step.
        kwargs=dict(lr=0.01, lambd=0.1, alpha=0.75, t0=0, weight_decay=0.01),
        state_keys=("ax",),  # eta and mu are 0-d: test_opt_classic.py covers them
        has_step=True,
        hypers=COMMON_HYPERS + [
            Hyper("string_lambd", {"lambd": "1e-4"}, TypeError, ("lambd",)),
            Hyper("none_alpha", {"alpha": None}, TypeError, ("alpha",)),
            Hyper("string_t0", {"t0": "1e6"}, TypeError, ("t0",)),
            Hyper("capturable", {"capturable": True}, ValueError, ("capturable", "not supported")),
        ],
    ),
    "Rprop": dict(
        cls=fastoptim.Rprop,
        kwargs=dict(lr=0.01, etas=(0.4, 1.3), step_sizes=(1e-4, 1.0)),
        state_keys=("prev", "step_size"),
        has_step=True,
        # Elements whose gradient changed sign skip the step (torch zeroes their gradient).
        frozen=lambda before, g: g * before["prev"] < 0 if "prev" in before else np.zeros(g.shape, bool),
        hypers=[h for h in COMMON_HYPERS if h.id != "negative_weight_decay"] + [
            Hyper("etaminus_zero", {"etas": (0.0, 1.2)}, ValueError, ("Invalid eta values: 0.0, 1.2",), True),
            Hyper("etaminus_one", {"etas": (1.0, 1.2)}, ValueError, ("Invalid eta values: 1.0, 1.2",), True),
            Hyper("etaplus_one", {"etas": (0.5, 1.0)}, ValueError, ("Invalid eta values: 0.5, 1.0",), True),
            Hyper("etaplus_below_etaminus", {"etas": (0.5, 0.4)}, ValueError, ("Invalid eta values: 0.5, 0.4",), True),
            Hyper("nan_etaplus", {"etas": (0.5, math.nan)}, ValueError, ("Invalid eta values: 0.5, nan",), True),
            Hyper("etas_not_a_pair", {"etas": (0.5,)}, TypeError, ("etas", "pair")),
            Hyper("eta_not_a_number", {"etas": (0.5, "1.2")}, TypeError, ("etas[1]",)),
            Hyper("step_sizes_not_a_pair", {"step_sizes": 1e-6}, TypeError, ("step_sizes", "pair")),
            Hyper("step_size_not_a_number", {"step_sizes": (None, 50)}, TypeError, ("step_sizes[0]",)),
            Hyper("capturable", {"capturable": True}, ValueError, ("capturable", "not supported")),
        ],
    ),
    "Adamax": dict(
        cls=fastoptim.Adamax,
        kwargs=dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01),
        state_keys=("exp_avg", "exp_inf"),
        has_step=True,
        hypers=COMMON_HYPERS + ADAM_HYPERS,
    ),
    "NAdam": dict(
        cls=fastoptim.NAdam,
        kwargs=dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.01, momentum_decay=0.01, decoupled_weight_decay=True),
        state_keys=("exp_avg", "exp_avg_sq"),
        has_step=True,
        hypers=COMMON_HYPERS + ADAM_HYPERS + [
            Hyper("negative_momentum_decay", {"momentum_decay": -0.1}, ValueError,
                  ("Invalid momentum_decay value: -0.1",), True),
            Hyper("string_momentum_decay", {"momentum_decay": "0.1"}, TypeError, ("momentum_decay",)),
            Hyper("non_bool_decoupled_weight_decay", {"decoupled_weight_decay": 1}, TypeError,
                  ("decoupled_weight_decay",)),
        ],
    ),
    "RAdam": dict(
        cls=fastoptim.RAdam,
        kwargs=dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.01),
        state_keys=("exp_avg", "exp_avg_sq"),
        has_step=True,
        hypers=COMMON_HYPERS + ADAM_HYPERS + [
            Hyper("non_bool_decoupled_weight_decay", {"decoupled_weight_decay": "yes"}, TypeError,
                  ("decoupled_weight_decay",)),
        ],
    ),
    # Beyond torch.optim (messages in torch's style; no torch counterpart to compare with, and no
    # `differentiable` argument: BEYOND_COMMON).
    "Lion": dict(
        cls=fastoptim.Lion,
        kwargs=dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.1),
        state_keys=("exp_avg",),
        has_step=False,
        hypers=BEYOND_COMMON + [
            Hyper("beta1_above_1", {"betas": (1.5, 0.99)}, ValueError, ("Invalid beta parameter at index 0: 1.5",)),
            Hyper("beta2_negative", {"betas": (0.9, -0.5)}, ValueError, ("Invalid beta parameter at index 1: -0.5",)),
            Hyper("betas_not_a_pair", {"betas": (0.9,)}, TypeError, ("betas",)),
        ],
    ),
    "LAMB": dict(
        cls=fastoptim.LAMB,
        kwargs=dict(lr=0.01, weight_decay=0.01, trust_clip=True),
        state_keys=("exp_avg", "exp_avg_sq"),
        has_step=True,
        hypers=BEYOND_COMMON + _ours_only(h for h in ADAM_HYPERS if h.id != "capturable") + [
            Hyper("negative_clamp_value", {"clamp_value": -1.0}, ValueError, ("Invalid clamp value: -1.0",)),
            Hyper("non_bool_bias_correction", {"bias_correction": 1}, TypeError, ("bias_correction",)),
            Hyper("non_bool_exclusion", {"exclude_from_layer_adaptation": None}, TypeError,
                  ("exclude_from_layer_adaptation",)),
        ],
    ),
    "Adan": dict(
        cls=fastoptim.Adan,
        kwargs=dict(lr=0.01, weight_decay=0.02),
        state_keys=("exp_avg", "exp_avg_sq", "exp_avg_diff", "neg_pre_grad"),
        has_step=False,  # the step count is the group's
        hypers=BEYOND_COMMON + [
            Hyper("negative_eps", {"eps": -1e-8}, ValueError, ("Invalid epsilon value: -1e-08",)),
            Hyper("beta3_is_1", {"betas": (0.98, 0.92, 1.0)}, ValueError, ("Invalid beta parameter at index 2: 1.0",)),
            Hyper("beta1_negative", {"betas": (-0.1, 0.92, 0.99)}, ValueError,
                  ("Invalid beta parameter at index 0: -0.1",)),
            Hyper("betas_a_pair", {"betas": (0.9, 0.99)}, TypeError, ("betas", "triple")),
            Hyper("non_bool_no_prox", {"no_prox": "no"}, TypeError, ("no_prox",)),
        ],
    ),
    "AdaBelief": dict(
        cls=fastoptim.AdaBelief,
        kwargs=dict(lr=0.01, weight_decay=0.01, amsgrad=True, rectify=False),
        state_keys=("exp_avg", "exp_avg_var", "max_exp_avg_var"),
        has_step=True,
        hypers=BEYOND_COMMON + _ours_only(h for h in ADAM_HYPERS if h.id != "capturable") + [
            Hyper("non_bool_rectify", {"rectify": "yes"}, TypeError, ("rectify",)),
            Hyper("non_bool_weight_decouple", {"weight_decouple": 0}, TypeError, ("weight_decouple",)),
        ],
    ),
    "ScheduleFreeAdamW": dict(
        cls=lambda params, **kw: _in_train_mode(fastoptim.ScheduleFreeAdamW(params, **kw)),
        kwargs=dict(lr=0.01, weight_decay=0.01, warmup_steps=2),
        state_keys=("z", "exp_avg_sq"),
        has_step=False,  # the step count is the group's 'k'
        hypers=BEYOND_COMMON + [
            Hyper("beta1_is_0", {"betas": (0.0, 0.999)}, ValueError, ("Invalid beta parameter at index 0: 0.0",)),
            Hyper("beta2_is_1", {"betas": (0.9, 1.0)}, ValueError, ("Invalid beta parameter at index 1: 1.0",)),
            Hyper("negative_eps", {"eps": -1e-8}, ValueError, ("Invalid epsilon value: -1e-08",)),
            Hyper("negative_warmup_steps", {"warmup_steps": -1}, ValueError, ("Invalid warmup_steps value: -1",)),
            Hyper("float_warmup_steps", {"warmup_steps": 2.5}, TypeError, ("warmup_steps",)),
            Hyper("nan_r", {"r": math.nan}, ValueError, ("Invalid r value",)),
            Hyper("negative_weight_lr_power", {"weight_lr_power": -1.0}, ValueError,
                  ("Invalid weight_lr_power value: -1.0",)),
        ],
    ),
    "Adafactor": dict(
        cls=fastoptim.Adafactor,
        kwargs=dict(lr=0.01, beta2_decay=-0.7, eps=(1e-20, 1e-3), d=1.5, weight_decay=0.01),
        state_keys=("row_var", "col_var"),  # of the 2-D targets; the vectors have "variance"
        param_shaped_state=(2, "variance"),  # (offset from a target, key): a buffer shaped like its parameter
        has_step=True,
        lr_error="Learning rate should be >= 0",
        hypers=ADAFACTOR_HYPERS,
    ),
    "SparseAdam": dict(
        cls=fastoptim.SparseAdam,
        kwargs=dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6),
        state_keys=("exp_avg", "exp_avg_sq"),
        has_step=True,
        sparse=True,  # gradients are (indices, values); its own bad gradients are in test_factored.py
        hypers=SPARSE_ADAM_HYPERS,
    ),
}
NAMES = list(REGISTRY)
DENSE_NAMES = [n for n in NAMES if not REGISTRY[n].get("sparse")]


def _in_train_mode(opt):
    opt.train()  # ScheduleFreeAdamW steps only in train mode (the reference's rule)
    return opt

LAYOUT = [
    [((3, 4), np.float32), ((3, 4), np.float32), ((20,), np.float32)],
    [((2, 3), np.float64), ((2, 3), np.float64), ((10,), np.float64)],
]
N_PARAMS = sum(len(g) for g in LAYOUT)
# Parameter t is the target of a bad input; t + 1 has its shape and dtype, t + 2 is larger (for views).
TARGETS = [0, 3]
TARGET_IDS = ["group0", "group1"]
STEPS = [0, 2]
STEPS_IDS = ["first_step", "with_state"]

HYPER_CASES = [(name, h) for name in NAMES for h in REGISTRY[name]["hypers"]]
HYPER_IDS = [f"{name}-{h.id}" for name, h in HYPER_CASES]
STATE_KEY_CASES = [(name, key) for name in NAMES for key in REGISTRY[name]["state_keys"]]
STATE_KEY_IDS = [f"{name}-{key}" for name, key in STATE_KEY_CASES]
STEP_NAMES = [name for name in NAMES if REGISTRY[name]["has_step"]]


# -------------------------------------------------------------------------------------------- helpers


def words_pattern(*words: str) -> str:
    """A regex (for pytest.raises(match=...)) requiring every word, in any order; 'parameter 1' does not
    match 'parameter 12'."""
    parts = []
    for w in words:
        tail = r"(?!\d)" if w[-1:].isdigit() else ""
        parts.append(f"(?=.*{re.escape(w)}{tail})")
    return "(?s)" + "".join(parts)


def make_params(seed: int = 0) -> List[List[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(shape).astype(dtype) for shape, dtype in group] for group in LAYOUT]


def flat(groups: Sequence[Sequence[np.ndarray]]) -> List[np.ndarray]:
    return [p for g in groups for p in g]


def good_grads(params: Sequence[np.ndarray], rng: np.random.Generator, name: str = "") -> List[Any]:
    # Bounded away from zero, so a good step changes every element (sparse: every row, in shuffled order).
    out = []
    for p in params:
        g = rng.uniform(0.5, 1.5, p.shape) * rng.choice([-1.0, 1.0], p.shape)
        if name and REGISTRY[name].get("sparse"):
            rows = rng.permutation(p.shape[0]).astype(np.int64)
            out.append((rows, g[rows].astype(p.dtype)))
        else:
            out.append(g.astype(p.dtype))
    return out


def grad_arrays(grads: Sequence[Any]) -> List[np.ndarray]:
    """Every array of a grads list: dense gradients, and the indices and values of sparse ones."""
    return [a for g in grads for a in (g if isinstance(g, tuple) else (g,)) if isinstance(a, np.ndarray)]


def key_of(name: str, index: int) -> str:
    """The first state key parameter ``index`` of the two-group model has (Adafactor's depend on its shape)."""
    cls = getattr(fastoptim, name)  # the registry's "cls" may be a factory (ScheduleFreeAdamW in train mode)
    p = np.empty(flat(LAYOUT)[index][0])
    return next(k for k in cls._state_keys if cls._state_shape(k, p) is not None)


def view_as(src: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``src`` itself if shaped like ``like``, else a view of its first elements in ``like``'s shape."""
    if src.shape == like.shape:
        return src
    v = src.reshape(-1)[: like.size].reshape(like.shape)
    assert np.shares_memory(v, src) and v.flags.c_contiguous
    return v


def assert_fresh_state(opt) -> None:
    """The state of an optimizer not stepped yet: none, but Adagrad's (torch creates step 0 and the filled sum
    of every parameter at construction)."""
    if not isinstance(opt, fastoptim.Adagrad):
        assert opt.state == {}
        return
    assert sorted(opt.state) == list(range(sum(len(g["params"]) for g in opt.param_groups)))
    init = opt.defaults["initial_accumulator_value"]
    for entry in opt.state.values():
        assert list(entry) == ["step", "sum"] and float(entry["step"]) == 0.0 and np.all(entry["sum"] == init)


def make(name: str, steps: int = 0, seed: int = 0):
    """An optimizer over the two-group model after ``steps`` good steps, its flat params, and an rng."""
    entry = REGISTRY[name]
    groups = make_params(seed)
    kwargs = dict(entry["kwargs"])
    opt = entry["cls"](
        [{"params": groups[0]}, {"params": groups[1], "lr": kwargs["lr"] / 2}], **kwargs
    )
    rng = np.random.default_rng(seed + 1)
    for _ in range(steps):
        opt.step(good_grads(flat(groups), rng, name))
    if steps == 0:
        assert_fresh_state(opt)
    else:
        assert sorted(opt.state) == list(range(N_PARAMS))
    return opt, flat(groups), rng


def misaligned(shape, dtype, fill=1.0) -> np.ndarray:
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    a = np.frombuffer(bytearray(n * dtype.itemsize + 1), dtype=dtype, offset=1, count=n).reshape(shape)
    assert not a.flags.aligned and a.flags.writeable and a.flags.c_contiguous
    a[...] = fill
    return a


def other_float(dtype) -> type:
    return np.float64 if np.dtype(dtype) == np.float32 else np.float32


def read_only(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flags.writeable = False
    return a


def assert_same_value(actual: Any, expected: Any, what: str) -> None:
    """Bit-for-bit for arrays (dtype, shape, values, bytes); == (NaN-aware) for other values."""
    if isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray), f"{what}: {type(actual).__name__} instead of an array"
        assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
        assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
        if expected.dtype.kind in "fc":
            assert np.array_equal(actual, expected, equal_nan=True), f"{what}: values changed"
        else:
            assert np.array_equal(actual, expected), f"{what}: values changed"
        assert actual.tobytes() == expected.tobytes(), f"{what}: bits changed"
    elif isinstance(expected, (list, tuple)):
        assert type(actual) is type(expected) and len(actual) == len(expected), f"{what}: {actual!r} != {expected!r}"
        for k, (a, e) in enumerate(zip(actual, expected)):
            assert_same_value(a, e, f"{what}[{k}]")
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and set(actual) == set(expected), f"{what}: keys {actual!r} != {expected!r}"
        for k in expected:
            assert_same_value(actual[k], expected[k], f"{what}[{k!r}]")
    elif isinstance(expected, float) and math.isnan(expected):
        assert isinstance(actual, float) and math.isnan(actual), f"{what}: {actual!r} != nan"
    else:
        assert type(actual) is type(expected) and actual == expected, f"{what}: {actual!r} != {expected!r}"


class Snapshot:
    """Everything a bad call must leave as it was: params (identity, bits), state (keys, buffer identity,
    bits), param_groups (hyperparameters), and any extra arrays involved in the call (grads)."""

    def __init__(self, opt, extra: Sequence[Any] = ()) -> None:
        self.opt = opt
        self.n_groups = len(opt.param_groups)
        self.group_params = [list(g["params"]) for g in opt.param_groups]
        self.param_bits = [[copy.deepcopy(p) for p in g["params"]] for g in opt.param_groups]
        self.hypers = [{k: copy.deepcopy(v) for k, v in g.items() if k != "params"} for g in opt.param_groups]
        self.state_obj = opt.state
        self.state_refs = {i: dict(entry) for i, entry in opt.state.items()}
        self.state = copy.deepcopy(opt.state)
        self.extra = [(a, a.copy()) for a in grad_arrays(extra)]

    def check(self) -> None:
        opt = self.opt
        assert len(opt.param_groups) == self.n_groups, "a param group was added or removed"
        for gi, group in enumerate(opt.param_groups):
            assert len(group["params"]) == len(self.group_params[gi]), f"param group {gi} changed size"
            for k, p in enumerate(group["params"]):
                assert p is self.group_params[gi][k], f"param group {gi}, parameter {k} was replaced"
                assert_same_value(p, self.param_bits[gi][k], f"param group {gi}, parameter {k}")
            assert_same_value({k: v for k, v in group.items() if k != "params"}, self.hypers[gi],
                              f"param group {gi} hyperparameters")
        assert opt.state is self.state_obj, "opt.state was replaced"
        assert set(opt.state) == set(self.state), f"state keys {sorted(opt.state)} != {sorted(self.state)}"
        for i, entry in self.state.items():
            assert set(opt.state[i]) == set(entry), f"state[{i}] keys {sorted(opt.state[i])} != {sorted(entry)}"
            for key, value in entry.items():
                assert opt.state[i][key] is self.state_refs[i][key], f"state[{i}][{key!r}] was replaced"
                assert_same_value(opt.state[i][key], value, f"state[{i}][{key!r}]")
        for k, (a, bits) in enumerate(self.extra):
            assert_same_value(a, bits, f"array {k} passed to the call")


def expect_no_change(opt, call: Callable[[], Any], exc: type, pattern: str, extra: Sequence[Any] = ()) -> None:
    snap = Snapshot(opt, extra)  # its check() finds state entries created, removed or changed
    with pytest.raises(exc, match=pattern):
        call()
    snap.check()


# ============================================================================== step(): the grads list


NOT_A_SEQUENCE = {
    "ndarray": lambda grads: np.zeros(N_PARAMS, np.float32),
    "object_ndarray_of_grads": lambda grads: _object_array(grads),
    "generator": lambda grads: (g for g in grads),
    "dict": lambda grads: dict(enumerate(grads)),
    "none": lambda grads: None,
    "single_grad_array": lambda grads: grad_arrays(grads)[0],
}


def _object_array(grads):
    out = np.empty(len(grads), dtype=object)
    for k, g in enumerate(grads):
        out[k] = g
    return out


@pytest.mark.parametrize("steps", STEPS, ids=STEPS_IDS)
@pytest.mark.parametrize("case", list(NOT_A_SEQUENCE))
@pytest.mark.parametrize("name", NAMES)
def test_step_rejects_grads_that_are_not_a_list_or_tuple(name, case, steps):
    opt, params, rng = make(name, steps)
    grads = good_grads(params, rng, name)
    bad = NOT_A_SEQUENCE[case](grads)
    expect_no_change(opt, lambda: opt.step(bad), TypeError, words_pattern("grads", "list or tuple"), grads)


WRONG_COUNT = {
    "too_few": lambda grads: grads[:-1],
    "too_many": lambda grads: grads + [copy.deepcopy(grads[-1])],
    "empty": lambda grads: [],
    "too_few_tuple": lambda grads: tuple(grads[:1]),
}


@pytest.mark.parametrize("steps", STEPS, ids=STEPS_IDS)
@pytest.mark.parametrize("case", list(WRONG_COUNT))
@pytest.mark.parametrize("name", NAMES)
def test_step_rejects_wrong_number_of_grads(name, case, steps):
    opt, params, rng = make(name, steps)
    grads = good_grads(params, rng, name)
    bad = WRONG_COUNT[case](grads)
    expect_no_change(opt, lambda: opt.step(bad), ValueError,
                     words_pattern(f"expected {N_PARAMS} gradients", f"got {len(bad)}"), grads)


# ============================================================================= step(): one bad grad


def _strided(p):
    g = np.ones(p.shape[:-1] + (2 * p.shape[-1],), p.dtype)[..., ::2]
    assert g.shape == p.shape and not g.flags.c_contiguous
    return g


def _transposed(p):
    g = np.ones(p.shape[::-1], p.dtype).T
    assert g.shape == p.shape and not g.flags.c_contiguous
    return g


def _fortran(p):
    g = np.asfortranarray(np.ones(p.shape, p.dtype))
    assert not g.flags.c_contiguous
    return g


def _view_into(big, p):
    g = big[2: 2 + p.size].reshape(p.shape)
    assert np.shares_memory(g, big) and g.flags.c_contiguous and g.dtype == p.dtype
    return g


GRAD = "gradient of parameter {t}"
# id: (build(p, params, t) -> bad grad for parameter t, exception, words of the message)
BAD_GRADS: Dict[str, Tuple[Callable, type, Tuple[str, ...]]] = {
    "python_list": (lambda p, ps, t: p.tolist(), TypeError, (GRAD, "numpy.ndarray")),
    "numpy_scalar": (lambda p, ps, t: p.dtype.type(1.0), TypeError, (GRAD, "numpy.ndarray")),
    "python_float": (lambda p, ps, t: 1.0, TypeError, (GRAD, "numpy.ndarray")),
    "other_float_dtype": (lambda p, ps, t: np.ones(p.shape, other_float(p.dtype)), TypeError, (GRAD, "dtype")),
    "int32": (lambda p, ps, t: np.ones(p.shape, np.int32), TypeError, (GRAD, "dtype int32")),
    "int64": (lambda p, ps, t: np.ones(p.shape, np.int64), TypeError, (GRAD, "dtype int64")),
    "float16": (lambda p, ps, t: np.ones(p.shape, np.float16), TypeError, (GRAD, "dtype float16")),
    "byteswapped": (lambda p, ps, t: np.ones(p.shape, p.dtype.newbyteorder()), TypeError, (GRAD, "dtype >f")),
    "strided_slice": (lambda p, ps, t: _strided(p), ValueError, (GRAD, "C-contiguous")),
    "transposed": (lambda p, ps, t: _transposed(p), ValueError, (GRAD, "C-contiguous")),
    "fortran_order": (lambda p, ps, t: _fortran(p), ValueError, (GRAD, "C-contiguous")),
    "misaligned": (lambda p, ps, t: misaligned(p.shape, p.dtype), ValueError, (GRAD, "aligned")),
    "same_size_other_shape": (lambda p, ps, t: np.ones(p.shape[::-1], p.dtype), ValueError, (GRAD, "shape")),
    "flattened": (lambda p, ps, t: np.ones(p.size, p.dtype), ValueError, (GRAD, "shape")),
    "extra_axis": (lambda p, ps, t: np.ones((1,) + p.shape, p.dtype), ValueError, (GRAD, "shape")),
    "bigger": (lambda p, ps, t: np.ones((p.shape[0] + 1,) + p.shape[1:], p.dtype), ValueError, (GRAD, "shape")),
    "smaller": (lambda p, ps, t: np.ones((p.shape[0] - 1,) + p.shape[1:], p.dtype), ValueError, (GRAD, "shape")),
    "is_its_own_param": (lambda p, ps, t: p, ValueError, ("parameter {t}", "overlap")),
    "view_of_its_own_param": (lambda p, ps, t: p.view(), ValueError, ("parameter {t}", "overlap")),
    "is_another_param": (lambda p, ps, t: ps[t + 1], ValueError, ("parameter {t}", "parameter {t1}", "overlap")),
    "view_overlapping_another_param": (lambda p, ps, t: _view_into(ps[t + 2], p), ValueError,
                                       ("parameter {t}", "parameter {t2}", "overlap")),
}


def _fmt(words, t):
    return tuple(w.format(t=t, t1=t + 1, t2=t + 2) for w in words)


@pytest.mark.parametrize("t", TARGETS, ids=TARGET_IDS)
@pytest.mark.parametrize("steps", STEPS, ids=STEPS_IDS)
@pytest.mark.parametrize("case", list(BAD_GRADS))
@pytest.mark.parametrize("name", DENSE_NAMES)
def test_step_rejects_bad_grad_and_modifies_nothing(name, case, steps, t):
    opt, params, rng = make(name, steps)
    grads = good_grads(params, rng, name)
    build, exc, words = BAD_GRADS[case]
    grads[t] = build(params[t], params, t)
    expect_no_change(opt, lambda: opt.step(grads), exc, words_pattern(*_fmt(words, t)), grads)


@pytest.mark.parametrize("t", TARGETS, ids=TARGET_IDS)
@pytest.mark.parametrize("name", NAMES)
def test_step_rejects_grad_that_is_a_state_buffer(name, t):
    opt, params, rng = make(name, 2)
    grads = good_grads(params, rng, name)
    offset, key = REGISTRY[name].get("param_shaped_state", (0, REGISTRY[name]["state_keys"][0]))
    t += offset
    buf = opt.state[t][key]
    grads[t] = (grads[t][0], buf) if isinstance(grads[t], tuple) else buf  # sparse: as the values of every row
    expect_no_change(opt, lambda: opt.step(grads), ValueError, words_pattern(f"parameter {t}", "overlap"), grads)


@pytest.mark.parametrize("name", DENSE_NAMES)
def test_step_reports_the_bad_grad_of_the_second_group_even_with_a_good_first_group(name):
    """A grad of the wrong dtype in group 1 only: group 0 (all good) must not have been stepped."""
    opt, params, rng = make(name, 0)
    grads = good_grads(params, rng, name)
    grads[5] = grads[5].astype(np.float32)
    expect_no_change(opt, lambda: opt.step(grads), TypeError,
                     words_pattern("gradient of parameter 5", "float32", "float64"), grads)
    assert_fresh_state(opt)


# ============================================================================ step(): bad parameters


@pytest.mark.parametrize("t", TARGETS, ids=TARGET_IDS)
@pytest.mark.parametrize("steps", STEPS, ids=STEPS_IDS)
@pytest.mark.parametrize("name", NAMES)
def test_step_rejects_param_made_read_only_after_construction(name, steps, t):
    opt, params, rng = make(name, steps)
    grads = good_grads(params, rng, name)
    params[t].flags.writeable = False
    expect_no_change(opt, lambda: opt.step(grads), ValueError, words_pattern(f"parameter {t}", "read-only"), grads)


# Parameters swapped in opt.param_groups after construction: id -> (build(p, params, t), exception, words).
TAMPERED_PARAMS: Dict[str, Tuple[Callable, type, Tuple[str, ...]]] = {
    "python_list": (lambda p, ps, t: p.tolist(), TypeError, ("parameter {t}", "numpy.ndarray")),
    "misaligned": (lambda p, ps, t: misaligned(p.shape, p.dtype), ValueError, ("parameter {t}", "aligned")),
    "strided": (lambda p, ps, t: _strided(p), ValueError, ("parameter {t}", "C-contiguous")),
    "fortran_order": (lambda p, ps, t: _fortran(p), ValueError, ("parameter {t}", "C-contiguous")),
    "float16": (lambda p, ps, t: p.astype(np.float16), TypeError, ("parameter {t}", "dtype float16")),
    "int64": (lambda p, ps, t: p.astype(np.int64), TypeError, ("parameter {t}", "dtype int64")),
    "byteswapped": (lambda p, ps, t: p.astype(p.dtype.newbyteorder()), TypeError, ("parameter {t}", "dtype")),
    "duplicate_of_next_param": (lambda p, ps, t: ps[t + 1], ValueError, ("parameter {t}", "parameter {t1}", "overlap")),
}


@pytest.mark.parametrize("t", TARGETS, ids=TARGET_IDS)
@pytest.mark.parametrize("steps", STEPS, ids=STEPS_IDS)
@pytest.mark.parametrize("case", list(TAMPERED_PARAMS))
@pytest.mark.parametrize("name", NAMES)
def test_step_rejects_param_replaced_in_param_groups(name, case, steps, t):
    if case == "float16" and getattr(fastoptim, name)._low_precision:
        pytest.skip("float16 is a storage dtype of this optimizer (tests/test_low_precision.py)")
    opt, params, rng = make(name, steps)
    grads = good_grads(params, rng, name)
    build, exc, words = TAMPERED_PARAMS[case]
    group, k = divmod(t, 3)
    opt.param_groups[group]["params"][k] = build(params[t], params, t)
    expect_no_change(opt, lambda: opt.step(grads), exc, words_pattern(*_fmt(words, t)), grads)


# ====================================================================================== good inputs


@pytest.mark.parametrize("steps", STEPS, ids=STEPS_IDS)
@pytest.mark.parametrize("name", NAMES)
def test_good_step_updates_the_very_same_arrays_in_place(name, steps):
    opt, params, rng = make(name, steps)
    grads = good_grads(params, rng, name)
    before = [p.copy() for p in params]
    buffers = {i: {k: v for k, v in entry.items() if isinstance(v, np.ndarray) and k != "step"}
               for i, entry in opt.state.items()}
    buffer_bits = {i: {k: v.copy() for k, v in entry.items()} for i, entry in buffers.items()}
    grad_bits = copy.deepcopy(grads)
    opt.step(grads)
    flat_after = flat(g["params"] for g in opt.param_groups)
    frozen = REGISTRY[name].get("frozen")
    for i, (p, old) in enumerate(zip(params, before)):
        assert flat_after[i] is p, f"parameter {i} was replaced instead of updated in place"
        assert p.dtype == old.dtype and p.shape == old.shape and p.flags.c_contiguous and p.flags.writeable
        still = frozen(buffer_bits.get(i, {}), grad_bits[i]) if frozen else np.zeros(p.shape, bool)
        assert np.array_equal(p != old, ~still), f"parameter {i} was not updated (in place) everywhere"
        assert np.all(np.isfinite(p))
    for i, entry in buffers.items():
        for key, buf in entry.items():
            assert opt.state[i][key] is buf, f"state[{i}][{key!r}] was replaced instead of updated in place"
            assert not np.array_equal(buf, buffer_bits[i][key]), f"state[{i}][{key!r}] did not change"
    for g, bits in zip(grads, grad_bits):
        assert_same_value(g, bits, "gradient")
    assert sorted(opt.state) == list(range(N_PARAMS))
    for i, entry in opt.state.items():
        keys = [k for k in entry if k != "step"]
        assert keys and (i not in TARGETS or set(REGISTRY[name]["state_keys"]) <= set(keys)), f"state[{i}]: {keys}"
        for key in keys:
            buf = entry[key]
            if key in getattr(type(opt), "_scalar_state_keys", ()):  # 0-d, float32 as torch (ASGD, NAdam)
                assert buf.shape == () and buf.dtype in (np.float32, np.float64)
                continue
            assert buf.dtype == params[i].dtype and buf.shape == type(opt)._state_shape(key, params[i])


@pytest.mark.parametrize("steps", STEPS, ids=STEPS_IDS)
@pytest.mark.parametrize("name", DENSE_NAMES)
def test_read_only_grads_are_accepted(name, steps):
    """Grads are only read: read-only grads step exactly as writeable ones, and stay unchanged."""
    opt, params, rng = make(name, steps)
    twin, twin_params, twin_rng = make(name, steps)
    grads = good_grads(params, rng, name)
    ro = [read_only(g) for g in grads]
    opt.step(ro)
    twin.step(good_grads(twin_params, twin_rng, name))
    for p, q in zip(params, twin_params):
        assert_same_value(p, q, "parameter")
    for g, r in zip(grads, ro):
        assert_same_value(r, g, "read-only gradient")


@pytest.mark.parametrize("name", NAMES)
def test_one_grad_array_may_serve_two_params(name):
    """Two read-only uses of one array do not overlap any written array: allowed."""
    opt, params, rng = make(name, 1)
    twin, twin_params, twin_rng = make(name, 1)
    grads = good_grads(params, rng, name)
    twin_grads = good_grads(twin_params, twin_rng, name)
    grads[1] = grads[0]
    twin_grads[1] = copy.deepcopy(twin_grads[0])
    opt.step(grads)
    twin.step(twin_grads)
    for p, q in zip(params, twin_params):
        assert_same_value(p, q, "parameter")


@pytest.mark.parametrize("name", NAMES)
def test_none_grad_leaves_param_and_state_alone(name):
    opt, params, rng = make(name, 0)
    grads = good_grads(params, rng, name)
    grads[3] = None
    before = params[3].copy()
    fresh = copy.deepcopy(opt.state.get(3))  # Adagrad's, from construction
    opt.step(grads)
    assert_same_value(params[3], before, "parameter 3")
    if fresh is None:
        assert 3 not in opt.state
        assert sorted(opt.state) == [0, 1, 2, 4, 5]
    else:
        assert_same_value(opt.state[3], fresh, "state[3]")


@pytest.mark.parametrize("name", DENSE_NAMES)
def test_failed_step_does_not_change_the_next_good_step(name):
    """After bad calls, the trajectory is bit-identical to a twin that never saw them."""
    opt, params, rng = make(name, 1)
    twin, twin_params, twin_rng = make(name, 1)
    grads = good_grads(params, rng, name)
    twin_grads = good_grads(twin_params, twin_rng, name)
    bad = list(grads)
    bad[4] = bad[4].astype(np.float32)
    with pytest.raises(TypeError):
        opt.step(bad)
    bad = list(grads)
    bad[0] = params[1]
    with pytest.raises(ValueError):
        opt.step(bad)
    opt.step(grads)
    twin.step(twin_grads)
    for p, q in zip(params, twin_params):
        assert_same_value(p, q, "parameter")
    assert_same_value(opt.state, twin.state, "state")


# =================================================================================== construction


def _bad_params():
    # id: (build() -> bad param, exception, words; "{k}" is the index the bad param gets)
    def strided():
        return np.ones(8, np.float32)[::2]

    def transposed():
        return np.ones((3, 4), np.float32).T

    def fortran():
        return np.asfortranarray(np.ones((3, 4), np.float32))

    def ro():
        return read_only(np.ones(4, np.float32))

    return {
        "python_list": (lambda: [1.0, 2.0], TypeError, ("parameter {k}", "numpy arrays", "list")),
        "python_float": (lambda: 1.0, TypeError, ("parameter {k}", "numpy arrays", "float")),
        "none": (lambda: None, TypeError, ("parameter {k}", "numpy arrays")),
        "numpy_scalar": (lambda: np.float32(1.0), TypeError, ("parameter {k}", "numpy arrays")),
        "int32": (lambda: np.ones(4, np.int32), TypeError, ("parameter {k}", "dtype int32")),
        "int64": (lambda: np.ones(4, np.int64), TypeError, ("parameter {k}", "dtype int64")),
        "float16": (lambda: np.ones(4, np.float16), TypeError, ("parameter {k}", "dtype float16")),
        "bool": (lambda: np.ones(4, bool), TypeError, ("parameter {k}", "dtype bool")),
        "complex64": (lambda: np.ones(4, np.complex64), TypeError, ("parameter {k}", "dtype complex64")),
        "big_endian_f4": (lambda: np.ones(4, ">f4"), TypeError, ("parameter {k}", "dtype >f4")),
        "big_endian_f8": (lambda: np.ones(4, ">f8"), TypeError, ("parameter {k}", "dtype >f8")),
        "strided_slice": (strided, ValueError, ("parameter {k}", "C-contiguous")),
        "transposed": (transposed, ValueError, ("parameter {k}", "C-contiguous")),
        "fortran_order": (fortran, ValueError, ("parameter {k}", "C-contiguous")),
        "read_only": (ro, ValueError, ("parameter {k}", "read-only")),
        "misaligned": (lambda: misaligned((4,), np.float32), ValueError, ("parameter {k}", "aligned")),
    }


BAD_PARAMS = _bad_params()


@pytest.mark.parametrize("where", ["group0", "group1"])
@pytest.mark.parametrize("case", list(BAD_PARAMS))
@pytest.mark.parametrize("name", NAMES)
def test_construction_rejects_bad_param(name, case, where):
    if case == "float16" and getattr(fastoptim, name)._low_precision:
        pytest.skip("float16 is a storage dtype of this optimizer (tests/test_low_precision.py)")
    entry = REGISTRY[name]
    build, exc, words = BAD_PARAMS[case]
    good = [np.ones(4, np.float32), np.ones(3, np.float32)]
    bad = build()
    bits = [g.copy() for g in good]
    if where == "group0":
        params, k = [good[0], bad], 1  # a plain list: one group
        call = lambda: entry["cls"](params, **entry["kwargs"])  # noqa: E731
    else:
        groups, k = [{"params": [good[0]]}, {"params": [good[1], bad]}], 2
        call = lambda: entry["cls"](groups, **entry["kwargs"])  # noqa: E731
    with pytest.raises(exc, match=words_pattern(*(w.format(k=k) for w in words))):
        call()
    for g, b in zip(good, bits):
        assert_same_value(g, b, "good parameter")


@pytest.mark.parametrize("name", NAMES)
def test_construction_rejects_bare_array(name):
    entry = REGISTRY[name]
    with pytest.raises(TypeError, match=words_pattern("params argument given to the optimizer", "iterable")):
        entry["cls"](np.ones(4, np.float32), **entry["kwargs"])


@pytest.mark.parametrize("empty", [[], (), "generator"], ids=["list", "tuple", "generator"])
@pytest.mark.parametrize("name", NAMES)
def test_construction_rejects_empty_parameter_list(name, empty):
    entry = REGISTRY[name]
    params = (p for p in []) if empty == "generator" else empty
    with pytest.raises(ValueError, match="^optimizer got an empty parameter list$"):
        entry["cls"](params, **entry["kwargs"])


@pytest.mark.parametrize("kind", [set, frozenset])
@pytest.mark.parametrize("name", NAMES)
def test_construction_rejects_set_of_params_in_group(name, kind):
    """ndarrays are unhashable, so a set of them needs a hashable subclass (or holds no arrays at all)."""
    entry = REGISTRY[name]
    arrays = [np.ones(4, np.float32).view(HashableArray), np.ones(3, np.float32).view(HashableArray)]
    with pytest.raises(TypeError, match=words_pattern("ordered collections", "Please use a list instead")):
        entry["cls"]([{"params": kind(arrays)}], **entry["kwargs"])
    with pytest.raises(TypeError, match="ordered collections"):
        entry["cls"]([{"params": [np.ones(2, np.float32)]}, {"params": kind()}], **entry["kwargs"])


class HashableArray(np.ndarray):
    __hash__ = object.__hash__


@pytest.mark.parametrize("name", NAMES)
def test_construction_rejects_group_without_params(name):
    entry = REGISTRY[name]
    with pytest.raises(ValueError, match="'params'"):
        entry["cls"]([{"params": [np.ones(3, np.float32)]}, {"lr": 0.1}], **entry["kwargs"])


@pytest.mark.parametrize("name", NAMES)
def test_construction_rejects_group_that_is_not_a_dict(name):
    entry = REGISTRY[name]
    with pytest.raises(TypeError, match=words_pattern("param_group must be a dict", "numpy.ndarray")):
        entry["cls"]([{"params": [np.ones(3, np.float32)]}, np.ones(3, np.float32)], **entry["kwargs"])


@pytest.mark.parametrize("name", NAMES)
def test_construction_rejects_same_array_twice_in_one_group(name):
    entry = REGISTRY[name]
    a, b = np.ones(4, np.float32), np.ones(3, np.float32)
    with pytest.raises(ValueError, match=words_pattern("parameter 2", "same array as parameter 0")):
        entry["cls"]([a, b, a], **entry["kwargs"])


@pytest.mark.parametrize("name", NAMES)
def test_construction_rejects_same_array_in_two_groups(name):
    entry = REGISTRY[name]
    a, b = np.ones(4, np.float32), np.ones(3, np.float32)
    with pytest.raises(ValueError, match="^some parameters appear in more than one parameter group$"):
        entry["cls"]([{"params": [a, b]}, {"params": [a]}], **entry["kwargs"])


@pytest.mark.parametrize("layout", ["one_group", "two_groups"])
@pytest.mark.parametrize("name", NAMES)
def test_construction_rejects_overlapping_views(name, layout):
    entry = REGISTRY[name]
    buf = np.ones(20, np.float32)
    a, b = buf[:12].reshape(3, 4), buf[8:]
    params = [a, b] if layout == "one_group" else [{"params": [a]}, {"params": [b]}]
    with pytest.raises(ValueError, match=words_pattern("parameter 1", "overlaps parameter 0")):
        entry["cls"](params, **entry["kwargs"])


@pytest.mark.parametrize("name", NAMES)
def test_construction_rejects_two_views_of_the_same_memory(name):
    entry = REGISTRY[name]
    a = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=words_pattern("parameter 1", "parameter 0")):
        entry["cls"]([a, a.reshape(12)], **entry["kwargs"])


@pytest.mark.parametrize("layout", ["one_group", "two_groups"])
@pytest.mark.parametrize("name", NAMES)
def test_construction_rejects_duplicate_empty_param(name, layout):
    """The duplicate check must not depend on the size: torch rejects a tensor in two groups whatever its
    size, and fastoptim rejects a non-empty array listed twice in one group."""
    entry = REGISTRY[name]
    z = np.zeros(0, np.float32)
    params = [z, z] if layout == "one_group" else [{"params": [z]}, {"params": [z]}]
    with pytest.raises(ValueError, match="same array|more than one parameter group"):
        entry["cls"](params, **entry["kwargs"])


# ================================================================================ hyperparameters


@pytest.mark.parametrize("name,hyper", HYPER_CASES, ids=HYPER_IDS)
def test_constructor_rejects_invalid_hyperparameter(name, hyper):
    entry = REGISTRY[name]
    kwargs = dict(entry["kwargs"], **hyper.values)
    with pytest.raises(hyper.exc, match=words_pattern(*hyper.words)):
        entry["cls"]([np.ones(4, np.float32)], **kwargs)


@requires_torch
@pytest.mark.parametrize("name,hyper", [c for c in HYPER_CASES if c[1].torch_same],
                         ids=[i for i, c in zip(HYPER_IDS, HYPER_CASES) if c[1].torch_same])
def test_invalid_hyperparameter_message_is_torchs(name, hyper):
    import torch

    entry = REGISTRY[name]
    kwargs = dict(entry["kwargs"], **hyper.values)
    with pytest.raises(hyper.exc) as theirs:
        getattr(torch.optim, name)([torch.zeros(4, requires_grad=True)], **kwargs)
    with pytest.raises(hyper.exc) as ours:
        entry["cls"]([np.ones(4, np.float32)], **kwargs)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("name,hyper", HYPER_CASES, ids=HYPER_IDS)
def test_param_group_dict_with_invalid_hyperparameter_is_rejected(name, hyper):
    entry = REGISTRY[name]
    groups = make_params()
    with pytest.raises(hyper.exc, match=words_pattern(*hyper.words)):
        entry["cls"]([{"params": groups[0]}, dict({"params": groups[1]}, **hyper.values)], **entry["kwargs"])


@pytest.mark.parametrize("steps", STEPS, ids=STEPS_IDS)
@pytest.mark.parametrize("name,hyper", HYPER_CASES, ids=HYPER_IDS)
def test_add_param_group_with_invalid_hyperparameter_changes_nothing(name, hyper, steps):
    opt, params, rng = make(name, steps)
    new = np.ones(5, np.float32)
    expect_no_change(opt, lambda: opt.add_param_group(dict({"params": [new]}, **hyper.values)),
                     hyper.exc, words_pattern(*hyper.words), [new])


@pytest.mark.parametrize("case", ["existing_param", "bad_dtype", "view_of_existing", "set"])
@pytest.mark.parametrize("name", NAMES)
def test_add_param_group_with_bad_params_changes_nothing(name, case):
    opt, params, rng = make(name, 2)
    new, exc, pattern = {
        "existing_param": ([params[4]], ValueError, "^some parameters appear in more than one parameter group$"),
        "bad_dtype": ([np.ones(3, np.float32), np.ones(3, np.int64)], TypeError, words_pattern("parameter 7", "dtype")),
        "view_of_existing": ([params[2][5:9]], ValueError, words_pattern("parameter 6", "overlaps parameter 2")),
        "set": ({np.ones(3, np.float32).view(HashableArray)}, TypeError, "ordered collections"),
    }[case]
    expect_no_change(opt, lambda: opt.add_param_group({"params": new}), exc, pattern)


@pytest.mark.parametrize("group", [0, 1])
@pytest.mark.parametrize("steps", STEPS, ids=STEPS_IDS)
@pytest.mark.parametrize("name,hyper", HYPER_CASES, ids=HYPER_IDS)
def test_step_rejects_hyperparameter_edited_to_invalid_value(name, hyper, steps, group):
    if hyper.id == "negative_lr" or not hyper.at_step:  # NaN is still rejected
        pytest.skip(f"{hyper.id} is taken at step() as torch does (test_step_takes_negative_lr_like_torch)")
    opt, params, rng = make(name, steps)
    grads = good_grads(params, rng, name)
    opt.param_groups[group].update(copy.deepcopy(hyper.values))
    expect_no_change(opt, lambda: opt.step(grads), hyper.exc, words_pattern(*hyper.words), grads)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_step_takes_negative_lr_like_torch(name):
    """torch validates lr only at construction; schedulers can round it a hair below zero (LinearLR with
    end_factor=0 gives -6e-20), and training must go on."""
    opt, params, rng = make(name, 0)
    for group in opt.param_groups:
        group["lr"] = -6e-20
    opt.step(good_grads(params, rng, name))
    with pytest.raises(ValueError, match=REGISTRY[name].get("lr_error", "Invalid learning rate")):
        opt.add_param_group({"params": [np.zeros(3, np.float32)], "lr": -6e-20})


# ================================================================================== state tampering


def _state_cases():
    # Each builds a bad buffer in the shape of the one it replaces (`b`), which for Adafactor is not the
    # parameter's; arrays of other calls are viewed in that shape.
    S = "state '{key}' of parameter {t}"
    return {
        "other_float_dtype": (lambda opt, ps, gs, t, b: np.zeros(b.shape, other_float(b.dtype)), TypeError, (S, "dtype")),
        "float16": (lambda opt, ps, gs, t, b: np.zeros(b.shape, np.float16), TypeError, (S, "dtype float16")),
        "byteswapped": (lambda opt, ps, gs, t, b: np.zeros(b.shape, b.dtype.newbyteorder()), TypeError, (S, "dtype")),
        "python_list": (lambda opt, ps, gs, t, b: b.tolist(), TypeError, (S, "numpy.ndarray")),
        "same_size_other_shape": (lambda opt, ps, gs, t, b: np.zeros(b.shape[::-1], b.dtype), ValueError, (S, "shape")),
        "bigger": (lambda opt, ps, gs, t, b: np.zeros((b.shape[0] + 1,) + b.shape[1:], b.dtype), ValueError, (S, "shape")),
        "strided": (lambda opt, ps, gs, t, b: _strided(b), ValueError, (S, "C-contiguous")),
        "fortran_order": (lambda opt, ps, gs, t, b: _fortran(b), ValueError, (S, "C-contiguous")),
        "read_only": (lambda opt, ps, gs, t, b: read_only(b), ValueError, (S, "read-only")),
        "misaligned": (lambda opt, ps, gs, t, b: misaligned(b.shape, b.dtype, 0.5), ValueError, (S, "aligned")),
        "is_the_param": (lambda opt, ps, gs, t, b: view_as(ps[t], b), ValueError, ("parameter {t}", "overlap")),
        "is_another_param": (lambda opt, ps, gs, t, b: view_as(ps[t + 1], b), ValueError,
                             ("parameter {t}", "parameter {t1}", "overlap")),
        "is_the_grad": (lambda opt, ps, gs, t, b: view_as(grad_arrays([gs[t]])[-1], b), ValueError,
                        ("parameter {t}", "overlap")),
        "is_another_params_buffer": (lambda opt, ps, gs, t, b: opt.state[t + 1][_key_like(opt, t, b)], ValueError,
                                     ("parameter {t}", "parameter {t1}", "overlap")),
        "view_into_another_param": (lambda opt, ps, gs, t, b: _view_into(ps[t + 2], b), ValueError,
                                    ("parameter {t}", "parameter {t2}", "overlap")),
    }


def _key_like(opt, t, b):
    return next(k for k, v in opt.state[t].items() if v is b)


STATE_CASES = _state_cases()


@pytest.mark.parametrize("t", TARGETS, ids=TARGET_IDS)
@pytest.mark.parametrize("case", list(STATE_CASES))
@pytest.mark.parametrize("name,key", STATE_KEY_CASES, ids=STATE_KEY_IDS)
def test_step_rejects_tampered_state_buffer(name, key, case, t):
    opt, params, rng = make(name, 2)
    grads = good_grads(params, rng, name)
    build, exc, words = STATE_CASES[case]
    if case == "fortran_order" and sum(d > 1 for d in opt.state[t][key].shape) < 2:
        pytest.skip(f"a buffer of shape {opt.state[t][key].shape} is C-contiguous in any order")
    opt.state[t][key] = build(opt, params, grads, t, opt.state[t][key])
    words = tuple(w.format(key=key, t=t, t1=t + 1, t2=t + 2) for w in words)
    expect_no_change(opt, lambda: opt.step(grads), exc, words_pattern(*words), grads)


@pytest.mark.parametrize("t", TARGETS, ids=TARGET_IDS)
@pytest.mark.parametrize("name", [n for n in NAMES if len(REGISTRY[n]["state_keys"]) > 1])
def test_step_rejects_two_state_keys_sharing_one_buffer(name, t):
    opt, params, rng = make(name, 2)
    grads = good_grads(params, rng, name)
    k0, k1 = sorted(REGISTRY[name]["state_keys"][:2], key=lambda k: -opt.state[t][k].size)
    opt.state[t][k1] = view_as(opt.state[t][k0], opt.state[t][k1])  # (a view of) the larger one
    expect_no_change(opt, lambda: opt.step(grads), ValueError, words_pattern(f"parameter {t}", "overlap"), grads)


TAMPERED_STEPS = {
    "negative": np.array(-1.0, np.float32),
    "nan": np.array(np.nan, np.float32),
    "string": "abc",
    "two_elements": np.array([1.0, 2.0], np.float32),
}


@pytest.mark.parametrize("case", list(TAMPERED_STEPS))
@pytest.mark.parametrize("name", STEP_NAMES)
def test_step_rejects_tampered_step_count(name, case):
    """load_state_dict rejects a negative/NaN/non-scalar 'step'; step() must not run on one either (with -1
    the bias correction divides by zero, with NaN every element becomes NaN)."""
    opt, params, rng = make(name, 2)
    grads = good_grads(params, rng, name)
    opt.state[3]["step"] = TAMPERED_STEPS[case]
    expect_no_change(opt, lambda: opt.step(grads), (TypeError, ValueError),
                     words_pattern("step", "parameter 3"), grads)


@pytest.mark.parametrize("name", STEP_NAMES)
def test_step_count_viewing_a_parameter_never_overwrites_it(name):
    """A 'step' that is a 0-d float32 view into a parameter's memory: the step count must not be written
    into the parameter. The C++ driver rejects the overlap (nothing changed); the Python path installs a
    fresh step array instead of writing into the view."""
    opt, params, rng = make(name, 2)
    twin, twin_params, twin_rng = make(name, 2)
    grads, twin_grads = good_grads(params, rng, name), good_grads(twin_params, twin_rng, name)
    t = next(i for i, p in enumerate(params) if p.dtype in (np.float32, np.float64) and p.size >= 2)
    view = params[t].reshape(-1).view(np.float32)[:1].reshape(())
    view[()] = opt.state[t]["step"]  # a valid count (the twin's parameter gets the same bytes)
    twin_params[t].reshape(-1).view(np.float32)[0] = view
    opt.state[t]["step"] = view
    before = params[t].copy()
    try:
        opt.step(grads)
    except ValueError as e:
        assert "overlap" in str(e) and f"parameter {t}" in str(e)
        assert np.array_equal(params[t], before)
        return
    twin.step(twin_grads)
    assert opt.state[t]["step"] is not view
    for p, q in zip(params, twin_params):
        assert_same_value(p, q, "parameter")


# ==================================================================================== load_state_dict


def _saved(name: str) -> Dict[str, Any]:
    """A valid state dict for the two-group model (other values than ``make``'s, so loading would change it)."""
    other, params, rng = make(name, 3, seed=7)
    for group in other.param_groups:
        group["lr"] = group["lr"] * 3
    return other.state_dict()




def _set(path_value):
    def apply(sd, name):
        *path, value = path_value(name)
        target = sd
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = value
        return sd
    return apply


def _invalid_group_hyper(name):
    return {
        "SGD": {"nesterov": True, "dampening": 0.1},
        "Adam": {"eps": -1e-8},  # betas out of range load, as step() takes them
        "AdamW": {"weight_decay": -0.5},  # betas out of range load, as step() takes them
        "RMSprop": {"alpha": -0.5},
        "Adagrad": {"lr_decay": -0.5},
        "Adadelta": {"rho": 1.5},
        "ASGD": {"weight_decay": -0.5},
        "Rprop": {"etas": [0.5, 0.9]},
        "Adamax": {"eps": -1.0},  # betas out of range load, as step() takes them
        "NAdam": {"eps": -1.0},  # betas out of range load, as step() takes them
        "RAdam": {"eps": -1.0},  # betas out of range load, as step() takes them
        "Lion": {"betas": (0.9, 1.5)},
        "LAMB": {"betas": (1.0, 0.999)},
        "Adan": {"betas": [0.9, 0.9, 1.5]},
        "AdaBelief": {"betas": (0.9, -0.1)},
        "ScheduleFreeAdamW": {"betas": (0.0, 0.999)},
        "Adafactor": {"d": 0.5},
        "SparseAdam": {"eps": 0.0},
    }[name]


LOAD_CASES: Dict[str, Tuple[Callable, type, Callable[[str], str], bool]] = {
    # id: (corrupt(sd, name) -> bad state dict, exception, name -> regex, needs 'step')
    "not_a_dict": (lambda sd, name: [sd], ValueError, lambda n: "'state' and 'param_groups'", False),
    "missing_param_groups": (lambda sd, name: {"state": sd["state"]}, ValueError,
                             lambda n: "'state' and 'param_groups'", False),
    "fewer_groups": (lambda sd, name: dict(sd, param_groups=sd["param_groups"][:1]), ValueError,
                     lambda n: "different number of parameter groups", False),
    "more_groups": (lambda sd, name: dict(sd, param_groups=sd["param_groups"] + [dict(sd["param_groups"][1],
                                                                                    params=[6])]),
                    ValueError, lambda n: "different number of parameter groups", False),
    "group_too_small": (lambda sd, name: (sd["param_groups"][1].update(params=[3, 4]), sd)[1], ValueError,
                        lambda n: "doesn't match the size of optimizer's group", False),
    "group_too_large": (lambda sd, name: (sd["param_groups"][0].update(params=[0, 1, 2, 6]), sd)[1], ValueError,
                        lambda n: "doesn't match the size of optimizer's group", False),
    "bad_param_id": (lambda sd, name: (sd["param_groups"][0].update(params=[0, "x", 2]), sd)[1], ValueError,
                     lambda n: "parameter ids must be integers", False),
    "state_wrong_shape_last_param": (
        _set(lambda n: ("state", 5, key_of(n, 5), np.zeros(11))), ValueError,
        lambda n: words_pattern(f"state '{key_of(n, 5)}' of parameter 5", "shape (11,)"), False),
    "state_same_size_other_shape": (
        _set(lambda n: ("state", 0, key_of(n, 0), np.zeros((4, 3), np.float32))), ValueError,
        lambda n: words_pattern(f"state '{key_of(n, 0)}' of parameter 0", "shape (4, 3)"), False),
    "state_complex_dtype": (
        _set(lambda n: ("state", 4, key_of(n, 4), np.zeros((2, 3), np.complex128))), TypeError,
        lambda n: words_pattern(f"state '{key_of(n, 4)}' of parameter 4", "dtype complex128"), False),
    "state_unknown_key": (_set(lambda n: ("state", 2, "bogus", np.zeros(20, np.float32))), ValueError,
                          lambda n: words_pattern("unknown state 'bogus'", "parameter 2"), False),
    "state_entry_not_a_dict": (_set(lambda n: ("state", 1, [1, 2])), ValueError,
                               lambda n: words_pattern("state of parameter 1", "dict"), False),
    "negative_step": (_set(lambda n: ("state", 4, "step", np.array(-1.0, np.float32))), ValueError,
                      lambda n: words_pattern("state 'step' of parameter 4", ">= 0"), True),
    "nan_step": (_set(lambda n: ("state", 4, "step", np.array(np.nan, np.float32))), ValueError,
                 lambda n: words_pattern("state 'step' of parameter 4", "finite"), True),
    "inf_step": (_set(lambda n: ("state", 0, "step", float("inf"))), ValueError,
                 lambda n: words_pattern("state 'step' of parameter 0", "finite"), True),
    "step_past_float32": (_set(lambda n: ("state", 0, "step", 1e39)), ValueError,
                          lambda n: words_pattern("state 'step' of parameter 0", "float32"), True),
    "vector_step": (_set(lambda n: ("state", 0, "step", np.array([1.0, 2.0]))), ValueError,
                    lambda n: words_pattern("state 'step' of parameter 0", "scalar"), True),
    "nan_lr_in_group": (_set(lambda n: ("param_groups", 1, "lr", float("nan"))), ValueError,
                        lambda n: REGISTRY[n].get("lr_error", "Invalid learning rate"), False),
    "string_lr_in_group": (_set(lambda n: ("param_groups", 0, "lr", "fast")), TypeError, lambda n: "lr", False),
    "optimizer_specific_invalid_hyper_in_group": (
        lambda sd, name: (sd["param_groups"][1].update(_invalid_group_hyper(name)), sd)[1], ValueError,
        lambda n: "Nesterov momentum|Invalid beta parameter at index|Invalid alpha value|Invalid lr_decay value|"
                  "Invalid rho value|Invalid weight_decay value|Invalid eta values|"
                  "Clipping threshold|Invalid epsilon value", False),
    "unsupported_flag_in_group": (_set(lambda n: ("param_groups", 0, "differentiable", True)), ValueError,
                                  lambda n: words_pattern("differentiable", "not supported"), False),
}

LOAD_IDS = [(name, case) for name in NAMES for case in LOAD_CASES
            if (REGISTRY[name]["has_step"] or not LOAD_CASES[case][3])
            and not (name == "SparseAdam" and case == "step_past_float32")]  # its step is a Python int, as torch's


@pytest.mark.parametrize("steps", STEPS, ids=STEPS_IDS)
@pytest.mark.parametrize("name,case", LOAD_IDS, ids=[f"{n}-{c}" for n, c in LOAD_IDS])
def test_load_state_dict_rejects_bad_input_and_changes_nothing(name, case, steps):
    opt, params, rng = make(name, steps)
    corrupt, exc, pattern, _ = LOAD_CASES[case]
    bad = corrupt(_saved(name), name)
    expect_no_change(opt, lambda: opt.load_state_dict(bad), exc, pattern(name))
    # Nothing half-installed: the next step matches a twin that never saw the bad state dict.
    twin, twin_params, twin_rng = make(name, steps)
    opt.step(good_grads(params, rng, name))
    twin.step(good_grads(twin_params, twin_rng, name))
    for p, q in zip(params, twin_params):
        assert_same_value(p, q, "parameter")
    assert_same_value(opt.state, twin.state, "state")


@pytest.mark.parametrize("name", NAMES)
def test_load_state_dict_control_good_input_loads(name):
    """The unmodified state dict of the cases above loads, and does change the optimizer."""
    opt, params, rng = make(name, 1)
    saved = _saved(name)
    opt.load_state_dict(saved)
    assert opt.param_groups[0]["lr"] == saved["param_groups"][0]["lr"] != REGISTRY[name]["kwargs"]["lr"]
    key = key_of(name, 5)
    assert_same_value(opt.state[5][key], saved["state"][5][key], "loaded state")
    assert all(a is b for a, b in zip(flat(g["params"] for g in opt.param_groups), params))  # same objects


# =============================================================================== the harness itself

REGISTRY_KEY = {name: key_of(name, 4) for name in NAMES}
HARNESS_MUTATIONS = {
    "param_value": lambda opt: opt.param_groups[1]["params"][2].__setitem__(9, np.nextafter(
        opt.param_groups[1]["params"][2][9], np.inf)),
    "param_replaced_by_equal_copy": lambda opt: opt.param_groups[0]["params"].__setitem__(
        1, opt.param_groups[0]["params"][1].copy()),
    "hyperparameter": lambda opt: opt.param_groups[1].__setitem__("lr", opt.param_groups[1]["lr"] * 2),
    "hyperparameter_added": lambda opt: opt.param_groups[0].__setitem__("initial_lr", 1.0),
    "group_added": lambda opt: opt.param_groups.append({"params": []}),
    "state_value": lambda opt: opt.state[4][REGISTRY_KEY[type(opt).__name__]].__iadd__(1),
    "state_buffer_replaced_by_equal_copy": lambda opt: opt.state[4].__setitem__(
        REGISTRY_KEY[type(opt).__name__], opt.state[4][REGISTRY_KEY[type(opt).__name__]].copy()),
    "state_buffer_dtype": lambda opt: opt.state[4].__setitem__(
        REGISTRY_KEY[type(opt).__name__], opt.state[4][REGISTRY_KEY[type(opt).__name__]].astype(np.float32)),
    "state_key_added": lambda opt: opt.state[0].__setitem__("extra", None),
    "state_entry_removed": lambda opt: opt.state.pop(5),
    "state_entry_added": lambda opt: opt.state.__setitem__(6, {}),
}


@pytest.mark.parametrize("mutation", list(HARNESS_MUTATIONS))
@pytest.mark.parametrize("name", NAMES)
def test_snapshot_detects_every_kind_of_change(name, mutation):
    """The 'modified nothing' checks must be able to fail: any one change, even an equal-valued copy in
    place of the original array, is caught."""
    opt, params, rng = make(name, 2)
    snap = Snapshot(opt)
    snap.check()
    HARNESS_MUTATIONS[mutation](opt)
    with pytest.raises(AssertionError):
        snap.check()


@pytest.mark.parametrize("name", NAMES)
def test_expect_no_change_catches_state_created_on_a_first_step(name):
    opt, params, rng = make(name, 0)

    def sneaky():
        opt.state[0] = {}
        raise ValueError("parameter 0 is bad")

    with pytest.raises(AssertionError):
        expect_no_change(opt, sneaky, ValueError, "parameter 0")


# ============================================================================= numbers past their types


def test_hyperparameter_past_floats_range_is_a_value_error():
    """float(10**400) overflows: a clear ValueError, at construction and at a step (nothing changed)."""
    p = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="too large for a float"):
        fastoptim.Adam([p], lr=10**400)
    opt = fastoptim.Adam([p])
    opt.param_groups[0]["weight_decay"] = 10**400
    with pytest.raises(ValueError, match="too large for a float"):
        opt.step([np.ones(3, np.float32)])
    assert opt.state == {} and not p.any()


def test_load_rejects_a_rounding_counter_past_int64():
    opt = fastoptim.SGD([np.zeros(3, np.float32)], lr=0.1, momentum=0.9, state_dtype="bfloat16",
                        stochastic_rounding=True)
    opt.step([np.ones(3, np.float32)])
    sd = opt.state_dict()
    sd["rounding"]["step"] = 2**64
    with pytest.raises(ValueError, match="rounding"):
        opt.load_state_dict(sd)
    opt.step([np.ones(3, np.float32)])  # still steps


@pytest.mark.parametrize("name,key,value", [("ScheduleFreeAdamW", "k", 10**400), ("ScheduleFreeAdamW", "k", 2**63),
                                            ("ScheduleFreeAdamW", "warmup_steps", 2**64), ("Adan", "step", 10**400)])
def test_load_rejects_group_counts_past_int64(name, key, value):
    p = np.ones(3)
    opt = getattr(fastoptim, name)([p], lr=0.1)
    if name == "ScheduleFreeAdamW":
        opt.train()
    opt.step([np.ones(3)])
    sd = opt.state_dict()
    sd["param_groups"][0][key] = value
    with pytest.raises(ValueError, match=key):
        opt.load_state_dict(sd)
    opt.step([np.ones(3)])  # still steps


def test_schedulefree_weight_overflow_is_a_value_error_and_changes_nothing():
    p = np.ones(3)
    opt = fastoptim.ScheduleFreeAdamW([p], lr=0.1)
    opt.train()
    opt.step([np.ones(3)])
    opt.param_groups[0]["lr_max"] = 1e308  # lr_max ** 2 overflows
    before, state = p.copy(), {k: v.copy() for k, v in opt.state[0].items()}
    with pytest.raises(ValueError, match="overflows"):
        opt.step([np.ones(3)])
    assert np.array_equal(p, before) and all(np.array_equal(opt.state[0][k], v) for k, v in state.items())
    assert opt.param_groups[0]["k"] == 1


@pytest.mark.parametrize("key", ["max_iter", "max_eval", "history_size"])
def test_lbfgs_limits_past_int64_are_rejected(key):
    with pytest.raises(ValueError, match=f"Invalid {key} value"):
        fastoptim.LBFGS([np.zeros(2)], **{key: 2**63})


@pytest.mark.parametrize("bad", ["False", 1, None])
def test_functional_first_step_must_be_a_bool(bad):
    from fastoptim import functional as F

    p, g, buf = np.zeros(3), np.ones(3), np.full(3, 5.0)
    with pytest.raises(TypeError, match="first_step"):
        F.sgd_(p, g, buf, lr=0.1, momentum=0.9, first_step=bad)
    assert not p.any() and (buf == 5.0).all()


@pytest.mark.parametrize("bad,exc", [("3", TypeError), (True, TypeError), (10**400, ValueError),
                                     (float("inf"), ValueError), (1.5, ValueError), (0, ValueError)])
def test_functional_step_must_be_a_positive_integer(bad, exc):
    from fastoptim import functional as F

    p, g, m, v = np.zeros(3), np.ones(3), np.zeros(3), np.zeros(3)
    with pytest.raises(exc, match="step must be a positive integer"):
        F.adam_(p, g, m, v, bad, lr=0.1)
    assert not p.any() and not m.any() and not v.any()
