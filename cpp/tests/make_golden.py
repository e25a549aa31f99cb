"""Regenerates cpp/tests/golden_values.hpp: torch.optim reference results for the C++ tests.

    /tmp/dev/bin/python cpp/tests/make_golden.py      # any Python with torch==2.13.0 and numpy

The problem, shared by every case: two parameters (5 and 37 elements) in one param group, fixed initial
values and fixed gradients for 20 steps. The gradients do not depend on the parameters, so the C++ test
can replay them; they are drawn here once and embedded, with the initial values, as hex-float literals
(exact). Parameter 1 gets no gradient (grad None) at every NO_GRAD_PERIOD-th step. Every case runs
torch's single-tensor implementation (foreach=False) and records the final parameters and the final
per-parameter state buffers, also as hex floats.

Every case is recorded twice: as torch computes it, and with torch's elementwise sqrt replaced by a
correctly rounded one (numpy's). torch's CPU sqrt (MKL VML) is not correctly rounded (about 17% of float32
and 1% of float64 results are one ulp off), so results through a sqrt can differ from an IEEE sqrt by an
ulp or so; the second recording has every other rounding of torch and must match the C++ kernels exactly.
"""

from __future__ import annotations

import contextlib
import pathlib
import sys

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE / "golden_values.hpp"
TORCH_VERSION = "2.13.0"

SIZES = (5, 37)
STEPS = 20
NO_GRAD_PERIOD = 4  # parameter 1 has grad None at steps t (1-based) with t % NO_GRAD_PERIOD == 0
SEED = 20240613

# (optimizer, case name, torch kwargs). Unlisted hyperparameters take torch's defaults.
CASES = [
    ("SGD", "plain", dict(lr=0.1)),
    ("SGD", "momentum_dampening", dict(lr=0.05, momentum=0.9, dampening=0.1)),
    ("SGD", "nesterov_weight_decay", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    ("SGD", "maximize", dict(lr=0.05, momentum=0.5, weight_decay=1e-3, maximize=True)),
    ("Adam", "plain", dict(lr=1e-2)),
    ("Adam", "amsgrad", dict(lr=1e-2, amsgrad=True)),
    ("Adam", "weight_decay", dict(lr=1e-2, weight_decay=0.1)),
    ("Adam", "decoupled_weight_decay", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True)),
    ("Adam", "maximize", dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, maximize=True, amsgrad=True)),
    ("AdamW", "default_weight_decay", dict(lr=1e-2)),
    ("AdamW", "amsgrad", dict(lr=1e-2, betas=(0.85, 0.995), weight_decay=0.3, amsgrad=True)),
    ("RMSprop", "plain", dict(lr=1e-2)),
    ("RMSprop", "centered", dict(lr=1e-2, centered=True)),
    ("RMSprop", "momentum", dict(lr=1e-3, momentum=0.9)),
    ("RMSprop", "centered_momentum_weight_decay",
     dict(lr=1e-3, alpha=0.9, centered=True, momentum=0.8, weight_decay=1e-2)),
    ("RMSprop", "maximize", dict(lr=1e-2, alpha=0.95, eps=1e-6, weight_decay=1e-2, maximize=True)),
    ("Adagrad", "plain", dict(lr=5e-2)),
    ("Adagrad", "lr_decay_weight_decay", dict(lr=5e-2, lr_decay=1e-2, weight_decay=1e-2)),
    ("Adagrad", "initial_accumulator_maximize",
     dict(lr=2e-2, initial_accumulator_value=0.1, eps=1e-6, maximize=True)),
]

DTYPES = [("float", np.float32, torch.float32), ("double", np.float64, torch.float64)]

# The C++ golden::Hyper struct, in field order: (name, kind).
HYPER_FIELDS = [
    ("lr", float), ("momentum", float), ("dampening", float), ("weight_decay", float), ("beta1", float),
    ("beta2", float), ("eps", float), ("alpha", float), ("nesterov", bool), ("maximize", bool),
    ("amsgrad", bool), ("decoupled_weight_decay", bool), ("centered", bool), ("lr_decay", float),
    ("initial_accumulator_value", float),
]

