"""Tables and plots for the performance page, from ``benchmarks/results/grid_sample-*.json``.

For every results file (one per kind of device) :func:`make` writes, per
workload (forward, forward + backward, eikonal step), a bar chart of the
compiled backend's speed-up over ``F.grid_sample`` and a table of every
backend's median time, interquartile range and peak extra memory, the
cases sorted by dimension, channels, map size and points. The reST goes
into ``performance.inc``, which ``performance.rst`` includes; a results file
committed later (a GPU run) shows up without any change here.
"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless builds; must come before pyplot is imported
import matplotlib.pyplot as plt

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
WORKLOADS = {  # in the order the page shows them; unknown workloads follow by name
    "train_forward": "Training loop: forward",
    "train_step": "Training loop: forward + loss.backward()",
    "sdf_step": "Training loop: SDF step",
    "forward": "Forward",
    "forward_backward": "Forward + backward",
    "eikonal": "Eikonal step (double backward)",
}
WORKLOAD_NOTES = {
    "train_forward": (
        "the call on a contiguous channels-first map and points that require grad "
        "(the graph is built, then dropped)."
    ),
    "train_step": "the call, then ``loss.backward()`` into ``.grad`` of the map and the points.",
    "sdf_step": (
        "a data term on the output plus an eikonal term on its gradient with respect "
        "to the points, then one ``loss.backward()``."
    ),
    "forward": "one call without autograd.",
    "forward_backward": (
        "the call, then the gradients with respect to the map and the points "
        "(``torch.autograd.grad``)."
    ),
    "eikonal": (
        "the call, its gradient with respect to the points with "
        "``create_graph=True``, an eikonal loss on that gradient, and the loss's "
        "gradients with respect to the map and the points."
    ),
}
DEVICE_NAMES = {"cpu": "CPU", "cuda": "GPU"}
SUITE_TITLES = {
    "training": "Training loop",
    "small": "Small calls",
    "kernels": "The sampler alone",
}
#: The files the headline table draws on (the training-loop runs and the
#: small calls, 2 threads; a cell comes from the first file that has it)
#: and its cells, in order: the cases the performance issue was filed with,
#: as a training loop makes them.
HEADLINE_RESULTS = (
    "grid_sample-training-cpu.json",
    "grid_sample-training-smoothstep-cpu.json",
    "grid_sample-small-cpu.json",
)
HEADLINE = [
    ("train_forward", "2d c1 256x256 n=2^18 float32"),
    ("train_forward", "2d c3 256x256 n=2^18 float32"),
    ("train_forward", "2d c3 512x512 n=2^18 float32"),
    ("train_forward", "2d c64 256x256 n=2^18 float32"),
    ("train_step", "2d c1 512x512 n=2^18 float32"),
    ("train_step", "2d c3 512x512 n=2^18 float32"),
    ("sdf_step", "2d c1 512x512 n=2^18 float32"),
    ("sdf_step", "3d c1 128x128x128 n=2^16 float32"),
    ("sdf_step", "3d c16 96x96x96 n=2^17 float32"),
    ("sdf_step", "2d c1 512x512 n=2^18 float32 smoothstep"),
    ("sdf_step", "3d c16 96x96x96 n=2^17 float32 smoothstep"),
    ("forward", "2d c4 8x8 n=2^4 float32"),
    ("train_step", "2d c4 8x8 n=2^4 float32"),
]
WORKLOAD_SHORT = {
    "train_forward": "forward",
    "train_step": "forward + backward",
    "sdf_step": "SDF step",
    "forward": "forward, no grad",
}


def _load(path):
    payload = json.loads(path.read_text())
    backends = list(dict.fromkeys(row["backend"] for row in payload["results"]))
    rows = {}
    for row in payload["results"]:
        rows.setdefault(row["workload"], {}).setdefault(row["case"], {})[row["backend"]] = row
    return payload, backends, rows


def _sort_key(case, cases):
    spec = cases.get(case)
    if spec is None:  # a case the file does not describe: last, by name
        return (9, 0, 0, 0, 0, 0, case)
    size = 1
    for extent in spec["size"]:
        size *= extent
    return (
        spec["dims"],
        spec["channels"],
        size,
        spec["points"],
        spec["channels_last"],
        spec["smoothstep"],
        case,
    )


def _power_of_two(n):
    exponent = n.bit_length() - 1
    return f"2^{exponent}" if n == 1 << exponent else f"{n:,}"


def _case_label(case, cases):
    """``2D 256x256, 16 ch, 2^16 points, channels last`` from the case's description."""
    spec = cases.get(case)
    if spec is None:
        return case
    label = (
        f"{spec['dims']}D {'x'.join(str(s) for s in spec['size'])}, "
        f"{spec['channels']} ch, {_power_of_two(spec['points'])} points"
    )
    if spec["dtype"] != "float32":
        label += f", {spec['dtype']}"
    if spec["channels_last"]:
        label += ", channels last"
    if spec["smoothstep"]:
        label += ", smoothstep"
    return label


