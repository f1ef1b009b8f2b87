"""Grid-sampling and farthest-point-sampling operators and their backends.

:func:`grid_sample` and :func:`farthest_point_indices` are the entry points;
each hands its call to the first backend in :data:`BACKENDS` that is
available for the tensors' device and can serve it (see
:func:`which_backend`).
"""

from ._dispatch import BACKENDS, BackendChoice, farthest_point_indices, grid_sample, which_backend

__all__ = [
    "BACKENDS",
    "BackendChoice",
    "farthest_point_indices",
    "grid_sample",
    "which_backend",
]
