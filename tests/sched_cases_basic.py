"""Parity cases for StepLR and ReduceLROnPlateau (randomized with a fixed seed; the golden file stores
the arguments, so golden tests do not depend on the generator)."""

import numpy as np

_rng = np.random.default_rng(20261129)
KINDS = ["sgd", "adam", "rmsprop"]

CASES = []
for k in range(6):
    CASES.append(dict(
        id=f"StepLR-{k}", name="StepLR", kind=KINDS[k % 3], steps=1000,
        kwargs=dict(step_size=int(_rng.integers(1, 60)), gamma=float(_rng.uniform(0.3, 0.99))),
    ))


def _metrics(n, rng, kind):
    """A noisy decreasing curve with plateaus, NaNs now and then, and for 'max' mode its mirror."""
    t = np.arange(n)
    base = 1.0 / (1.0 + 0.02 * t) + 0.02 * rng.standard_normal(n)
    base[rng.random(n) < 0.02] = np.nan
    base[n // 3: n // 2] = base[n // 3]  # an exact plateau
    return [float(x) for x in (base if kind == "min" else -base)]


for k in range(8):
    mode = "min" if k % 2 == 0 else "max"
    kwargs = dict(
        mode=mode, factor=float(_rng.uniform(0.1, 0.9)), patience=int(_rng.integers(0, 12)),
        threshold=float(10 ** _rng.uniform(-5, -1)), threshold_mode=["rel", "abs"][(k // 2) % 2],
        cooldown=int(_rng.integers(0, 6)),
        min_lr=[1e-4, 5e-5] if k % 3 == 0 else float(10 ** _rng.uniform(-6, -3)),
        eps=1e-8 if k != 5 else 1e-4,
    )
    CASES.append(dict(id=f"ReduceLROnPlateau-{k}", name="ReduceLROnPlateau", kind=KINDS[k % 3], steps=1000,
                      kwargs=kwargs, metrics=_metrics(1000, _rng, mode)))
