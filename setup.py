"""Ahead-of-time build of torchsample's kernels into its wheel.

``pip wheel . --no-build-isolation`` (or ``python -m build --no-isolation``)
compiles the C++ kernels, and the CUDA ones when the installed torch has
CUDA and nvcc is found, into ``torchsample/_kernels.abi3.so`` with torch's
``BuildExtension``, next to the manifest ``torchsample/_kernels.json`` that
the loader (``torchsample/_extension.py``) checks against the installed
torch. The wheel's version gets a local label naming that torch
(``0.1.0+pt213cpu``, ``0.1.0+pt213cu128``).

The build needs the torch the wheel is for, hence no build isolation (an
isolated build would compile against whichever torch the index offers).
Without torch in the build environment, or without a C++ compiler, the
wheel is built without kernels, which are then built just in time or
replaced by the fallbacks, as for an editable install: editable installs
never compile here. ``TORCHSAMPLE_BUILD_KERNELS`` overrides: ``1`` fails the
build when the kernels cannot be built, ``0`` leaves them out.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import sys
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
BASE_VERSION = re.search(
    r'^__version__ = "([^"]+)"',
    (ROOT / "torchsample" / "__init__.py").read_text(),
    re.MULTILINE,
).group(1)
ENV_VAR = "TORCHSAMPLE_BUILD_KERNELS"
# The extension is loaded with torch.ops.load_library, never imported, and
# uses no Python API: one library serves every Python version.
MIN_PYTHON = "cp310"


def _say(message: str) -> None:
    print(f"torchsample setup: {message}", file=sys.stderr, flush=True)


@functools.cache
def _loader():
    """torchsample/_extension.py, imported alone: its source list and flags are the build's."""
    spec = importlib.util.spec_from_file_location(
        "torchsample_extension_for_setup", ROOT / "torchsample" / "_extension.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _why_no_kernels() -> str | None:
    """None when the kernels can be built here, else why not."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed in the build environment (build with --no-build-isolation)"
    return _loader().compiler_problem()


def _kernels_requested() -> bool:
    request = os.environ.get(ENV_VAR, "auto")
    if request not in ("auto", "0", "1"):
        raise SystemExit(f"{ENV_VAR} must be auto, 0 or 1, got {request!r}")
    if request == "0":
        _say(f"building without kernels ({ENV_VAR}=0)")
        return False
    why_not = _why_no_kernels()
    if why_not is None:
        return True
    if request == "1":
        raise SystemExit(f"torchsample setup: {ENV_VAR}=1 but {why_not}")
    _say(f"building without kernels: {why_not}; they will be built just in time")
    return False


def local_label(torch_version: str, cuda: str | None) -> str:
    """The version label of a wheel with kernels: ``pt213cpu`` for torch 2.13 on the CPU.

    ``pt213cu128`` for torch 2.13 with CUDA 12.8; the loader checks the exact
    versions in the manifest, this names them for people and installers.
    """
    major, minor = torch_version.split(".")[:2]
    return f"pt{major}{minor}" + (f"cu{cuda.replace('.', '')}" if cuda else "cpu")


def _kernels_setup() -> dict:
    """The ``setup()`` arguments that compile the kernels into the wheel."""
    import torch
    from torch.utils import cpp_extension

    loader = _loader()
    with_cuda = loader._cuda_home() is not None
    if with_cuda:
        archs = os.environ.setdefault("TORCH_CUDA_ARCH_LIST", loader.torch_cuda_archs() or "")
        _say(f"CPU and CUDA kernels, for GPU architectures {archs}")
    else:
        _say(f"CPU kernels only: {loader._no_cuda_reason()}")
    cflags, ldflags = loader._flags()
    # setuptools adds Python's own CFLAGS, -g among them; the just-in-time
    # build has no debug information either, and the library is 8x smaller.
    cflags = [*cflags, "-g0"]
    make = cpp_extension.CUDAExtension if with_cuda else cpp_extension.CppExtension
    extension = make(
        name="torchsample._kernels",
        sources=[str(path.relative_to(ROOT)) for path in loader.sources(with_cuda)],
        include_dirs=[str(loader.CSRC)],
        extra_compile_args={"cxx": cflags, "nvcc": loader._CUDA_FLAGS},
        extra_link_args=ldflags,
        py_limited_api=True,
    )

    class BuildKernels(cpp_extension.BuildExtension):
        """torch's BuildExtension, recording what it built; nothing for editable installs."""

        def run(self):
            if getattr(self, "editable_mode", False):
                _say("editable install: the kernels will be built just in time")
                return
            super().run()
            library = Path(self.get_ext_fullpath(extension.name))
            manifest = loader.write_manifest(
                library.parent / "_kernels.json", library.name, cuda_kernels=with_cuda
            )
            _say(f"built {library.name} for torch {manifest['torch']}")

        def get_outputs(self):
            if getattr(self, "editable_mode", False):
                return []
            return [*super().get_outputs(), str(Path(self.build_lib, "torchsample/_kernels.json"))]

    return {
        "version": f"{BASE_VERSION}+{local_label(torch.__version__, torch.version.cuda)}",
        "ext_modules": [extension],
        "cmdclass": {"build_ext": BuildKernels},
        "options": {"bdist_wheel": {"py_limited_api": MIN_PYTHON}},
    }


if __name__ == "__main__":  # as setuptools runs it; tests import the helpers above
    setup(**(_kernels_setup() if _kernels_requested() else {"version": BASE_VERSION}))
