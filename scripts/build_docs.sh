#!/usr/bin/env bash
# Build the HTML documentation; any Sphinx warning fails the build.
set -euo pipefail
cd "$(dirname "$0")/.."
sphinx-build -W --keep-going -b html docs docs/_build/html "$@"