STATE_KEYS = {
    "SGD": ["momentum_buffer"],
    "Adam": ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
    "AdamW": ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
    "RMSprop": ["square_avg", "momentum_buffer", "grad_avg"],
    "Adagrad": ["sum"],
}


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
    for t in range(1, STEPS + 1):
        if not has_grad(1, t):
            grads[t - 1, SIZES[0]:] = 0.0  # not used: the parameter gets grad None at this step
    return init.astype(np_dtype), grads.astype(np_dtype)


def full_hyper(name: str, opt: torch.optim.Optimizer) -> dict:
    g = opt.param_groups[0]
    h = {k: 0.0 for k, kind in HYPER_FIELDS if kind is float}
    h.update({k: False for k, kind in HYPER_FIELDS if kind is bool})
    h["lr"] = float(g["lr"])
    h["weight_decay"] = float(g["weight_decay"])
    h["maximize"] = bool(g["maximize"])
    if name == "SGD":
        h.update(momentum=float(g["momentum"]), dampening=float(g["dampening"]), nesterov=bool(g["nesterov"]))
    elif name in ("Adam", "AdamW"):
        h.update(beta1=float(g["betas"][0]), beta2=float(g["betas"][1]), eps=float(g["eps"]),
                 amsgrad=bool(g["amsgrad"]),
                 decoupled_weight_decay=name == "AdamW" or bool(g.get("decoupled_weight_decay", False)))
    elif name == "RMSprop":
        h.update(momentum=float(g["momentum"]), alpha=float(g["alpha"]), eps=float(g["eps"]),
                 centered=bool(g["centered"]))
    elif name == "Adagrad":
        h.update(lr_decay=float(g["lr_decay"]), eps=float(g["eps"]),
                 initial_accumulator_value=float(g["initial_accumulator_value"]))
    return h


@contextlib.contextmanager
def correctly_rounded_sqrt():
    """Replaces torch's elementwise sqrt (Tensor.sqrt, Tensor.sqrt_, torch.sqrt) by numpy's, which is
    correctly rounded; yields a list that counts the calls."""
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


def run_case(name: str, kwargs: dict, np_dtype, torch_dtype, init, grads):
    offsets = np.cumsum((0,) + SIZES)
    params = [torch.tensor(init[offsets[i]:offsets[i + 1]], dtype=torch_dtype) for i in range(len(SIZES))]
    opt = getattr(torch.optim, name)([{"params": params}], foreach=False, **kwargs)
    for t in range(1, STEPS + 1):
        for i, p in enumerate(params):
            g = grads[t - 1, offsets[i]:offsets[i + 1]]
            p.grad = torch.tensor(g, dtype=torch_dtype) if has_grad(i, t) else None
        opt.step()
    final = np.concatenate([p.detach().numpy() for p in params]).astype(np_dtype)
    assert final.dtype == np_dtype and np.all(np.isfinite(final))
    state = {}
    for key in STATE_KEYS[name]:
        bufs = [opt.state[p].get(key) for p in params]
        if all(b is not None for b in bufs):
            state[key] = np.concatenate([b.detach().numpy() for b in bufs]).astype(np_dtype)
        else:
            assert all(b is None for b in bufs), (name, key)
    steps = [int(opt.state[p]["step"].item()) if "step" in opt.state[p] else 0 for p in params]
    return full_hyper(name, opt), final, state, steps


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


def torch_default_hyper(name: str) -> dict:
    dummy = [torch.zeros(1)]
    return full_hyper(name, getattr(torch.optim, name)(dummy))


def hyper_init(h: dict) -> str:
    parts = []
    for k, kind in HYPER_FIELDS:
        v = h[k]
        parts.append(("true" if v else "false") if kind is bool else hexlit(v, "double"))
    return "{" + ", ".join(parts) + "}"


