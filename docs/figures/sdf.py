"""Figure for the encodings page: the normals of a fitted SDF, linear against smoothstep.

Runs ``examples/sdf.py`` with its defaults on the CPU (two fits of 300 steps;
about 20 s on two cores) and keeps the figure and the JSON it writes, so the
page shows what the example produces with the current code.
"""

import contextlib
import functools
import importlib.util
import io
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sdf.py"


def make(outdir):
    """Write ``sdf.png`` and ``sdf.json`` into ``outdir``."""
    outdir = Path(outdir)
    spec = importlib.util.spec_from_file_location("_docs_example_sdf", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.tqdm = functools.partial(module.tqdm, disable=True)  # no progress bars in the log
    with contextlib.redirect_stdout(io.StringIO()):
        module.main(["--out", str(outdir / "sdf.png"), "--device", "cpu"])
    return [outdir / "sdf.png", outdir / "sdf.json"]
