"""Farthest point sampling: torchsample's compiled kernel and fallback against ``fpsample``.

Run from a checkout::

    python -m benchmarks.fps [--quick] [--threads N] [--out FILE.json]

Every method runs in this process on the same float32
clouds (uniform in the unit cube, fixed seed):

``compiled``
    :func:`torchsample.points.farthest_point_sample` through the C++ extension
    (tree-pruned exact search; clouds of a batch in parallel, a single cloud's
    updates split across the pinned threads).
``fallback``
    The pure PyTorch loop used when the extension cannot be built (one step per
    sample, vectorized over batch and points). Left out of cases where it would
    take minutes.
``fpsample``
    The ``fpsample`` package's bucket-based exact method
    ``bucket_fps_kdline_sampling`` ("QuickFPS"), the fastest exact method it
    offers, with the tree height ``h`` that is fastest on each case (the best of
    a small sweep; every height is recorded). It takes one cloud at a time, so a
    batch is a loop over clouds. It is a benchmark extra (``pip install
    fpsample``): without it the column is skipped with the reason.

``fpsample`` chooses its own first point; torchsample is started at the same
point, and the JSON records whether the two returned identical indices.

Times are medians of repeated calls (:func:`benchmarks._common.measure_interleaved`),
``fpsample`` and ``compiled`` called in turns so that load from other
processes on a shared machine hits both alike (the fallback, far slower, is
timed alone: two warm-up calls, then three timed). The intra-op thread count is pinned (2 by default,
the setting of the committed CPU results); ``fpsample`` is single-threaded. ``--quick`` runs tiny cases to check the
harness and says nothing about speed.
"""

from __future__ import annotations

import argparse
import functools
import sys
from dataclasses import asdict, dataclass

import numpy as np
import torch

from benchmarks import _common
from torchsample.ops import compiled, reference

FPSAMPLE_HEIGHTS = (5, 7, 9)
QUICK_FPSAMPLE_HEIGHTS = (3,)


@dataclass(frozen=True)
class Case:
    """``batch`` clouds of ``points`` points, ``samples`` of them kept."""

    points: int
    samples: int
    batch: int = 1
    fallback: bool = True

    @property
    def name(self) -> str:
        return f"{self.points}->{self.samples} x{self.batch}"


FULL_CASES = (
    Case(2**17, 4096),
    Case(2**14, 1024),
    Case(2**12, 512, batch=16),
    Case(2**20, 4096, fallback=False),
)
QUICK_CASES = (Case(2**10, 64), Case(2**9, 32, batch=3))


def _fpsample_module():
    try:
        import fpsample
    except ImportError as error:
        return None, f"fpsample is not installed ({error}); pip install fpsample"
    return fpsample, None


def _cloud(case: Case) -> torch.Tensor:
    generator = torch.Generator().manual_seed(case.points + case.batch)
    return torch.rand(case.batch, case.points, 3, generator=generator)


