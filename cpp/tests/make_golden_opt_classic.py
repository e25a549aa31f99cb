"""Regenerates cpp/tests/golden_opt_classic.hpp: torch.optim reference results for Adadelta, ASGD and Rprop.

    /tmp/dev/bin/python cpp/tests/make_golden_opt_classic.py      # any Python with torch==2.13.0 and numpy

The problem, shared by every case: two param groups (one parameter of 5 elements, one of 37), fixed initial
values and fixed gradients for STEPS steps, embedded as hex floats (exact). Parameter 1 gets no gradient at
every NO_GRAD_PERIOD-th step. Each case gives the hyperparameters of group 0 and what group 1 changes. Every
case runs torch's single-tensor implementation (foreach=False) and records the final parameters, the final
state buffers and the per-parameter scalars (step; ASGD's eta and mu).

Every case is recorded twice: as torch computes it, and with torch's elementwise sqrt (MKL VML on x86, not
correctly rounded) replaced by numpy's correctly rounded one; the second recording must match the C++ kernels
bit for bit (see make_golden.py for the same scheme).
"""

from __future__ import annotations

import contextlib
import pathlib
import sys

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "golden_opt_classic.hpp"
TORCH_VERSION = "2.13.0"

SIZES = (5, 37)
STEPS = 24
NO_GRAD_PERIOD = 4  # parameter 1 has grad None at steps t (1-based) with t % NO_GRAD_PERIOD == 0
SEED = 19931993

# (optimizer, case name, group 0 kwargs, group 1 overrides). Unlisted hyperparameters take torch's defaults.
CASES = [
    ("Adadelta", "defaults", dict(), dict(lr=0.5, rho=0.8)),
    ("Adadelta", "weight_decay_maximize", dict(lr=0.7, rho=0.95, eps=1e-5, weight_decay=0.05, maximize=True),
     dict(eps=1e-7)),
    ("ASGD", "averaging_group1", dict(lr=0.05), dict(lambd=1e-2, t0=10.0)),
    ("ASGD", "averaging_weight_decay_maximize",
     dict(lr=0.02, lambd=1e-2, alpha=0.6, t0=5.0, weight_decay=0.01, maximize=True), dict(t0=1e6, alpha=1.0)),
    ("Rprop", "defaults", dict(), dict(etas=(0.3, 1.5))),
    ("Rprop", "tight_step_sizes_maximize", dict(lr=0.01, etas=(0.4, 1.3), step_sizes=(2e-3, 3e-2), maximize=True),
     dict(lr=0.02, step_sizes=(1e-4, 0.015))),
]

DTYPES = [("float", np.float32, torch.float32), ("double", np.float64, torch.float64)]

# The C++ golden_classic::Hyper struct, in field order: (name, kind).
HYPER_FIELDS = [
    ("lr", float), ("rho", float), ("eps", float), ("weight_decay", float), ("lambd", float), ("alpha", float),
    ("t0", float), ("etaminus", float), ("etaplus", float), ("step_size_min", float), ("step_size_max", float),
    ("maximize", bool),
]

STATE_KEYS = {"Adadelta": ["square_avg", "acc_delta"], "ASGD": ["ax"], "Rprop": ["prev", "step_size"]}
NAMES = list(STATE_KEYS)


def has_grad(param: int, step: int) -> bool:
    return not (param == 1 and step % NO_GRAD_PERIOD == 0)


def make_data(np_dtype):
    """Initial parameters (total,) and gradients (STEPS, total), exactly representable in np_dtype."""
    rng = np.random.Generator(np.random.PCG64(SEED + (0 if np_dtype == np.float32 else 1)))
    total = sum(SIZES)
    init = np.concatenate([rng.uniform(-1.0, 1.0, SIZES[0]), rng.uniform(-2.0, 2.0, SIZES[1])])
    init[SIZES[0] + 2] = 0.0  # an exact zero parameter
    # Gradient magnitudes spread over four decades; per element the scale is fixed across steps.
    scales = np.concatenate([np.ones(SIZES[0]), 10.0 ** (np.arange(SIZES[1]) % 4 - 2.0)])
    grads = rng.standard_normal((STEPS, total)) * scales
    grads[:, SIZES[0] + 0] = 0.0  # an element whose gradient is always exactly zero
    grads[:, SIZES[0] + 1] = np.where(np.arange(STEPS) % 2 == 0, 0.25, -0.25)  # alternating sign
    # Rprop's sign of grad * prev: in float32 this product underflows to zero (in float64 it does not).
    grads[:, SIZES[0] + 3] = np.where(np.arange(STEPS) % 5 < 3, 1e-23, -1e-23)
    for t in range(1, STEPS + 1):
        if not has_grad(1, t):
            grads[t - 1, SIZES[0]:] = 0.0  # not used: the parameter gets grad None at this step
    return init.astype(np_dtype), grads.astype(np_dtype)


