#!/usr/bin/env bash
# The wheel carries the kernels: build it against the installed torch,
# install it into a fresh venv, and run the test suite against the installed
# package where no C/C++ compiler is reachable, with the prebuilt kernels
# required (TORCHSAMPLE_KERNELS=prebuilt: nothing is ever compiled). Also
# checks that a source build without a compiler still gives a wheel, one
# without kernels.
#
#   bash scripts/wheel_check.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "wheel_check: $*" >&2; exit 1; }
# The interpreter itself, not a shim that needs the PATH taken away below.
python=$(python -c "import sys; print(sys.executable)")

# Every executable on PATH except compilers, linkers and ninja.
nocc="$work/nocc-bin"
mkdir "$nocc"
IFS=: read -ra path_dirs <<< "$PATH"
for dir in "${path_dirs[@]}"; do
    for exe in "$dir"/*; do
        name=$(basename "$exe")
        case "$name" in
            c++ | cc | cpp | g++* | gcc* | clang* | *-linux-gnu-* | nvcc | ld | ld.* | ninja) continue ;;
        esac
        if [ -x "$exe" ] && [ ! -e "$nocc/$name" ]; then ln -s "$exe" "$nocc/$name"; fi
    done
done
without_compiler() { env PATH="$nocc" CC=false CXX=false "$@"; }

echo "== a source build with no compiler gives a wheel without kernels"
without_compiler "$python" -m pip wheel . --no-build-isolation --no-deps -q -w "$work/pure"
pure=$(ls "$work"/pure/torchsample-*.whl)
case "$(basename "$pure")" in *-py3-none-any.whl) ;; *) fail "not a pure wheel: $pure" ;; esac
if "$python" -m zipfile -l "$pure" | grep "_kernels" >/dev/null; then fail "$pure has kernels"; fi

echo "== the wheel with the kernels"
TORCHSAMPLE_BUILD_KERNELS=1 "$python" -m pip wheel . --no-build-isolation --no-deps -q -w "$work/dist"
wheel=$(ls "$work"/dist/torchsample-*.whl)
echo "built $(basename "$wheel")"
case "$(basename "$wheel")" in *+pt*-cp310-abi3-*.whl) ;; *) fail "unexpected wheel name: $wheel" ;; esac
"$python" -m zipfile -l "$wheel" | grep "torchsample/_kernels.abi3.so" >/dev/null || fail "no library in $wheel"
"$python" -m zipfile -l "$wheel" | grep "torchsample/_kernels.json" >/dev/null || fail "no manifest in $wheel"

echo "== installed into a fresh venv"
"$python" -m venv "$work/venv"
venv_python="$work/venv/bin/python"
torch_version=$("$python" -c "import torch; print(torch.__version__.split('+')[0])")
"$venv_python" -m pip install -q "torch==$torch_version" "$wheel" \
    pytest hypothesis numpy matplotlib pillow tqdm

echo "== tests against the installed wheel, no compiler reachable"
# A copy of the tests outside the checkout, so that `import torchsample` is
# the installed package; its doctests run from there too (--pyargs).
run="$work/run"
mkdir "$run"
cp -r tests benchmarks docs examples assets README.rst pyproject.toml conftest.py "$run"
cd "$run"
export TORCHSAMPLE_KERNELS=prebuilt TORCHSAMPLE_CACHE_DIR="$work/empty-cache"
without_compiler "$venv_python" - <<'EOF'
import torch

import torchsample as ts
from torchsample import _extension

info = _extension.build_info()
assert info["source"] == "prebuilt", info
assert _extension.load().startswith(str(_extension.PACKAGE)), _extension.load()
assert "site-packages" in _extension.load(), _extension.load()
choice = ts.which_backend(torch.rand(1, 3, 8, 8), torch.rand(1, 4, 4, 2), smoothstep=True)
assert choice.name == "compiled", choice
print(f"prebuilt kernels loaded from {_extension.load()}")
EOF
without_compiler "$venv_python" -m pytest -p no:cacheprovider -q \
    tests docs README.rst --pyargs torchsample "$@"
[ ! -e "$work/empty-cache" ] || fail "something was built just in time: $(ls -R "$work/empty-cache")"

echo "== the wheel without kernels builds them just in time, where a compiler runs"
"$venv_python" -m pip install -q --force-reinstall --no-deps "$pure"
TORCHSAMPLE_KERNELS=auto "$venv_python" -m torchsample.build | tee "$work/jit.txt"
grep "kernels: built just in time" "$work/jit.txt" >/dev/null || fail "the kernel-less wheel did not build"
cd "$repo"
echo "wheel_check: the wheel's prebuilt kernels pass the tests with no compiler, and without"
echo "kernels the installed package builds them just in time"
