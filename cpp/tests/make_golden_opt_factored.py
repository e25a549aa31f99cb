"""Regenerates cpp/tests/golden_opt_factored.hpp: torch.optim.Adafactor and torch.optim.SparseAdam reference
results for cpp/tests/test_opt_factored.cpp.

    /tmp/dev/bin/python cpp/tests/make_golden_opt_factored.py      # any Python with torch==2.13.0 and numpy

Each optimizer has its own small problem: parameters of several shapes in one group, fixed initial values
and fixed gradients for STEPS steps (they do not depend on the parameters, so the C++ test replays them),
embedded as hex-float literals (exact); parameter 1 gets no gradient (None) every NO_GRAD_PERIOD-th step.
Every case runs torch's single-tensor implementation (foreach=False) and records the final parameters and
state buffers twice: as torch computes them, and with the one rounding fastoptim does differently replaced
by fastoptim's (tests/factored_reference.py): for Adafactor the summation order of its norms and means, for
SparseAdam the elementwise sqrt (torch's is MKL's, not correctly rounded). The C++ results must equal the
second recording bit for bit and be within a few ulps of the first.
"""

from __future__ import annotations

import contextlib
import pathlib
import sys
import warnings

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tests"))

import factored_reference as ref  # noqa: E402

OUT = HERE / "golden_opt_factored.hpp"
TORCH_VERSION = "2.13.0"
STEPS = 20
NO_GRAD_PERIOD = 4
SEED = 20260613
DTYPES = [("float", np.float32, torch.float32), ("double", np.float64, torch.float64)]

# Shapes cover the factored path (2-D, and 3-D with a batch of matrices), vectors, and a 0-d scalar.
ADAFACTOR_SHAPES = [(3, 5), (6,), (2, 3, 4), ()]
ADAFACTOR_CASES = [
    ("defaults", dict()),
    ("weight_decay_maximize", dict(lr=3e-2, weight_decay=0.05, maximize=True)),
    ("eps_clipping_decay", dict(lr=0.1, beta2_decay=-0.5, eps=(1e-3, 1e-2), d=1.5)),
    ("large_lr", dict(lr=0.5, d=4.0, eps=(None, 1e-4))),
]
SPARSE_SHAPES = [(6, 4), (5,), (3, 2, 2)]
SPARSE_CASES = [
    ("defaults", dict()),
    ("betas_maximize", dict(lr=1e-2, betas=(0.5, 0.9), maximize=True)),
    ("eps", dict(lr=3e-2, eps=1e-3)),
]


def has_grad(param: int, step: int) -> bool:
    return not (param == 1 and step % NO_GRAD_PERIOD == 0)


def adafactor_data(np_dtype):
    rng = np.random.Generator(np.random.PCG64(SEED + (0 if np_dtype == np.float32 else 1)))
    init = [np.asarray(rng.uniform(-1, 1, s), np_dtype) for s in ADAFACTOR_SHAPES]
    grads = [[np.asarray(rng.standard_normal(s) * 10.0 ** rng.integers(-3, 1), np_dtype) for s in ADAFACTOR_SHAPES]
             for _ in range(STEPS)]
    return init, grads


def sparse_data(np_dtype):
    """Per step and parameter: (indices, values); repeated rows, unsorted rows and empty gradients included.
    The same draws for both dtypes (the C++ header holds one index list)."""
    rng = np.random.Generator(np.random.PCG64(SEED + 2))
    init = [np.asarray(rng.uniform(-1, 1, s), np_dtype) for s in SPARSE_SHAPES]
    grads = []
    for t in range(STEPS):
        row = []
        for s in SPARSE_SHAPES:
            nnz = 0 if t % 7 == 3 else int(rng.integers(1, 2 * s[0]))
            idx = rng.integers(0, s[0], nnz).astype(np.int64)
            vals = np.asarray(rng.standard_normal((nnz,) + s[1:]) * 10.0 ** rng.integers(-3, 1), np_dtype)
            row.append((idx, vals))
        grads.append(row)
    return init, grads