def run(cases, threads: int, min_run_time: float, heights=FPSAMPLE_HEIGHTS, out=sys.stdout) -> dict:
    """Time every method on every case; returns the JSON payload.

    Parameters
    ----------
    cases : sequence of Case
        Workloads to time.
    threads : int
        Pinned intra-op thread count.
    min_run_time : float
        Seconds of measurement per method and case (at least five calls each).
    heights : sequence of int
        Tree heights tried for ``fpsample``.
    out : file
        Where progress and the table are printed.

    Returns
    -------
    dict
        ``machine``, ``cases`` and ``results`` (one row per case and method with
        ``status`` "ok" and ``time_s``, or "skipped" and ``reason``).
    """
    threads = _common.pin_threads(threads)
    fpsample, fpsample_missing = _fpsample_module()
    compiled_missing = (
        None if compiled.unavailable_reason() is None else "the C++ extension is unavailable"
    )
    results = []

    def record(case, method, timing=None, reason=None, **extra):
        row = {"case": case.name, "method": method, **extra}
        if timing is None:
            row.update(status="skipped", reason=reason)
        else:
            row.update(status="ok", time_s=timing.median_s, iqr_s=timing.iqr_s, runs=timing.runs)
        results.append(row)
        shown = f"{timing.median_s * 1e3:.2f} ms" if timing else f"skipped: {reason}"
        print(f"{case.name:>20}  {method:<9} {shown}", file=out, flush=True)

    for case in cases:
        cloud = _cloud(case)
        lengths = torch.full((case.batch,), case.points, dtype=torch.long)
        starts = torch.zeros(case.batch, dtype=torch.long)
        contenders, extra = {}, {}
        if fpsample is not None:
            arrays = [np.ascontiguousarray(c.numpy()) for c in cloud]

            def call_fpsample(h, arrays=arrays, samples=case.samples):
                return np.stack(
                    [
                        fpsample.bucket_fps_kdline_sampling(a, samples, h=h, start_idx=0)
                        for a in arrays
                    ]
                ).astype(np.int64)

            by_height = _common.measure_interleaved(
                {h: functools.partial(call_fpsample, h) for h in heights},
                threads,
                min_run_time / 4,
                min_rounds=3,
            )
            best = min(by_height, key=lambda h: by_height[h].median_s)
            contenders["fpsample"] = functools.partial(call_fpsample, best)
            extra["fpsample"] = {
                "h": best,
                "h_selection_time_s": {str(h): t.median_s for h, t in by_height.items()},
            }
            fpsample_indices = torch.from_numpy(call_fpsample(best))
            # fpsample picks its own first point; torchsample starts at the same one.
            starts = fpsample_indices[:, 0].clone()
        if compiled_missing is None:
            contenders["compiled"] = functools.partial(
                compiled.farthest_point_sample, cloud, lengths, case.samples, starts, None
            )
            if fpsample is not None:
                identical = torch.equal(contenders["compiled"](), fpsample_indices)
                extra["compiled"] = {"identical_to_fpsample": identical}

        timings = _common.measure_interleaved(contenders, threads, min_run_time)
        for method, reason in (("fpsample", fpsample_missing), ("compiled", compiled_missing)):
            record(case, method, timings.get(method), reason, **extra.get(method, {}))

        if case.fallback:
            fallback = functools.partial(
                reference.farthest_point_sample, cloud, lengths, case.samples, starts
            )
            timing = _common.measure_interleaved({"fallback": fallback}, threads, 0.0, min_rounds=3)
            record(case, "fallback", timing["fallback"])
        else:
            record(case, "fallback", reason="left out: would take minutes")

    payload = {
        "benchmark": "farthest point sampling",
        "timing": "median of calls made in turns (fpsample, compiled), after a warm-up; "
        "fallback timed alone, two warm-up calls then three timed",
        "machine": _common.machine_info("cpu", threads),
        "fpsample_version": getattr(fpsample, "__version__", None) if fpsample else None,
        "cases": {c.name: asdict(c) for c in cases},
        "results": results,
    }
    print("\n" + format_results(payload), file=out)
    return payload


def format_results(payload: dict) -> str:
    """A table of median times in ms, one row per case, with compiled vs fpsample."""
    times = {(r["case"], r["method"]): r.get("time_s") for r in payload["results"]}
    rows = []
    for name in payload["cases"]:
        compiled, reference = times.get((name, "compiled")), times.get((name, "fpsample"))
        ratio = f"{reference / compiled:.2f}x" if compiled and reference else "-"
        rows.append(
            [name]
            + [
                f"{times[(name, m)] * 1e3:.1f}" if times.get((name, m)) else "-"
                for m in ("compiled", "fallback", "fpsample")
            ]
            + [ratio]
        )
    header = ["case", "compiled ms", "fallback ms", "fpsample ms", "fpsample/compiled"]
    return _common.format_table(header, rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny cases, a smoke run (CI)")
    parser.add_argument("--threads", type=int, default=2, help="CPU intra-op threads (default 2)")
    parser.add_argument("--out", help="write the results as JSON to this file")
    args = parser.parse_args(argv)
    if args.quick:
        payload = run(QUICK_CASES, args.threads, 0.01, QUICK_FPSAMPLE_HEIGHTS)
    else:
        payload = run(FULL_CASES, args.threads, 1.0)
    if args.out:
        print(f"wrote {_common.write_json(args.out, payload)}")


if __name__ == "__main__":
    main()
