"""Every kernel tier the CPU supports (FASTOPTIM_CPU_CAPABILITY) and every thread count computes the very
same bits: each run hashes the parameters and state after steps on arrays large enough for the vector
bodies and the threaded split, plus odd sizes for the tails, plus many tensors whose concatenation the
threads split (cutting inside tensors)."""

import hashlib
import os
import subprocess
import sys

import pytest

import fastoptim

SCRIPT = r"""
import hashlib, sys
import numpy as np
import fastoptim
configs = [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, maximize=True)),
    ("Adam", dict(lr=1e-3, amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=1e-3, betas=(0.3, 0.9))),
    ("RMSprop", dict(lr=1e-3, centered=True, momentum=0.5, weight_decay=0.01)),
    ("RMSprop", dict(lr=1e-3, alpha=0.3, centered=True)),
    ("Adagrad", dict(lr=1e-2, lr_decay=1e-2, weight_decay=0.01, initial_accumulator_value=0.1, maximize=True)),
    ("Adadelta", dict(lr=1.0, rho=0.8, weight_decay=0.01, maximize=True)),
    ("ASGD", dict(lr=1e-2, lambd=1e-2, t0=0, weight_decay=0.01)),
    ("Rprop", dict(lr=1e-2, etas=(0.3, 1.4), step_sizes=(1e-3, 2e-2), maximize=True)),
    ("Adamax", dict(lr=1e-2, betas=(0.3, 0.9), weight_decay=0.01, maximize=True)),
    ("NAdam", dict(lr=1e-2, weight_decay=0.01, momentum_decay=0.1)),
    ("RAdam", dict(lr=1e-2, betas=(0.8, 0.8), weight_decay=0.01, decoupled_weight_decay=True)),
    ("Lion", dict(lr=1e-3, weight_decay=0.1, maximize=True)),
    ("LAMB", dict(lr=1e-2, weight_decay=0.01, trust_clip=True)),
    ("Adan", dict(lr=1e-2, weight_decay=0.02, no_prox=True)),
    ("AdaBelief", dict(lr=1e-2, weight_decay=0.01, amsgrad=True, weight_decouple=False, rectify=False)),
    ("AdaBelief", dict(lr=1e-2, weight_decay=0.01)),
    ("ScheduleFreeAdamW", dict(lr=1e-2, weight_decay=0.01, warmup_steps=2)),
]
h = hashlib.sha256()
for dtype in (np.float32, np.float64):
    for name, kw in configs:
        rng = np.random.default_rng(0)
        # odd sizes for the tails, then many mid-sized tensors: the threads split their concatenation
        sizes = (1, 15, 17, 1023, 100003) + tuple(range(1001, 40000, 1300))
        params = [rng.standard_normal(n).astype(dtype) for n in sizes]
        opt = getattr(fastoptim, name)(params, **kw)
        if hasattr(opt, "train"):  # ScheduleFreeAdamW
            opt.train()
        for _ in range(3):
            opt.step([rng.standard_normal(p.shape).astype(dtype) for p in params])
        for p in params:
            h.update(p.tobytes())
        for i in sorted(opt.state):
            for k in sorted(opt.state[i]):
                h.update(np.asarray(opt.state[i][k]).tobytes())
# Adafactor's reductions (blocks and tiles: several of each) and SparseAdam's rows (repeated, unsorted)
for dtype in (np.float32, np.float64):
    rng = np.random.default_rng(1)
    shapes = [(1,), (15,), (17, 1023), (300, 1000), (3, 70001), (4, 65, 257), (100003,)]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    opts = [fastoptim.Adafactor(params, lr=0.05, weight_decay=0.01, maximize=True)]
    tables = [rng.standard_normal(s).astype(dtype) for s in [(20000, 16), (100003,), (7, 3)]]
    opts.append(fastoptim.SparseAdam(tables, lr=1e-2))
    for _ in range(3):
        opts[0].step([rng.standard_normal(p.shape).astype(dtype) for p in params])
        grads = []
        for t in tables:
            rows = rng.integers(0, t.shape[0], 3 * t.shape[0] // 2)
            grads.append((rows, rng.standard_normal((rows.size,) + t.shape[1:]).astype(dtype)))
        opts[1].step(grads)
    for opt in opts:
        for p in (q for g in opt.param_groups for q in g["params"]):
            h.update(p.tobytes())
        for i in sorted(opt.state):
            for k in sorted(opt.state[i]):
                h.update(np.asarray(opt.state[i][k]).tobytes())
# LBFGS (isa/lbfgs.cpp): its blocked dot products and fused two-loop passes over a flat vector of many
# blocks, the history full and dropping pairs, with and without the strong-Wolfe line search.
for dtype in (np.float32, np.float64):
    for kw in (dict(lr=0.5, max_iter=4, history_size=3), dict(max_iter=5, history_size=2, line_search_fn="strong_wolfe")):
        rng = np.random.default_rng(3)
        params = [rng.standard_normal(n).astype(dtype) for n in (1, 17, 1023, 100003, 70001)]
        curv = [rng.uniform(0.5, 2.0, p.shape).astype(dtype) for p in params]
        opt = fastoptim.LBFGS(params, **kw)
        def closure():
            # a quartic: sum(c * x^2 / 2 + x^4 / 4)
            loss = sum(float((c * p * p / 2 + p ** 4 / 4).sum()) for p, c in zip(params, curv))
            return loss, [c * p + p ** 3 for p, c in zip(params, curv)]
        for _ in range(3):
            opt.step(closure)
        for p in params:
            h.update(p.tobytes())
        for k, v in sorted(opt.state[0].items()):
            for a in (v if isinstance(v, list) else [v]):
                h.update(np.asarray(a if a is not None else np.nan).tobytes())
# Low-precision storage (lowp_run.hpp tiles): bfloat16 state with stochastic rounding, float16 parameters
# with float32 master weights, bfloat16 parameters.
try:
    import ml_dtypes
except ImportError:
    ml_dtypes = None
if ml_dtypes is not None:
    bf16 = np.dtype(ml_dtypes.bfloat16)
    for pdtype, kw in [(np.float32, dict(state_dtype="bfloat16", stochastic_rounding=True)),
                       (np.float16, dict(master_weights=True, state_dtype="float16")),
                       (bf16, dict(stochastic_rounding=True, rounding_seed=5))]:
        for name, base in [("Adam", dict(lr=1e-2, amsgrad=True)), ("SGD", dict(lr=0.1, momentum=0.9)),
                           ("RMSprop", dict(lr=1e-3, centered=True))]:
            rng = np.random.default_rng(2)
            params = [rng.standard_normal(n).astype(pdtype) for n in (1, 17, 1023, 100003, 70001)]
            opt = getattr(fastoptim, name)(params, **base, **kw)
            for _ in range(3):
                opt.step([rng.standard_normal(p.shape).astype(pdtype) for p in params])
            for p in params:
                h.update(p.tobytes())
            for i in sorted(opt.state):
                for k in sorted(opt.state[i]):
                    h.update(np.asarray(opt.state[i][k]).tobytes())
# Muon: its GEMM (fastoptim._muon_<tier>) on shapes with edge tiles, threaded products, both layouts
# (wide: X is the parameter's transpose; tall), several parameters in one step; with TEST_MUON_DOT=0 the
# AVX-512 module's bfloat16 dot-product kernel switched off (the FMA kernel instead).
import importlib, os
if os.environ.get("TEST_MUON_DOT") == "0":
    importlib.import_module("fastoptim._muon_" + fastoptim.cpu_capability()).gemm_dot(False)
for dtype in (np.float32, np.float64):
    rng = np.random.default_rng(3)
    shapes = [(1, 5), (17, 1), (33, 47), (200, 300), (517, 129), (96, 1000), (300, 610)]  # the last: threaded
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    opt = fastoptim.Muon(params, lr=0.02, weight_decay=0.01, nesterov=dtype is np.float32)
    for _ in range(3):
        opt.step([rng.standard_normal(p.shape).astype(dtype) for p in params])
    for p in params:
        h.update(p.tobytes())
    for i in sorted(opt.state):
        h.update(opt.state[i]["momentum_buffer"].tobytes())
muon = sorted(m for m in sys.modules if m.startswith("fastoptim._muon_"))
assert muon == ["fastoptim._muon_" + fastoptim.cpu_capability()], muon
print(fastoptim.cpu_capability(), h.hexdigest())
"""


