"""Numpy references for the optimizers torch.optim lacks, written from each paper's algorithm box and its
public reference implementation (named in each class), for checking fastoptim's kernels.

Each reference runs in the arrays' dtype: float64 is the reference proper; float32 mirrors what the
public implementations compute in float32 (numpy rounds every operation in the array's dtype; Python
scalars do not promote it). The formulas are the papers' where that does not change the algorithm, so the
comparison also catches a kernel that follows its reference's operation order into a mistake.

``run_reference`` and ``run_ours`` drive the problem of tests/parity.py (two param groups, four parameters,
gradients fed back through the parameters, a missing gradient every fifth step) and return trajectories.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Dict, List, Optional

import numpy as np

import fastoptim
import parity

STEPS = 300


def _norm(x: np.ndarray) -> float:
    return math.sqrt(float(np.sum(np.square(x.astype(np.float64)))))


class Reference:
    """Param groups of arrays, per-parameter state by index; ``step(grads)`` as the optimizers'."""

    defaults: Dict[str, Any] = {}

    def __init__(self, groups: List[Dict[str, Any]], **config) -> None:
        self.groups = [{**self.defaults, **config, **g} for g in groups]
        self.state: Dict[int, Dict[str, Any]] = {}

    def step(self, grads: List[Optional[np.ndarray]]) -> None:
        index = 0
        for group in self.groups:
            self.begin_group(group)
            for p in group["params"]:
                g = grads[index]
                if g is not None:
                    g = -g if group.get("maximize") else g
                    self.update(p, g, self.state.setdefault(index, {}), group)
                index += 1

    def begin_group(self, group: Dict[str, Any]) -> None:
        pass

    def update(self, p, g, state, group) -> None:
        raise NotImplementedError


class LionRef(Reference):
    """Chen et al. 2023, Algorithm 2; lion-pytorch's update_fn."""

    defaults = dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0)

    def update(self, p, g, state, group):
        lr, wd = group["lr"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        m = state.setdefault("exp_avg", np.zeros_like(p))
        c = beta1 * m + (1 - beta1) * g
        p[...] = p * (1 - lr * wd) - lr * np.sign(c)
        m[...] = beta2 * m + (1 - beta2) * g


class LAMBRef(Reference):
    """You et al. 2019, Algorithm 2 (LAMB) with phi(z) = min(z, clamp_value), as torch-optimizer's Lamb."""

    defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, bias_correction=True,
                    clamp_value=10.0, trust_clip=False, exclude_from_layer_adaptation=False)

    def update(self, p, g, state, group):
        beta1, beta2 = group["betas"]
        t = state["step"] = state.get("step", 0) + 1
        m = state.setdefault("exp_avg", np.zeros_like(p))
        v = state.setdefault("exp_avg_sq", np.zeros_like(p))
        m[...] = beta1 * m + (1 - beta1) * g
        v[...] = beta2 * v + (1 - beta2) * g * g
        m_hat, v_hat = (m / (1 - beta1 ** t), v / (1 - beta2 ** t)) if group["bias_correction"] else (m, v)
        r = m_hat / (np.sqrt(v_hat) + group["eps"]) + group["weight_decay"] * p
        phi = min(_norm(p), group["clamp_value"])
        r_norm = _norm(r)
        trust = phi / r_norm if phi > 0 and r_norm > 0 else 1.0
        if group["trust_clip"]:
            trust = min(trust, 1.0)
        if group["exclude_from_layer_adaptation"]:
            trust = 1.0
        p[...] = p - group["lr"] * trust * r


class AdanRef(Reference):
    """Xie et al. 2022, Algorithm 1, with the official implementation's conventions (sail-sg/Adan):
    betas are decay rates, the step count is the group's, the first difference is 0."""

    defaults = dict(lr=1e-3, betas=(0.98, 0.92, 0.99), eps=1e-8, weight_decay=0.0, no_prox=False)

    def begin_group(self, group):
        group["step"] = group.get("step", 0) + 1

    def update(self, p, g, state, group):
        beta1, beta2, beta3 = group["betas"]
        lr, wd, t = group["lr"], group["weight_decay"], group["step"]
        m = state.setdefault("exp_avg", np.zeros_like(p))
        n = state.setdefault("exp_avg_sq", np.zeros_like(p))
        a = state.setdefault("exp_avg_diff", np.zeros_like(p))
        if "pre_grad" not in state or t == 1:
            state["pre_grad"] = g.copy()
        d = g - state["pre_grad"]
        m[...] = beta1 * m + (1 - beta1) * g
        a[...] = beta2 * a + (1 - beta2) * d
        n[...] = beta3 * n + (1 - beta3) * (g + beta2 * d) ** 2
        denom = np.sqrt(n) / math.sqrt(1 - beta3 ** t) + group["eps"]
        update = lr / (1 - beta1 ** t) * m / denom + lr * beta2 / (1 - beta2 ** t) * a / denom
        if group["no_prox"]:
            p[...] = p * (1 - lr * wd) - update
        else:
            p[...] = (p - update) / (1 + lr * wd)
        state["pre_grad"] = g.copy()


