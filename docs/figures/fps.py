"""Table and plot of the FPS benchmark, from ``benchmarks/results/fps-cpu.json``.

:func:`make` writes ``fps-cpu.png`` (median times of each method per case) and
``fps.inc``, a reST fragment with the machine, the plot and the table, which
``points.rst`` includes.
"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RESULT = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "fps-cpu.json"
METHODS = ("compiled", "fpsample", "fallback")


def _times(payload):
    times = {}
    for row in payload["results"]:
        if row["status"] == "ok":
            times[(row["case"], row["method"])] = row["time_s"]
    return times


def _plot(payload, times, path):
    cases = list(payload["cases"])
    width = 0.8 / len(METHODS)
    fig, ax = plt.subplots(figsize=(8, 1.0 + 0.6 * len(cases)))
    for k, method in enumerate(METHODS):
        positions = [i + (k - (len(METHODS) - 1) / 2) * width for i in range(len(cases))]
        values = [times.get((case, method), 0.0) * 1e3 for case in cases]
        ax.barh(positions, values, height=width, label=method, color=f"C{k}")
    ax.set_xscale("log")
    ax.set_yticks(range(len(cases)), [f"{c} (points->samples x batch)" for c in cases], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("median time, ms (log scale; shorter is faster)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _duration(t):
    """Seconds from 1 s up, milliseconds below, three significant digits."""
    value, unit = (t, "s") if t >= 1 else (t * 1e3, "ms")
    digits = 0 if value >= 100 else 1 if value >= 10 else 2
    return f"{value:.{digits}f} {unit}"


def _fragment(payload, times, image):
    machine = payload["machine"]
    lines = [
        (
            f"Measured on {machine['cpu_model']} with {machine['threads']} pinned threads, "
            f"torch {machine['torch']}, fpsample {payload.get('fpsample_version')}, "
            f"{machine['date_utc'][:10]}."
        ),
        "",
        f".. image:: {image.parent.name}/{image.name}",
        "   :alt: FPS median times per case and method",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - case (points -> samples x batch)",
        "     - compiled",
        "     - fpsample (best h)",
        "     - fallback",
        "     - fpsample / compiled",
    ]
    heights = {r["case"]: r.get("h") for r in payload["results"] if r["method"] == "fpsample"}
    for case in payload["cases"]:
        cells = []
        for method in METHODS:
            t = times.get((case, method))
            cell = _duration(t) if t is not None else "not run"
            if method == "fpsample" and t is not None:
                cell += f" (h={heights[case]})"
            cells.append(cell)
        compiled, reference = times.get((case, "compiled")), times.get((case, "fpsample"))
        cells.append(f"{reference / compiled:.2f}x" if compiled and reference else "n/a")
        lines += [f"   * - {case}"] + [f"     - {c}" for c in cells]
    return "\n".join(lines) + "\n"


def make(outdir):
    """Write ``fps-cpu.png`` and ``fps.inc`` into ``outdir`` (a folder under ``docs/``)."""
    outdir = Path(outdir)
    fragment = outdir / "fps.inc"
    if not RESULT.exists():
        fragment.write_text("No FPS benchmark results are committed yet.\n")
        return
    payload = json.loads(RESULT.read_text())
    times = _times(payload)
    image = outdir / "fps-cpu.png"
    _plot(payload, times, image)
    fragment.write_text(_fragment(payload, times, image))
