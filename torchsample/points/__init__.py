"""Point-cloud sampling: farthest point sampling, kNN, Chamfer, SampleNet's projection.

Points are ``(b, n, 3)``, coordinates last; functions with a ``.nobatch`` form
accept ``(n, 3)``.
"""

from ._chamfer import chamfer_distance
from ._fps import farthest_point_sample
from ._knn import knn
from ._matching import nn_matching
from ._random import random_sample
from ._soft_projection import SoftProjection

__all__ = [
    "SoftProjection",
    "chamfer_distance",
    "farthest_point_sample",
    "knn",
    "nn_matching",
    "random_sample",
]
