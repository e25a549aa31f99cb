"""Parity cases for SequentialLR, ChainedScheduler and SWALR, written as `build(module, optimizer)`
callables (module: fastoptim.lr_scheduler or torch.optim.lr_scheduler; torch's SWALR lives in
torch.optim.swa_utils). Each case's `desc` names the composition, so the golden file records it.

Cases over schedulers that are not (yet) in fastoptim.lr_scheduler are left out; regenerate the golden file
(tests/data/make_golden_sched.py compose) when the set changes."""

import fastoptim.lr_scheduler as _fls

KINDS = ["sgd", "adam", "rmsprop"]


def _swalr(module):
    if hasattr(module, "SWALR"):
        return module.SWALR
    from torch.optim.swa_utils import SWALR

    return SWALR


def _have(*names):
    return all(hasattr(_fls, n) for n in names)


CASES = []


def _add(id, desc, build, kind, steps=1000):
    CASES.append(dict(id=id, desc=desc, kind=kind, steps=steps, build=build))


# ---- SequentialLR
_add("Seq-Step-Step", "SequentialLR([StepLR(7, 0.8), StepLR(50, 0.5)], [300])",
     lambda m, o: m.SequentialLR(o, [m.StepLR(o, 7, 0.8), m.StepLR(o, 50, 0.5)], milestones=[300]), "sgd")
_add("Seq-Step-Step-m0", "SequentialLR([StepLR(3, 0.9), StepLR(40, 0.7)], [0])",
     lambda m, o: m.SequentialLR(o, [m.StepLR(o, 3, 0.9), m.StepLR(o, 40, 0.7)], milestones=[0]), "adam")
_add("Seq-Step-x3", "SequentialLR([StepLR(5, 0.9), StepLR(20, 0.5), StepLR(100, 0.3)], [100, 450])",
     lambda m, o: m.SequentialLR(o, [m.StepLR(o, 5, 0.9), m.StepLR(o, 20, 0.5), m.StepLR(o, 100, 0.3)],
                                 milestones=[100, 450]), "rmsprop")
_add("Seq-Step-SWALR", "SequentialLR([StepLR(30, 0.5), SWALR(0.005, 25, cos)], [600])",
     lambda m, o: m.SequentialLR(o, [m.StepLR(o, 30, 0.5), _swalr(m)(o, swa_lr=0.005, anneal_epochs=25)],
                                 milestones=[600]), "sgd")
if _have("ExponentialLR"):
    _add("Seq-Step-Exp", "SequentialLR([StepLR(10, 0.5), ExponentialLR(0.995)], [400])",
         lambda m, o: m.SequentialLR(o, [m.StepLR(o, 10, 0.5), m.ExponentialLR(o, 0.995)], milestones=[400]),
         "adam")
if _have("LinearLR", "ExponentialLR"):
    _add("Seq-Linear-Exp", "SequentialLR([LinearLR(0.1, 1.0, 20), ExponentialLR(0.997)], [20])",
         lambda m, o: m.SequentialLR(o, [m.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=20),
                                         m.ExponentialLR(o, 0.997)], milestones=[20]), "sgd")
if _have("ConstantLR", "ExponentialLR", "MultiStepLR"):
    _add("Seq-Const-Exp-Multi", "SequentialLR([ConstantLR(0.1, 20), ExponentialLR(0.99), "
         "MultiStepLR([100, 200], 0.5)], [20, 500])",
         lambda m, o: m.SequentialLR(o, [m.ConstantLR(o, factor=0.1, total_iters=20), m.ExponentialLR(o, 0.99),
                                         m.MultiStepLR(o, [100, 200], 0.5)], milestones=[20, 500]), "rmsprop")
if _have("LinearLR", "CosineAnnealingLR"):
    _add("Seq-Warmup-Cosine", "SequentialLR([LinearLR(0.01, 1.0, 50), CosineAnnealingLR(950, 1e-5)], [50])",
         lambda m, o: m.SequentialLR(o, [m.LinearLR(o, start_factor=0.01, end_factor=1.0, total_iters=50),
                                         m.CosineAnnealingLR(o, T_max=950, eta_min=1e-5)], milestones=[50]),
         "adam")
    _add("Seq-Warmup-Cosine-SWALR",
         "SequentialLR([LinearLR(0.05, 1.0, 30), CosineAnnealingLR(600), SWALR(0.01, 40, linear)], [30, 750])",
         lambda m, o: m.SequentialLR(o, [m.LinearLR(o, start_factor=0.05, end_factor=1.0, total_iters=30),
                                         m.CosineAnnealingLR(o, T_max=600),
                                         _swalr(m)(o, swa_lr=0.01, anneal_epochs=40, anneal_strategy="linear")],
                                     milestones=[30, 750]), "sgd")

