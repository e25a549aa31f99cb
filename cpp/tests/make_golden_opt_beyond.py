#!/usr/bin/env python3
"""Generates golden_opt_beyond.hpp: the float64 numpy references of tests/beyond_reference.py (written from
the papers and the public reference implementations) run on a small problem, for cpp/tests/test_opt_beyond.cpp.

    python cpp/tests/make_golden_opt_beyond.py

The references are numpy only (no torch), but their module imports the tests' helpers, which import
fastoptim: run it where fastoptim is installed. The initial parameters and gradients are
float32 values, so the float and double C++ runs start from the very same numbers.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tests"))

from beyond_reference import REFERENCES  # noqa: E402

OUT = HERE / "golden_opt_beyond.hpp"
SEED = 20240521
SIZES = (5, 37)
STEPS = 24
NO_GRAD_PERIOD = 4  # parameter 1 gets no gradient at steps t with t % 4 == 0

CASES = [
    ("Lion", "plain", dict(lr=1e-2)),
    ("Lion", "weight_decay_maximize", dict(lr=3e-3, weight_decay=0.5, maximize=True)),
    ("Lion", "betas", dict(lr=1e-2, betas=(0.95, 0.98), weight_decay=0.1)),
    ("LAMB", "bias_correction_weight_decay", dict(lr=1e-2, weight_decay=0.01)),
    ("LAMB", "no_bias_correction_trust_clip_clamp",
     dict(lr=1e-2, bias_correction=False, trust_clip=True, clamp_value=0.5, eps=1e-8)),
    ("LAMB", "excluded_maximize", dict(lr=1e-2, exclude_from_layer_adaptation=True, maximize=True, betas=(0.8, 0.99))),
    ("Adan", "prox_weight_decay", dict(lr=1e-2, weight_decay=0.02)),
    ("Adan", "no_prox_maximize", dict(lr=1e-2, weight_decay=0.02, no_prox=True, maximize=True)),
    ("Adan", "betas_eps", dict(lr=3e-3, betas=(0.9, 0.9, 0.999), eps=1e-6)),
    ("AdaBelief", "rectified_decoupled", dict(lr=1e-2, weight_decay=1e-2)),
    ("AdaBelief", "adaptive_amsgrad_coupled", dict(lr=1e-2, rectify=False, amsgrad=True, weight_decouple=False,
                                                   weight_decay=1e-2)),
    ("AdaBelief", "fixed_decay_no_sgd_maximize", dict(lr=1e-2, weight_decay=1e-3, fixed_decay=True,
                                                      degenerated_to_sgd=False, amsgrad=True, maximize=True,
                                                      eps=1e-8)),
    ("ScheduleFreeAdamW", "plain", dict(lr=1e-2)),
    ("ScheduleFreeAdamW", "warmup_decay_r", dict(lr=2e-2, warmup_steps=5, weight_decay=0.01, r=0.5,
                                                 weight_lr_power=1.0)),
    ("ScheduleFreeAdamW", "betas_maximize", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, maximize=True)),
]

# The C++ golden::Hyper struct, in field order: (name, kind).
HYPER_FIELDS = [
    ("lr", float), ("beta1", float), ("beta2", float), ("beta3", float), ("eps", float), ("weight_decay", float),
    ("clamp_value", float), ("r", float), ("weight_lr_power", float), ("warmup_steps", int),
    ("maximize", bool), ("bias_correction", bool), ("trust_clip", bool), ("exclude_from_layer_adaptation", bool),
    ("no_prox", bool), ("amsgrad", bool), ("weight_decouple", bool), ("fixed_decay", bool), ("rectify", bool),
    ("degenerated_to_sgd", bool),
]

# State buffers as the C++ states name them, from the reference's state.
STATE_KEYS = {
    "Lion": ["exp_avg"],
    "LAMB": ["exp_avg", "exp_avg_sq"],
    "Adan": ["exp_avg", "exp_avg_sq", "exp_avg_diff", "neg_pre_grad"],
    "AdaBelief": ["exp_avg", "exp_avg_var", "max_exp_avg_var"],
    "ScheduleFreeAdamW": ["z", "exp_avg_sq", "x"],  # x: what eval() puts in the parameters
}


def has_grad(param: int, step: int) -> bool:
    return not (param == 1 and step % NO_GRAD_PERIOD == 0)


def make_data():
    rng = np.random.Generator(np.random.PCG64(SEED))
    init = np.concatenate([rng.uniform(-1.0, 1.0, SIZES[0]), rng.uniform(-2.0, 2.0, SIZES[1])])
    init[SIZES[0] + 2] = 0.0
    scales = np.concatenate([np.ones(SIZES[0]), 10.0 ** (np.arange(SIZES[1]) % 4 - 2.0)])
    grads = rng.standard_normal((STEPS, sum(SIZES))) * scales
    grads[:, SIZES[0] + 0] = 0.0  # always exactly zero
    grads[:, SIZES[0] + 1] = np.where(np.arange(STEPS) % 2 == 0, 0.25, -0.25)  # alternating sign
    return init.astype(np.float32).astype(np.float64), grads.astype(np.float32).astype(np.float64)


def full_hyper(name: str, config: dict) -> dict:
    h = {k: (False if kind is bool else 0) for k, kind in HYPER_FIELDS}
    merged = {**REFERENCES[name].defaults, "maximize": False, **config}
    betas = merged.pop("betas")
    for k, b in zip(("beta1", "beta2", "beta3"), betas):
        h[k] = b
    for k, v in merged.items():
        assert k in h, k
        h[k] = v
    return h


def run_case(name, config, init, grads):
    offsets = np.cumsum((0,) + SIZES)
    params = [init[offsets[i]:offsets[i + 1]].copy() for i in range(len(SIZES))]
    opt = REFERENCES[name]([{"params": params}], **config)
    for t in range(1, STEPS + 1):
        opt.step([grads[t - 1, offsets[i]:offsets[i + 1]] if has_grad(i, t) else None for i in range(len(SIZES))])
    final = np.concatenate(params)
    assert np.all(np.isfinite(final))
    state = {}
    for key in STATE_KEYS[name]:
        source = {"neg_pre_grad": "pre_grad"}.get(key, key)
        if all(source in opt.state[i] for i in range(len(SIZES))):
            buf = np.concatenate([opt.state[i][source] for i in range(len(SIZES))])
            state[key] = -buf if key == "neg_pre_grad" else buf
    steps = [int(opt.state[i].get("step", 0)) for i in range(len(SIZES))]
    return final, state, steps


def hexlit(x) -> str:
    v = float(x)
    assert np.isfinite(v)
    if v == 0.0:
        return "-0x0p+0" if np.signbit(v) else "0x0p+0"
    mant, exp = v.hex().split("p")
    s = f"{mant.rstrip('0').rstrip('.')}p{exp}"
    assert float.fromhex(s) == v
    return s


def array_body(values, indent: str, per_line: int = 4) -> str:
    lits = [hexlit(v) for v in values]
    return (",\n" + indent).join(", ".join(lits[i:i + per_line]) for i in range(0, len(lits), per_line))


def hyper_init(h: dict) -> str:
    parts = []
    for k, kind in HYPER_FIELDS:
        v = h[k]
        parts.append(("true" if v else "false") if kind is bool else (str(int(v)) if kind is int else hexlit(v)))
    return "{" + ", ".join(parts) + "}"


def main() -> None:
    init, grads = make_data()
    total = sum(SIZES)
    results = [run_case(name, config, init, grads) for name, _, config in CASES]
    entries = [(k, key) for k in range(len(CASES)) for key in results[k][1]]

    out = []
    w = out.append
    w(f"// Generated by cpp/tests/make_golden_opt_beyond.py (numpy {np.__version__}); do not edit by hand.")
    w("//")
    w("// The float64 numpy references of tests/beyond_reference.py (from the papers and the public reference")
    w(f"// implementations) on one param group of two parameters ({SIZES[0]} and {SIZES[1]} elements), {STEPS} steps;")
    w(f"// parameter 1 gets no gradient at steps t (1-based) with t % {NO_GRAD_PERIOD} == 0. Initial values and")
    w("// gradients are float32 numbers (exact in float and double); results are hex-float literals.")
    w("#pragma once")
    w("")
    w("#include <cstddef>")
    w("")
    w("namespace golden_beyond {")
    w("")
    w(f"inline constexpr int kSteps = {STEPS};")
    w(f"inline constexpr std::size_t kNumParams = {len(SIZES)};")
    w(f"inline constexpr std::size_t kSizes[kNumParams] = {{{', '.join(map(str, SIZES))}}};")
    w(f"inline constexpr std::size_t kOffsets[kNumParams] = {{0, {SIZES[0]}}};")
    w(f"inline constexpr std::size_t kTotal = {total};")
    w(f"inline constexpr int kNoGradPeriod = {NO_GRAD_PERIOD};")
    w("")
    w("// Hyperparameters; fields an optimizer does not have are zero / false.")
    w("struct Hyper {")
    for k, kind in HYPER_FIELDS:
        w(f"  {'double' if kind is float else ('long long' if kind is int else 'bool')} {k};")
    w("};")
    w("")
    w("// The references' defaults (the papers' / public implementations' constructor defaults).")
    for name in STATE_KEYS:
        w(f"inline constexpr Hyper kDefaults{name} = {hyper_init(full_hyper(name, {}))};")
    w("")
    w("struct Case {")
    w("  const char* optimizer;")
    w("  const char* name;")
    w("  Hyper hyper;")
    w("  long long steps[kNumParams];  // the reference's per-parameter step count at the end (0 if none)")
    w("};")
    w("inline constexpr Case kCases[] = {")
    for k, (name, case, config) in enumerate(CASES):
        w(f"    {{\"{name}\", \"{case}\", {hyper_init(full_hyper(name, config))}, "
          f"{{{', '.join(map(str, results[k][2]))}}}}},")
    w("};")
    w("inline constexpr std::size_t kNumCases = sizeof(kCases) / sizeof(kCases[0]);")
    w("")
    w("// kStates[j]: buffer `key` of case `case_index` at the end (row j of kFinalState).")
    w("struct StateEntry {")
    w("  std::size_t case_index;")
    w("  const char* key;")
    w("};")
    w("inline constexpr StateEntry kStates[] = {")
    for k, key in entries:
        w(f"    {{{k}, \"{key}\"}},")
    w("};")
    w("inline constexpr std::size_t kNumStates = sizeof(kStates) / sizeof(kStates[0]);")
    w("")
    ind = " " * 4
    w("inline constexpr double kInit[kTotal] = {")
    w(ind + array_body(init, ind))
    w("};")
    w("// kGrad[t - 1]: the gradients of step t (not used where a parameter has none).")
    w("inline constexpr double kGrad[kSteps][kTotal] = {")
    for t in range(STEPS):
        w(f"  {{  // step {t + 1}")
        w(ind + array_body(grads[t], ind))
        w("  },")
    w("};")
    w("inline constexpr double kFinalParams[kNumCases][kTotal] = {")
    for k, (name, case, _) in enumerate(CASES):
        w(f"  {{  // {name} {case}")
        w(ind + array_body(results[k][0], ind))
        w("  },")
    w("};")
    w("inline constexpr double kFinalState[kNumStates][kTotal] = {")
    for k, key in entries:
        w(f"  {{  // {CASES[k][0]} {CASES[k][1]}: {key}")
        w(ind + array_body(results[k][1][key], ind))
        w("  },")
    w("};")
    w("")
    w("}  // namespace golden_beyond")
    text = "\n".join(out) + "\n"
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(text) / 1024:.0f} KiB, {len(CASES)} cases)")


if __name__ == "__main__":
    main()
