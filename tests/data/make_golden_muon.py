"""Regenerates tests/data/golden_Muon.npz from torch.optim.Muon (needs torch==2.13.0).

    python tests/data/make_golden_muon.py

Stores, for tests/muon_parity.py: torch's parameters at steps 150 and 300 of every ns_steps=0
configuration (compared exactly) and at steps 100, 200 and 300 of every Newton-Schulz configuration
(compared within the free-running bound); torch's parameters and momentum buffers before and after steps
100, 200 and 300 (our step from torch's state is compared with torch's); and torch's
orthogonalization of the fixed matrices as bfloat16 bit patterns, with the deviation of torch's own ATen
products from its oneDNN ones. No pickle: plain npz arrays and a JSON string.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import muon_parity as M  # noqa: E402

EXACT_ROWS = (150, 300)
NS_ROWS = (100, 200, 300)


def main() -> None:
    import torch
    from torch.optim._muon import _zeropower_via_newtonschulz

    arrays = {}
    meta = {"torch": torch.__version__, "exact": M.EXACT_CONFIGS, "ns": M.NS_CONFIGS, "group1": M.GROUP1,
            "exact_rows": EXACT_ROWS, "ns_rows": NS_ROWS, "ns_settings": M.NS_SETTINGS, "aten_spread": {}}
    for dt, dtype in M.DTYPES.items():
        for k, config in enumerate(M.EXACT_CONFIGS):
            ref = M.run_torch(config, dtype, M.seed_of("exact", k, dt))
            arrays[f"exact/{k}/{dt}"] = ref[list(EXACT_ROWS)]
        for k, config in enumerate(M.NS_CONFIGS):
            records: list = []
            ref = M.run_torch(config, dtype, M.seed_of("ns", k, dt), record_every=100, records=records)
            arrays[f"ns/{k}/{dt}"] = ref[list(NS_ROWS)]
            for t, before, bufs, after, bufs_after in records:
                for name, mats in (("before", before), ("bufs", bufs), ("after", after), ("bufs_after", bufs_after)):
                    arrays[f"record/{k}/{dt}/{t}/{name}"] = np.concatenate([m.ravel() for m in mats])
            print(dt, "config", k, "done")
    for k, shape in enumerate(M.NS_MATRICES):
        g = torch.from_numpy(M.ns_input(k, shape))
        for j, (coefficients, steps, eps) in enumerate(M.NS_SETTINGS):
            out = _zeropower_via_newtonschulz(g, coefficients, steps, eps)
            with torch.backends.mkldnn.flags(enabled=False):
                aten = _zeropower_via_newtonschulz(g, coefficients, steps, eps)
            arrays[f"orth/{k}/{j}"] = out.view(torch.int16).numpy().view(np.uint16)
            meta["aten_spread"][f"{k}/{j}"] = M.relative_frobenius(aten.float().numpy(), out.float().numpy())
    np.savez_compressed(HERE / "golden_Muon.npz", meta=np.array(json.dumps(meta)), **arrays)


if __name__ == "__main__":
    main()
