"""The benchmark harness runs end to end and writes complete results (no speed checks)."""

import io
import json
import os

import pytest
import torch

from benchmarks import _common
from benchmarks import grid_sample as bench
from torchsample.ops import BACKENDS

TINY = bench.Case(size=(8, 8), channels=2, points=64, workloads=bench.WORKLOADS)
TINY_SMOOTH = bench.Case(
    size=(6, 5, 4),
    channels=3,
    points=32,
    workloads=bench.WORKLOADS,
    smoothstep=True,
    channels_last=True,
)


@pytest.fixture(scope="module")
def payload():
    text = io.StringIO()
    result = bench.run([TINY, TINY_SMOOTH], threads=1, min_run_time=0.001, out=text)
    result["stdout"] = text.getvalue()
    return result


def test_results_cover_every_case_workload_and_backend(payload):
    seen = {(r["case"], r["workload"], r["backend"]) for r in payload["results"]}
    expected = {
        (c.name, w, b)
        for c in (TINY, TINY_SMOOTH)
        for w in bench.WORKLOADS
        for b in (*BACKENDS, "auto")
    }
    assert seen == expected
    assert len(payload["results"]) == len(expected)
    assert set(payload["cases"]) == {TINY.name, TINY_SMOOTH.name}
    assert payload["cases"][TINY_SMOOTH.name]["size"] == (6, 5, 4)


def test_rows_have_figures_or_reasons(payload):
    for row in payload["results"]:
        assert row["status"] in ("ok", "skipped"), row
        if row["status"] == "ok":
            assert row["time_s"] > 0 and row["runs"] >= 1
            assert row["peak_memory_bytes"] is None or row["peak_memory_bytes"] >= 0
        else:
            assert isinstance(row["reason"], str) and row["reason"]


def test_native_is_the_baseline_and_skips_smoothstep(payload):
    rows = {(r["case"], r["workload"], r["backend"]): r for r in payload["results"]}
    for workload in bench.WORKLOADS:
        assert rows[(TINY.name, workload, "native")]["speedup_vs_native"] == 1.0
        reference = rows[(TINY.name, workload, "reference")]
        native = rows[(TINY.name, workload, "native")]
        assert reference["speedup_vs_native"] == pytest.approx(
            native["time_s"] / reference["time_s"]
        )
        smooth_native = rows[(TINY_SMOOTH.name, workload, "native")]
        assert smooth_native["status"] == "skipped" and "smoothstep" in smooth_native["reason"]
        assert rows[(TINY_SMOOTH.name, workload, "reference")]["speedup_vs_native"] is None


def test_json_round_trip_and_machine(payload, tmp_path):
    path = _common.write_json(
        tmp_path / "out" / "r.json", {k: v for k, v in payload.items() if k != "stdout"}
    )
    loaded = json.loads(path.read_text())
    assert loaded["machine"]["torch"] == torch.__version__
    assert loaded["machine"]["threads"] == 1
    assert {"cpu_model", "cpu_count", "torch_cuda", "python"} <= set(loaded["machine"])
    assert loaded["settings"]["memory_method"] == _common.memory_method("cpu")
    assert loaded["settings"]["torchsample_backend"] == os.environ.get(
        "TORCHSAMPLE_BACKEND", "auto"
    )
    assert len(loaded["results"]) == len(payload["results"])


def test_table_lists_every_row_and_the_memory_method(payload):
    stdout = payload["stdout"]
    assert "peak memory: " + _common.memory_method("cpu") in stdout
    assert "skipped: " in stdout
    assert "speed-up versus native" in stdout
    assert stdout.count(TINY.name) >= len(bench.WORKLOADS) * len(bench.harness_backends())


def test_command_line_quick_run_writes_json(tmp_path, capsys):
    out = tmp_path / "quick.json"
    bench.main(["--quick", "--threads", "1", "--filter", "3d", "--out", str(out)])
    loaded = json.loads(out.read_text())
    assert loaded["settings"]["quick"] is True
    assert loaded["cases"] and all(name.startswith("3d") for name in loaded["cases"])
    assert f"wrote {out}" in capsys.readouterr().out


@pytest.mark.parametrize("workload", bench.WORKLOADS)
def test_workloads_agree_across_backends(workload):
    # Every backend must compute the same thing, or the timings compare nothing.
    case = bench.Case(size=(5, 4), channels=3, points=20, workloads=(workload,))
    inputs = bench.make_inputs(case, "cpu")
    inputs = bench.Inputs(*(t.double() for t in (inputs.input, inputs.grid, inputs.upstream)))
    backends = bench.harness_backends()
    reference = bench.make_workload(workload, backends["reference"], case, inputs)()
    for name in ("native", "compiled", "auto"):
        result = bench.make_workload(workload, backends[name], case, inputs)()
        leaves = torch.utils._pytree.tree_leaves(result)
        expected = torch.utils._pytree.tree_leaves(reference)
        assert len(leaves) == len(expected) > 0
        for a, b in zip(leaves, expected, strict=True):
            torch.testing.assert_close(a, b)