def _seconds(t):
    """A duration with three significant digits in the unit that suits it."""
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "\u00b5s")):
        if t >= scale or scale == 1e-6:
            value = t / scale
            digits = 0 if value >= 100 else 1 if value >= 10 else 2
            return f"{value:.{digits}f} {unit}"
    raise AssertionError


def _mib(nbytes):
    value = nbytes / 2**20
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def _ok(row):
    return row is not None and row.get("status") == "ok"


def _ratio(other, mine):
    """How much faster (or slower) ``mine`` is than ``other``, in words."""
    ratio = other / mine
    if ratio >= 1.05:
        return f"{ratio:.1f}x faster"
    if ratio <= 1 / 1.05:
        return f"**{1 / ratio:.1f}x slower**"
    return "same"


def _comparison(by_backend, baseline, backend="compiled"):
    """A backend against the baseline where it served the case, else against reference."""
    mine = by_backend.get(backend)
    if not _ok(mine):
        return ""
    for other in (baseline, "reference"):
        row = by_backend.get(other)
        if _ok(row):
            text = _ratio(row["time_s"], mine["time_s"])
            return text if other == baseline else f"{text} than {other}"
    return ""


def _time_cell(row):
    if row is None:
        return ""
    if row["status"] != "ok":
        return row["status"]
    text = _seconds(row["time_s"])
    if row.get("iqr_s") is not None:
        # a line block: the median, and under it the interquartile range
        text = f"| {text}\n       | IQR {_seconds(row['iqr_s'])}"
    return text


def _memory_cell(by_backend, backends):
    values = []
    for b in backends:
        row = by_backend.get(b)
        values.append(
            _mib(row["peak_memory_bytes"])
            if _ok(row) and row.get("peak_memory_bytes") is not None
            else "n/a"
        )
    return " / ".join(values)