def run(name, kwargs, tdt, init, grads, context):
    """Final parameters, state, and the number of calls the replaced torch functions got."""
    params = [torch.tensor(x, dtype=tdt) for x in init]
    replaced = 0
    opt = getattr(torch.optim, name)([{"params": params}], **kwargs)
    for t in range(1, STEPS + 1):
        for i, p in enumerate(params):
            g = grads[t - 1][i]
            if not has_grad(i, t):
                p.grad = None
            elif isinstance(g, tuple):
                p.grad = torch.sparse_coo_tensor(torch.from_numpy(g[0])[None], torch.from_numpy(g[1]), p.shape,
                                                 check_invariants=False)
            else:
                p.grad = torch.from_numpy(g.copy())
        with context() as calls:
            opt.step()
        replaced += len(calls or [])
    finals = [p.detach().numpy().copy() for p in params]
    states = [{k: (v if isinstance(v, int) else v.numpy().copy()) for k, v in opt.state[p].items()} for p in params]
    return finals, states, replaced


def expected_calls(shapes, sparse_grads=None) -> int:
    """What the replacement must have been called for: Adafactor takes ||p|| and ||U|| of every update, and
    row norms, column norms and the row_var mean of a factored one; SparseAdam one sqrt per non-empty update."""
    total = 0
    for t in range(1, STEPS + 1):
        for i, s in enumerate(shapes):
            if not has_grad(i, t):
                continue
            if sparse_grads is None:
                total += 5 if len(s) >= 2 else 2
            else:
                total += len(sparse_grads[t - 1][i][0]) > 0
    return total


def hexlit(x, ctype: str) -> str:
    v = float(x)
    assert np.isfinite(v)
    if v == 0.0:
        s = "-0x0p+0" if np.signbit(v) else "0x0p+0"
    else:
        mant, exp = v.hex().split("p")
        s = f"{mant.rstrip('0').rstrip('.')}p{exp}"
    assert float.fromhex(s) == v
    return s + ("f" if ctype == "float" else "")


def values(xs, ctype: str, indent: str = "      ", per_line: int = 4) -> str:
    lits = [hexlit(v, ctype) for v in xs]
    if not lits:
        return indent + "0"  # a C++ array may not be empty; unused
    return indent + (",\n" + indent).join(", ".join(lits[i:i + per_line]) for i in range(0, len(lits), per_line))


def ints(xs) -> str:
    return "{" + ", ".join(str(int(x)) for x in xs) + "}"


def flat(arrays) -> np.ndarray:
    return np.concatenate([np.asarray(a).reshape(-1) for a in arrays]) if arrays else np.zeros(0)


