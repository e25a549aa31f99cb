"""Regenerates tests/data/golden_LBFGS.npz from torch.optim.LBFGS (needs torch==2.13.0).

    python tests/data/make_golden_lbfgs.py

For every case of tests/lbfgs_parity.py it stores torch's parameters after every step(), the spread of
torch's own one-ulp-perturbed runs at every step (which bounds the deviation a test allows), and torch's
final func_evals and n_iter. No pickle: plain npz arrays and a JSON string.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import lbfgs_parity as L  # noqa: E402


def main() -> None:
    import torch

    arrays = {}
    meta = {"torch": torch.__version__, "cases": {}}
    for k, dt in L.cases():
        dtype = L.DTYPES[dt]
        cid = L.case_id(k, dt)
        opts: list = []
        ref = L.run_torch(k, dtype, opt_out=opts)
        spread = L.torch_spread_per_step(k, dtype, ref)
        state = opts[0].state[opts[0]._params[0]]
        arrays[cid] = ref
        arrays[cid + "/spread"] = spread
        problem, config, steps = L.CASES[k]
        meta["cases"][cid] = {"problem": problem, "config": config, "steps": steps,
                              "func_evals": state["func_evals"], "n_iter": state["n_iter"]}
        print(f"{cid:28s} spread {spread.max():.3e}  evals {state['func_evals']}")
    np.savez_compressed(HERE / "golden_LBFGS.npz", meta=np.array(json.dumps(meta)), **arrays)


if __name__ == "__main__":
    main()
