"""Time and memory of every grid-sampling backend, side by side.

Run from a checkout::

    python -m benchmarks.grid_sample [--quick] [--device cpu|cuda] [--threads N]
                                     [--out FILE.json] [--filter TEXT]

For each case every backend registered in :data:`torchsample.ops.BACKENDS`
runs in this process, taking turns, on the same tensors; a backend that
is unavailable, or cannot serve a case (``native`` has no smoothstep), is
skipped with its reason. ``native`` is :func:`torch.nn.functional.grid_sample`
and is the baseline of every ratio. A new backend needs no change here: it is
measured as soon as it is registered.

Workloads
---------
``forward``
    ``grid_sample`` under :func:`torch.no_grad`.
``forward_backward``
    ``grid_sample``, then the gradients with respect to the feature map and
    the grid for a fixed random upstream gradient.
``eikonal``
    The SDF-fitting step that needs second derivatives: ``grid_sample``, its
    gradient with respect to the grid (projected on a fixed random upstream
    gradient) with ``create_graph=True``, the eikonal loss
    ``mean((|grad| - 1)^2)`` on it, and that loss's gradients with respect to
    the feature map and the grid.

The three above isolate the sampler (``autograd.grad``, gradients returned in
whatever layout the backend produces). The training-loop workloads run what a
training step runs, on the layout users have: a contiguous channels-first map
that requires grad, gradients accumulated into ``.grad`` by
``loss.backward()`` (and reset to ``None`` before each call):

``train_forward``
    ``grid_sample`` with the map and the grid requiring grad (the graph is
    built, as in training, then dropped).
``train_step``
    ``grid_sample``, then ``loss.backward()`` on ``sum(out * upstream)``.
``sdf_step``
    A data term ``mean((out - target)^2)`` beside the eikonal term
    ``mean((|d out / d grid| - 1)^2)`` (the gradient of the summed output
    with ``create_graph=True``), then one ``loss.backward()`` on their sum.

The ``auto`` column is :func:`torchsample.grid_sample` itself, whatever
backend its dispatch picks, Python checks included: what a user gets.

Cases
-----
Every case samples a batch of one square (2D) or cubic (3D) feature map at
uniformly random points in [-1, 1] with ``mode="bilinear"``,
``padding_mode="border"``, ``align_corners=False``. The full run does not
take the whole product of dimensions x channels x points x smoothstep x dtype
x memory format (it would take hours on two cores); it sweeps one factor at a
time around representative settings:

* channels 1, 4, 16, 32, 64 (2D 256^2 map, 2^16 points) and 1, 16, 64 (3D
  64^3 volume, 2^14 points);
* points 2^12 to 2^20, every second power (2D, 16 channels), and 2^12 to
  2^18 (3D, 16 channels);
* the eikonal step on a 16-channel 2D map, a 1-channel 64^3 SDF volume, and a
  16-channel 96^3 volume at 2^17 points;
* smoothstep on for 2D forward, forward+backward and eikonal, and for the
  3D 96^3 eikonal step (only the torchsample backends serve it);
* channels-last feature maps for the 2D 256^2 case at 2^18 points, a 3D
  64^3 case with every workload and the 96^3 backward and eikonal steps;
* on CUDA, float16 and bfloat16 copies of a 2D and a 3D forward and
  forward+backward case.

3D point counts stop lower than 2D ones to keep a full CPU run near 10
minutes on two shared cores: a 3D point reads eight corners per channel,
and PyTorch's 3D CPU sampler is much slower per point than its 2D one.

``--quick`` runs a few tiny cases covering every workload, smoothstep,
channels-last and both dimensionalities; it checks that the harness works
(CI runs it) and says nothing about speed.

Figures
-------
Times are medians per call, the backends of one case and workload taking
turns after an untimed warm-up (:func:`benchmarks._common.measure_interleaved`:
on a shared machine, backends timed one after the other would each see a
different machine). CUDA is synchronized around every timed block; on CPU the
intra-op thread count is pinned, 2 by default, the setting of the committed
CPU results. Peak extra memory is measured as
described in :mod:`benchmarks._common` and the method is written into the
output. On CUDA the forward pass's achieved bandwidth is reported as a
fraction of the device's peak; the bytes counted are those the sampler has to
request: the grid, the output, and for every point and channel each of the
``2**dims`` corner values it interpolates (reads served by caches count too,
so this is the traffic a sampler without reuse would move).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from types import ModuleType

import torch

from benchmarks import _common

TRAINING_LOOP = ("train_forward", "train_step", "sdf_step")
WORKLOADS = ("forward", "forward_backward", "eikonal", *TRAINING_LOOP)
_TRAINING = ("forward", "forward_backward")
BASELINE = "native"


class _Auto:
    """``torchsample.grid_sample`` through its dispatch, shaped like a backend module."""

    __name__ = "auto"

    @staticmethod
    def unavailable_reason() -> None:
        return None

    @staticmethod
    def unsupported_reason(*request) -> None:
        return None

    @staticmethod
    def grid_sample(input, grid, mode, padding_mode, align_corners, smoothstep):
        import torchsample

        return torchsample.grid_sample(input, grid, mode, padding_mode, align_corners, smoothstep)


def harness_backends() -> dict:
    """Every registered backend, then ``auto``: what the harness compares."""
    from torchsample.ops import BACKENDS

    return {**BACKENDS, "auto": _Auto}


@dataclass(frozen=True)
class Case:
    """One benchmark configuration; sizes are in coordinate order ``(w, h[, d])``."""

    size: tuple[int, ...]
    channels: int
    points: int
    workloads: tuple[str, ...] = _TRAINING
    smoothstep: bool = False
    dtype: str = "float32"
    channels_last: bool = False
    mode: str = "bilinear"
    padding_mode: str = "border"
    align_corners: bool = False

    @property
    def dims(self) -> int:
        return len(self.size)

    @property
    def name(self) -> str:
        size = "x".join(str(s) for s in self.size)
        points = self.points.bit_length() - 1
        points = f"2^{points}" if self.points == 1 << points else str(self.points)
        parts = [f"{self.dims}d", f"c{self.channels}", size, f"n={points}", self.dtype]
        if self.channels_last:
            parts.append("channels_last")
        if self.smoothstep:
            parts.append("smoothstep")
        return " ".join(parts)


def _sweep(**common) -> Callable[..., Case]:
    return lambda **varying: Case(**{**common, **varying})


def full_cases(device: str) -> list[Case]:
    """The cases of a full run on ``device``; see the module documentation."""
    square = _sweep(size=(256, 256))
    cube = _sweep(size=(64, 64, 64))
    big_cube = _sweep(size=(96, 96, 96), channels=16, points=1 << 17)
    cases = [square(channels=c, points=1 << 16) for c in (1, 4, 16, 32, 64)]
    cases += [square(channels=16, points=1 << p) for p in (12, 14, 18, 20)]
    cases += [cube(channels=c, points=1 << 14) for c in (1, 16, 64)]
    cases += [cube(channels=16, points=1 << p) for p in (12, 16, 18)]
    cases += [
        square(channels=32, points=1 << 18),
        square(channels=32, points=1 << 18, channels_last=True),
        square(channels=16, points=1 << 16, workloads=("eikonal",)),
        square(channels=16, points=1 << 16, workloads=WORKLOADS, smoothstep=True),
        cube(channels=1, points=1 << 14, workloads=("eikonal",)),
        cube(channels=16, points=1 << 14, workloads=WORKLOADS, channels_last=True),
        big_cube(workloads=WORKLOADS),
        big_cube(workloads=("forward_backward", "eikonal"), channels_last=True),
        big_cube(workloads=("eikonal",), smoothstep=True),
    ]
    if torch.device(device).type == "cuda":
        for dtype in ("float16", "bfloat16"):
            cases += [
                square(channels=32, points=1 << 18, dtype=dtype),
                cube(channels=16, points=1 << 18, dtype=dtype),
            ]
    return cases


def training_cases(device: str) -> list[Case]:
    """The training-loop grid: every map size and channel count users sample.

    2D 256^2 and 512^2 maps at 2^18 points, 3D 64^3 and 128^3 volumes at
    2^16 points, channels 1, 3, 4, 16, 32 and 64, each with the
    training-loop workloads, with and without smoothstep; plus the 16-channel
    96^3 volume at 2^17 points of the kernel cases.
    """
    cases = []
    for size, points in (
        ((256, 256), 1 << 18),
        ((512, 512), 1 << 18),
        ((64, 64, 64), 1 << 16),
        ((128, 128, 128), 1 << 16),
    ):
        for channels in (1, 3, 4, 16, 32, 64):
            cases.append(Case(size=size, channels=channels, points=points, workloads=TRAINING_LOOP))
            cases.append(
                Case(
                    size=size,
                    channels=channels,
                    points=points,
                    workloads=("sdf_step",),
                    smoothstep=True,
                )
            )
    cases.append(Case(size=(96, 96, 96), channels=16, points=1 << 17, workloads=TRAINING_LOOP))
    cases.append(
        Case(
            size=(96, 96, 96), channels=16, points=1 << 17, workloads=("sdf_step",), smoothstep=True
        )
    )
    return cases


def small_call_cases(device: str) -> list[Case]:
    """Calls so small that the Python around the kernels is most of their cost.

    16 points of a 4-channel map (2D and 3D), then 16-channel maps at 2^12
    and 2^14 point-channels (2D and 3D) and at 2^16 (2D), around the sizes
    from which ``auto`` gives CPU calls to the compiled kernels.
    """
    small = _sweep(workloads=("forward", "train_step"))
    return [
        small(size=(8, 8), channels=4, points=16),
        small(size=(8, 8, 8), channels=4, points=16),
        small(size=(32, 32), channels=16, points=256),
        small(size=(16, 16, 16), channels=16, points=256),
        small(size=(32, 32), channels=16, points=1024),
        small(size=(16, 16, 16), channels=16, points=1024),
        small(size=(64, 64), channels=16, points=4096),
    ]


SUITES = {"kernels": full_cases, "training": training_cases, "small": small_call_cases}


def quick_cases(device: str) -> list[Case]:
    """A few tiny cases that exercise every code path of the harness."""
    cases = [
        Case(size=(32, 32), channels=4, points=1 << 10, workloads=WORKLOADS),
        Case(size=(32, 32), channels=4, points=1 << 10, workloads=WORKLOADS, smoothstep=True),
        Case(size=(32, 32), channels=4, points=1 << 10, channels_last=True),
        Case(size=(16, 16, 16), channels=4, points=1 << 10, workloads=WORKLOADS),
        Case(
            size=(16, 16, 16), channels=1, points=1 << 10, workloads=("sdf_step",), smoothstep=True
        ),
    ]
    if torch.device(device).type == "cuda":
        cases.append(Case(size=(32, 32), channels=4, points=1 << 10, dtype="float16"))
    return cases


@dataclass
class Inputs:
    """The tensors of one case, shared by every backend and workload."""

    input: torch.Tensor
    grid: torch.Tensor
    upstream: torch.Tensor = field(repr=False)


def make_inputs(case: Case, device: str, seed: int = 0) -> Inputs:
    """Random feature map, points and upstream gradient for ``case``.

    Shapes: input ``(1, c, h, w)`` / ``(1, c, d, h, w)``, grid
    ``(1, n, 1, 2)`` / ``(1, n, 1, 1, 3)``, upstream gradient the shape of the
    output, ``(1, c, n, 1)`` / ``(1, c, n, 1, 1)``.
    """
    generator = torch.Generator().manual_seed(seed)
    dtype = getattr(torch, case.dtype)
    spatial = tuple(reversed(case.size))
    trailing = (1,) * (case.dims - 1)

    def uniform(*shape):
        values = torch.rand(shape, generator=generator) * 2 - 1
        return values.to(device=device, dtype=dtype)

    input = uniform(1, case.channels, *spatial)
    if case.channels_last:
        layout = torch.channels_last if case.dims == 2 else torch.channels_last_3d
        input = input.contiguous(memory_format=layout)
    grid = uniform(1, case.points, *trailing, case.dims)
    upstream = uniform(1, case.channels, case.points, *trailing)
    return Inputs(input=input, grid=grid, upstream=upstream)


def make_workload(
    workload: str, backend: ModuleType, case: Case, inputs: Inputs
) -> Callable[[], object]:
    """A callable running ``workload`` once with ``backend`` and returning its outputs."""

    def sample(input, grid):
        return backend.grid_sample(
            input, grid, case.mode, case.padding_mode, case.align_corners, case.smoothstep
        )

    if workload == "forward":

        def forward():
            with torch.no_grad():
                return sample(inputs.input, inputs.grid)

        return forward

    input = inputs.input.detach().requires_grad_()
    grid = inputs.grid.detach().requires_grad_()
    if workload in TRAINING_LOOP:
        return _training_loop_workload(workload, sample, input, grid, inputs.upstream)
    if workload == "forward_backward":

        def forward_backward():
            out = sample(input, grid)
            return torch.autograd.grad(out, (input, grid), inputs.upstream)

        return forward_backward
    if workload == "eikonal":

        def eikonal():
            out = sample(input, grid)
            (grad_grid,) = torch.autograd.grad(out, grid, inputs.upstream, create_graph=True)
            loss = (grad_grid.norm(dim=-1) - 1).square().mean()
            return torch.autograd.grad(loss, (input, grid))

        return eikonal
    raise ValueError(f"workload must be one of {', '.join(WORKLOADS)}, got {workload!r}")


def _training_loop_workload(workload, sample, input, grid, upstream):
    def train_forward():
        return sample(input, grid)

    def train_step():
        input.grad = grid.grad = None
        (sample(input, grid) * upstream).sum().backward()
        return input.grad, grid.grad

    def sdf_step():
        input.grad = grid.grad = None
        out = sample(input, grid)
        (gradient,) = torch.autograd.grad(out.sum(), grid, create_graph=True)
        data = (out - upstream).square().mean()
        eikonal = (gradient.norm(dim=-1) - 1).square().mean()
        (data + eikonal).backward()
        return input.grad, grid.grad

    return {"train_forward": train_forward, "train_step": train_step, "sdf_step": sdf_step}[
        workload
    ]


def forward_bytes(case: Case) -> int:
    """Bytes a forward pass of ``case`` requests: grid, output and every corner read."""
    itemsize = torch.empty((), dtype=getattr(torch, case.dtype)).element_size()
    corners = 1 if case.mode == "nearest" else (16 if case.mode == "bicubic" else 2**case.dims)
    values = case.points * (case.dims + case.channels + case.channels * corners)
    return values * itemsize


def _skip_reason(backend: ModuleType, case: Case, inputs: Inputs) -> str | None:
    reason = backend.unavailable_reason()
    if reason is None:
        reason = backend.unsupported_reason(
            inputs.input,
            inputs.grid,
            case.mode,
            case.padding_mode,
            case.align_corners,
            case.smoothstep,
        )
    return reason


def measure_case(
    case: Case,
    backends: Mapping[str, ModuleType],
    device: str,
    threads: int,
    min_run_time: float,
    report: Callable[[dict], None] = lambda row: None,
) -> list[dict]:
    """Measure every workload of ``case`` with every backend.

    Returns one row per (workload, backend): ``status`` is ``"ok"``,
    ``"skipped"`` or ``"failed"`` (with ``reason``); ``ok`` rows carry
    ``time_s`` (median), ``iqr_s``, ``runs``, ``peak_memory_bytes`` (``None``
    where not measurable), ``speedup_vs_native`` (``None`` without a native
    figure) and, for the forward pass on CUDA, ``bandwidth_bytes_per_s`` and
    ``bandwidth_fraction``. Each row is passed to ``report`` as soon as its
    workload has been measured with every backend.
    """
    inputs = make_inputs(case, device)
    peak = _common.peak_bandwidth(device) if torch.device(device).type == "cuda" else None
    rows = []
    for workload in case.workloads:
        measured, runnable = {}, {}
        for name, backend in backends.items():
            row = measured[name] = {"case": case.name, "workload": workload, "backend": name}
            reason = _skip_reason(backend, case, inputs)
            if reason is not None:
                row.update(status="skipped", reason=reason)
                continue
            try:
                fn = make_workload(workload, backend, case, inputs)
                row["peak_memory_bytes"] = _common.measure_peak_memory(fn, device)
            except Exception as error:  # noqa: BLE001  (a failing backend must not hide the others)
                row.update(status="failed", reason=f"{type(error).__name__}: {error}")
                continue
            runnable[name] = fn
        timings = _common.measure_interleaved(runnable, threads, min_run_time, device)
        for name, timing in timings.items():
            measured[name].update(
                status="ok", time_s=timing.median_s, iqr_s=timing.iqr_s, runs=timing.runs
            )
        baseline = timings[BASELINE].median_s if BASELINE in timings else None
        for row in measured.values():
            if row["status"] == "ok":
                row["speedup_vs_native"] = baseline / row["time_s"] if baseline else None
                if workload == "forward" and peak:
                    achieved = forward_bytes(case) / row["time_s"]
                    row.update(bandwidth_bytes_per_s=achieved, bandwidth_fraction=achieved / peak)
            report(row)
        rows += measured.values()
    return rows


def _format_row(row: dict) -> str:
    head = f"{row['case']:<44} {row['workload']:<16} {row['backend']:<10}"
    if row["status"] != "ok":
        return f"{head} {row['status']}: {row['reason']}"
    speedup = row["speedup_vs_native"]
    memory = row["peak_memory_bytes"]
    text = (
        f"{head} {row['time_s'] * 1e3:>10.3f} "
        f"{'-' if speedup is None else f'{speedup:.2f}x':>8} "
        f"{'-' if memory is None else f'{memory / 2**20:.1f}':>10}"
    )
    if "bandwidth_fraction" in row:
        text += f"  {row['bandwidth_fraction']:.0%} of peak bandwidth"
    return text


def _header() -> str:
    head = f"{'case':<44} {'workload':<16} {'backend':<10} {'time ms':>10} {'speedup':>8}"
    return f"{head} {'peak MiB':>10}\n{'-' * len(head + '-----------')}"


def speedup_summary(rows: Sequence[dict], backends: Sequence[str]) -> str:
    """A table of speed-ups, one line per case and workload.

    Speed-ups are over native; where native cannot serve a case (smoothstep),
    over the reference backend, marked ``ref``.
    """
    times: dict[tuple[str, str], dict[str, float | str]] = {}
    for row in rows:
        cell = times.setdefault((row["case"], row["workload"]), {})
        cell[row["backend"]] = row["time_s"] if row["status"] == "ok" else row["status"]
    lines = []
    for (case, workload), cell in times.items():
        if isinstance(cell.get(BASELINE), float):
            base, suffix = cell[BASELINE], "x"
        else:
            base, suffix = cell.get("reference"), "x ref"
        line = [case, workload]
        for backend in backends:
            value = cell.get(backend, "-")
            if isinstance(value, float) and isinstance(base, float):
                value = f"{base / value:.2f}{suffix}"
            line.append(value)
        lines.append(line)
    return _common.format_table(["case", "workload", *backends], lines)


def run(
    cases: Sequence[Case],
    device: str = "cpu",
    threads: int = 2,
    min_run_time: float = 1.0,
    backends: Mapping[str, ModuleType] | None = None,
    out=sys.stdout,
) -> dict:
    """Measure ``cases`` and return the JSON-ready results.

    Parameters
    ----------
    cases : sequence of Case
        What to measure.
    device : str
        ``"cpu"`` or ``"cuda"``.
    threads : int
        Intra-op CPU thread count, pinned for the whole run.
    min_run_time : float
        Seconds of warm-up per case and workload, and of timing per backend
        (see :func:`benchmarks._common.measure_interleaved`).
    backends : mapping of str to module, optional
        Backends to compare; by default :func:`harness_backends`, every
        registered backend and ``auto``.
    out : file
        Where the table is printed as measurements complete.

    Returns
    -------
    dict
        ``machine`` (see :func:`benchmarks._common.machine_info`),
        ``settings`` (device, threads, timing and memory methods,
        bandwidth estimate), ``cases`` (every case's parameters by name) and
        ``results`` (the rows of :func:`measure_case`).
    """
    if backends is None:
        backends = harness_backends()
    threads = _common.pin_threads(threads)
    machine = _common.machine_info(device, threads)
    memory_method = _common.memory_method(device)
    print(f"device {device}, {threads} CPU threads, backends: {', '.join(backends)}", file=out)
    for name, backend in backends.items():
        reason = backend.unavailable_reason()
        if reason is not None:
            print(f"backend {name} unavailable: {reason}", file=out)
    print(f"peak memory: {memory_method}", file=out)
    print(_header(), file=out, flush=True)
    rows = []
    for case in cases:
        rows += measure_case(
            case,
            backends,
            device,
            threads,
            min_run_time,
            report=lambda row: print(_format_row(row), file=out, flush=True),
        )
    print("\nspeed-up versus native, or reference where marked (higher is faster)", file=out)
    print(speedup_summary(rows, list(backends)), file=out, flush=True)
    return {
        "machine": machine,
        "settings": {
            "device": device,
            "threads": threads,
            "baseline": BASELINE,
            "timing": "backends take turns: untimed warm-up of min_run_time (at least 2 "
            "calls each), then rounds timing one ~20 ms block of calls per backend, until "
            "min_run_time per backend and at least 5 rounds; median over blocks, "
            f"min_run_time={min_run_time}",
            "memory_method": memory_method,
            # What the auto column's dispatch was told (unset: auto itself).
            "torchsample_backend": os.environ.get("TORCHSAMPLE_BACKEND", "auto"),
            "bandwidth_estimate": "forward bytes = grid + output + points*channels*corners "
            "values, over the median time, as a fraction of the device's peak DRAM bandwidth",
        },
        "cases": {case.name: {**asdict(case), "dims": case.dims} for case in cases},
        "results": rows,
    }


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.grid_sample",
        description="Time and memory of every torchsample grid-sampling backend.",
    )
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run (CI)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="CPU intra-op threads (default 2)")
    parser.add_argument(
        "--out",
        help="JSON file to write (default: benchmarks/results/grid_sample-<device>.json "
        "for a full run, none for --quick)",
    )
    parser.add_argument("--filter", default="", help="only cases whose name contains this text")
    parser.add_argument(
        "--suite",
        choices=tuple(SUITES),
        default="kernels",
        help="kernels: the sampler alone (default); training: the training-loop grid; "
        "small: tiny calls",
    )
    parser.add_argument(
        "--workloads", default="", help="comma-separated: only these workloads of each case"
    )
    parser.add_argument(
        "--backends",
        default="",
        help="comma-separated: only these backends (default: all, and auto); native, the "
        "baseline, is always measured",
    )
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: this torch build sees no CUDA device")
    cases = (quick_cases if args.quick else SUITES[args.suite])(args.device)
    cases = [case for case in cases if args.filter in case.name]
    if args.workloads:
        keep = set(args.workloads.split(","))
        unknown = keep - set(WORKLOADS)
        if unknown:
            parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
        cases = [
            replace(case, workloads=tuple(w for w in case.workloads if w in keep)) for case in cases
        ]
        cases = [case for case in cases if case.workloads]
    backends = harness_backends()
    if args.backends:
        keep = set(args.backends.split(",")) | {BASELINE}
        unknown = keep - set(backends)
        if unknown:
            parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
        backends = {name: module for name, module in backends.items() if name in keep}
    payload = run(
        cases,
        device=args.device,
        threads=args.threads,
        min_run_time=0.02 if args.quick else 0.5,
        backends=backends,
    )
    payload["settings"]["quick"] = args.quick
    payload["settings"]["suite"] = args.suite
    out = args.out
    if out is None and not args.quick:
        suffix = "" if args.suite == "kernels" else f"-{args.suite}"
        out = f"benchmarks/results/grid_sample{suffix}-{_common.device_kind(args.device)}.json"
    if out:
        print(f"wrote {_common.write_json(out, payload)}")
    return payload


if __name__ == "__main__":
    main()