def test_training_loop_workloads_fill_grad_of_a_channels_first_leaf():
    case = bench.Case(size=(6, 5), channels=2, points=8, workloads=("train_step",))
    inputs = bench.make_inputs(case, "cpu")
    for workload in ("train_step", "sdf_step"):
        step = bench.make_workload(workload, bench.harness_backends()["auto"], case, inputs)
        grad_input, grad_grid = (t.clone() for t in step())
        assert grad_input.shape == inputs.input.shape and grad_grid.shape == inputs.grid.shape
        # Every call starts from fresh gradients instead of accumulating.
        again = step()
        torch.testing.assert_close(again[0], grad_input)
        torch.testing.assert_close(again[1], grad_grid)


def test_command_line_selects_workloads(tmp_path):
    out = tmp_path / "sdf.json"
    bench.main(["--quick", "--threads", "1", "--workloads", "sdf_step", "--out", str(out)])
    loaded = json.loads(out.read_text())
    assert {row["workload"] for row in loaded["results"]} == {"sdf_step"}
    with pytest.raises(SystemExit):
        bench.main(["--quick", "--workloads", "sideways"])
    out = tmp_path / "two.json"
    bench.main(
        [
            "--quick",
            "--threads",
            "1",
            "--backends",
            "auto",
            "--filter",
            "3d",
            "--workloads",
            "forward",
            "--out",
            str(out),
        ]
    )
    loaded = json.loads(out.read_text())
    assert {row["backend"] for row in loaded["results"]} == {"auto", "native"}


def test_forward_bytes_counts_grid_output_and_corners():
    case = bench.Case(size=(4, 4), channels=2, points=10)
    assert bench.forward_bytes(case) == 10 * (2 + 2 + 2 * 4) * 4
    case3d = bench.Case(size=(4, 4, 4), channels=1, points=3, dtype="float16")
    assert bench.forward_bytes(case3d) == 3 * (3 + 1 + 8) * 2


@pytest.mark.skipif(not _common.cpu_peak_memory_supported(), reason="needs /proc/self/clear_refs")
def test_cpu_peak_memory_sees_a_temporary_allocation():
    size = 32 * 2**20

    def allocate_and_free():
        buffer = torch.ones(size // 4)
        return buffer.sum()

    peak = _common.measure_peak_memory(allocate_and_free, "cpu")
    # Other pages of the process come and go by a few hundred KiB around the call.
    assert abs(peak - size) < 2**20
    assert _common.measure_peak_memory(lambda: None, "cpu") < 2**20


def test_unknown_workload_is_rejected():
    with pytest.raises(ValueError, match="workload must be one of"):
        bench.make_workload("sideways", BACKENDS["native"], TINY, bench.make_inputs(TINY, "cpu"))


def test_speedup_summary_uses_native_else_reference():
    def row(case, backend, time_s=None):
        status = "skipped" if time_s is None else "ok"
        return {
            "case": case,
            "workload": "forward",
            "backend": backend,
            "status": status,
            "time_s": time_s,
        }

    rows = [
        row("plain", "compiled", 0.5),
        row("plain", "native", 1.0),
        row("plain", "reference", 4.0),
        row("smooth", "compiled", 0.5),
        row("smooth", "native"),
        row("smooth", "reference", 2.0),
    ]
    lines = bench.speedup_summary(rows, ["compiled", "native", "reference"]).splitlines()
    assert lines[2].split() == ["plain", "forward", "2.00x", "1.00x", "0.25x"]
    assert lines[3].split() == ["smooth", "forward", "4.00x", "ref", "skipped", "1.00x", "ref"]


def test_multires_harness_covers_every_case_and_agrees():
    from benchmarks import multires

    text = io.StringIO()
    payload = multires.run(multires.QUICK_CASES, threads=1, min_run_time=0.001, out=text)
    seen = {(r["case"], r["workload"], r["contender"]) for r in payload["results"]}
    floors = {
        (c.name, w, multires.FLOOR)
        for c in multires.QUICK_CASES
        for w in ("train_step", "sdf_step")
    }
    assert seen == floors | {
        (c.name, w, name)
        for c in multires.QUICK_CASES
        for w in multires.WORKLOADS
        for name in multires.CONTENDERS
    }
    assert all(r["status"] == "ok" and r["time_s"] > 0 for r in payload["results"])
    assert "speed-up" in text.getvalue()
    # Both contenders compute the same thing, or the timings compare nothing.
    case = multires.QUICK_CASES[0]
    encoder = multires.MultiResGrid(
        case.dims,
        n_levels=case.n_levels,
        max_resolution=case.max_resolution,
        log2_hashmap_size=case.log2_hashmap_size,
        smoothstep=case.smoothstep,
        dtype=torch.float64,
    )
    head = multires.MLP(encoder.out_dims, 8, 1, activation=torch.nn.Softplus()).double()
    points = torch.rand(50, case.dims, dtype=torch.float64) * 2 - 1
    grads = {}
    for name, encode in multires.CONTENDERS.items():
        multires.make_workload("sdf_step", encode, encoder, head, points)()
        grads[name] = [p.grad.clone() for p in (*encoder.tables, *head.parameters())]
    for a, b in zip(grads["fused"], grads["reference"], strict=True):
        torch.testing.assert_close(a, b)
