"""Grid-sampling, farthest-point-sampling and grid-encoding operators and their backends.

:func:`grid_sample`, :func:`farthest_point_indices` and :func:`multires_encode`
are the entry points; each hands its call to the first backend in
:data:`BACKENDS` that is available for the tensors' device and can serve it
(see :func:`which_backend` and :func:`multires_backend`).
"""

from ._dispatch import (
    BACKENDS,
    BackendChoice,
    farthest_point_indices,
    grid_sample,
    multires_backend,
    multires_encode,
    which_backend,
)

__all__ = [
    "BACKENDS",
    "BackendChoice",
    "farthest_point_indices",
    "grid_sample",
    "multires_backend",
    "multires_encode",
    "which_backend",
]