# The scheduler active at epoch 0 redoes its initial step in torch's _initial_mode, where these chainable
# forms keep the lrs (first child, or the second with milestones=[0]).
if _have("ExponentialLR", "CosineAnnealingLR", "PolynomialLR", "MultiplicativeLR"):
    _add("Seq-Exp-Step", "SequentialLR([ExponentialLR(0.99), StepLR(50, 0.5)], [300])",
         lambda m, o: m.SequentialLR(o, [m.ExponentialLR(o, 0.99), m.StepLR(o, 50, 0.5)], milestones=[300]), "adam")
    _add("Seq-Cos-Exp", "SequentialLR([CosineAnnealingLR(2), ExponentialLR(0.9)], [13])",
         lambda m, o: m.SequentialLR(o, [m.CosineAnnealingLR(o, T_max=2), m.ExponentialLR(o, 0.9)], milestones=[13]),
         "sgd")
    _add("Seq-Poly", "SequentialLR([PolynomialLR(400, 2.5)], [])",
         lambda m, o: m.SequentialLR(o, [m.PolynomialLR(o, total_iters=400, power=2.5)], milestones=[]), "rmsprop")
    _add("Seq-Step-Mult-m0", "SequentialLR([StepLR(3, 0.9), MultiplicativeLR(lambda e: 0.999)], [0])",
         lambda m, o: m.SequentialLR(o, [m.StepLR(o, 3, 0.9), m.MultiplicativeLR(o, lambda e: 0.999)],
                                     milestones=[0]), "sgd")

# ---- ChainedScheduler
_add("Chain-Step-Step", "ChainedScheduler([StepLR(9, 0.9), StepLR(25, 0.8)])",
     lambda m, o: m.ChainedScheduler([m.StepLR(o, 9, 0.9), m.StepLR(o, 25, 0.8)]), "sgd")
_add("Chain-Step-SWALR", "ChainedScheduler([StepLR(50, 0.9), SWALR([0.02, 0.001], 100, cos)], optimizer)",
     lambda m, o: m.ChainedScheduler([m.StepLR(o, 50, 0.9), _swalr(m)(o, swa_lr=[0.02, 0.001], anneal_epochs=100)],
                                     optimizer=o), "rmsprop")
if _have("ConstantLR", "ExponentialLR"):
    _add("Chain-Const-Exp", "ChainedScheduler([ConstantLR(0.1, 40), ExponentialLR(0.995)])",
         lambda m, o: m.ChainedScheduler([m.ConstantLR(o, factor=0.1, total_iters=40), m.ExponentialLR(o, 0.995)]),
         "adam")

# ---- SWALR
for _k, (_lr, _ep, _strategy) in enumerate([(0.005, 10, "cos"), (0.02, 250, "linear"), ([0.01, 0.002], 400, "cos"),
                                            (0.001, 0, "cos"), (0.03, 1, "linear"), (0.004, 999, "linear")]):
    _add(f"SWALR-{_k}", f"SWALR({_lr}, {_ep}, {_strategy})",
         (lambda lr, ep, st: lambda m, o: _swalr(m)(o, swa_lr=lr, anneal_epochs=ep, anneal_strategy=st))(
             _lr, _ep, _strategy),
         KINDS[_k % 3])

# ---- with the cyclic family (momentum / betas[0] recorded too)
if _have("LinearLR", "CosineAnnealingWarmRestarts"):
    _add("Seq-Warmup-WarmRestarts",
         "SequentialLR([LinearLR(0.1, 1.0, 25), CosineAnnealingWarmRestarts(50, 2, 1e-4)], [25])",
         lambda m, o: m.SequentialLR(o, [m.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=25),
                                         m.CosineAnnealingWarmRestarts(o, T_0=50, T_mult=2, eta_min=1e-4)],
                                     milestones=[25]), "sgd")
if _have("CyclicLR", "ExponentialLR"):
    _add("Chain-Cyclic-Exp", "ChainedScheduler([CyclicLR(0.01, 0.1, 40), ExponentialLR(0.999)])",
         lambda m, o: m.ChainedScheduler([m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=40),
                                          m.ExponentialLR(o, 0.999)]), "sgd")
if _have("OneCycleLR"):
    _add("Seq-OneCycle-Step", "SequentialLR([OneCycleLR(0.1, 400), StepLR(50, 0.5)], [400])",
         lambda m, o: m.SequentialLR(o, [m.OneCycleLR(o, max_lr=0.1, total_steps=400), m.StepLR(o, 50, 0.5)],
                                     milestones=[400]), "adam")