def _plot(cases_rows, cases, baseline, title, path):
    """Horizontal bars of the compiled backend's speed-up over the baseline, one per case."""
    labels, ratios = [], []
    for case, by_backend in cases_rows:
        compiled, base = by_backend.get("compiled"), by_backend.get(baseline)
        if _ok(compiled) and _ok(base):
            labels.append(_case_label(case, cases))
            ratios.append(base["time_s"] / compiled["time_s"])
    if not labels:
        return False
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.3 * len(labels)))
    colors = ["#2a9d5c" if r >= 1 else "#c8553d" for r in ratios]
    positions = range(len(labels))
    ax.barh(positions, ratios, color=colors, height=0.7)
    for y, r in zip(positions, ratios):
        text = f"{r:.1f}x" if r >= 1 else f"{1 / r:.1f}x slower"
        ax.text(r * 1.06, y, text, va="center", ha="left", fontsize=8)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    low, high = min(min(ratios), 1.0), max(max(ratios), 1.0)
    ax.set_xlim(low / 2.2, high * 2.2)
    ax.set_yticks(list(positions), labels, fontsize=9)
    ax.set_ylim(len(labels) - 0.5, -0.5)  # first case on top
    ax.set_xlabel(
        f"compiled speed-up over {baseline} (log scale; right of 1 is faster)", fontsize=9
    )
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _section(path, payload, backends, rows, outdir):
    machine, settings = payload["machine"], payload["settings"]
    baseline = settings["baseline"]
    order = {baseline: 0, "compiled": 1, "auto": 2, "reference": 3}
    backends = sorted(backends, key=lambda b: (order.get(b, 4), b))
    compared = [b for b in ("compiled", "auto") if b in backends]
    cases = payload.get("cases", {})
    device = DEVICE_NAMES.get(settings["device"], settings["device"])
    suite = SUITE_TITLES.get(settings.get("suite", "kernels"), settings.get("suite"))
    title = (
        f"{suite}: {device}, {settings['threads']} thread{'s' if settings['threads'] > 1 else ''}"
    )
    if "smoothstep" in path.stem:
        title += ", smoothstep against the reference"
    lines = [f".. _results-{path.stem}:", "", title, "-" * len(title), ""]
    processor = machine.get("gpu_name") or machine["cpu_model"]
    lines += [
        (
            f"Measured on {processor}, {settings['threads']} threads "
            f"({machine['cpu_count']} logical CPUs), torch {machine['torch']}, "
            f"on {machine['date_utc'][:10]} at revision ``{machine.get('source_revision')}`` "
            f"(``{path.relative_to(RESULTS.parents[1]).as_posix()}``)."
        ),
        "",
        (
            "Each time is the median over the rounds, with the interquartile range "
            "(IQR) under it. Peak extra memory is in MiB, for "
            + " / ".join(f"``{b}``" for b in backends)
            + ". The last columns compare "
            + " and ".join(f"``{b}``" for b in compared)
            + f" with ``{baseline}`` (``F.grid_sample``), or with ``reference`` where "
            f"``{baseline}`` cannot serve the case (smoothstep)."
            + (
                " ``auto`` is :func:`torchsample.grid_sample` with its dispatch, what a user gets."
                if "auto" in backends
                else ""
            )
        ),
        "",
    ]
    workloads = [w for w in WORKLOADS if w in rows] + sorted(set(rows) - set(WORKLOADS))
    for workload in workloads:
        by_case = rows[workload]
        name = WORKLOADS.get(workload, workload)
        ordered = sorted(by_case.items(), key=lambda item: _sort_key(item[0], cases))
        lines += [f".. _results-{path.stem}-{workload}:", "", name, "~" * len(name), ""]
        if workload in WORKLOAD_NOTES:
            lines += [f"{name}: {WORKLOAD_NOTES[workload]}", ""]
        image = outdir / f"performance-{path.stem}-{workload}.png"
        if _plot(ordered, cases, baseline, f"{name}, {device}", image):
            lines += [
                f".. figure:: {image.parent.name}/{image.name}",
                f"   :alt: compiled speed-up over {baseline} per case, {name.lower()}",
                "",
                (
                    f"   Compiled against ``{baseline}``: green bars are faster, red "
                    "bars slower. Smoothstep cases are in the table only."
                ),
                "",
            ]
        lines += [
            ".. list-table::",
            "   :header-rows: 1",
            "   :class: perf-table",
            "",
            "   * - case",
        ]
        lines += [f"     - {b}" for b in backends]
        lines += ["     - peak extra memory (MiB)"]
        lines += [f"     - {b} vs {baseline}" for b in compared]
        for case, by_backend in ordered:
            lines += [f"   * - {_case_label(case, cases)}"]
            lines += [f"     - {_time_cell(by_backend.get(b))}" for b in backends]
            lines += [f"     - {_memory_cell(by_backend, backends)}"]
            lines += [f"     - {_comparison(by_backend, baseline, b)}" for b in compared]
        lines += [""]
    return lines


