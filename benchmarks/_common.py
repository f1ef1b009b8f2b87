"""Measurement helpers shared by every benchmark in this directory.

Each benchmark script (``benchmarks/grid_sample.py``, ``benchmarks/fps.py``...)
builds its cases, and uses these helpers to

* describe the machine (:func:`machine_info`),
* pin the CPU thread count (:func:`pin_threads`),
* time callables that do the same work, taking turns (:func:`measure_interleaved`),
* measure the peak extra memory of one call (:func:`measure_peak_memory`),
* write results as JSON (:func:`write_json`) and print them as a text table
  (:func:`format_table`).

Peak memory
-----------
On CUDA the peak is ``torch.cuda.max_memory_allocated()`` after
``torch.cuda.reset_peak_memory_stats()``, minus what was allocated before the
call: tensors the call creates and frees again count, the caching allocator's
reserve does not.

On CPU PyTorch has no allocator statistics, so the peak is read from the
kernel: the process's peak resident set size (``VmHWM`` in
``/proc/self/status``) is reset to its current size by writing ``5`` to
``/proc/self/clear_refs`` (Linux >= 4.0), the call runs, and the peak extra
memory is the new ``VmHWM`` minus the resident size just before the call. Free
heap memory is first handed back to the system with glibc's ``malloc_trim`` so
memory freed by an earlier measurement cannot be silently reused. This measures
the whole process, every allocation included, in the same process as the
timing. Where ``clear_refs`` is not available (not Linux) no CPU memory figure
is reported.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime
import functools
import gc
import json
import os
import platform
import re
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

CUDA_MEMORY_METHOD = (
    "torch.cuda.max_memory_allocated after reset_peak_memory_stats, minus the memory "
    "allocated before the call"
)
CPU_MEMORY_METHOD = (
    "process peak RSS: /proc/self/clear_refs reset of VmHWM, then VmHWM minus VmRSS "
    "before the call (after glibc malloc_trim)"
)

# Peak DRAM bandwidth in bytes/s for GPUs whose driver does not report the
# memory clock and bus width; matched by substring of the device name, most
# specific first. Figures are the vendors' datasheet numbers.
_PEAK_BANDWIDTH_BY_NAME = (
    ("H200", 4.8e12),
    ("H100 PCIe", 2.0e12),
    ("H100", 3.35e12),
    ("A100-SXM4-80GB", 2.039e12),
    ("A100 80GB PCIe", 1.935e12),
    ("A100", 1.555e12),
    ("L40S", 0.864e12),
    ("L4", 0.3e12),
    ("A10", 0.6e12),
    ("V100", 0.9e12),
    ("T4", 0.32e12),
    ("RTX 4090", 1.008e12),
    ("RTX 3090", 0.936e12),
)


def cpu_model() -> str:
    """The CPU's model name, as reported by the operating system."""
    try:
        with open("/proc/cpuinfo") as f:
            match = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.MULTILINE)
        if match:
            return match.group(1).strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device | str, threads: int | None = None) -> dict:
    """Describe the machine a benchmark runs on, for the JSON output.

    Parameters
    ----------
    device : torch.device or str
        The device the benchmark runs on (``"cpu"`` or ``"cuda"``).
    threads : int, optional
        The pinned CPU thread count, recorded as given.

    Returns
    -------
    dict
        CPU model, logical CPU count, pinned threads, OS, Python, torch and
        CUDA versions, the checkout's git revision, and for CUDA the GPU name,
        memory, compute capability and peak memory bandwidth.
    """
    device = torch.device(device)
    info = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "source_revision": source_revision(),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            gpu_name=props.name,
            gpu_memory_bytes=props.total_memory,
            gpu_compute_capability=f"{props.major}.{props.minor}",
            gpu_peak_bandwidth_bytes_per_s=peak_bandwidth(device),
        )
    return info


def source_revision() -> str | None:
    """The checkout's ``git describe --always --dirty`` (``None`` outside git).

    A ``-dirty`` suffix means uncommitted changes were measured.
    """
    try:
        completed = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return completed.stdout.strip()


def device_kind(device: torch.device | str) -> str:
    """A short file-name-safe name for the kind of device: ``cpu`` or the GPU's name.

    >>> device_kind("cpu")
    'cpu'
    """
    device = torch.device(device)
    if device.type != "cuda":
        return device.type
    name = torch.cuda.get_device_name(device)
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def peak_bandwidth(device: torch.device | str) -> float | None:
    """Peak DRAM bandwidth of a CUDA device in bytes per second.

    Computed from the memory clock and bus width the driver reports (double
    data rate: two transfers per clock), or else taken from a table of
    datasheet figures by device name; ``None`` if neither is known.
    """
    props = torch.cuda.get_device_properties(device)
    clock_khz = getattr(props, "memory_clock_rate", 0)
    bus_bits = getattr(props, "memory_bus_width", 0)
    if clock_khz and bus_bits:
        return 2.0 * clock_khz * 1e3 * bus_bits / 8
    for fragment, bandwidth in _PEAK_BANDWIDTH_BY_NAME:
        if fragment in props.name:
            return bandwidth
    return None


def pin_threads(threads: int) -> int:
    """Fix PyTorch's intra-op CPU thread count and return it."""
    torch.set_num_threads(threads)
    return torch.get_num_threads()


