"""The step benchmark (python -m fastoptim bench): its structure on tiny cases, never its timings."""

import json

import numpy as np
import pytest

import fastoptim
from fastoptim import _bench, _core
from fastoptim.__main__ import main

OPTIMIZERS = sorted(
    name for name in fastoptim.__all__
    if isinstance(getattr(fastoptim, name), type) and issubclass(getattr(fastoptim, name), fastoptim.Optimizer)
    and getattr(fastoptim, name) is not fastoptim.Optimizer
)


def test_every_exported_optimizer_has_a_spec():
    assert len(OPTIMIZERS) == 20
    assert sorted({spec.cls.__name__ for spec in _bench.SPECS.values()}) == OPTIMIZERS


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    pytest.importorskip("matplotlib")
    d = tmp_path_factory.mktemp("bench")
    paths = {k: str(d / f"out.{k}") for k in ("json", "md", "png")}
    rc = main(["bench", "--quick", "--threads", "1", "--json", paths["json"], "--markdown", paths["md"],
               "--plot", paths["png"]])
    assert rc == 0
    with open(paths["json"]) as f:
        report = json.load(f)
    with open(paths["md"]) as f:
        md = f.read()
    return report, md, paths


def test_quick_run_covers_every_optimizer_and_case(quick):
    report, _, _ = quick
    results = report["results"]
    names = {r["optimizer"] for r in results}
    assert {_bench.SPECS[n].cls.__name__ for n in names} == set(OPTIMIZERS)
    # The low-precision rows exactly where the build takes state_dtype=.
    for variant in ("Adam-bf16", "Adam-f16", "SGD-bf16"):
        assert (variant in names) == _bench.supported(_bench.SPECS[variant])
    by_opt = {}
    for r in results:
        by_opt.setdefault(r["optimizer"], set()).add(r["case"])
    dense = set(_bench.QUICK_CASES)
    for name, cases in by_opt.items():
        kind = _bench.SPECS[name].kind
        assert cases == ({"1x16", "1x4096"} if kind == "sparse" else dense), name
    assert report["threads"] == [1] and all(r["threads"] == 1 for r in results)


def test_rows_carry_times_ratios_and_roofline(quick):
    report, _, _ = quick
    torch = pytest.importorskip("torch")
    for r in report["results"]:
        s = r["seconds"]
        assert s["fastoptim"] > 0 and all(t > 0 for t in s.values())
        assert r["ns_per_param"]["fastoptim"] == pytest.approx(1e9 * s["fastoptim"] / r["params"])
        spec = _bench.SPECS[r["optimizer"]]
        torch_cls = getattr(torch.optim, spec.torch_name or "", None)
        if torch_cls is not None:
            assert "torch single" in s
            assert r["ratio_torch_best"] == pytest.approx(min(v for k, v in s.items() if k.startswith("torch"))
                                                          / s["fastoptim"])
        else:
            assert r["ratio_torch_best"] is None
        if spec.numpy is not None:
            assert r["ratio_numpy"] == pytest.approx(s["numpy"] / s["fastoptim"])
        if spec.kind == "closure":
            assert r["roofline_seconds"] is None and r["pct_of_roofline"] is None
        else:
            assert r["roofline_seconds"] > 0 and r["bytes"] > 0
            assert r["pct_of_roofline"] == pytest.approx(100 * r["roofline_seconds"] / s["fastoptim"])
            assert r["gbps"]["fastoptim"] == pytest.approx(r["bytes"] / s["fastoptim"] / 1e9)
    # torch fused exists for these three (and Adagrad) in torch >= 2.4 on CPU: the ratio must be computed.
    for name in ("SGD", "Adam", "AdamW"):
        for r in (r for r in report["results"] if r["optimizer"] == name):
            assert r["ratio_torch_fused"] == pytest.approx(r["seconds"]["torch fused"] / r["seconds"]["fastoptim"])
            assert r["ceiling_torch_fused"] == pytest.approx(r["seconds"]["torch fused"] / r["roofline_seconds"])


def test_bytes_per_param_follow_the_state(quick):
    report, _, _ = quick
    per = {(r["optimizer"], r["case"]): r["bytes_per_param"] for r in report["results"]}
    # float32: param + grad + state read, param + state written.
    assert per[("SGD", "1x4096")] == 3 * 4 + 2 * 4
    assert per[("Adam", "1x4096")] == 28
    assert per[("AdamW", "1x4096")] == 28
    assert per[("Adan", "1x4096")] == 4 * (6 + 5)
    assert per[("Lion", "1x4096")] == 20
    # SparseAdam moves only the rows its gradient lists.
    assert per[("SparseAdam", "1x4096")] == pytest.approx(28 / 64)
    assert per[("Adafactor", "1x4096")] == 20  # a vector: a full-size variance, not factored
    if ("Adam-bf16", "1x4096") in per:  # two bfloat16 moments: 2 * 2 bytes less each way
        assert per[("Adam-bf16", "1x4096")] == 28 - 8
    if ("Adam-f16", "1x4096") in per:
        assert per[("Adam-f16", "1x4096")] == 28 - 8


