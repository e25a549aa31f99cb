"""Regenerates cpp/tests/golden_opt_adamfam.hpp: torch.optim's Adamax, NAdam and RAdam results for
cpp/tests/test_opt_adamfam.cpp.

    /tmp/dev/bin/python cpp/tests/make_golden_opt_adamfam.py      # any Python with torch==2.13.0 and numpy

The problem is make_golden.py's (two parameters of 5 and 37 elements, fixed gradients for 20 steps that do
not depend on the parameters, parameter 1 without a gradient every 4th step), replayed through torch's
single-tensor implementations (foreach=False). Each case records the final parameters, state buffers,
step counts and NAdam's mu_product, as torch computes them and with torch's sqrt replaced by a correctly
rounded one (which the C++ kernels must match bit for bit). A case with reload_at = k saves and reloads
torch's state dict after step k: torch then holds mu_product in the parameter's dtype.
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_golden import (  # noqa: E402
    DTYPES, NO_GRAD_PERIOD, SIZES, STEPS, TORCH_VERSION, array_body, correctly_rounded_sqrt, has_grad, hexlit,
    make_data,
)

OUT = HERE / "golden_opt_adamfam.hpp"

# (optimizer, case name, torch kwargs, reload_at). Unlisted hyperparameters take torch's defaults.
CASES = [
    ("Adamax", "plain", dict(), 0),
    ("Adamax", "weight_decay_maximize", dict(lr=1e-2, weight_decay=0.1, maximize=True), 0),
    ("Adamax", "large_eps_betas", dict(lr=5e-3, betas=(0.3, 0.7), eps=1e-2), 0),
    ("NAdam", "plain", dict(), 0),
    ("NAdam", "weight_decay", dict(lr=1e-2, weight_decay=0.1), 0),
    ("NAdam", "decoupled_weight_decay_maximize",
     dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True, maximize=True), 0),
    ("NAdam", "momentum_decay", dict(lr=1e-2, betas=(0.99, 0.9), eps=1e-6, momentum_decay=0.5), 0),
    ("NAdam", "reloaded", dict(lr=1e-2, betas=(0.99, 0.9), momentum_decay=0.5), 10),
    ("RAdam", "plain", dict(), 0),
    ("RAdam", "weight_decay_maximize", dict(lr=1e-2, weight_decay=0.1, maximize=True), 0),
    ("RAdam", "decoupled_weight_decay", dict(lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1,
                                             decoupled_weight_decay=True), 0),
    ("RAdam", "never_rectified", dict(lr=1e-2, betas=(0.9, 0.6), eps=1e-6), 0),
]
OPTIMIZERS = ("Adamax", "NAdam", "RAdam")

# The C++ golden_adamfam::Hyper struct, in field order: (name, kind).
HYPER_FIELDS = [
    ("lr", float), ("beta1", float), ("beta2", float), ("eps", float), ("weight_decay", float),
    ("momentum_decay", float), ("decoupled_weight_decay", bool), ("maximize", bool),
]

STATE_KEYS = {"Adamax": ["exp_avg", "exp_inf"], "NAdam": ["exp_avg", "exp_avg_sq"], "RAdam": ["exp_avg", "exp_avg_sq"]}


def full_hyper(opt: torch.optim.Optimizer) -> dict:
    g = opt.param_groups[0]
    return dict(lr=float(g["lr"]), beta1=float(g["betas"][0]), beta2=float(g["betas"][1]), eps=float(g["eps"]),
                weight_decay=float(g["weight_decay"]), momentum_decay=float(g.get("momentum_decay", 0.0)),
                decoupled_weight_decay=bool(g.get("decoupled_weight_decay", False)), maximize=bool(g["maximize"]))


def run_case(name, kwargs, reload_at, np_dtype, torch_dtype, init, grads):
    offsets = np.cumsum((0,) + SIZES)
    params = [torch.tensor(init[offsets[i]:offsets[i + 1]], dtype=torch_dtype) for i in range(len(SIZES))]
    opt = getattr(torch.optim, name)([{"params": params}], foreach=False, **kwargs)
    for t in range(1, STEPS + 1):
        for i, p in enumerate(params):
            g = grads[t - 1, offsets[i]:offsets[i + 1]]
            p.grad = torch.tensor(g, dtype=torch_dtype) if has_grad(i, t) else None
        opt.step()
        if t == reload_at:
            opt.load_state_dict(opt.state_dict())
    final = np.concatenate([p.detach().numpy() for p in params]).astype(np_dtype)
    assert final.dtype == np_dtype and np.all(np.isfinite(final))
    state = {key: np.concatenate([opt.state[p][key].numpy() for p in params]).astype(np_dtype)
             for key in STATE_KEYS[name]}
    steps = [int(opt.state[p]["step"].item()) for p in params]
    mu = [float(opt.state[p]["mu_product"].item()) if name == "NAdam" else 0.0 for p in params]
    if name == "NAdam":  # what the C++ state's mu_product_float32 flag must say
        want = torch.float32 if reload_at == 0 else torch_dtype
        assert all(opt.state[p]["mu_product"].dtype == want for p in params)
    return full_hyper(opt), final, state, steps, mu


def hyper_init(h: dict) -> str:
    return "{" + ", ".join(("true" if h[k] else "false") if kind is bool else hexlit(h[k], "double")
                           for k, kind in HYPER_FIELDS) + "}"


def main() -> None:
    if torch.__version__.split("+")[0] != TORCH_VERSION:
        sys.exit(f"make_golden_opt_adamfam.py needs torch {TORCH_VERSION}, found {torch.__version__}")
    data = {ctype: make_data(npd) for ctype, npd, _ in DTYPES}
    results, exact = {}, {}
    for k, (name, case, kwargs, reload_at) in enumerate(CASES):
        for ctype, npd, tdt in DTYPES:
            init, grads = data[ctype]
            results[k, ctype] = run_case(name, kwargs, reload_at, npd, tdt, init, grads)
            with correctly_rounded_sqrt() as calls:
                exact[k, ctype] = run_case(name, kwargs, reload_at, npd, tdt, init, grads)
            updates = sum(has_grad(i, t) for i in range(len(SIZES)) for t in range(1, STEPS + 1))
            if name == "NAdam":
                assert len(calls) == updates, (name, case, len(calls))
            elif name == "Adamax":
                assert not calls and np.array_equal(results[k, ctype][1], exact[k, ctype][1])
            else:  # RAdam: one sqrt per rectified update
                assert 0 < len(calls) <= updates or case == "never_rectified", (name, case, len(calls))
            assert results[k, ctype][0] == exact[k, ctype][0] and results[k, ctype][3:] == exact[k, ctype][3:]
        assert results[k, "float"][0] == results[k, "double"][0]

    out = []
    w = out.append
    w(f"// Generated by cpp/tests/make_golden_opt_adamfam.py with torch {TORCH_VERSION} (numpy {np.__version__}).")
    w("// DO NOT EDIT BY HAND: change make_golden_opt_adamfam.py and rerun it.")
    w("//")
    w("// Adamax, NAdam and RAdam on make_golden.py's problem (golden_values.hpp: kSizes, kHasGrad, Data<T>::init")
    w(f"// and ::grad; {STEPS} steps, parameter 1 without a gradient every {NO_GRAD_PERIOD}th step), torch's single-tensor")
    w("// implementations. *_exact_sqrt: the same runs with torch's sqrt replaced by a correctly rounded one.")
    w("// reload_at = k: torch's state dict was saved and loaded after step k (mu_product then has the")
    w("// parameter's dtype). All values are hex-float literals, hence exact.")
    w("#pragma once")
    w("")
    w("#include <cstddef>")
    w("")
    w('#include "golden_values.hpp"')
    w("")
    w("namespace golden_adamfam {")
    w("")
    w("using golden::kNumParams;")
    w("using golden::kTotal;")
    w("")
    w("// Hyperparameters as torch used them; fields an optimizer does not have are zero / false.")
    w("struct Hyper {")
    for k, kind in HYPER_FIELDS:
        w(f"  {'double' if kind is float else 'bool'} {k};")
    w("};")
    w("")
    w("// torch's defaults for each optimizer's constructor arguments.")
    for name in OPTIMIZERS:
        w(f"inline constexpr Hyper kTorchDefaults{name} = "
          f"{hyper_init(full_hyper(getattr(torch.optim, name)([torch.zeros(1)])))};")
    w("")
    w("struct Case {")
    w("  const char* optimizer;  // Adamax, NAdam or RAdam")
    w("  const char* name;")
    w("  Hyper hyper;")
    w("  int reload_at;                 // 0, or the step after which torch reloaded its state dict")
    w("  long long steps[kNumParams];  // torch's state['step'] of each parameter at the end")
    w("};")
    w("")
    w("inline constexpr Case kCases[] = {")
    for k, (name, case, _, reload_at) in enumerate(CASES):
        h, _, _, steps, _ = results[k, "float"]
        w(f"    {{\"{name}\", \"{case}\", {hyper_init(h)}, {reload_at}, {{{', '.join(map(str, steps))}}}}},")
    w("};")
    w("inline constexpr std::size_t kNumCases = sizeof(kCases) / sizeof(kCases[0]);")
    w("")
    w("// State buffers by torch's key, per case: final_state[c][j] is buffer kStateKeys[c][j].")
    w("inline constexpr const char* kStateKeys[kNumCases][2] = {")
    for name, case, _, _ in CASES:
        w(f"    {{\"{STATE_KEYS[name][0]}\", \"{STATE_KEYS[name][1]}\"}},  // {name} {case}")
    w("};")
    w("")
    w("template <class T>")
    w("struct Data;")
    for ctype, _, _ in DTYPES:
        ind = " " * 6
        w("")
        w("template <>")
        w(f"struct Data<{ctype}> {{")
        w("  // torch's state['mu_product'] of each parameter at the end (NAdam; 0 otherwise).")
        w("  static constexpr double mu_product[kNumCases][kNumParams] = {")
        for k, (name, case, _, _) in enumerate(CASES):
            w(f"    {{{', '.join(hexlit(v, 'double') for v in results[k, ctype][4])}}},  // {name} {case}")
        w("  };")
        for suffix, res, what in [("", results, "torch"), ("_exact_sqrt", exact, "torch with a correctly rounded sqrt")]:
            w(f"  // final_params{suffix}[c]: the parameters after the last step of kCases[c] ({what}).")
            w(f"  static constexpr {ctype} final_params{suffix}[kNumCases][kTotal] = {{")
            for k, (name, case, _, _) in enumerate(CASES):
                w(f"    {{  // {name} {case}")
                w(ind + array_body(res[k, ctype][1], ctype, ind))
                w("    },")
            w("  };")
            w(f"  // final_state{suffix}[c][j]: state buffer kStateKeys[c][j] at the end ({what}).")
            w(f"  static constexpr {ctype} final_state{suffix}[kNumCases][2][kTotal] = {{")
            for k, (name, case, _, _) in enumerate(CASES):
                w(f"    {{  // {name} {case}")
                for key in STATE_KEYS[name]:
                    w(f"      {{  // {key}")
                    w(ind + "  " + array_body(res[k, ctype][2][key], ctype, ind + "  "))
                    w("      },")
                w("    },")
            w("  };")
        w("};")
    w("")
    w("}  // namespace golden_adamfam")
    text = "\n".join(out) + "\n"
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(text) / 1024:.0f} KiB, {len(CASES)} cases x {len(DTYPES)} dtypes)")


if __name__ == "__main__":
    main()
