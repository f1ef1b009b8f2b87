"""Load torchsample's C++/CUDA extension, building it ahead of time if needed.

``python -m torchsample.build`` loads the kernels prebuilt in the wheel when
they match the installed torch; otherwise it compiles the extension into
its cache (see :mod:`torchsample._extension`), for container images and
cluster nodes where the first training step should not wait for a
compiler. It prints what it loaded: prebuilt or built just in time, CPU or
CUDA (and if not CUDA, why not), where the library is, its sources and how
long it took. It exits with status 1 and the reason if the extension can
neither be loaded nor built; a failed CUDA build that leaves the CPU kernels
working is reported, not failed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from torchsample import _extension


def main() -> int:
    """Build (or find) the extension and report it; returns the exit status.

    Returns
    -------
    int
        0 when the extension is built and loaded, 1 otherwise.

    Examples
    --------
    >>> from torchsample.build import main
    >>> main()  # doctest: +ELLIPSIS
    torchsample extension: CPU...
    kernels: ...
    library: ...
    sources (...):
    ...
    0
    """
    plan = _extension.build_plan()
    # The CPU-only plan serves when a CUDA build fails.
    candidates = (plan["library"], _extension.build_plan(with_cuda=False)["library"])
    existed = {library for library in candidates if library.exists()}
    start = time.perf_counter()
    try:
        path = _extension.load()
    except RuntimeError as error:
        print(f"torchsample.build: failed: {error}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    info = _extension.build_info()
    if info["cuda"]:
        kind = f"CPU and CUDA (architectures {info['cuda_archs']})"
    else:
        kind = f"CPU only ({info['no_cuda_reason']})"
        plan = _extension.build_plan(with_cuda=False)
    if info["source"] == "prebuilt":
        origin = f"prebuilt in the package, for torch {_extension.read_manifest()['torch']}"
        action = "loaded"
    else:
        origin = "built just in time into the cache"
        action = "already built, loaded" if Path(path) in existed else "built"
    print(f"torchsample extension: {kind}")
    print(f"kernels: {origin}")
    print(f"library: {path}")
    print(f"sources ({len(plan['sources'])}):")
    for source in plan["sources"]:
        print(f"  {source.relative_to(_extension.CSRC.parent)}")
    print(f"{action} in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
