"""Just-in-time build and loading of torchsample's C++/CUDA extension.

Every source under ``torchsample/csrc/`` (``*.cpp``, ``cpu/*.cpp`` and, when
the installed torch has CUDA and a CUDA toolkit is found, ``cuda/*.cu``) is
compiled into one shared library that registers its ops with
``TORCH_LIBRARY``; nothing is imported through pybind11.  The library is
cached per torch version, CUDA version and source hash under
``~/.cache/torchsample/`` (``TORCHSAMPLE_CACHE_DIR`` overrides), and a file lock
lets several processes ask for it at once: one builds, the others wait and
load the result.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shlex
import sys
import threading
from pathlib import Path

import torch

CSRC = Path(__file__).resolve().parent / "csrc"
_CXX_FLAGS = ["-O3", "-fopenmp"]
_CUDA_FLAGS = ["-O3", "--expt-relaxed-constexpr"]

_lock = threading.Lock()
_loaded_path: str | None = None
_failure: str | None = None


def _cuda_home() -> str | None:
    """The CUDA toolkit to build with, or None when CUDA sources must be left out."""
    if torch.version.cuda is None:
        return None
    from torch.utils.cpp_extension import CUDA_HOME

    if CUDA_HOME is None or not (Path(CUDA_HOME) / "bin" / "nvcc").exists():
        return None
    return CUDA_HOME


def sources(with_cuda: bool) -> list[Path]:
    """Sources compiled into the extension, in a stable order.

    Parameters
    ----------
    with_cuda : bool
        Include the ``cuda/*.cu`` files.

    Returns
    -------
    list of pathlib.Path
        ``*.cpp`` at the top of ``csrc``, then ``cpu/*.cpp``, then (optionally)
        ``cuda/*.cu``.

    Examples
    --------
    >>> from torchsample import _extension
    >>> any(p.name == "grid_sample_kernel.cpp" for p in _extension.sources(False))
    True
    >>> any(p.suffix == ".cu" for p in _extension.sources(False))
    False
    """
    found = sorted(CSRC.glob("*.cpp")) + sorted(CSRC.glob("cpu/*.cpp"))
    if with_cuda:
        found += sorted(CSRC.glob("cuda/*.cu"))
    return found


def _flags() -> tuple[list[str], list[str]]:
    """C++ compiler and linker flags, with any extra ones from the environment.

    ``TORCHSAMPLE_EXTRA_CFLAGS`` / ``TORCHSAMPLE_EXTRA_LDFLAGS`` exist for
    instrumented builds (``scripts/sanitize_check.sh`` builds with ASan and
    UBSan); they are part of the cache key, so such a build never replaces
    the normal one.
    """
    cflags = _CXX_FLAGS + shlex.split(os.environ.get("TORCHSAMPLE_EXTRA_CFLAGS", ""))
    ldflags = ["-fopenmp"] + shlex.split(os.environ.get("TORCHSAMPLE_EXTRA_LDFLAGS", ""))
    return cflags, ldflags


def _source_hash(files: list[Path]) -> str:
    digest = hashlib.sha256()
    headers = sorted(CSRC.rglob("*.h")) + sorted(CSRC.rglob("*.cuh"))
    for path in files + headers:
        digest.update(str(path.relative_to(CSRC)).encode())
        digest.update(path.read_bytes())
    cflags, ldflags = _flags()
    digest.update(" ".join(cflags + ldflags + _CUDA_FLAGS).encode())
    return digest.hexdigest()[:16]


def build_plan() -> dict:
    """What :func:`load` builds: sources, CUDA or not, library name and directory.

    Returns
    -------
    dict
        ``sources`` (list of paths), ``cuda`` (bool), ``name`` (library name),
        ``directory`` (build and cache directory) and ``library`` (the shared
        library's path).

    Examples
    --------
    >>> from torchsample import _extension
    >>> plan = _extension.build_plan()
    >>> plan["library"].parent == plan["directory"]
    True
    """
    with_cuda = _cuda_home() is not None
    files = sources(with_cuda)
    digest = _source_hash(files)
    cuda_tag = f"cu{torch.version.cuda}" if with_cuda else "cpu"
    python_tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    root = Path(os.environ.get("TORCHSAMPLE_CACHE_DIR") or Path.home() / ".cache" / "torchsample")
    directory = root / f"torch{torch.__version__}-{cuda_tag}-{python_tag}-{digest}"
    name = f"torchsample_ops_{digest}"
    return {
        "sources": files,
        "cuda": with_cuda,
        "name": name,
        "directory": directory,
        "library": directory / f"{name}.so",
    }


def _compile(plan: dict) -> None:
    from torch.utils.cpp_extension import load as cpp_load

    kind = "CPU and CUDA" if plan["cuda"] else "CPU"
    estimate = "a few minutes" if plan["cuda"] else "about a minute"
    print(
        f"torchsample: compiling the {kind} extension ({len(plan['sources'])} sources) "
        f"into {plan['directory']}; first use only, takes {estimate}",
        file=sys.stderr,
        flush=True,
    )
    cflags, ldflags = _flags()
    cpp_load(
        name=plan["name"],
        sources=[str(s) for s in plan["sources"]],
        extra_cflags=cflags,
        extra_cuda_cflags=_CUDA_FLAGS,
        extra_ldflags=ldflags,
        extra_include_paths=[str(CSRC)],
        build_directory=str(plan["directory"]),
        is_python_module=False,
        with_cuda=plan["cuda"],
        verbose=False,
    )


def _build_and_load() -> str:
    plan = build_plan()
    directory: Path = plan["directory"]
    directory.mkdir(parents=True, exist_ok=True)
    library: Path = plan["library"]
    # One process builds while the others wait on the lock; the library is
    # complete once the builder releases it.
    with open(directory / "build.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            if not library.exists():
                _compile(plan)
            else:
                torch.ops.load_library(str(library))
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
    return str(library)


def load() -> str:
    """Build the extension if needed and register its ops; returns the library path.

    Idempotent and thread-safe.

    Returns
    -------
    str
        Path of the loaded shared library.

    Raises
    ------
    RuntimeError
        If the extension cannot be built or loaded; the message says why.

    Examples
    --------
    >>> import torch, torchsample._extension as ext
    >>> path = ext.load()
    >>> hasattr(torch.ops.torchsample, "grid_sample")
    True
    """
    global _loaded_path, _failure
    with _lock:
        if _loaded_path is not None:
            return _loaded_path
        if _failure is not None:
            raise RuntimeError(_failure)
        try:
            _loaded_path = _build_and_load()
        except Exception as error:  # any failure means "unavailable, and here is why"
            _failure = (
                f"torchsample could not build its C++ extension ({type(error).__name__}: "
                f"{str(error).strip()[-2000:]}). A C++17 compiler and ninja are required "
                "(pip install ninja); set TORCHSAMPLE_BACKEND=reference to use the "
                "pure-PyTorch backend instead."
            )
            raise RuntimeError(_failure) from error
        return _loaded_path


def unavailable_reason() -> str | None:
    """None when the extension is loaded (building it on first call), else why not.

    Never raises; the outcome is cached.

    Examples
    --------
    >>> import torchsample._extension as ext
    >>> ext.unavailable_reason() is None
    True
    """
    try:
        load()
    except RuntimeError as error:
        return str(error)
    return None