class AdaBeliefRef(Reference):
    """Zhuang et al. 2020, Algorithm 2, with the adabelief-pytorch (0.2.x) options: decoupled or fixed weight
    decay, amsgrad, and RAdam's rectification (Liu et al. 2020)."""

    defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-16, weight_decay=0.0, amsgrad=False, weight_decouple=True,
                    fixed_decay=False, rectify=True, degenerated_to_sgd=True)

    def update(self, p, g, state, group):
        beta1, beta2 = group["betas"]
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        t = state["step"] = state.get("step", 0) + 1
        m = state.setdefault("exp_avg", np.zeros_like(p))
        s = state.setdefault("exp_avg_var", np.zeros_like(p))
        if group["weight_decouple"]:
            p[...] = p * (1 - (wd if group["fixed_decay"] else lr * wd))
        else:
            g = g + wd * p
        m[...] = beta1 * m + (1 - beta1) * g
        s[...] = beta2 * s + (1 - beta2) * (g - m) ** 2 + eps
        s_used = s
        if group["amsgrad"]:
            s_max = state.setdefault("max_exp_avg_var", np.zeros_like(p))
            s_max[...] = np.maximum(s_max, s)
            s_used = s_max
        bc1, bc2 = 1 - beta1 ** t, 1 - beta2 ** t
        if not group["rectify"]:
            p[...] = p - lr / bc1 * m / (np.sqrt(s_used) / math.sqrt(bc2) + eps)
            return
        rho_inf = 2 / (1 - beta2) - 1
        rho = rho_inf - 2 * t * beta2 ** t / bc2
        if rho >= 5:
            r_t = math.sqrt(bc2 * (rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            p[...] = p - lr * r_t / bc1 * m / (np.sqrt(s) + eps)
        elif group["degenerated_to_sgd"]:
            p[...] = p - lr / bc1 * m


class ScheduleFreeAdamWRef(Reference):
    """Defazio et al. 2024, Algorithm 1 (AdamW form), as facebookresearch/schedulefree's AdamWScheduleFree:
    x, y and z kept explicitly here (the reference and fastoptim keep only y and z)."""

    defaults = dict(lr=0.0025, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, warmup_steps=0, r=0.0,
                    weight_lr_power=2.0)

    def begin_group(self, group):
        k = group.get("k", 0)
        beta2 = group["betas"][1]
        lr = group["lr"] * (min(1.0, (k + 1) / group["warmup_steps"]) if group["warmup_steps"] else 1.0)
        group["lr_max"] = max(lr, group.get("lr_max", -1.0))
        weight = (k + 1) ** group["r"] * group["lr_max"] ** group["weight_lr_power"]
        group["weight_sum"] = group.get("weight_sum", 0.0) + weight
        group["c"] = weight / group["weight_sum"] if group["weight_sum"] else 0.0
        group["lr_k"], group["bc2"], group["k"] = lr, 1 - beta2 ** (k + 1), k + 1

    def update(self, p, g, state, group):
        beta1, beta2 = group["betas"]
        c, lr = group["c"], group["lr_k"]
        if "z" not in state:
            state["z"], state["x"] = p.copy(), p.copy()
            state["exp_avg_sq"] = np.zeros_like(p)
        z, x, v = state["z"], state["x"], state["exp_avg_sq"]
        y = p  # gradients are taken at y
        v[...] = beta2 * v + (1 - beta2) * g * g
        u = g / (np.sqrt(v / group["bc2"]) + group["eps"]) + group["weight_decay"] * y
        z[...] = z - lr * u
        x[...] = (1 - c) * x + c * z
        p[...] = (1 - beta1) * z + beta1 * x  # the next y


REFERENCES = {"Lion": LionRef, "LAMB": LAMBRef, "Adan": AdanRef, "AdaBelief": AdaBeliefRef,
              "ScheduleFreeAdamW": ScheduleFreeAdamWRef}


# ------------------------------------------------------------------------------------- registry

def _product(**axes):
    keys = list(axes)
    return [dict(zip(keys, values)) for values in itertools.product(*axes.values())]


# name -> configs (every flag and option), group-1 overrides.
CONFIGS: Dict[str, Dict[str, Any]] = {
    "Lion": dict(configs=_product(lr=[3e-3], weight_decay=[0.0, 0.5], maximize=[False, True]) +
                 [dict(lr=1e-3, betas=(0.95, 0.98), weight_decay=0.1)],
                 group1=dict(lr=1e-3, betas=(0.8, 0.9))),
    "LAMB": dict(configs=_product(lr=[1e-2], weight_decay=[0.0, 0.01], bias_correction=[True, False],
                                  trust_clip=[False, True]) +
                 [dict(lr=1e-2, clamp_value=0.5, maximize=True, weight_decay=0.1),
                  dict(lr=5e-3, exclude_from_layer_adaptation=True, eps=1e-8)],
                 group1=dict(lr=3e-3, betas=(0.8, 0.99), exclude_from_layer_adaptation=True, weight_decay=0.0)),
    "Adan": dict(configs=_product(lr=[1e-2], weight_decay=[0.0, 0.02], no_prox=[False, True]) +
                 [dict(lr=1e-2, weight_decay=0.02, maximize=True), dict(lr=3e-3, betas=(0.9, 0.9, 0.999))],
                 group1=dict(lr=3e-3, betas=(0.9, 0.8, 0.95))),
    # Half of the 2**4 flag combinations (weight decay on when an odd number of the other flags is): every
    # flag and every pair of flags in both states.
    "AdaBelief": dict(configs=[c for c in _product(lr=[1e-2], rectify=[True, False], amsgrad=[False, True],
                                                   weight_decouple=[True, False], weight_decay=[0.0, 1e-2])
                               if (c["rectify"] + c["amsgrad"] + (not c["weight_decouple"])
                                   + (c["weight_decay"] > 0)) % 2 == 0] +
                      [dict(lr=1e-2, weight_decay=0.1, fixed_decay=True, maximize=True),
                       dict(lr=1e-2, rectify=True, degenerated_to_sgd=False, eps=1e-8)],
                      group1=dict(lr=3e-3, betas=(0.8, 0.99))),
    "ScheduleFreeAdamW": dict(configs=_product(lr=[1e-2], warmup_steps=[0, 50], weight_decay=[0.0, 0.01]) +
                              [dict(lr=1e-2, r=0.5, weight_lr_power=1.0, maximize=True),
                               dict(lr=3e-3, betas=(0.95, 0.99), eps=1e-6, weight_lr_power=0.0)],
                              group1=dict(lr=3e-3, betas=(0.8, 0.99))),
}

NAMES = list(CONFIGS)


def cases():
    for name, entry in CONFIGS.items():
        for k in range(len(entry["configs"])):
            for dt in parity.DTYPES:
                yield name, k, dt


def case_seed(name: str, k: int, dtype: str) -> int:
    return parity.case_seed(name, k, dtype)


def _groups(params, name):
    g1 = CONFIGS[name]["group1"]
    return [{"params": [params[i] for i in parity.GROUPS[0]]},
            dict({"params": [params[i] for i in parity.GROUPS[1]]}, **g1)]


def _trajectory(opt, params, seed, steps):
    traj = [np.concatenate([p.ravel() for p in params])]
    for t in range(1, steps + 1):
        opt.step([parity.gradient(p, seed, t, i) for i, p in enumerate(params)])
        traj.append(np.concatenate([p.ravel() for p in params]))
    return np.stack(traj)


def run_reference(name: str, config: Dict[str, Any], dtype, seed: int, steps: int = STEPS) -> np.ndarray:
    params = parity.initial_params(dtype, seed)
    return _trajectory(REFERENCES[name](_groups(params, name), **config), params, seed, steps)


def make_ours(name: str, params, config: Dict[str, Any]):
    opt = getattr(fastoptim, name)(_groups(params, name), **config)
    if name == "ScheduleFreeAdamW":
        opt.train()
    return opt


def run_ours(name: str, config: Dict[str, Any], dtype, seed: int, steps: int = STEPS) -> np.ndarray:
    params = parity.initial_params(dtype, seed)
    return _trajectory(make_ours(name, params, config), params, seed, steps)


def relative_deviation(traj: np.ndarray, ref: np.ndarray) -> float:
    """Largest |traj - ref| over steps and elements, relative to each parameter's largest |ref| over the run
    (infinite where one is finite and the other is not)."""
    worst = 0.0
    for sl in parity.param_slices():
        r, x = ref[:, sl].astype(np.float64), traj[:, sl].astype(np.float64)
        if not np.array_equal(np.isfinite(r), np.isfinite(x)):
            return math.inf
        scale = np.max(np.abs(r[np.isfinite(r)]), initial=0.0)
        dev = np.max(np.abs(np.where(np.isfinite(r), x - r, 0.0)), initial=0.0)
        worst = max(worst, dev / scale if scale > 0 else dev)
    return worst


# ------------------------------------------------- the public implementations (optional, torch-based)

# name -> (module to import, group-1 overrides the package can express, config filter)
PACKAGES = {
    "Lion": ("lion_pytorch", None, lambda c: True),
    # torch-optimizer's Lamb has no trust_clip or per-group exclusion, and its debias differs (see LAMB).
    "LAMB": ("torch_optimizer", dict(lr=3e-3, betas=(0.8, 0.99)),
             lambda c: not c.get("bias_correction", True) and not c.get("trust_clip", False)
             and not c.get("exclude_from_layer_adaptation", False)),
    "AdaBelief": ("adabelief_pytorch", None, lambda c: True),
    "ScheduleFreeAdamW": ("schedulefree", None, lambda c: True),
}


def _package_optimizer(name: str, groups, config: Dict[str, Any]):
    kwargs = {k: v for k, v in config.items() if k != "maximize"}  # maximize: the gradients are negated
    if name == "Lion":
        from lion_pytorch import Lion
        return Lion(groups, **kwargs)
    if name == "LAMB":
        from torch_optimizer import Lamb
        for key in ("bias_correction", "trust_clip", "exclude_from_layer_adaptation"):  # False here, see PACKAGES
            kwargs.pop(key, None)
        return Lamb(groups, debias=False, **kwargs)
    if name == "AdaBelief":
        from adabelief_pytorch import AdaBelief
        return AdaBelief(groups, print_change_log=False, **kwargs)
    if name == "ScheduleFreeAdamW":
        from schedulefree import AdamWScheduleFree
        opt = AdamWScheduleFree(groups, foreach=False, **kwargs)
        opt.train()
        return opt
    raise KeyError(name)


def package_cases():
    for name, (module, _, keep) in PACKAGES.items():
        for k, config in enumerate(CONFIGS[name]["configs"]):
            if keep(config):
                for dt in parity.DTYPES:
                    yield name, k, dt


def run_package(name: str, config: Dict[str, Any], dtype, seed: int, steps: int = STEPS,
                params_out: Optional[list] = None) -> np.ndarray:
    """The public implementation's trajectory on the same problem (torch tensors over the same values)."""
    import contextlib
    import io

    import torch

    group1 = PACKAGES[name][1] or CONFIGS[name]["group1"]
    params = [torch.from_numpy(p).requires_grad_(True) for p in parity.initial_params(dtype, seed)]
    groups = [{"params": [params[i] for i in parity.GROUPS[0]]},
              dict({"params": [params[i] for i in parity.GROUPS[1]]}, **group1)]
    with contextlib.redirect_stdout(io.StringIO()):  # adabelief-pytorch prints its settings
        opt = _package_optimizer(name, groups, config)
    sign = -1 if config.get("maximize") else 1
    traj = [np.concatenate([p.detach().numpy().ravel() for p in params])]
    for t in range(1, steps + 1):
        for i, p in enumerate(params):
            g = parity.gradient(p.detach().numpy(), seed, t, i)
            p.grad = None if g is None else torch.from_numpy(sign * g)
        opt.step()
        traj.append(np.concatenate([p.detach().numpy().ravel() for p in params]).copy())
    if params_out is not None:
        params_out.append(opt)
    return np.stack(traj)


def run_ours_like_package(name: str, config: Dict[str, Any], dtype, seed: int, steps: int = STEPS) -> np.ndarray:
    params = parity.initial_params(dtype, seed)
    group1 = PACKAGES[name][1] or CONFIGS[name]["group1"]
    groups = [{"params": [params[i] for i in parity.GROUPS[0]]},
              dict({"params": [params[i] for i in parity.GROUPS[1]]}, **group1)]
    opt = getattr(fastoptim, name)(groups, **config)
    if name == "ScheduleFreeAdamW":
        opt.train()
    return _trajectory(opt, params, seed, steps)