def main() -> None:
    if torch.__version__.split("+")[0] != TORCH_VERSION:
        sys.exit(f"{__file__} needs torch {TORCH_VERSION}, found {torch.__version__}")
    warnings.simplefilter("error")
    out = []
    w = out.append
    w(f"// Generated by cpp/tests/make_golden_opt_factored.py with torch {TORCH_VERSION} (numpy {np.__version__}).")
    w("// DO NOT EDIT BY HAND: change the script and rerun it.")
    w("//")
    w(f"// torch.optim.Adafactor and torch.optim.SparseAdam (single-tensor), {STEPS} steps on fixed gradients; parameter")
    w(f"// 1 gets grad None at steps t (1-based) with t % {NO_GRAD_PERIOD} == 0. *_exact: the same runs with the")
    w("// one rounding fastoptim does differently replaced by fastoptim's (tests/factored_reference.py).")
    w("#pragma once")
    w("")
    w("#include <cstddef>")
    w("#include <cstdint>")
    w("")
    w("namespace golden_factored {")
    w("")
    w(f"inline constexpr int kSteps = {STEPS};")
    w(f"inline constexpr int kNoGradPeriod = {NO_GRAD_PERIOD};")
    w("")

    # ------------------------------------------------------------------------------------------ Adafactor
    data = {c: adafactor_data(npd) for c, npd, _ in DTYPES}
    results = {}
    for k, (case, kwargs) in enumerate(ADAFACTOR_CASES):
        for c, npd, tdt in DTYPES:
            init, grads = data[c]
            kw = dict(kwargs, foreach=False)
            results[k, c, "torch"] = run("Adafactor", kw, tdt, init, grads, contextlib.nullcontext)
            results[k, c, "exact"] = run("Adafactor", kw, tdt, init, grads, ref.fastoptim_reductions)
            assert results[k, c, "exact"][2] == expected_calls(ADAFACTOR_SHAPES), results[k, c, "exact"][2]
    n = len(ADAFACTOR_SHAPES)
    sizes = [int(np.prod(s)) for s in ADAFACTOR_SHAPES]
    keys = ["row_var", "col_var", "variance"]
    w("namespace adafactor {")
    w("")
    w(f"inline constexpr std::size_t kNumParams = {n};")
    w(f"inline constexpr std::size_t kNdim[kNumParams] = {ints(len(s) for s in ADAFACTOR_SHAPES)};")
    dims = [list(s) + [0] * (3 - len(s)) for s in ADAFACTOR_SHAPES]
    w(f"inline constexpr std::size_t kDims[kNumParams][3] = {{{', '.join(ints(d) for d in dims)}}};")
    w(f"inline constexpr std::size_t kSizes[kNumParams] = {ints(sizes)};")
    w(f"inline constexpr std::size_t kOffsets[kNumParams] = {ints(np.cumsum([0] + sizes)[:-1])};")
    w(f"inline constexpr std::size_t kTotal = {sum(sizes)};")
    # state buffer sizes per key and parameter (0: the parameter has no such buffer)
    st0 = results[0, "float", "torch"][1]
    for key in keys:
        ks = [st0[i][key].size if key in st0[i] else 0 for i in range(n)]
        cname = "".join(part.capitalize() for part in key.split("_"))
        w(f"inline constexpr std::size_t k{cname}Sizes[kNumParams] = {ints(ks)};")
        w(f"inline constexpr std::size_t k{cname}Offsets[kNumParams] = {ints(np.cumsum([0] + ks)[:-1])};")
        w(f"inline constexpr std::size_t k{cname}Total = {max(1, sum(ks))};")
    w("")
    w("struct Case {")
    w("  const char* name;")
    w("  double lr, beta2_decay;")
    w("  bool has_eps1;  // false: torch's eps1 None")
    w("  double eps1, eps2, d, weight_decay;")
    w("  bool maximize;")
    w("  long long steps[kNumParams];  // torch's state['step'] at the end")
    w("};")
    w("inline constexpr Case kCases[] = {")
    for k, (case, kwargs) in enumerate(ADAFACTOR_CASES):
        g = torch.optim.Adafactor([torch.zeros(1)], **kwargs).param_groups[0]
        eps1 = g["eps"][0]
        steps = [int(s["step"]) for s in results[k, "float", "torch"][1]]
        w(f"    {{\"{case}\", {hexlit(g['lr'], 'double')}, {hexlit(g['beta2_decay'], 'double')}, "
          f"{'true' if eps1 is not None else 'false'}, {hexlit(eps1 or 0.0, 'double')}, {hexlit(g['eps'][1], 'double')}, "
          f"{hexlit(g['d'], 'double')}, {hexlit(g['weight_decay'], 'double')}, {'true' if g['maximize'] else 'false'}, "
          f"{ints(steps)}}},")
    w("};")
    w("inline constexpr std::size_t kNumCases = sizeof(kCases) / sizeof(kCases[0]);")
    d = torch.optim.Adafactor([torch.zeros(1)]).defaults
    w(f"// torch's defaults: lr, beta2_decay, eps2, d, weight_decay (eps1 None, maximize false).")
    w(f"inline constexpr double kTorchDefaults[5] = {{{hexlit(d['lr'], 'double')}, {hexlit(d['beta2_decay'], 'double')}, "
      f"{hexlit(d['eps'][1], 'double')}, {hexlit(d['d'], 'double')}, {hexlit(d['weight_decay'], 'double')}}};")
    assert d["eps"][0] is None and d["maximize"] is False
    w("")
    w("template <class T>")
    w("struct Data;")
    for c, npd, _ in DTYPES:
        init, grads = data[c]
        w("")
        w("template <>")
        w(f"struct Data<{c}> {{")
        w(f"  static constexpr {c} init[kTotal] = {{\n{values(flat(init), c)}\n  }};")
        w(f"  static constexpr {c} grad[kSteps][kTotal] = {{")
        for t in range(STEPS):
            w(f"    {{  // step {t + 1}\n{values(flat(grads[t]), c)}\n    }},")
        w("  };")
        for which in ("torch", "exact"):
            suffix = "" if which == "torch" else "_exact"
            w(f"  static constexpr {c} final_params{suffix}[kNumCases][kTotal] = {{")
            for k, (case, _) in enumerate(ADAFACTOR_CASES):
                w(f"    {{  // {case}\n{values(flat(results[k, c, which][0]), c)}\n    }},")
            w("  };")
            for key in keys:
                cname = "".join(part.capitalize() for part in key.split("_"))
                w(f"  static constexpr {c} final_{key}{suffix}[kNumCases][k{cname}Total] = {{")
                for k, (case, _) in enumerate(ADAFACTOR_CASES):
                    bufs = [s[key] for s in results[k, c, which][1] if key in s]
                    w(f"    {{  // {case}\n{values(flat(bufs), c)}\n    }},")
                w("  };")
        w("};")
    w("")
    w("}  // namespace adafactor")
    w("")

    # ----------------------------------------------------------------------------------------- SparseAdam
    data = {c: sparse_data(npd) for c, npd, _ in DTYPES}
    results = {}
    for k, (case, kwargs) in enumerate(SPARSE_CASES):
        for c, npd, tdt in DTYPES:
            init, grads = data[c]
            results[k, c, "torch"] = run("SparseAdam", kwargs, tdt, init, grads, contextlib.nullcontext)
            results[k, c, "exact"] = run("SparseAdam", kwargs, tdt, init, grads, ref.correctly_rounded_sqrt)
            assert results[k, c, "exact"][2] == expected_calls(SPARSE_SHAPES, grads), results[k, c, "exact"][2]
    n = len(SPARSE_SHAPES)
    sizes = [int(np.prod(s)) for s in SPARSE_SHAPES]
    w("namespace sparse_adam {")
    w("")
    w(f"inline constexpr std::size_t kNumParams = {n};")
    w(f"inline constexpr std::size_t kRows[kNumParams] = {ints(s[0] for s in SPARSE_SHAPES)};")
    w(f"inline constexpr std::size_t kSizes[kNumParams] = {ints(sizes)};")
    w(f"inline constexpr std::size_t kOffsets[kNumParams] = {ints(np.cumsum([0] + sizes)[:-1])};")
    w(f"inline constexpr std::size_t kTotal = {sum(sizes)};")
    # the same indices for both dtypes (same generator draws), checked here
    idx_f, idx_d = data["float"][1], data["double"][1]
    assert all(np.array_equal(a[i][0], b[i][0]) for a, b in zip(idx_f, idx_d) for i in range(n))
    nnz = [[len(idx_f[t][i][0]) for i in range(n)] for t in range(STEPS)]
    all_idx = [idx_f[t][i][0] for t in range(STEPS) for i in range(n)]
    counts = [len(x) for x in all_idx]
    w("// Step t, parameter i: kNnz[t - 1][i] rows kIndices[kIndexStart[t - 1][i] ...], values at the same")
    w("// position times the row size in Data<T>::values (kValueStart).")
    w(f"inline constexpr std::size_t kNnz[kSteps][kNumParams] = {{{', '.join(ints(r) for r in nnz)}}};")
    starts = np.cumsum([0] + counts)[:-1].reshape(STEPS, n)
    w(f"inline constexpr std::size_t kIndexStart[kSteps][kNumParams] = {{{', '.join(ints(r) for r in starts)}}};")
    vcounts = [len(idx_f[t][i][0]) * (sizes[i] // SPARSE_SHAPES[i][0]) for t in range(STEPS) for i in range(n)]
    vstarts = np.cumsum([0] + vcounts)[:-1].reshape(STEPS, n)
    w(f"inline constexpr std::size_t kValueStart[kSteps][kNumParams] = {{{', '.join(ints(r) for r in vstarts)}}};")
    w(f"inline constexpr std::int64_t kIndices[] = {ints(flat(all_idx))};")
    w(f"inline constexpr std::size_t kNumValues = {sum(vcounts)};")
    w("")
    w("struct Case {")
    w("  const char* name;")
    w("  double lr, beta1, beta2, eps;")
    w("  bool maximize;")
    w("  long long steps[kNumParams];")
    w("};")
    w("inline constexpr Case kCases[] = {")
    for k, (case, kwargs) in enumerate(SPARSE_CASES):
        g = torch.optim.SparseAdam([torch.zeros(1)], **kwargs).param_groups[0]
        steps = [int(s["step"]) for s in results[k, "float", "torch"][1]]
        w(f"    {{\"{case}\", {hexlit(g['lr'], 'double')}, {hexlit(g['betas'][0], 'double')}, "
          f"{hexlit(g['betas'][1], 'double')}, {hexlit(g['eps'], 'double')}, {'true' if g['maximize'] else 'false'}, "
          f"{ints(steps)}}},")
    w("};")
    w("inline constexpr std::size_t kNumCases = sizeof(kCases) / sizeof(kCases[0]);")
    d = torch.optim.SparseAdam([torch.zeros(1)]).defaults
    w("// torch's defaults: lr, beta1, beta2, eps (maximize false).")
    w(f"inline constexpr double kTorchDefaults[4] = {{{hexlit(d['lr'], 'double')}, {hexlit(d['betas'][0], 'double')}, "
      f"{hexlit(d['betas'][1], 'double')}, {hexlit(d['eps'], 'double')}}};")
    w("")
    w("template <class T>")
    w("struct Data;")
    for c, npd, _ in DTYPES:
        init, grads = data[c]
        w("")
        w("template <>")
        w(f"struct Data<{c}> {{")
        w(f"  static constexpr {c} init[kTotal] = {{\n{values(flat(init), c)}\n  }};")
        w(f"  static constexpr {c} values[kNumValues] = {{\n{values(flat([grads[t][i][1] for t in range(STEPS) for i in range(n)]), c)}\n  }};")
        for which in ("torch", "exact"):
            suffix = "" if which == "torch" else "_exact"
            w(f"  static constexpr {c} final_params{suffix}[kNumCases][kTotal] = {{")
            for k, (case, _) in enumerate(SPARSE_CASES):
                w(f"    {{  // {case}\n{values(flat(results[k, c, which][0]), c)}\n    }},")
            w("  };")
            for key in ("exp_avg", "exp_avg_sq"):
                w(f"  static constexpr {c} final_{key}{suffix}[kNumCases][kTotal] = {{")
                for k, (case, _) in enumerate(SPARSE_CASES):
                    w(f"    {{  // {case}\n{values(flat([s[key] for s in results[k, c, which][1]]), c)}\n    }},")
                w("  };")
        w("};")
    w("")
    w("}  // namespace sparse_adam")
    w("}  // namespace golden_factored")
    text = "\n".join(out) + "\n"
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(text) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
