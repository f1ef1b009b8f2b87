"""torchsample: sample feature maps and point clouds at explicit coordinates.

Conventions, the same everywhere: coordinates are normalized to [-1, 1] with
their last dimension ``(x, y[, z])``; sizes are ``(w, h[, d])``; coordinates
come first in argument lists; sampled features come back feature-last.
"""

from . import coord, default, encoding, models, ops, points
from ._sample import feat_first, feat_last, sample, sample2d, sample3d
from .coord import tensor_to_size
from .ops import BackendChoice, grid_sample, which_backend

__version__ = "0.1.0"

__all__ = [
    "BackendChoice",
    "coord",
    "default",
    "encoding",
    "feat_first",
    "feat_last",
    "grid_sample",
    "models",
    "ops",
    "points",
    "sample",
    "sample2d",
    "sample3d",
    "tensor_to_size",
    "which_backend",
]
