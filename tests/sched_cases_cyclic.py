"""Parity cases for CosineAnnealingLR, CosineAnnealingWarmRestarts, CyclicLR and OneCycleLR (randomized
with a fixed seed; the golden file stores the arguments, so golden tests do not depend on the generator)."""

import numpy as np

_rng = np.random.default_rng(20261130)
KINDS = ["sgd", "adam", "rmsprop"]

CASES = []

for k in range(6):
    CASES.append(dict(
        id=f"CosineAnnealingLR-{k}", name="CosineAnnealingLR", kind=KINDS[k % 3], steps=1000,
        kwargs=dict(T_max=int(_rng.integers(1, 300)), eta_min=[0.0, 1e-4, 0.0, 3e-5, 1e-6, 0.0][k]),
    ))
CASES.append(dict(id="CosineAnnealingLR-Tmax1", name="CosineAnnealingLR", kind="sgd", steps=1000,
                  kwargs=dict(T_max=1, eta_min=1e-3)))

for k in range(6):
    CASES.append(dict(
        id=f"CosineAnnealingWarmRestarts-{k}", name="CosineAnnealingWarmRestarts", kind=KINDS[k % 3], steps=1000,
        kwargs=dict(T_0=int(_rng.integers(1, 60)), T_mult=[1, 2, 3, 1, 2, 1][k],
                    eta_min=float(10 ** _rng.uniform(-6, -4)) if k % 2 else 0.0),
    ))

_modes = ["triangular", "triangular2", "exp_range"]
for k in range(9):
    kind = ["sgd", "adam", "rmsprop"][k % 3]
    mode = _modes[k // 3]
    base = [1e-4, 3e-5] if k % 2 else float(10 ** _rng.uniform(-5, -3))
    kwargs = dict(
        base_lr=base, max_lr=[1e-2, 5e-3] if k % 4 == 1 else float(10 ** _rng.uniform(-3, -1)),
        step_size_up=int(_rng.integers(1, 80)),
        step_size_down=None if k % 3 == 0 else int(_rng.integers(1, 80)),
        mode=mode, gamma=float(_rng.uniform(0.99, 0.9999)) if mode == "exp_range" else 1.0,
        scale_mode=["cycle", "iterations"][k % 2],
        cycle_momentum=kind != "rmsprop" or k % 2 == 0,
        base_momentum=[0.8, 0.75] if k % 3 == 1 else float(_rng.uniform(0.7, 0.85)),
        max_momentum=0.9 if k % 2 else [0.95, 0.9],
    )
    CASES.append(dict(id=f"CyclicLR-{k}", name="CyclicLR", kind=kind, steps=1000, kwargs=kwargs))
CASES.append(dict(id="CyclicLR-nomomentum", name="CyclicLR", kind="adam", steps=1000,
                  kwargs=dict(base_lr=1e-4, max_lr=1e-3, step_size_up=37, cycle_momentum=False)))


def _scale_half(x):
    return 0.5 ** x


CASES.append(dict(id="CyclicLR-scale_fn", kind="sgd", steps=1000,
                  build=lambda module, opt: module.CyclicLR(opt, base_lr=1e-3, max_lr=1e-2, step_size_up=25,
                                                            scale_fn=_scale_half, scale_mode="cycle")))
CASES.append(dict(id="CyclicLR-scale_fn-iterations", kind="adam", steps=1000,
                  build=lambda module, opt: module.CyclicLR(opt, base_lr=1e-3, max_lr=1e-2, step_size_up=25,
                                                            step_size_down=10, scale_fn=lambda x: 1 / (1 + 0.01 * x),
                                                            scale_mode="iterations")))

for k in range(10):
    kind = ["sgd", "adam", "rmsprop"][k % 3]
    total = int(_rng.integers(1000, 1400))
    kwargs = dict(
        max_lr=[0.1, 0.05] if k % 3 == 1 else float(10 ** _rng.uniform(-3, -1)),
        pct_start=float(_rng.uniform(0.05, 0.5)),
        anneal_strategy=["cos", "linear"][k % 2],
        cycle_momentum=kind != "rmsprop" or k % 2 == 0,
        base_momentum=[0.8, 0.75] if k % 4 == 2 else 0.85,
        max_momentum=[0.95, 0.9] if k % 4 == 2 else 0.95,
        div_factor=float(_rng.uniform(5, 50)),
        final_div_factor=float(10 ** _rng.uniform(2, 5)),
        three_phase=k >= 5,
    )
    if k % 5 == 3:
        kwargs.update(epochs=10, steps_per_epoch=int(_rng.integers(100, 140)))
        steps = kwargs["epochs"] * kwargs["steps_per_epoch"]
    else:
        kwargs.update(total_steps=total)
        steps = total
    CASES.append(dict(id=f"OneCycleLR-{k}", name="OneCycleLR", kind=kind, steps=steps, kwargs=kwargs))