def run(env_extra):
    env = dict(os.environ, **env_extra)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_every_tier_and_thread_count_gives_identical_bits():
    tiers = fastoptim._core.supported_cpu_capabilities()
    results = {}
    for tier in tiers:
        for threads in ("1", "2", "3"):
            used, digest = run({"FASTOPTIM_CPU_CAPABILITY": tier, "OMP_NUM_THREADS": threads})
            assert used == tier
            results[(tier, threads)] = digest
        if tier == "avx512":
            used, digest = run({"FASTOPTIM_CPU_CAPABILITY": tier, "OMP_NUM_THREADS": "2", "TEST_MUON_DOT": "0"})
            results[(tier, "2, Muon without the dot-product kernel")] = digest
    assert len(set(results.values())) == 1, results


def test_muon_uses_the_dot_product_kernel_where_the_cpu_has_it():
    if fastoptim.cpu_capability() != "avx512":
        pytest.skip("the bfloat16 dot-product kernel is in the AVX-512 module")
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        pytest.skip("no /proc/cpuinfo")
    import importlib

    module = importlib.import_module("fastoptim._muon_avx512")
    assert module.gemm_dot() == (" avx512_bf16" in flags)


def test_muon_has_a_kernel_module_per_tier():
    # found without importing them: a module for an instruction set the CPU lacks must never be imported
    import importlib.util
    import platform

    x86 = platform.machine().lower() in ("x86_64", "amd64", "x64")
    for tier in ("baseline", "avx2", "avx512") if x86 else ("baseline",):
        assert importlib.util.find_spec(f"fastoptim._muon_{tier}") is not None, tier


def test_unknown_tier_is_an_error():
    env = dict(os.environ, FASTOPTIM_CPU_CAPABILITY="avx9000")
    out = subprocess.run([sys.executable, "-c", "import numpy as np, fastoptim; fastoptim.SGD([np.zeros(1)]).step([np.zeros(1)])"],
                         env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "FASTOPTIM_CPU_CAPABILITY must be baseline, avx2 or avx512" in out.stderr


def test_thread_count_api():
    n = fastoptim.get_num_threads()
    try:
        fastoptim.set_num_threads(1)
        assert fastoptim.get_num_threads() == 1
        with pytest.raises(ValueError):
            fastoptim.set_num_threads(0)
    finally:
        fastoptim.set_num_threads(n)
