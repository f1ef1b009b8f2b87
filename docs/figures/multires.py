"""Plot and tables of the MultiResGrid benchmark, from ``benchmarks/results/multires-*.json``.

:func:`make` writes ``multires-cpu.png`` (median time of the fused op and of
the plain-PyTorch path per workload and point count, 2D and 3D, with the
MLP-alone floor of the steps) and
``multires.inc``, a reST fragment with the machine, the plot and the table
(and the table at one thread, from ``multires-1thread-cpu.json``), which
``encodings.rst`` includes.
"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
RESULT = RESULTS / "multires-cpu.json"
#: The same benchmark at one thread, shown as a second table where present.
ONE_THREAD = RESULTS / "multires-1thread-cpu.json"
CONTENDERS = ("fused", "auto", "reference")
LABELS = {"fused": "fused op", "auto": "auto (MultiResGrid)", "reference": "plain PyTorch"}
WORKLOADS = ("forward", "train_step", "sdf_step")
#: The steps' time with a free encoding (benchmarks/multires.py, FLOOR).
FLOOR = "mlp_alone"


def _rows(payload):
    return {
        (r["case"], r["workload"], r["contender"]): r
        for r in payload["results"]
        if r["status"] == "ok"
    }


def _plot(payload, rows, path):
    by_dims = {}
    for name, case in payload["cases"].items():
        by_dims.setdefault(case["dims"], []).append(name)
    fig, axes = plt.subplots(1, len(by_dims), figsize=(10, 4.0), squeeze=False)
    for ax, (dims, cases) in zip(axes[0], sorted(by_dims.items(), reverse=True)):
        labels, positions = [], []
        for w, workload in enumerate(WORKLOADS):
            for c, case in enumerate(cases):
                x = w * (len(cases) + 1) + c
                points = payload["cases"][case]["points"]
                labels.append(f"2^{points.bit_length() - 1}")
                positions.append(x)
                for k, contender in enumerate(CONTENDERS):
                    row = rows.get((case, workload, contender))
                    value = row["time_s"] * 1e3 if row else 0.0
                    ax.bar(
                        x + (k - 1) * 0.28,
                        value,
                        width=0.28,
                        color=f"C{k}",
                        label=LABELS[contender] if (w, c) == (0, 0) else None,
                    )
                floor = rows.get((case, workload, FLOOR))
                if floor:
                    ax.hlines(
                        floor["time_s"] * 1e3,
                        x - 0.42,
                        x + 0.42,
                        colors="black",
                        label="MLP alone" if (w, c) == (1, 0) else None,
                    )
            # The workload's name under its group of point counts.
            ax.text(
                w * (len(cases) + 1) + (len(cases) - 1) / 2,
                -0.16,
                workload,
                transform=ax.get_xaxis_transform(),
                ha="center",
                fontsize=9,
            )
        ax.set_yscale("log")
        ax.set_xticks(positions, labels, fontsize=8)
        ax.set_title(f"{dims}D, default MultiResGrid, smoothstep (points per call)", fontsize=10)
        ax.set_ylabel("median time, ms (log; lower is faster)", fontsize=8)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _duration(t):
    value, unit = (t, "s") if t >= 1 else (t * 1e3, "ms")
    digits = 0 if value >= 100 else 1 if value >= 10 else 2
    return f"{value:.{digits}f} {unit}"


def _floor(row):
    return f"{_duration(row['time_s'])} ({_duration(row['iqr_s'])})" if row else "-"


def _measured(payload):
    machine = payload["machine"]
    return (
        f"Measured on {machine['cpu_model']} with {machine['threads']} pinned "
        f"thread{'s' if machine['threads'] != 1 else ''}, torch {machine['torch']}, "
        f"{machine['date_utc'][:10]} (``python -m benchmarks.multires"
        f"{'' if machine['threads'] == 2 else ' --threads ' + str(machine['threads'])}``; "
        "contenders taking turns in one process, median over rounds, interquartile "
        "range in parentheses)."
    )


def _table(rows, cases):
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - case",
        "     - workload",
        "     - fused",
        "     - auto (what MultiResGrid runs)",
        "     - plain PyTorch",
        "     - speed-up, fused / auto",
        "     - peak extra memory, fused / plain",
        "     - MLP alone (the encoding replaced by a linear map)",
    ]
    for case in cases:
        for workload in WORKLOADS:
            fused, auto, plain = (rows.get((case, workload, name)) for name in CONTENDERS)
            if not (fused and auto and plain):
                continue
            memory = "-"
            if fused["peak_memory_bytes"] and plain["peak_memory_bytes"]:
                ratio = fused["peak_memory_bytes"] / plain["peak_memory_bytes"]
                memory = (
                    f"{fused['peak_memory_bytes'] / 2**20:.0f} / "
                    f"{plain['peak_memory_bytes'] / 2**20:.0f} MiB ({ratio:.2f})"
                )
            lines += [
                f"   * - {case}",
                f"     - {workload}",
                f"     - {_duration(fused['time_s'])} ({_duration(fused['iqr_s'])})",
                f"     - {_duration(auto['time_s'])} ({_duration(auto['iqr_s'])})",
                f"     - {_duration(plain['time_s'])} ({_duration(plain['iqr_s'])})",
                (
                    f"     - {plain['time_s'] / fused['time_s']:.1f}x / "
                    f"{plain['time_s'] / auto['time_s']:.1f}x"
                ),
                f"     - {memory}",
                f"     - {_floor(rows.get((case, workload, FLOOR)))}",
            ]
    return lines


def _fragment(payload, rows, image, one_thread=None):
    lines = [
        _measured(payload),
        "",
        f".. figure:: {image}",
        "   :alt: bar chart of median times, fused op against the plain-PyTorch path",
        "",
        (
            "   Median time per call, fused op and plain-PyTorch path; black lines: "
            "the step with the encoding replaced by a linear map (the MLP alone)."
        ),
        "",
        *_table(rows, payload["cases"]),
    ]
    if one_thread is not None:
        lines += ["", "The same at one thread. " + _measured(one_thread), ""]
        lines += _table(_rows(one_thread), one_thread["cases"])
    return "\n".join(lines) + "\n"


def make(outdir):
    """Write ``multires-cpu.png`` and ``multires.inc`` into ``outdir``."""
    outdir = Path(outdir)
    payload = json.loads(RESULT.read_text())
    rows = _rows(payload)
    image = outdir / "multires-cpu.png"
    _plot(payload, rows, image)
    fragment = outdir / "multires.inc"
    one_thread = json.loads(ONE_THREAD.read_text()) if ONE_THREAD.exists() else None
    fragment.write_text(_fragment(payload, rows, f"{image.parent.name}/{image.name}", one_thread))
    return [image, fragment]
