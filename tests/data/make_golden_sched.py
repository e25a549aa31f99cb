"""Regenerates tests/data/golden_sched_<tag>.npz for every tests/sched_cases_<tag>.py (needs torch 2.13).

    python tests/data/make_golden_sched.py [tag ...]
"""

import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import sched_parity as sp  # noqa: E402


def main(tags):
    import torch

    for tag, module in sp.case_modules():
        if tags and tag not in tags:
            continue
        records, meta = {}, {"torch": torch.__version__, "cases": {}}
        for case in module.CASES:
            records[case["id"]] = sp.run_torch(case["kind"], sp.builder(case), case["steps"], case.get("metrics"))
            meta["cases"][case["id"]] = sp.jsonable(case)
        sp.save_golden(sp.golden_path(tag), records, meta)
        print(f"{tag}: {len(records)} cases")


if __name__ == "__main__":
    main(sys.argv[1:])