def _file_order(path):
    """Training-loop results first, then small calls, then the sampler alone; GPU files by name."""
    order = {"training": 0, "training-smoothstep": 1, "training-1thread": 2, "small": 3, "": 4}
    kind = path.stem.removeprefix("grid_sample").removeprefix("-").rpartition("-")[0]
    return (order.get(kind, 5), path.name)


def _headline(paths):
    """The headline table's reST: the HEADLINE cells that the files ``paths`` hold.

    Every cell comes whole from the first file that measured both its
    baseline and the compiled backend, so that its ratios compare one run.
    """
    loaded = [(path, *_load(path)) for path in paths]
    cases = {}
    for _, payload, _, _ in reversed(loaded):
        cases.update(payload.get("cases", {}))

    def cell(workload, case):
        for _, _, _, rows in loaded:
            by_backend = rows.get(workload, {}).get(case, {})
            if _ok(by_backend.get("compiled")) and any(
                _ok(by_backend.get(b)) for b in ("native", "reference")
            ):
                return by_backend
        return None

    sources = [(path, payload) for path, payload, _, _ in loaded]
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :class: perf-table",
        "",
        "   * - case",
        "     - baseline",
        "     - compiled",
        "     - ``auto``",
        "     - compiled vs baseline",
        "     - ``auto`` vs baseline",
    ]
    shown = 0
    for workload, case in HEADLINE:
        by_backend = cell(workload, case)
        if by_backend is None:
            continue
        # F.grid_sample has no smoothstep: the reference backend stands in.
        baseline = "native" if _ok(by_backend.get("native")) else "reference"
        shown += 1
        label = f"{WORKLOAD_SHORT.get(workload, workload)}, {_case_label(case, cases)}"
        lines += [f"   * - {label}"]
        lines += [f"     - {_time_cell(by_backend.get(b))}" for b in (baseline, "compiled", "auto")]
        for backend in ("compiled", "auto"):
            mine = by_backend.get(backend)
            ratio = _ratio(by_backend[baseline]["time_s"], mine["time_s"]) if _ok(mine) else ""
            lines += [f"     - {ratio}"]
    if not shown:
        return ["The training-loop results are not committed yet.", ""]
    described = "; ".join(
        f"``{path.name}`` ({payload['machine']['cpu_model']}, "
        f"{payload['settings']['threads']} threads, {payload['machine']['date_utc'][:10]})"
        for path, payload in sources
    )
    return [
        (
            "The baseline is ``F.grid_sample``, or ``reference`` in the smoothstep rows "
            f"(``F.grid_sample`` has no smoothstep). Medians with the interquartile range "
            f"under them, from {described}."
        ),
        "",
        *lines,
        "",
    ]


def make(outdir):
    """Write the per-workload plots and ``performance.inc`` into ``outdir``.

    ``outdir`` must be a folder directly under ``docs/``: the fragment names
    its images relative to the page that includes it.
    """
    outdir = Path(outdir)
    for stale in outdir.glob("performance-*.png"):
        stale.unlink()
    lines = []
    for path in sorted(RESULTS.glob("grid_sample-*.json"), key=_file_order):
        payload, backends, rows = _load(path)
        lines += _section(path, payload, backends, rows, outdir)
    if not lines:
        lines = ["No benchmark results are committed yet.", ""]
    fragment = outdir / "performance.inc"
    fragment.write_text("\n".join(lines))
    headline = outdir / "performance-headline.inc"
    sources = [RESULTS / name for name in HEADLINE_RESULTS if (RESULTS / name).exists()]
    headline.write_text("\n".join(_headline(sources)))
    return sorted(outdir.glob("performance-*.png")) + [fragment, headline]
