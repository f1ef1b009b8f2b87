"""Loading torchsample's C++/CUDA extension: prebuilt in a wheel, or built just in time.

A wheel built ahead of time (``pip wheel . --no-build-isolation``, see
``setup.py``) carries the compiled library beside a manifest,
``_kernels.json``, naming the torch and CUDA versions it was built against
and a digest of its sources. :func:`load` uses it when it matches the
installed torch and the sources installed beside it; otherwise (an
editable install, a wheel without kernels, or one built for another torch,
which warns once) it builds the library just in time, as follows.

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
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import torch

PACKAGE = Path(__file__).resolve().parent
CSRC = PACKAGE / "csrc"
#: The description of the library an ahead-of-time build put in the package.
PREBUILT_MANIFEST = PACKAGE / "_kernels.json"
#: Which kernels :func:`load` may use: ``auto`` (the prebuilt ones when they
#: match the installed torch, else a just-in-time build), ``prebuilt`` (only
#: those; no compiler is ever run) or ``jit`` (always build).
KERNELS_ENV_VAR = "TORCHSAMPLE_KERNELS"
KERNEL_SOURCES = ("auto", "prebuilt", "jit")
# -fno-trapping-math: the kernels never read floating-point exception flags,
# and without it GCC will not turn a select between floating-point values
# into vector code (csrc/cpu/linear_block.h).  Values are unchanged.
_CXX_FLAGS = ["-O3", "-fopenmp", "-fno-trapping-math"]
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


def compiler_problem() -> str | None:
    """None when the C++ compiler a build would use (``$CXX``, else ``c++``) runs, else why not.

    Examples
    --------
    >>> import os
    >>> from torchsample import _extension
    >>> _extension.compiler_problem() is None or "compiler" in _extension.compiler_problem()
    True
    """
    named = os.environ.get("CXX") or "c++"
    compiler = shlex.split(named)
    if not compiler or shutil.which(compiler[0]) is None:
        return f"no C++ compiler found (CXX={named})"
    probe = subprocess.run([*compiler, "--version"], capture_output=True, check=False)
    if probe.returncode != 0:
        return f"the C++ compiler {' '.join(compiler)} does not run"
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
    return torch_cuda_archs()


def torch_cuda_archs() -> str | None:
    """The GPU architectures the installed torch was built for, as ``TORCH_CUDA_ARCH_LIST``.

    What a wheel is built for unless ``TORCH_CUDA_ARCH_LIST`` says otherwise:
    the kernels then run wherever the installed torch does. None for a torch
    without CUDA.

    Examples
    --------
    >>> import torch
    >>> from torchsample import _extension
    >>> torch.version.cuda is not None or _extension.torch_cuda_archs() is None
    True
    """
    if torch.version.cuda is None:
        return None
    archs = []
    for arch in torch.cuda.get_arch_list():  # "sm_90", "sm_90a", "compute_90"
        if arch.startswith("sm_"):
            digits = arch[3:].rstrip("abf")
            archs.append(f"{digits[:-1]}.{digits[-1]}")
    return ";".join(dict.fromkeys(archs)) or None


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


def _digest(files: list[Path]):
    """A running sha256 of the named files (names and contents) and every header."""
    digest = hashlib.sha256()
    headers = sorted(CSRC.rglob("*.h")) + sorted(CSRC.rglob("*.cuh"))
    for path in files + headers:
        digest.update(str(path.relative_to(CSRC)).encode())
        digest.update(path.read_bytes())
    return digest


def sources_digest() -> str:
    """The sha256 of every C++/CUDA source and header, as a prebuilt library records it.

    Examples
    --------
    >>> from torchsample import _extension
    >>> len(_extension.sources_digest())
    64
    """
    return _digest(sources(with_cuda=True)).hexdigest()


def _source_hash(files: list[Path], cuda_archs: str | None) -> str:
    digest = _digest(files)
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


def _kernel_source() -> str:
    requested = os.environ.get(KERNELS_ENV_VAR, "auto")
    if requested not in KERNEL_SOURCES:
        raise ValueError(
            f"environment variable {KERNELS_ENV_VAR} must be one of {', '.join(KERNEL_SOURCES)}, "
            f"got {requested!r}"
        )
    return requested


def _release(version: str) -> str:
    # "2.13.0+cpu" and "2.13.0" from two indexes share a C++ ABI when their
    # CUDA versions agree, which is compared separately.
    return version.split("+")[0]


def read_manifest(path: Path | None = None) -> dict | None:
    """What an ahead-of-time build recorded of its library, or None without one.

    Parameters
    ----------
    path : pathlib.Path, optional
        The manifest; by default the installed package's.

    Returns
    -------
    dict or None
        ``library`` (its file name in the package), ``torch`` and ``cuda``
        (the versions it was built against), ``cuda_kernels`` (bool),
        ``cuda_archs``, ``no_cuda_reason`` and ``sources_sha256`` (see
        :func:`sources_digest`).

    Examples
    --------
    >>> from pathlib import Path
    >>> from torchsample import _extension
    >>> _extension.read_manifest(Path("no/such/_kernels.json")) is None
    True
    """
    path = PREBUILT_MANIFEST if path is None else path
    if not path.exists():
        return None
    return json.loads(path.read_text())


def write_manifest(path: Path, library_name: str, cuda_kernels: bool) -> dict:
    """Record a library built ahead of time for the installed torch (``setup.py`` calls this).

    Returns
    -------
    dict
        What was written, as :func:`read_manifest` returns it.
    """
    manifest = {
        "library": library_name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_kernels": cuda_kernels,
        "cuda_archs": os.environ.get("TORCH_CUDA_ARCH_LIST") if cuda_kernels else None,
        "no_cuda_reason": None if cuda_kernels else _no_cuda_reason(),
        "sources_sha256": sources_digest(),
    }
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def prebuilt_mismatch(manifest: dict) -> str | None:
    """None when a prebuilt library serves the installed torch and sources, else why not.

    Examples
    --------
    >>> import torch
    >>> from torchsample import _extension
    >>> built_for = {"torch": "2.4.0", "cuda": torch.version.cuda, "library": "_kernels.so",
    ...              "sources_sha256": _extension.sources_digest()}
    >>> print(_extension.prebuilt_mismatch(built_for))  # doctest: +ELLIPSIS
    the prebuilt kernels were built for torch 2.4.0 ..., the installed torch is ...
    """

    def label(version, cuda):
        return f"{version} ({f'CUDA {cuda}' if cuda else 'CPU'})"

    if (_release(manifest["torch"]), manifest["cuda"]) != (
        _release(torch.__version__),
        torch.version.cuda,
    ):
        return (
            f"the prebuilt kernels were built for torch {label(manifest['torch'], manifest['cuda'])}"
            f", the installed torch is {label(torch.__version__, torch.version.cuda)}"
        )
    if not (PACKAGE / manifest["library"]).exists():
        return f"the prebuilt library {PACKAGE / manifest['library']} is missing"
    if manifest["sources_sha256"] != sources_digest():
        return (
            "the prebuilt kernels were compiled from other sources than those installed "
            "beside them (an older in-place build?)"
        )
    return None


_warned_mismatch = False


def _load_prebuilt(manifest: dict, required: bool) -> tuple[str, dict] | None:
    """Load the package's prebuilt library, or say why not (warning once) and return None."""
    global _warned_mismatch
    reason = prebuilt_mismatch(manifest)
    if reason is None:
        library = PACKAGE / manifest["library"]
        try:
            _load_library(library)
        except OSError as error:  # undefined symbols, a foreign platform
            reason = f"the prebuilt kernels failed to load ({error})"
        else:
            no_cuda = manifest["no_cuda_reason"]
            if not manifest["cuda_kernels"] and torch.version.cuda is not None:
                no_cuda = (
                    f"the prebuilt kernels were built without CUDA kernels ({no_cuda}); "
                    f"set {KERNELS_ENV_VAR}=jit to build them here"
                )
            return str(library), {
                "cuda": manifest["cuda_kernels"],
                "cuda_archs": manifest["cuda_archs"],
                "no_cuda_reason": no_cuda,
                "source": "prebuilt",
            }
    if required:
        raise RuntimeError(f"{KERNELS_ENV_VAR}=prebuilt, but {reason}")
    if not _warned_mismatch:
        _warned_mismatch = True
        warnings.warn(
            f"torchsample: {reason}; building the kernels just in time instead (install the "
            f"torchsample wheel built for this torch, or set {KERNELS_ENV_VAR}=jit to silence this)",
            RuntimeWarning,
            stacklevel=4,
        )
    return None


