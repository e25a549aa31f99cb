"""Every scheduler case of tests/sched_cases_*.py against torch.optim.lr_scheduler: lr (and cycled
momentum / betas[0]) of both param groups after construction and after every step, to 1e-12 relative.
Golden records (tests/data/golden_sched_<tag>.npz, from tests/data/make_golden_sched.py) keep this
running without torch."""

import json

import numpy as np
import pytest

import sched_parity as sp
from conftest import requires_torch

CASES = list(sp.all_cases())
IDS = [case["id"] for _, case in CASES]


@pytest.mark.parametrize("tag,case", CASES, ids=IDS)
def test_matches_golden(tag, case):
    meta, records = sp.load_golden(sp.golden_path(tag))
    stored = meta["cases"].get(case["id"])
    assert stored is not None, f"no golden record for {case['id']}: run tests/data/make_golden_sched.py"
    assert stored == json.loads(json.dumps(sp.jsonable(case))), "case changed: rerun make_golden_sched.py"
    ours = sp.run_fastoptim(case["kind"], sp.builder(case), case["steps"], case.get("metrics"))
    sp.assert_close(ours, records[case["id"]], case["id"])


@requires_torch
@pytest.mark.parametrize("tag,case", CASES, ids=IDS)
def test_matches_torch_live(tag, case):
    ref = sp.run_torch(case["kind"], sp.builder(case), case["steps"], case.get("metrics"))
    ours = sp.run_fastoptim(case["kind"], sp.builder(case), case["steps"], case.get("metrics"))
    sp.assert_close(ours, ref, case["id"])


def test_harness_can_fail():
    ours = np.ones((3, 2, 2))
    ref = ours.copy()
    ref[2, 0, 1] *= 1 + 1e-10
    with pytest.raises(AssertionError, match="step 2 group 1 lr"):
        sp.assert_close(ours, ref, "x")
