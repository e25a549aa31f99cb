"""Parity cases for MultiStepLR, ConstantLR, LinearLR, ExponentialLR, PolynomialLR, LambdaLR and
MultiplicativeLR (randomized with a fixed seed; the golden file stores the arguments, so golden tests do
not depend on the generator). The callables of LambdaLR / MultiplicativeLR cases are built from the JSON
arguments in ``kwargs`` by ``build``, so the same deterministic Python functions drive torch and fastoptim."""

import math

import numpy as np

_rng = np.random.default_rng(20261130)
KINDS = ["sgd", "adam", "rmsprop"]
STEPS = 1000

CASES = []


def _add(name, k, kwargs, steps=STEPS, **extra):
    CASES.append(dict(id=f"{name}-{k}", name=name, kind=KINDS[k % 3], steps=steps, kwargs=kwargs, **extra))


for k in range(6):
    n = int(_rng.integers(1, 12))
    ms = [int(x) for x in _rng.integers(0, 1100, size=n)]
    if k % 2 == 0:
        ms += ms[: max(1, n // 3)]  # duplicates: gamma ** count there
    if k % 3 == 1:
        ms = sorted(ms)
    else:
        _rng.shuffle(ms)
    _add("MultiStepLR", k, dict(milestones=ms, gamma=float(_rng.uniform(0.3, 0.99))))

for k in range(6):
    factor = [1.0, 0.0001, float(_rng.uniform(0.01, 1.0))][k % 3] if k < 3 else float(_rng.uniform(0.01, 1.0))
    total = [0, 1, int(_rng.integers(2, 1200))][k % 3]
    _add("ConstantLR", k, dict(factor=factor, total_iters=total))
_add("ConstantLR", 6, {})  # torch's defaults

for k in range(7):
    start = float(_rng.uniform(0.001, 1.0)) if k != 1 else 1.0
    end = [float(_rng.uniform(0.0, 1.0)), 0.0, 1.0][k % 3]
    if k == 4:
        # end_factor=0 can round to a tiny negative lr (-6e-20 here), which torch's optimizers accept at
        # step time and fastoptim's reject; LinearLR-1 keeps an exact end_factor=0 case
        end = 0.05
    total = int(_rng.integers(1, 1200)) if k != 2 else 1
    _add("LinearLR", k, dict(start_factor=start, end_factor=end, total_iters=total))
_add("LinearLR", 7, {})

for k in range(6):
    gamma = [float(_rng.uniform(0.98, 1.0)), 1.0, float(_rng.uniform(0.9, 1.001))][k % 3]
    _add("ExponentialLR", k, dict(gamma=gamma))

for k in range(6):
    total = [int(_rng.integers(1, 900)), int(_rng.integers(900, 1500)), 1][k % 3]
    power = [float(_rng.uniform(0.2, 3.0)), 1.0, 2.0, 0.5, float(_rng.uniform(0.2, 3.0)), 0.0][k]
    _add("PolynomialLR", k, dict(total_iters=total, power=power))
_add("PolynomialLR", 6, {})


# ---------------------------------------------------------------- LambdaLR / MultiplicativeLR
class WarmupDecay:
    """A callable object (its __dict__ is what torch saves in the state dict)."""

    def __init__(self, warmup, decay):
        self.warmup = warmup
        self.decay = decay

    def __call__(self, epoch):
        if epoch < self.warmup:
            return (epoch + 1) / self.warmup
        return self.decay ** (epoch - self.warmup)


def _lambda_fn(spec):
    kind = spec["fn"]
    if kind == "exp":
        a = spec["a"]
        return lambda epoch: a ** epoch
    if kind == "wave":
        a, b, c = spec["a"], spec["b"], spec["c"]
        return lambda epoch: (1.0 + a * math.sin(epoch / c)) * b ** (epoch // 100)
    if kind == "int":
        period = spec["period"]
        return lambda epoch: 1 if epoch % period else 2  # ints are fine for torch too
    if kind == "object":
        return WarmupDecay(spec["warmup"], spec["decay"])
    if kind == "mult":
        a, c = spec["a"], spec["c"]
        return lambda epoch: math.exp(a * math.sin(epoch / c))
    if kind == "mult_step":
        period, g = spec["period"], spec["g"]
        return lambda epoch: g if epoch % period == 0 else 1.0
    raise ValueError(kind)


def _lambda_build(name, kwargs):
    def build(module, opt):
        specs = kwargs["lr_lambda"]
        fns = [_lambda_fn(s) for s in specs] if isinstance(specs, list) else _lambda_fn(specs)
        return getattr(module, name)(opt, lr_lambda=fns)

    return build


def _spec(mult):
    r = _rng
    if mult:
        choice = ["mult", "mult_step", "object"][int(r.integers(0, 3))]
    else:
        choice = ["exp", "wave", "int", "object"][int(r.integers(0, 4))]
    if choice == "exp":
        return dict(fn="exp", a=float(r.uniform(0.99, 1.0)))
    if choice == "wave":
        return dict(fn="wave", a=float(r.uniform(0.1, 0.9)), b=float(r.uniform(0.5, 0.99)),
                    c=float(r.uniform(3, 50)))
    if choice == "int":
        return dict(fn="int", period=int(r.integers(2, 9)))
    if choice == "object":
        # as a MultiplicativeLR factor this decays to ~decay ** epoch; keep it close to 1 there
        return dict(fn="object", warmup=int(r.integers(1, 50)),
                    decay=float(r.uniform(0.9999, 1.0) if mult else r.uniform(0.99, 1.0)))
    if choice == "mult":
        return dict(fn="mult", a=float(r.uniform(0.01, 0.2)), c=float(r.uniform(2, 40)))
    return dict(fn="mult_step", period=int(r.integers(5, 200)), g=float(r.uniform(0.3, 0.95)))


for name, mult in (("LambdaLR", False), ("MultiplicativeLR", True)):
    for k in range(6):
        lr_lambda = _spec(mult) if k % 2 == 0 else [_spec(mult), _spec(mult)]
        kwargs = dict(lr_lambda=lr_lambda)
        _add(name, k, kwargs, build=_lambda_build(name, kwargs))