@dataclass
class Timing:
    """Result of :func:`measure_interleaved`: median and spread of one call, in seconds."""

    median_s: float
    iqr_s: float
    runs: int


# Calls are timed in blocks at least this long, so that the timer's own cost
# and CUDA synchronization stay negligible for sub-millisecond calls.
_BLOCK_S = 0.02


def measure_interleaved(
    fns: Mapping[str, Callable[[], object]],
    threads: int,
    min_run_time: float,
    device: torch.device | str = "cpu",
    min_rounds: int = 5,
) -> dict[str, Timing]:
    """Time several callables that do the same work, taking turns.

    On a shared machine the speed available to a process drifts by 2x
    within seconds; callables timed one after the other would each see a
    different machine, and their ratio would measure the drift.  Here the
    callables run in rounds, each round timing one block of calls of every
    callable (the order rotates from round to round), so all of them are
    exposed alike and each median comes from the same stretch of time.

    Before timing, the callables take turns untimed for ``min_run_time``
    seconds (at least twice each): the first calls in a process pay for page
    faults on fresh memory and for allocator and thread-pool state settling,
    which on the two-core CPU machine slowed the first callable by up to 2x
    for about a second.  The warm-up also sizes each callable's block (the
    calls that fit in about 20 ms, at least one).

    Parameters
    ----------
    fns : mapping of str to callable
        Called with no arguments; results are discarded.
    threads : int
        Intra-op CPU thread count while timing.
    min_run_time : float
        Seconds of warm-up, and seconds of timing per callable: rounds go on
        until that much time per callable has passed and at least
        ``min_rounds`` rounds have run.
    device : torch.device or str
        CUDA is synchronized around every block when this is a CUDA device.
    min_rounds : int
        Fewest blocks timed per callable.

    Returns
    -------
    dict of str to Timing
        Per callable: the median and interquartile range over its blocks of
        the time per call, and the number of blocks.
    """
    if not fns:
        return {}
    device = torch.device(device)

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        fastest = {name: float("inf") for name in fns}
        start, calls = time.perf_counter(), 0
        while calls < 2 or time.perf_counter() - start < min_run_time:
            for name, fn in fns.items():
                synchronize()
                began = time.perf_counter()
                fn()
                synchronize()
                fastest[name] = min(fastest[name], time.perf_counter() - began)
            calls += 1
        block = {name: max(1, int(_BLOCK_S / max(t, 1e-9))) for name, t in fastest.items()}
        per_call: dict[str, list[float]] = {name: [] for name in fns}
        names = list(fns)
        start, rounds = time.perf_counter(), 0
        while rounds < min_rounds or time.perf_counter() - start < min_run_time * len(fns):
            turn = names[rounds % len(names) :] + names[: rounds % len(names)]
            for name in turn:
                fn = fns[name]
                synchronize()
                began = time.perf_counter()
                for _ in range(block[name]):
                    fn()
                synchronize()
                per_call[name].append((time.perf_counter() - began) / block[name])
            rounds += 1
    finally:
        torch.set_num_threads(previous_threads)
    timings = {}
    for name, values in per_call.items():
        q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
        timings[name] = Timing(median_s=median, iqr_s=q3 - q1, runs=len(values))
    return timings


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        match = re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.MULTILINE)
    if match is None:
        raise OSError(f"/proc/self/status has no {field}")
    return int(match.group(1))


def cpu_peak_memory_supported() -> bool:
    """Whether :func:`measure_peak_memory` can measure CPU memory here."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _proc_status_kib("VmHWM")
    except OSError:
        return False
    return True


def memory_method(device: torch.device | str) -> str:
    """How :func:`measure_peak_memory` measures on ``device``, in words."""
    if torch.device(device).type == "cuda":
        return CUDA_MEMORY_METHOD
    if cpu_peak_memory_supported():
        return CPU_MEMORY_METHOD
    return "unavailable: needs Linux /proc/self/clear_refs"


def measure_peak_memory(fn: Callable[[], object], device: torch.device | str) -> int | None:
    """Peak extra memory, in bytes, that one call of ``fn()`` needs on ``device``.

    The result of ``fn`` is kept until the peak is read, so it counts. On CPU
    the garbage collector is paused during the call. See the module
    documentation for the method on each device.

    Returns
    -------
    int or None
        Bytes above the memory in use before the call, or ``None`` where the
        platform offers no way to measure it.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        result = fn()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
        del result
        return peak - before
    if not cpu_peak_memory_supported():
        return None
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
    # A garbage collection during the call would free memory that the
    # baseline counted and hide part of the peak.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before_kib = _proc_status_kib("VmRSS")
        result = fn()
        peak_kib = _proc_status_kib("VmHWM")
        del result
    finally:
        if gc_was_enabled:
            gc.enable()
    return max(peak_kib - before_kib, 0) * 1024


def write_json(path: str | os.PathLike, payload: dict) -> Path:
    """Write ``payload`` as indented JSON, creating parent directories."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n")
    return path


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render rows as a plain-text table with columns padded to their widest cell.

    >>> print(format_table(["a", "bb"], [[1, "x"], [22, "yyy"]]))
    a   bb
    --  ---
    1   x
    22  yyy
    """
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
