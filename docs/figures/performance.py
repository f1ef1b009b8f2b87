"""Tables and plots for the performance page, from ``benchmarks/results/grid_sample-*.json``.

For every results file (one per kind of device) :func:`make` writes a plot of
each backend's speed-up over ``F.grid_sample`` per case and workload, and
``performance.inc``: a reST fragment with the machine, the plot and the full
table, which ``performance.rst`` includes. A results file committed later shows
up in the docs without any change here.
"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless builds; must come before pyplot is imported
import matplotlib.pyplot as plt

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
WORKLOAD_NAMES = {
    "forward": "forward",
    "forward_backward": "forward + backward",
    "eikonal": "eikonal step",
}


def _load(path):
    payload = json.loads(path.read_text())
    backends = list(dict.fromkeys(row["backend"] for row in payload["results"]))
    rows = {}
    for row in payload["results"]:
        rows.setdefault((row["case"], row["workload"]), {})[row["backend"]] = row
    return payload, backends, rows


def _plot(rows, backends, baseline, title, path):
    """Horizontal bars of speed-up over the baseline, one group per case and workload."""
    others = [b for b in backends if b != baseline]
    labels, bars = [], {b: [] for b in others}
    for (case, workload), by_backend in rows.items():
        if by_backend.get(baseline, {}).get("status") != "ok":
            continue
        labels.append(f"{case} | {WORKLOAD_NAMES[workload]}")
        for b in others:
            row = by_backend.get(b, {})
            bars[b].append(row["speedup_vs_native"] if row.get("status") == "ok" else 0.0)
    height = 0.8 / max(len(others), 1)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.32 * len(labels) * max(len(others), 1)))
    for k, b in enumerate(others):
        positions = [i + (k - (len(others) - 1) / 2) * height for i in range(len(labels))]
        ax.barh(positions, bars[b], height=height, label=b, color=f"C{k}")
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # first case on top, no empty margins
    ax.set_xlabel(f"speed-up over {baseline} (log scale; right of the line is faster)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _ok_time(row):
    return row["time_s"] if row is not None and row["status"] == "ok" else None


def _cell(row, by_backend, baseline):
    """Time, speed-up (over the baseline, else over ``reference``), memory, bandwidth."""
    if row is None:
        return "..."
    if row["status"] != "ok":
        return row["status"]
    text = f"{row['time_s'] * 1e3:.3g} ms"
    baseline_time = _ok_time(by_backend.get(baseline))
    reference_time = _ok_time(by_backend.get("reference"))
    if baseline_time is not None:
        text += f" ({baseline_time / row['time_s']:.2f}x)"
    elif reference_time is not None and row["backend"] != "reference":
        text += f" ({reference_time / row['time_s']:.2f}x vs reference)"
    if row.get("peak_memory_bytes") is not None:
        text += f", {row['peak_memory_bytes'] / 2**20:.1f} MiB"
    if row.get("bandwidth_fraction") is not None:
        text += f", {row['bandwidth_fraction']:.0%} BW"
    return text


def _section(path, payload, backends, rows, image):
    machine, settings = payload["machine"], payload["settings"]
    device = machine.get("gpu_name") or machine["cpu_model"]
    title = f"{path.stem}: {device}"
    lines = [title, "-" * len(title), ""]
    lines += [
        (
            f"- device: ``{settings['device']}``; CPU {machine['cpu_model']}, "
            f"{settings['threads']} threads pinned ({machine['cpu_count']} logical CPUs)"
        ),
        (
            f"- torch {machine['torch']}, CUDA {machine['torch_cuda'] or 'none'}, "
            f"measured {machine['date_utc']}, source {machine.get('source_revision')}"
        ),
        f"- timing: {settings['timing']}",
        f"- peak memory: {settings['memory_method']}",
        "",
        f".. figure:: {image.parent.name}/{image.name}",
        f"   :alt: speed-up over {settings['baseline']} per case, {path.stem}",
        "",
        (
            f"   Speed-up of each backend over ``{settings['baseline']}``. Cases it cannot "
            "serve, such as smoothstep, are only in the table, compared with ``reference``."
        ),
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - case",
        "     - workload",
    ]
    lines += [f"     - {b}" for b in backends]
    for (case, workload), by_backend in rows.items():
        lines += [f"   * - {case}", f"     - {WORKLOAD_NAMES[workload]}"]
        lines += [
            f"     - {_cell(by_backend.get(b), by_backend, settings['baseline'])}" for b in backends
        ]
    return lines + [""]


def make(outdir):
    """Write the speed-up plots and ``performance.inc`` into ``outdir``.

    ``outdir`` must be a folder directly under ``docs/``: the fragment names
    its images relative to the page that includes it.
    """
    outdir = Path(outdir)
    written = []
    lines = []
    for path in sorted(RESULTS.glob("grid_sample-*.json")):
        payload, backends, rows = _load(path)
        image = outdir / f"performance-{path.stem}.png"
        _plot(rows, backends, payload["settings"]["baseline"], path.stem, image)
        lines += _section(path, payload, backends, rows, image)
        written.append(image)
    if not lines:
        lines = ["No benchmark results are committed yet.", ""]
    fragment = outdir / "performance.inc"
    fragment.write_text("\n".join(lines))
    return written + [fragment]
