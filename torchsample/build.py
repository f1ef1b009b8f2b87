"""Build torchsample's C++/CUDA extension ahead of time.

``python -m torchsample.build`` compiles the extension into its cache (see
:mod:`torchsample._extension`), for container images and cluster nodes
where the first training step should not wait for a compiler, and prints
what it built: the sources, CPU or CUDA, where the library is and how long
it took.  It exits with status 1 and the reason if the build fails.
"""

from __future__ import annotations

import sys
import time

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
    library: ...
    sources (...):
    ...
    0
    """
    plan = _extension.build_plan()
    cached = plan["library"].exists()
    start = time.perf_counter()
    try:
        path = _extension.load()
    except RuntimeError as error:
        print(f"torchsample.build: failed: {error}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    kind = "CPU and CUDA" if plan["cuda"] else "CPU only (no CUDA torch or toolkit found)"
    print(f"torchsample extension: {kind}")
    print(f"library: {path}")
    print(f"sources ({len(plan['sources'])}):")
    for source in plan["sources"]:
        print(f"  {source.relative_to(_extension.CSRC.parent)}")
    action = "already built, loaded" if cached else "built"
    print(f"{action} in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
