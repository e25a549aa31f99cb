"""Regenerates tests/data/golden_<Optimizer>.npz from torch.optim (needs torch==2.13.0).

    python tests/data/make_golden.py            # every optimizer
    python tests/data/make_golden.py Adagrad    # only the named ones

For every parity case (tests/parity.py) it stores torch's single-tensor reference trajectory at every
CHECKPOINT-th step, and the spread of torch's own implementations (foreach, fused, one-ulp perturbed
runs) that bounds the deviation a test allows. No pickle: plain npz arrays and a JSON string.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import parity  # noqa: E402

CHECKPOINT = 25


def main() -> None:
    import torch

    only = set(sys.argv[1:])
    unknown = only - set(parity.OPTIMIZERS)
    if unknown:
        raise SystemExit(f"unknown optimizer(s): {sorted(unknown)}")
    for name, entry in parity.OPTIMIZERS.items():
        if only and name not in only:
            continue
        arrays = {}
        meta = {"torch": torch.__version__, "steps": parity.STEPS, "checkpoint": CHECKPOINT, "cases": {}}
        for k, config in enumerate(entry["configs"]):
            for dt, dtype in parity.DTYPES.items():
                seed = parity.case_seed(name, k, dt)
                ref = parity.run_torch(name, config, dtype, seed)
                spread = parity.torch_spread(name, config, dtype, seed, ref)
                cid = parity.case_id(name, k, dt)
                arrays[cid] = ref[::CHECKPOINT]
                meta["cases"][cid] = {"config": config, "spread_ulps": spread}
                print(f"{cid:16s} spread {spread:9.2f} ulps")
        np.savez_compressed(HERE / f"golden_{name}.npz", meta=np.array(json.dumps(meta)), **arrays)


if __name__ == "__main__":
    main()