def main() -> None:
    if torch.__version__.split("+")[0] != TORCH_VERSION:
        sys.exit(f"make_golden.py needs torch {TORCH_VERSION}, found {torch.__version__}")
    total = sum(SIZES)

    data = {ctype: make_data(npd) for ctype, npd, _ in DTYPES}
    results = {}  # (case index, ctype) -> (hyper, final, state, steps)
    exact = {}  # the same with a correctly rounded sqrt
    for k, (name, case, kwargs) in enumerate(CASES):
        for ctype, npd, tdt in DTYPES:
            init, grads = data[ctype]
            results[k, ctype] = run_case(name, kwargs, npd, tdt, init, grads)
            with correctly_rounded_sqrt() as calls:
                exact[k, ctype] = run_case(name, kwargs, npd, tdt, init, grads)
            # The replacement must be what torch used: one sqrt per parameter update (none in SGD).
            updates = sum(has_grad(i, t) for i in range(len(SIZES)) for t in range(1, STEPS + 1))
            assert len(calls) == (0 if name == "SGD" else updates), (name, case, len(calls))
            assert exact[k, ctype][0] == results[k, ctype][0] and exact[k, ctype][3] == results[k, ctype][3]
        h_f, _, st_f, steps_f = results[k, "float"]
        h_d, _, st_d, steps_d = results[k, "double"]
        assert h_f == h_d and list(st_f) == list(st_d) and steps_f == steps_d

    out = []
    w = out.append
    w(f"// Generated by cpp/tests/make_golden.py with torch {TORCH_VERSION} (numpy {np.__version__}).")
    w("// DO NOT EDIT BY HAND: change make_golden.py and rerun it (`python cpp/tests/make_golden.py`).")
    w("//")
    w(f"// One param group with two parameters ({SIZES[0]} and {SIZES[1]} elements), {STEPS} steps of")
    w("// torch.optim's single-tensor implementation (foreach=False). Gradients do not depend on the parameters;")
    w(f"// parameter 1 gets grad None at steps t (1-based) with t % {NO_GRAD_PERIOD} == 0 (see kHasGrad).")
    w("// final_*_exact_sqrt: the same runs with torch's sqrt replaced by a correctly rounded one.")
    w("// All values are hex-float literals, hence exact.")
    w("#pragma once")
    w("")
    w("#include <cstddef>")
    w("")
    w("namespace golden {")
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
    for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad"):
        w(f"inline constexpr Hyper kTorchDefaults{name} = {hyper_init(torch_default_hyper(name))};")
    w("")
    w("struct Case {")
    w("  const char* optimizer;  // SGD, Adam, AdamW, RMSprop or Adagrad")
    w("  const char* name;")
    w("  Hyper hyper;")
    w("  long long steps[kNumParams];  // torch's state['step'] of each parameter at the end (0 for SGD)")
    w("};")
    w("")
    w("inline constexpr Case kCases[] = {")
    for k, (name, case, _) in enumerate(CASES):
        h, _, _, steps = results[k, "float"]
        w(f"    {{\"{name}\", \"{case}\", {hyper_init(h)}, {{{', '.join(map(str, steps))}}}}},")
    w("};")
    w("inline constexpr std::size_t kNumCases = sizeof(kCases) / sizeof(kCases[0]);")
    w("")
    w("// Final state buffers, concatenated over the parameters like the values: kStates[j] is buffer `key` of")
    w("// case `case_index`, row j of Data<T>::final_state.")
    w("struct StateEntry {")
    w("  std::size_t case_index;")
    w("  const char* key;")
    w("};")
    entries = [(k, key) for k in range(len(CASES)) for key in results[k, "float"][2]]
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
            for k, (name, case, _) in enumerate(CASES):
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
    w("}  // namespace golden")
    text = "\n".join(out) + "\n"
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(text) / 1024:.0f} KiB, {len(CASES)} cases x {len(DTYPES)} dtypes)")


if __name__ == "__main__":
    main()