def test_machine_info(quick):
    report, _, _ = quick
    m = report["machine"]
    for key in ("cpu", "logical_cpus", "caches", "memory_gib", "kernels", "versions", "load_average_before",
                "load_average_after", "date"):
        assert key in m, key
    assert m["kernels"] == fastoptim.cpu_capability()
    assert m["versions"]["fastoptim"] == fastoptim.__version__
    assert report["command"].startswith("python -m fastoptim bench --quick")


def test_markdown_and_plot(quick):
    report, md, paths = quick
    assert md.startswith("# fastoptim step benchmark")
    assert report["machine"]["cpu"] in md and "load average" in md
    for r in report["results"]:
        assert f"### {r['label']} (" in md
        assert f"| {r['case_label']} |" in md
    # One table per optimizer and thread count; each row has as many cells as its header.
    tables = [t for t in md.split("\n### ")[1:]]
    assert len(tables) == len({(r["optimizer"], r["threads"]) for r in report["results"]})
    for t in tables:
        rows = [ln for ln in t.splitlines() if ln.startswith("|")]
        assert len({ln.count("|") for ln in rows}) == 1, t
    with open(paths["png"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_stream_probe_reads_and_writes_every_array():
    n = 70_003  # above one grain (threads split it), and a tail after the last whole vector
    a = np.arange(n, dtype=np.uint32)
    b = np.full(n, 2, np.uint16)
    c = np.full(n, 3, np.uint64)
    w16 = np.zeros(n, np.uint16)
    _core._stream([a, b, c], [a, w16])
    expect = np.arange(n, dtype=np.uint64) + 5
    np.testing.assert_array_equal(a, expect.astype(np.uint32))
    np.testing.assert_array_equal(w16, expect.astype(np.uint16))
    with pytest.raises(ValueError, match="different sizes"):
        _core._stream([a], [np.zeros(n + 1, np.float32)])
    with pytest.raises(TypeError, match="2, 4 or 8 bytes"):
        _core._stream([np.zeros(n, np.uint8)], [])
    ro = np.zeros(n, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        _core._stream([a], [ro])
    with pytest.raises(ValueError, match="C-contiguous"):
        _core._stream([np.zeros(2 * n, np.float32)[::2]], [])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown optimizer"):
        _bench.run(["Adamm"], threads=[1], quick=True)
    with pytest.raises(ValueError, match="do not apply"):
        _bench.run(["SGD"], threads=[1], quick=True, cases=["1x1e7"])
    with pytest.raises(ValueError, match="threads"):
        _bench.run(["SGD"], threads=[0], quick=True)


def test_traffic_counts_the_state_itemsize():
    """Lower-precision state (state_dtype=) moves fewer bytes: the mix comes from the arrays the state holds."""

    class Fake:
        state = {0: {"step": np.float32(1), "exp_avg": np.zeros(8, np.uint16), "exp_avg_sq": np.zeros(8, np.uint16),
                     "row_var": np.zeros(2, np.float32)}}

    prob = _bench.Problem(_bench.SPECS["Adam"], [(8,)])
    mix = _bench.traffic(Fake(), prob, prob.params)
    assert mix == {(4, 4, (2, 2)): 8}
    seconds, nbytes = _bench.roofline(mix, repeat=1, min_time=0.0)
    assert seconds > 0 and nbytes == 8 * (4 + 4 + 2 + 2 + 4 + 2 + 2)


def test_interleaved_medians_time_every_function_in_turn():
    """The implementations of a case are timed block after block in rounds (a busy moment of the machine falls
    on all of them), each at least `repeat` times; one that raises while warming up is left out and reported."""
    order = []

    def make(label):
        def fn():
            order.append(label)
        return fn

    def broken():
        raise RuntimeError("no fused kernel here")

    fns = {"a": make("a"), "b": make("b"), "broken": broken}
    seconds, errors = _bench.interleaved_medians(fns, repeat=6, min_time=0.0, rounds=3)
    assert set(seconds) == {"a", "b"} and all(t >= 0 for t in seconds.values())
    assert set(errors) == {"broken"} and "no fused kernel" in str(errors["broken"])
    timed = order[4:]  # after two warm-up calls each
    assert timed.count("a") >= 6 and timed.count("b") >= 6
    runs = [label for i, label in enumerate(timed) if i == 0 or timed[i - 1] != label]
    assert runs == ["a", "b"] * 3  # three rounds, each a block of a then a block of b