def full_hyper(name: str, g: dict) -> dict:
    h = {k: 0.0 for k, kind in HYPER_FIELDS if kind is float}
    h.update({k: False for k, kind in HYPER_FIELDS if kind is bool})
    h["lr"] = float(g["lr"])
    h["maximize"] = bool(g["maximize"])
    if name == "Adadelta":
        h.update(rho=float(g["rho"]), eps=float(g["eps"]), weight_decay=float(g["weight_decay"]))
    elif name == "ASGD":
        h.update(lambd=float(g["lambd"]), alpha=float(g["alpha"]), t0=float(g["t0"]),
                 weight_decay=float(g["weight_decay"]))
    elif name == "Rprop":
        h.update(etaminus=float(g["etas"][0]), etaplus=float(g["etas"][1]), step_size_min=float(g["step_sizes"][0]),
                 step_size_max=float(g["step_sizes"][1]))
    return h


@contextlib.contextmanager
def correctly_rounded_sqrt():
    """Replaces torch's elementwise sqrt by numpy's (correctly rounded); yields a list counting the calls."""
    calls = []
    saved = torch.Tensor.sqrt, torch.Tensor.sqrt_, torch.sqrt

    def sqrt(x):
        calls.append(1)
        assert x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
        return torch.from_numpy(np.sqrt(x.detach().numpy()))

    def sqrt_(x):
        return x.copy_(sqrt(x))

    torch.Tensor.sqrt, torch.Tensor.sqrt_, torch.sqrt = sqrt, sqrt_, sqrt
    try:
        yield calls
    finally:
        torch.Tensor.sqrt, torch.Tensor.sqrt_, torch.sqrt = saved


def run_case(name, kwargs, group1, np_dtype, torch_dtype, init, grads):
    offsets = np.cumsum((0,) + SIZES)
    params = [torch.tensor(init[offsets[i]:offsets[i + 1]], dtype=torch_dtype) for i in range(len(SIZES))]
    opt = getattr(torch.optim, name)([{"params": [params[0]]}, dict({"params": [params[1]]}, **group1)],
                                     foreach=False, **kwargs)
    for t in range(1, STEPS + 1):
        for i, p in enumerate(params):
            g = grads[t - 1, offsets[i]:offsets[i + 1]]
            p.grad = torch.tensor(g, dtype=torch_dtype) if has_grad(i, t) else None
        opt.step()
    final = np.concatenate([p.detach().numpy() for p in params]).astype(np_dtype)
    assert final.dtype == np_dtype and np.all(np.isfinite(final))
    state = {key: np.concatenate([opt.state[p][key].detach().numpy() for p in params]) for key in STATE_KEYS[name]}
    for key, buf in state.items():
        assert buf.dtype == np_dtype, (name, key, buf.dtype)
    scalars = {"steps": [int(opt.state[p]["step"].item()) for p in params]}
    for key in ("eta", "mu"):
        if name == "ASGD":
            values = [opt.state[p][key] for p in params]
            assert all(v.dtype == torch.float32 and v.shape == () for v in values)  # torch's scalar dtype
            scalars[key] = [float(v.item()) for v in values]
        else:
            scalars[key] = [0.0, 0.0]
    hypers = [full_hyper(name, g) for g in opt.param_groups]
    return hypers, final, state, scalars


def hexlit(x, ctype: str) -> str:
    v = float(x)
    assert np.isfinite(v)
    if v == 0.0:
        s = "-0x0p+0" if np.signbit(v) else "0x0p+0"
    else:
        mant, exp = v.hex().split("p")
        mant = mant.rstrip("0").rstrip(".")
        s = f"{mant}p{exp}"
    assert float.fromhex(s) == v
    return s + ("f" if ctype == "float" else "")


