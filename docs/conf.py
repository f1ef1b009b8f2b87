"""Sphinx configuration of the torchsample documentation.

Build with ``bash scripts/build_docs.sh`` (warnings are errors). Two things
happen at build time rather than being committed:

* every module in ``docs/figures/`` has its ``make(outdir)`` called, writing
  figures (and the performance page's tables) into ``docs/_generated_figures/``,
  so figures always show the current code and benchmark results;
* autosummary writes the API stubs into ``docs/generated/``.

Intersphinx links to PyTorch and NumPy need their inventories from the
network. The build must also work offline (CI has no network), so the
mappings are only set when ``TORCHSAMPLE_DOCS_ONLINE=1`` or on Read the Docs
(which sets ``READTHEDOCS=True``); offline, references to ``torch`` and
``numpy`` names render as plain text.
"""

import importlib.util
import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
FIGURES_SRC = DOCS / "figures"
FIGURES_OUT = DOCS / "_generated_figures"
sys.path.insert(0, str(ROOT))

import torchsample  # from the checkout inserted above, not an installed copy

project = "torchsample"
author = "torchsample developers"
copyright = "torchsample developers"
release = torchsample.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build", "_generated_figures", "figures", "conftest.py"]
templates_path = []

html_theme = "furo"
html_title = f"torchsample {release}"
html_static_path = []

autosummary_generate = True
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_inherit_docstrings = False
add_module_names = False

napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_custom_sections = ["Shape"]

ONLINE = os.environ.get("TORCHSAMPLE_DOCS_ONLINE") == "1" or os.environ.get("READTHEDOCS") == "True"
intersphinx_mapping = (
    {
        "python": ("https://docs.python.org/3", None),
        "torch": ("https://pytorch.org/docs/stable", None),
        "numpy": ("https://numpy.org/doc/stable", None),
    }
    if ONLINE
    else {}
)


def _make_figures(app):
    FIGURES_OUT.mkdir(exist_ok=True)
    for script in sorted(FIGURES_SRC.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"_docs_figure_{script.stem}", script)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.make(FIGURES_OUT)


def setup(app):
    app.connect("builder-inited", _make_figures)
