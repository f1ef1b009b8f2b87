"""Just-in-time build and loading of torchsample's C++/CUDA extension.

Every source under ``torchsample/csrc/`` (``*.cpp``, ``cpu/*.cpp`` and, when
the installed torch has CUDA and a CUDA toolkit is found, ``cuda/*.cu``) is
compiled into one shared library that registers its ops with
``TORCH_LIBRARY``; nothing is imported through pybind11.  The library is
cached per torch version, CUDA version and architectures, and source hash
under ``~/.cache/torchsample/`` (``TORCHSAMPLE_CACHE_DIR`` overrides).

A build degrades instead of breaking:

- it runs in a private staging directory and the library is renamed into
  place when complete, so a process killed mid-build (or mid-link) leaves
  no partial library and no lock of torch's behind that later processes
  would use or wait on;
- a lock file holding the builder's pid lets concurrent processes wait for
  one build instead of each building; a lock whose process is gone is taken
  over.  The lock only saves duplicate work: two builds that do race each
  rename a complete library into place;
- a failed CUDA build is recorded in the cache and the CPU kernels are
  built and loaded instead; :func:`build_info` says why there are no CUDA
  kernels, and the dispatch sends CUDA tensors to another backend.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

CSRC = Path(__file__).resolve().parent / "csrc"
_CXX_FLAGS = ["-O3", "-fopenmp"]
# -lineinfo: source lines in compute-sanitizer and profiler reports, at no
# cost to the generated code.
_CUDA_FLAGS = ["-O3", "--expt-relaxed-constexpr", "-lineinfo"]
# A lock held longer than this is taken over even if its process seems
# alive (a pid reused by another process, or a builder that hangs); far
# longer than a CUDA build.
_LOCK_TIMEOUT_S = 30 * 60
_CUDA_FAILURE_FILE = "cuda_build_failed.txt"

_lock = threading.Lock()
_loaded_path: str | None = None
_failure: str | None = None
_info: dict | None = None


def _cuda_home() -> str | None:
    """The CUDA toolkit to build with, or None when CUDA sources must be left out."""
    if torch.version.cuda is None:
        return None
    from torch.utils.cpp_extension import CUDA_HOME

    if CUDA_HOME is None or not (Path(CUDA_HOME) / "bin" / "nvcc").exists():
        return None
    return CUDA_HOME


def _no_cuda_reason() -> str | None:
    if torch.version.cuda is None:
        return "the installed torch has no CUDA"
    if _cuda_home() is None:
        return "no CUDA toolkit (nvcc) was found; set CUDA_HOME"
    return None


def cuda_arch_list() -> str | None:
    """The CUDA architectures a CUDA build compiles for, spelled as ``TORCH_CUDA_ARCH_LIST``.

    ``TORCH_CUDA_ARCH_LIST`` when set; otherwise those of the visible GPUs;
    with none visible, those the installed torch was built for (torch's own
    default would then fail the build).  None for a torch without CUDA.

    Examples
    --------
    >>> import os, torch
    >>> from torchsample import _extension
    >>> torch.version.cuda is not None or _extension.cuda_arch_list() is None
    True
    """
    if torch.version.cuda is None:
        return None
    configured = os.environ.get("TORCH_CUDA_ARCH_LIST", "").strip()
    if configured:
        return configured
    # Querying capabilities initializes CUDA in this process; it happens only
    # where CUDA kernels are built or loaded, that is, where CUDA is used.
    if torch.cuda.is_available():
        capabilities = {
            torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())
        }
        return ";".join(f"{major}.{minor}" for major, minor in sorted(capabilities))
    archs = []
    for arch in torch.cuda.get_arch_list():  # "sm_90", "sm_90a", "compute_90"
        if arch.startswith("sm_"):
            digits = arch[3:].rstrip("abf")
            archs.append(f"{digits[:-1]}.{digits[-1]}")
    return ";".join(archs) or None


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


def _source_hash(files: list[Path], cuda_archs: str | None) -> str:
    digest = hashlib.sha256()
    headers = sorted(CSRC.rglob("*.h")) + sorted(CSRC.rglob("*.cuh"))
    for path in files + headers:
        digest.update(str(path.relative_to(CSRC)).encode())
        digest.update(path.read_bytes())
    cflags, ldflags = _flags()
    digest.update(" ".join(cflags + ldflags + _CUDA_FLAGS).encode())
    # A library built for other GPUs fails at the first launch ("no kernel
    # image"), so the architectures are part of the key.
    digest.update(f"archs={cuda_archs}".encode())
    return digest.hexdigest()[:16]


def build_plan(with_cuda: bool | None = None) -> dict:
    """What :func:`load` builds: sources, CUDA or not, library name and directory.

    Parameters
    ----------
    with_cuda : bool, optional
        Plan a build with (True) or without (False) the CUDA kernels; by
        default, with them whenever torch has CUDA and a toolkit is found.

    Returns
    -------
    dict
        ``sources`` (list of paths), ``cuda`` (bool), ``cuda_archs`` (str or
        None), ``name`` (library name), ``directory`` (cache directory) and
        ``library`` (the shared library's path).

    Examples
    --------
    >>> from torchsample import _extension
    >>> plan = _extension.build_plan()
    >>> plan["library"].parent == plan["directory"]
    True
    >>> _extension.build_plan(with_cuda=False)["cuda"]
    False
    """
    if with_cuda is None:
        with_cuda = _cuda_home() is not None
    files = sources(with_cuda)
    cuda_archs = cuda_arch_list() if with_cuda else None
    digest = _source_hash(files, cuda_archs)
    cuda_tag = f"cu{torch.version.cuda}" if with_cuda else "cpu"
    python_tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    root = Path(os.environ.get("TORCHSAMPLE_CACHE_DIR") or Path.home() / ".cache" / "torchsample")
    directory = root / f"torch{torch.__version__}-{cuda_tag}-{python_tag}-{digest}"
    name = f"torchsample_ops_{digest}"
    return {
        "sources": files,
        "cuda": with_cuda,
        "cuda_archs": cuda_archs,
        "name": name,
        "directory": directory,
        "library": directory / f"{name}.so",
    }


def _compile(plan: dict, staging: Path) -> Path:
    """Compile ``plan`` in ``staging`` (torch also loads it); returns the library built."""
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
    environment = {"TORCH_CUDA_ARCH_LIST": plan["cuda_archs"]} if plan["cuda"] else {}
    with _environment(environment):
        cpp_load(
            name=plan["name"],
            sources=[str(s) for s in plan["sources"]],
            extra_cflags=cflags,
            extra_cuda_cflags=_CUDA_FLAGS,
            extra_ldflags=ldflags,
            extra_include_paths=[str(CSRC)],
            build_directory=str(staging),
            is_python_module=False,
            with_cuda=plan["cuda"],
            verbose=False,
        )
    return staging / plan["library"].name


@contextlib.contextmanager
def _environment(values: dict):
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _owner_tag() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _owner_is_gone(tag: str) -> bool:
    """Whether the process a lock or staging directory names has ended.

    Only answerable for processes on this host, and not on Windows (where
    ``os.kill`` would terminate the process): there, only the lock's age
    (``_LOCK_TIMEOUT_S``) retires it.
    """
    host, _, pid = tag.rpartition("-")
    if host != socket.gethostname() or not pid.isdigit() or os.name == "nt":
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by another user
        return False
    return False


@contextlib.contextmanager
def _build_lock(path: Path):
    """Hold ``path`` (created exclusively, naming this process) while building.

    Portable (no ``fcntl``); a lock whose process is gone, or that is older
    than ``_LOCK_TIMEOUT_S``, is taken over.
    """
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            try:
                tag = path.read_text().strip()
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:  # released meanwhile
                continue
            # An empty lock is one being written right now, or whose writer
            # died between creating and writing it.
            stale = _owner_is_gone(tag) if tag else age > 10
            if stale or age > _LOCK_TIMEOUT_S:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            else:
                time.sleep(0.2)
    with os.fdopen(fd, "w") as lock_file:
        lock_file.write(_owner_tag())
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _remove_abandoned_staging(directory: Path) -> None:
    """Delete staging directories of builds whose process was killed."""
    for staging in directory.glob("staging-*"):
        tag = staging.name.removeprefix("staging-").rpartition("-")[0]
        if _owner_is_gone(tag):
            shutil.rmtree(staging, ignore_errors=True)


def _ensure_built(plan: dict) -> Path:
    """The plan's library, built into place first if needed, and loaded."""
    directory: Path = plan["directory"]
    library: Path = plan["library"]
    directory.mkdir(parents=True, exist_ok=True)
    if not library.exists():
        with _build_lock(directory / "build.lock"):
            if not library.exists():
                _remove_abandoned_staging(directory)
                staging = Path(tempfile.mkdtemp(prefix=f"staging-{_owner_tag()}-", dir=directory))
                try:
                    os.replace(_compile(plan, staging), library)
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
    # After a build this finds the library torch loaded from the staging
    # directory (the same file), and registers nothing twice.
    _load_library(library)
    return library


def _load_library(library: Path) -> None:
    torch.ops.load_library(str(library))


def _build_and_load() -> tuple[str, dict]:
    """Build and load the library; returns its path and what it was built for.

    A CUDA build that fails is recorded next to where its library would be,
    so later processes go straight to the CPU build (delete the cache
    directory to retry, after fixing the toolkit).
    """
    plan = build_plan()
    no_cuda = _no_cuda_reason()
    if plan["cuda"]:
        marker = plan["directory"] / _CUDA_FAILURE_FILE
        if marker.exists():
            no_cuda = marker.read_text()
        else:
            try:
                library = _ensure_built(plan)
                return str(library), {
                    "cuda": True,
                    "cuda_archs": plan["cuda_archs"],
                    "no_cuda_reason": None,
                }
            # What torch's build raises for a compiler error, a missing tool or
            # an architecture it does not know; the CPU kernels need not suffer.
            except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as error:
                no_cuda = (
                    f"the CUDA build failed ({type(error).__name__}: {str(error).strip()[-1500:]}); "
                    f"recorded in {marker}"
                )
                plan["directory"].mkdir(parents=True, exist_ok=True)
                marker.write_text(no_cuda)
        print(f"torchsample: building the CPU kernels only: {no_cuda}", file=sys.stderr, flush=True)
    library = _ensure_built(build_plan(with_cuda=False))
    return str(library), {"cuda": False, "cuda_archs": None, "no_cuda_reason": no_cuda}


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
    global _loaded_path, _failure, _info
    with _lock:
        if _loaded_path is not None:
            return _loaded_path
        if _failure is not None:
            raise RuntimeError(_failure)
        try:
            _loaded_path, _info = _build_and_load()
        except Exception as error:  # any failure means "unavailable, and here is why"
            _failure = (
                f"torchsample could not build its C++ extension ({type(error).__name__}: "
                f"{str(error).strip()[-2000:]}). A C++17 compiler and ninja are required "
                "(pip install ninja); set TORCHSAMPLE_BACKEND=reference to use the "
                "pure-PyTorch backend instead."
            )
            raise RuntimeError(_failure) from error
        return _loaded_path


def build_info() -> dict:
    """What the loaded extension serves: CUDA kernels or not, and why not.

    Builds the extension on first call (see :func:`load`, whose errors it
    raises).

    Returns
    -------
    dict
        ``cuda`` (bool: the library has CUDA kernels), ``cuda_archs`` (the
        architectures they were compiled for, or None) and
        ``no_cuda_reason`` (None, or why there are no CUDA kernels).

    Examples
    --------
    >>> import torch, torchsample._extension as ext
    >>> info = ext.build_info()
    >>> info["cuda"] or info["no_cuda_reason"] is not None
    True
    """
    load()
    return dict(_info)


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
