"""pytest setup shared by the tests and the docs' ``>>>`` examples (one conftest: two would clash).

- The docs' build scripts are not tests.
- Tests marked ``compiler`` are skipped where no C++ compiler runs (a
  wheel's tests, ``scripts/wheel_check.sh``).
"""

import os
import shlex
import subprocess

import pytest

collect_ignore = ["docs/conf.py", "setup.py"]
collect_ignore_glob = [
    "docs/figures/*",
    "docs/_build/*",
    "docs/_generated_figures/*",
    "docs/generated/*",
]


def _compiler_works() -> bool:
    compiler = shlex.split(os.environ.get("CXX") or "c++")
    try:
        probe = subprocess.run([*compiler, "--version"], check=False, capture_output=True)
    except OSError:  # not found
        return False
    return probe.returncode == 0


def pytest_collection_modifyitems(config, items):
    marked = [item for item in items if item.get_closest_marker("compiler")]
    if marked and not _compiler_works():
        skip = pytest.mark.skip(reason="needs a C++ compiler, and none runs here")
        for item in marked:
            item.add_marker(skip)
