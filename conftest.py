"""pytest setup shared by the tests and the docs' ``>>>`` examples (one conftest: two would clash).

- The docs' build scripts are not tests.
- Tests marked ``compiler`` are skipped where no C++ compiler runs (a
  wheel's tests, ``scripts/wheel_check.sh``).
"""

import pytest

from torchsample import _extension

collect_ignore = ["docs/conf.py", "setup.py"]
collect_ignore_glob = [
    "docs/figures/*",
    "docs/_build/*",
    "docs/_generated_figures/*",
    "docs/generated/*",
]


def pytest_collection_modifyitems(config, items):
    marked = [item for item in items if item.get_closest_marker("compiler")]
    if marked and _extension.compiler_problem() is not None:
        skip = pytest.mark.skip(reason="needs a C++ compiler, and none runs here")
        for item in marked:
            item.add_marker(skip)
