"""Grid-sampling operators and their backends.

:func:`grid_sample` is the single entry point; it validates the request and
hands it to the first backend in :data:`BACKENDS` that is available and can
serve it (see :func:`which_backend`).
"""

from ._dispatch import BACKENDS, BackendChoice, grid_sample, which_backend

__all__ = ["BACKENDS", "BackendChoice", "grid_sample", "which_backend"]