def array_body(values, ctype: str, indent: str, per_line: int = 4) -> str:
    lits = [hexlit(v, ctype) for v in values]
    lines = [", ".join(lits[i:i + per_line]) for i in range(0, len(lits), per_line)]
    return (",\n" + indent).join(lines)


def hyper_init(h: dict) -> str:
    parts = []
    for k, kind in HYPER_FIELDS:
        v = h[k]
        parts.append(("true" if v else "false") if kind is bool else hexlit(v, "double"))
    return "{" + ", ".join(parts) + "}"


def main() -> None:
    if torch.__version__.split("+")[0] != TORCH_VERSION:
        sys.exit(f"make_golden_opt_classic.py needs torch {TORCH_VERSION}, found {torch.__version__}")
    total = sum(SIZES)
    data = {ctype: make_data(npd) for ctype, npd, _ in DTYPES}
    results, exact = {}, {}  # (case index, ctype) -> (hypers, final, state, scalars)
    for k, (name, case, kwargs, group1) in enumerate(CASES):
        for ctype, npd, tdt in DTYPES:
            init, grads = data[ctype]
            results[k, ctype] = run_case(name, kwargs, group1, npd, tdt, init, grads)
            with correctly_rounded_sqrt() as calls:
                exact[k, ctype] = run_case(name, kwargs, group1, npd, tdt, init, grads)
            # The replacement must be what torch used: two sqrts per Adadelta update, none elsewhere.
            updates = sum(has_grad(i, t) for i in range(len(SIZES)) for t in range(1, STEPS + 1))
            assert len(calls) == (2 * updates if name == "Adadelta" else 0), (name, case, len(calls))
            assert exact[k, ctype][0] == results[k, ctype][0] and exact[k, ctype][3] == results[k, ctype][3]
        assert results[k, "float"][0] == results[k, "double"][0]

    out = []
    w = out.append
    w(f"// Generated by cpp/tests/make_golden_opt_classic.py with torch {TORCH_VERSION} (numpy {np.__version__}).")
    w("// DO NOT EDIT BY HAND: change make_golden_opt_classic.py and rerun it.")
    w("//")
    w(f"// Two param groups of one parameter each ({SIZES[0]} and {SIZES[1]} elements), {STEPS} steps of torch.optim's")
    w("// single-tensor implementation (foreach=False). Gradients do not depend on the parameters; parameter 1")
    w(f"// gets grad None at steps t (1-based) with t % {NO_GRAD_PERIOD} == 0 (see kHasGrad).")
    w("// *_exact_sqrt: the same runs with torch's sqrt replaced by a correctly rounded one.")
    w("// All values are hex-float literals, hence exact.")
    w("#pragma once")
    w("")
    w("#include <cstddef>")
    w("")
    w("namespace golden_classic {")
    w("")
    w(f"inline constexpr int kSteps = {STEPS};")
    w(f"inline constexpr std::size_t kNumParams = {len(SIZES)};")
    w(f"inline constexpr std::size_t kSizes[kNumParams] = {{{', '.join(map(str, SIZES))}}};")
    offsets = np.cumsum((0,) + SIZES)[:-1]
    w(f"inline constexpr std::size_t kOffsets[kNumParams] = {{{', '.join(map(str, offsets))}}};")
    w(f"inline constexpr std::size_t kTotal = {total};  // elements of all parameters, concatenated")
    w("")
    w("// kHasGrad[t - 1][i]: whether parameter i gets a gradient at step t.")
    rows = ", ".join("{" + ", ".join("true" if has_grad(i, t) else "false" for i in range(len(SIZES))) + "}"
                     for t in range(1, STEPS + 1))
    w(f"inline constexpr bool kHasGrad[kSteps][kNumParams] = {{{rows}}};")
    w("")
    w("// Hyperparameters as torch used them; fields an optimizer does not have are zero / false.")
    w("struct Hyper {")
    for k, kind in HYPER_FIELDS:
        w(f"  {'double' if kind is float else 'bool'} {k};")
    w("};")
    w("")
    w("// torch's defaults for each optimizer's constructor arguments.")
    for name in NAMES:
        default = getattr(torch.optim, name)([torch.zeros(1)]).param_groups[0]
        w(f"inline constexpr Hyper kTorchDefaults{name} = {hyper_init(full_hyper(name, default))};")
    w("")
    w("struct Case {")
    w(f"  const char* optimizer;  // {', '.join(NAMES)}")
    w("  const char* name;")
    w("  Hyper groups[kNumParams];  // group i holds parameter i")
    w("  long long steps[kNumParams];  // torch's state['step'] of each parameter at the end")
    w("  float eta[kNumParams], mu[kNumParams];  // ASGD's final eta and mu (float32 tensors in torch); else 0")
    w("};")
    w("")
    w("inline constexpr Case kCases[] = {")
    for k, (name, case, _, _) in enumerate(CASES):
        hypers, _, _, sc = results[k, "float"]
        w(f"    {{\"{name}\", \"{case}\",")
        w(f"     {{{hyper_init(hypers[0])},")
        w(f"      {hyper_init(hypers[1])}}},")
        w(f"     {{{', '.join(map(str, sc['steps']))}}}, {{{', '.join(hexlit(v, 'float') for v in sc['eta'])}}},"
          f" {{{', '.join(hexlit(v, 'float') for v in sc['mu'])}}}}},")
    w("};")
    w("inline constexpr std::size_t kNumCases = sizeof(kCases) / sizeof(kCases[0]);")
    w("")
    w("// Final state buffers, concatenated over the parameters like the values: kStates[j] is buffer `key` of")
    w("// case `case_index`, row j of Data<T>::final_state.")
    w("struct StateEntry {")
    w("  std::size_t case_index;")
    w("  const char* key;")
    w("};")
    entries = [(k, key) for k in range(len(CASES)) for key in STATE_KEYS[CASES[k][0]]]
    w("inline constexpr StateEntry kStates[] = {")
    for k, key in entries:
        w(f"    {{{k}, \"{key}\"}},")
    w("};")
    w("inline constexpr std::size_t kNumStates = sizeof(kStates) / sizeof(kStates[0]);")
    w("")
    w("template <class T>")
    w("struct Data;")
    for ctype, _, _ in DTYPES:
        init, grads = data[ctype]
        ind = " " * 6
        w("")
        w("template <>")
        w(f"struct Data<{ctype}> {{")
        w(f"  static constexpr {ctype} init[kTotal] = {{")
        w(ind + array_body(init, ctype, ind))
        w("  };")
        w("  // grads[t - 1]: the gradients at step t (zeros where kHasGrad is false; not to be used).")
        w(f"  static constexpr {ctype} grad[kSteps][kTotal] = {{")
        for t in range(STEPS):
            w(f"    {{  // step {t + 1}")
            w(ind + array_body(grads[t], ctype, ind))
            w("    },")
        w("  };")
        for suffix, res, what in [("", results, "torch"),
                                  ("_exact_sqrt", exact, "torch with a correctly rounded sqrt")]:
            w(f"  // final_params{suffix}[c]: the parameters after kSteps steps of kCases[c] ({what}).")
            w(f"  static constexpr {ctype} final_params{suffix}[kNumCases][kTotal] = {{")
            for k, (name, case, _, _) in enumerate(CASES):
                w(f"    {{  // {name} {case}")
                w(ind + array_body(res[k, ctype][1], ctype, ind))
                w("    },")
            w("  };")
            w(f"  // final_state{suffix}[j]: state buffer kStates[j] at the end ({what}).")
            w(f"  static constexpr {ctype} final_state{suffix}[kNumStates][kTotal] = {{")
            for k, key in entries:
                w(f"    {{  // {CASES[k][0]} {CASES[k][1]}: {key}")
                w(ind + array_body(res[k, ctype][2][key], ctype, ind))
                w("    },")
            w("  };")
        w("};")
    w("")
    w("}  // namespace golden_classic")
    text = "\n".join(out) + "\n"
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(text) / 1024:.0f} KiB, {len(CASES)} cases x {len(DTYPES)} dtypes)")


if __name__ == "__main__":
    main()
