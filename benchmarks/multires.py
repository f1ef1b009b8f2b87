"""MultiResGrid: the fused compiled op against the plain-PyTorch path, time and memory.

Run from a checkout::

    python -m benchmarks.multires [--quick] [--threads N] [--out FILE.json]

Cases are Instant-NGP's default configurations, ``MultiResGrid(2)`` and
``MultiResGrid(3)`` (16 levels of 2 features, resolutions 16 to 2048, 2^19-row
hash tables; 7 dense and 9 hashed levels in 2D, 5 and 11 in 3D), with
smoothstep weights, at 2^14, 2^16 and 2^18 points, decoded by an MLP
``out_dims -> 64 -> 64 -> 1`` with softplus activations. Workloads:

``forward``
    The encoding alone under :func:`torch.no_grad`.
``train_step``
    Encoding and MLP, ``loss.backward()`` of a data term (gradients into the
    tables and the MLP's ``.grad``).
``sdf_step``
    The SDF-fitting step: the data term beside the eikonal term on the
    gradient of the network's output with respect to the points
    (``create_graph=True``), one ``loss.backward()``.

Contenders: ``fused`` is :func:`torchsample.ops.compiled.multires_encode`
(every level in one op), ``auto`` is :func:`torchsample.ops.multires_encode`
(what MultiResGrid calls: the dispatch picks one of the two), ``reference``
is the plain-PyTorch path
(:func:`torchsample.ops.reference.multires_encode`: hashed levels with
PyTorch operations, dense levels through :func:`torchsample.grid_sample`,
which takes the compiled kernels) -- what MultiResGrid ran before the fused
op. ``mlp_alone`` runs the training and SDF steps with the encoding replaced
by a linear map of the points (``points @ W``, as wide as the encoding): the
time the MLP alone takes, a floor under every encoding's step. They take
turns in one process (see
:func:`benchmarks._common.measure_interleaved`); peak extra memory is measured
as described in :mod:`benchmarks._common`. ``--quick`` runs a tiny
configuration to check that the harness works (CI runs it) and says nothing
about speed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from benchmarks import _common
from torchsample.encoding import MultiResGrid
from torchsample.models import MLP
from torchsample.ops import compiled, multires_encode, reference

WORKLOADS = ("forward", "train_step", "sdf_step")
CONTENDERS = {
    "fused": compiled.multires_encode,
    "reference": reference.multires_encode,
    "auto": multires_encode,
}
#: The steps with a free encoding (see the module docstring); not for ``forward``.
FLOOR = "mlp_alone"


@dataclass(frozen=True)
class Case:
    dims: int
    points: int
    n_levels: int = 16
    max_resolution: int = 2048
    log2_hashmap_size: int = 19
    smoothstep: bool = True

    @property
    def name(self) -> str:
        points = self.points.bit_length() - 1
        smooth = " smoothstep" if self.smoothstep else ""
        return f"{self.dims}d L={self.n_levels} T=2^{self.log2_hashmap_size} n=2^{points}{smooth}"


FULL_CASES = [Case(dims, 1 << p) for dims in (3, 2) for p in (14, 16, 18)]
QUICK_CASES = [
    Case(3, 1 << 8, n_levels=4, max_resolution=64, log2_hashmap_size=10),
    Case(2, 1 << 8, n_levels=4, max_resolution=64, log2_hashmap_size=8, smoothstep=False),
]


def linear_stand_in(encoder):
    """An "encoding" that costs next to nothing: ``points @ W``, ``encoder.out_dims`` wide."""
    weight = torch.randn(encoder.dims, encoder.out_dims)
    weight.requires_grad_()

    def encode(points, tables, resolutions, smoothstep):
        return points @ weight

    return encode


def make_workload(workload, encode, encoder, head, points):
    """A callable running ``workload`` once with the encoding function ``encode``."""
    tables, resolutions = list(encoder.tables), encoder.resolutions
    parameters = [*encoder.tables, *head.parameters()]

    def features(x):
        return encode(x, tables, resolutions, encoder.smoothstep)

    def forward():
        with torch.no_grad():
            return features(points)

    def train_step():
        for p in parameters:
            p.grad = None
        head(features(points)).square().mean().backward()

    def sdf_step():
        for p in parameters:
            p.grad = None
        x = points.detach().requires_grad_()
        sdf = head(features(x))
        (normals,) = torch.autograd.grad(sdf.sum(), x, create_graph=True)
        (sdf.square().mean() + (normals.norm(dim=-1) - 1).square().mean()).backward()

    return {"forward": forward, "train_step": train_step, "sdf_step": sdf_step}[workload]


def run(cases: Sequence[Case], threads: int = 2, min_run_time: float = 1.0, out=sys.stdout):
    """Measure ``cases``; returns the JSON-ready results (one row per case, workload, contender)."""
    threads = _common.pin_threads(threads)
    missing = compiled.unavailable_reason()
    rows = []
    print(
        f"{'case':<34} {'workload':<11} {'contender':<10} {'time ms':>10} {'peak MiB':>9}", file=out
    )
    for case in cases:
        torch.manual_seed(0)
        encoder = MultiResGrid(
            case.dims,
            n_levels=case.n_levels,
            max_resolution=case.max_resolution,
            log2_hashmap_size=case.log2_hashmap_size,
            smoothstep=case.smoothstep,
        )
        head = MLP(encoder.out_dims, 64, 64, 1, activation=torch.nn.Softplus())
        points = torch.rand(case.points, case.dims) * 2 - 1
        for workload in WORKLOADS:
            fns, measured = {}, {}
            for name, encode in CONTENDERS.items():
                row = measured[name] = {"case": case.name, "workload": workload, "contender": name}
                if name != "reference" and missing is not None:
                    row.update(status="skipped", reason=missing)
                    continue
                fns[name] = make_workload(workload, encode, encoder, head, points)
                row["peak_memory_bytes"] = _common.measure_peak_memory(fns[name], "cpu")
            if workload != "forward":
                row = measured[FLOOR] = {
                    "case": case.name,
                    "workload": workload,
                    "contender": FLOOR,
                }
                fns[FLOOR] = make_workload(
                    workload, linear_stand_in(encoder), encoder, head, points
                )
                row["peak_memory_bytes"] = _common.measure_peak_memory(fns[FLOOR], "cpu")
            timings = _common.measure_interleaved(fns, threads, min_run_time)
            for name, timing in timings.items():
                measured[name].update(
                    status="ok", time_s=timing.median_s, iqr_s=timing.iqr_s, runs=timing.runs
                )
            for row in measured.values():
                shown = (
                    f"{row['time_s'] * 1e3:>10.2f} {row['peak_memory_bytes'] / 2**20:>9.1f}"
                    if row["status"] == "ok"
                    else f"skipped: {row['reason']}"
                )
                print(
                    f"{case.name:<34} {workload:<11} {row['contender']:<10} {shown}",
                    file=out,
                    flush=True,
                )
            rows += measured.values()
    payload = {
        "benchmark": "MultiResGrid encoding",
        "machine": _common.machine_info("cpu", threads),
        "settings": {
            "threads": threads,
            "timing": "contenders take turns (benchmarks._common.measure_interleaved), "
            f"median over blocks, min_run_time={min_run_time}",
            "memory_method": _common.memory_method("cpu"),
            "head": "MLP(out_dims, 64, 64, 1), softplus",
        },
        "cases": {case.name: asdict(case) for case in cases},
        "results": rows,
    }
    print("\n" + format_results(payload), file=out)
    return payload


def format_results(payload: dict) -> str:
    """Times in ms and speed-ups over the plain path, with the memory ratio, per case and workload."""
    by_key = {(r["case"], r["workload"], r["contender"]): r for r in payload["results"]}
    lines = []
    for case in payload["cases"]:
        for workload in WORKLOADS:
            rows = {name: by_key.get((case, workload, name)) for name in CONTENDERS}
            if not all(row and row["status"] == "ok" for row in rows.values()):
                continue
            fused, auto, ref = rows["fused"], rows["auto"], rows["reference"]
            floor = by_key.get((case, workload, FLOOR))
            memory = (
                fused["peak_memory_bytes"] / ref["peak_memory_bytes"]
                if fused["peak_memory_bytes"] and ref["peak_memory_bytes"]
                else None
            )
            lines.append(
                [
                    case,
                    workload,
                    *(f"{row['time_s'] * 1e3:.1f}" for row in (fused, auto, ref)),
                    f"{ref['time_s'] / fused['time_s']:.2f}x",
                    f"{ref['time_s'] / auto['time_s']:.2f}x",
                    "-" if memory is None else f"{memory:.2f}",
                    f"{floor['time_s'] * 1e3:.1f}" if floor and floor["status"] == "ok" else "-",
                ]
            )
    header = [
        "case",
        "workload",
        "fused ms",
        "auto ms",
        "reference ms",
        "fused speed-up",
        "auto speed-up",
        "memory fused/ref",
        "MLP alone ms",
    ]
    return _common.format_table(header, lines)


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.multires", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run (CI)")
    parser.add_argument("--threads", type=int, default=2, help="CPU intra-op threads (default 2)")
    parser.add_argument(
        "--out",
        help="JSON file to write (default: "
        "benchmarks/results/multires-cpu.json for a full run, none for --quick)",
    )
    args = parser.parse_args(argv)
    payload = run(
        QUICK_CASES if args.quick else FULL_CASES, args.threads, 0.02 if args.quick else 1.0
    )
    out = args.out or (None if args.quick else "benchmarks/results/multires-cpu.json")
    if out:
        print(f"wrote {_common.write_json(out, payload)}")
    return payload


if __name__ == "__main__":
    main()
