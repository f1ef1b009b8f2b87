"""Sphinx configuration of the torchsample documentation.

Build with ``bash scripts/build_docs.sh`` (warnings are errors). Two things
happen at build time rather than being committed:

* every module in ``docs/figures/`` has its ``make(outdir)`` called, writing
  figures (and the performance page's tables) into ``docs/_generated_figures/``,
  so figures always show the current code and benchmark results;
* autosummary writes the API stubs into ``docs/generated/`` (titled with the
  short name, from ``docs/_templates/autosummary/``, so that the sidebar
  does not break long dotted names mid-word).

Math is rendered by a MathJax copy bundled in the ``sphinx-mathjax-offline``
package, so the offline build (CI) renders formulas exactly as Read the Docs
does, without a CDN.

Intersphinx links to PyTorch and NumPy need their inventories from the
network. The build must also work offline (CI has no network), so the
mappings are only set when ``TORCHSAMPLE_DOCS_ONLINE=1`` or on Read the Docs
(which sets ``READTHEDOCS=True``); offline, references to ``torch`` and
``numpy`` names render as plain text.
"""

import ast
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
    "sphinx-mathjax-offline",  # MathJax 3 served from _static/mathjax, no CDN
    "sphinx.ext.viewcode",
]
mathjax_path = "mathjax/tex-chtml.js"

exclude_patterns = ["_build", "_generated_figures", "figures", "conftest.py"]
templates_path = ["_templates"]

html_theme = "furo"
html_title = f"torchsample {release}"
html_logo = "../assets/logo.png"  # a query point, its four pixels and their weights
html_static_path = ["_static"]
html_css_files = ["custom.css"]

autosummary_generate = True
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
# The numpydoc sections carry the types. autodoc adds a type from the
# annotations only to a documented parameter whose docstring gives none (such
# as "device, dtype"), and never a "Return type" section: the "Returns"
# section already names the type (see _drop_return_annotations).
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_inherit_docstrings = False
# The stub pages are titled with short names; the signature under the title
# shows the full import path.
add_module_names = True

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


def _find_source(app, modname):
    """Source and tags for viewcode, including functions made by module-level calls.

    viewcode links an object to its source only when the module has a ``def``
    or ``class`` of that name. ``sample``, ``sample2d`` and ``sample3d`` are
    assigned (``sample = _sampler(...)``); this adds a tag for every
    module-level assignment of a public name whose object reports this module
    as its ``__module__``, spanning the whole assignment statement.
    """
    if not modname.startswith("torchsample"):
        return None
    from sphinx.errors import PycodeError
    from sphinx.pycode import ModuleAnalyzer

    try:
        analyzer = ModuleAnalyzer.for_module(modname)
        analyzer.find_tags()
        module = importlib.import_module(modname)
    except (ImportError, PycodeError):
        # viewcode's own lookup treats an unanalyzable module as sourceless too.
        return None
    tags = dict(analyzer.tags)
    for node in ast.parse(analyzer.code).body:
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            name = getattr(target, "id", None)
            if not name or name.startswith("_") or name in tags:
                continue
            obj = getattr(module, name, None)
            if callable(obj) and getattr(obj, "__module__", None) == modname:
                tags[name] = ("def", node.lineno, node.end_lineno)
    return analyzer.code, tags


def _drop_return_annotations(app, domain, objtype, contentnode):
    """Forget return annotations before autodoc merges type hints into descriptions.

    Runs before autodoc's own handler of the same event (lower priority
    number), so that a function gets one "Returns" section, not also a
    "Return type" one.
    """
    try:
        signature = contentnode.parent[0]
        module, name = signature.get("module"), signature["fullname"]
    except (IndexError, KeyError, TypeError):
        return
    fullname = f"{module}.{name}" if module else name
    document = getattr(app.env, "current_document", None)  # Sphinx 8.2 and later
    recorded = (
        document.autodoc_annotations
        if document is not None
        else app.env.temp_data.get("annotations", {})
    )
    annotations = recorded.get(fullname)
    if annotations:
        annotations.pop("return", None)


def setup(app):
    app.connect("builder-inited", _make_figures)
    app.connect("object-description-transform", _drop_return_annotations, priority=400)
    app.connect("viewcode-find-source", _find_source)