def _build_and_load() -> tuple[str, dict]:
    """Load the prebuilt library if it serves, else build one; returns its path and what it has.

    ``TORCHSAMPLE_KERNELS`` chooses (see :data:`KERNEL_SOURCES`).
    """
    requested = _kernel_source()
    if requested != "jit":
        manifest = read_manifest()
        if manifest is None and requested == "prebuilt":
            raise RuntimeError(
                f"{KERNELS_ENV_VAR}=prebuilt, but this installation has no prebuilt kernels "
                "(an editable install, or a wheel built without them)"
            )
        if manifest is not None:
            loaded = _load_prebuilt(manifest, required=requested == "prebuilt")
            if loaded is not None:
                return loaded
    path, info = _jit_build_and_load()
    return path, {**info, "source": "jit"}


def _jit_build_and_load() -> tuple[str, dict]:
    """Build and load the library in the cache; returns its path and what it was built for.

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
    """Load the extension (prebuilt, or built if needed) and register its ops; returns its path.

    Idempotent and thread-safe. ``TORCHSAMPLE_KERNELS`` chooses between the
    kernels prebuilt in the wheel and a just-in-time build (see
    :data:`KERNELS_ENV_VAR`).

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
                f"torchsample could not load its C++ extension ({type(error).__name__}: "
                f"{str(error).strip()[-2000:]}). It needs a torchsample wheel built for the "
                "installed torch, or a C++17 compiler and ninja (pip install ninja) to build "
                "it; set TORCHSAMPLE_BACKEND=reference to use the pure-PyTorch backend instead."
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
        ``no_cuda_reason`` (None, or why there are no CUDA kernels) and
        ``source``: ``"prebuilt"`` (shipped in the wheel) or ``"jit"``
        (built in the cache).

    Examples
    --------
    >>> import torch, torchsample._extension as ext
    >>> info = ext.build_info()
    >>> info["cuda"] or info["no_cuda_reason"] is not None
    True
    >>> info["source"] in ("prebuilt", "jit")
    True
    """
    load()
    return dict(_info)


def kernels_description() -> str:
    """Which kernels are loaded, and from where, in words (``which_backend`` quotes it).

    Loads the extension on first call (see :func:`load`, whose errors it
    raises).

    Examples
    --------
    >>> from torchsample import _extension
    >>> _extension.kernels_description()  # doctest: +ELLIPSIS
    'kernels ... from /...'
    """
    path = load()
    if _info["source"] == "prebuilt":
        return f"kernels prebuilt in the package, loaded from {path}"
    return f"kernels built just in time, loaded from {path}"


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
