"""Multi-resolution feature grids with spatial hashing (Instant-NGP).

A stack of ``n_levels`` feature grids whose resolutions grow geometrically
from ``base_resolution`` to ``max_resolution``. A query point is interpolated
in every level and the per-level features are concatenated. Coarse levels are
stored densely, as a feature map; fine levels, whose dense grid would exceed
``2**log2_hashmap_size`` vertices, store their vertex features in a hash table
of that many entries instead. Every level is encoded in one compiled op
(:func:`torchsample.ops.multires_encode`) where the extension is built, and
level by level with PyTorch operations otherwise.

Reference: T. Müller, A. Evans, C. Schied, A. Keller, "Instant Neural Graphics
Primitives with a Multiresolution Hash Encoding", SIGGRAPH 2022.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from .._checks import (
    check_floating,
    check_positive_int,
    check_same_device,
    check_tensor,
    describe,
)
from ..ops import BackendChoice, multires_backend, multires_encode
from ..ops.compiled_multires import accumulation_dtype

__all__ = ["GridLevel", "MultiResGrid"]


class GridLevel(NamedTuple):
    """Layout of one level of a :class:`MultiResGrid`.

    Attributes
    ----------
    resolution : int
        Vertices per axis.
    hashed : bool
        Whether vertex features live in a hash table (``True``) or in a dense
        feature grid (``False``).
    entries : int
        Feature vectors stored: ``resolution ** dims`` for a dense level, the
        hash table size for a hashed one.
    nbytes : int
        Memory of the level's parameters, ``entries * n_features *
        element size``.
    """

    resolution: int
    hashed: bool
    entries: int
    nbytes: int


def _level_resolutions(n_levels: int, base: int, finest: int) -> list[int]:
    if n_levels == 1:
        return [base]
    growth = math.exp((math.log(finest) - math.log(base)) / (n_levels - 1))
    return [round(base * growth**level) for level in range(n_levels)]


class MultiResGrid(nn.Module):
    r"""Multi-resolution feature grid encoding (Instant-NGP), dense and hashed.

    Maps coordinates in [-1, 1] to the concatenation of the features
    interpolated in ``n_levels`` grids of growing resolution. Level ``l`` has
    ``N_l = round(base_resolution * b**l)`` vertices per axis, with ``b``
    chosen so that the last level has ``max_resolution``.

    **Vertices.** Coordinate -1 is the first vertex and +1 the last on every
    axis (the ``align_corners=True`` convention), so level ``l`` has ``N_l -
    1`` cells per axis of width ``2 / (N_l - 1)``; coordinates outside [-1, 1]
    are clamped onto the border.

    **Dense levels.** While ``N_l ** dims <= 2**log2_hashmap_size`` the level
    is a parameter shaped like a feature map, ``(1, n_features, N_l, N_l)`` in
    2D or ``(1, n_features, N_l, N_l, N_l)`` in 3D, interpolated as
    :func:`torchsample.grid_sample` would with ``align_corners=True`` and
    ``padding_mode="border"``.

    **Hashed levels.** Finer levels store ``2**log2_hashmap_size`` feature
    vectors, ``(2**log2_hashmap_size, n_features)``. Vertex ``(i, j[, k])``
    reads slot ``(i * 1) xor (j * 2654435761) [xor (k * 805459861)] mod
    2**log2_hashmap_size``, with the same linear or smoothstep weights as in
    a dense level.

    **Backends.** The compiled op encodes every level in one pass over the
    points, with analytic first derivatives (coordinates and tables) and the
    second derivatives an eikonal loss needs; a third derivative raises an
    error. Elsewhere (or with ``TORCHSAMPLE_BACKEND=reference``) each level is
    computed with PyTorch operations, differentiable to any order, the dense
    ones through :func:`torchsample.grid_sample`. Both give the same values;
    :meth:`which_backend` says which one serves a call: the fused op
    wherever it is built, for it is faster in every measured workload,
    forward, training and SDF steps (see the encodings page).

    **Hash collisions.** A hashed level has more vertices than slots, so at
    least ``N_l ** dims - 2**log2_hashmap_size`` vertices share a slot with
    another one and read the same features. The hash is deterministic (no
    randomness, same slots on every device), so collisions are fixed; the
    network resolves them because the colliding vertices are far apart and
    the coarser, collision-free levels tell them apart.

    **Memory.** A dense level takes ``N_l ** dims * n_features`` values, a
    hashed one ``2**log2_hashmap_size * n_features``; :attr:`levels` lists the
    layout and bytes of each level. With the defaults in 3D (float32) the five
    dense levels (16 to 58 vertices per axis) take 2.4 MiB and each of the
    eleven hashed levels 4 MiB, 46 MiB in all.

    **Smoothstep.** With linear weights the gradient of the encoding with
    respect to the coordinates jumps at every cell boundary. With
    ``smoothstep=True`` the weights are ``t * t * (3 - 2 * t)``, whose
    derivative vanishes at the vertices, so the gradient is continuous: what
    normals, eikonal losses and other derivatives of a fitted field need.

    Parameters
    ----------
    dims : int
        2 or 3, the coordinate dimensions.
    n_levels : int
        Number of levels ``L``.
    n_features : int
        Features per level ``F``.
    base_resolution : int
        Vertices per axis of the coarsest level (at least 2).
    max_resolution : int
        Vertices per axis of the finest level (at least ``base_resolution``).
    log2_hashmap_size : int
        Log2 of the hash table size ``T``; also the dense/hashed threshold.
    smoothstep : bool
        Interpolate with smoothstep instead of linear weights.
    generator : torch.Generator, optional
        Source of randomness for the initialization, uniform in
        ``(-1e-4, 1e-4)`` as in Instant-NGP.
    device, dtype
        Of the parameters. The coordinates are cast to ``dtype``.

    Attributes
    ----------
    resolutions : tuple of int
        ``N_l`` for each level.
    out_dims : int
        ``n_levels * n_features``.
    tables : torch.nn.ParameterList
        The parameters of each level, dense grid or hash table.

    Shape
    -----
    - input: ``(..., dims)``, last dimension ``(x, y[, z])``
    - output: ``(..., n_levels * n_features)``, level 0 (coarsest) first.

    Examples
    --------
    >>> import torch
    >>> from torchsample.encoding import MultiResGrid
    >>> encode = MultiResGrid(3, n_levels=4, base_resolution=8, max_resolution=64,
    ...                       log2_hashmap_size=12)
    >>> encode.resolutions, encode.out_dims
    ((8, 16, 32, 64), 8)
    >>> [(level.hashed, level.entries, level.nbytes) for level in encode.levels]
    [(False, 512, 4096), (False, 4096, 32768), (True, 4096, 32768), (True, 4096, 32768)]
    >>> encode(torch.rand(2, 1000, 3) * 2 - 1).shape
    torch.Size([2, 1000, 8])
    """

    def __init__(
        self,
        dims: int,
        n_levels: int = 16,
        n_features: int = 2,
        base_resolution: int = 16,
        max_resolution: int = 2048,
        log2_hashmap_size: int = 19,
        smoothstep: bool = False,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, got {dims!r}")
        check_positive_int("n_levels", n_levels)
        check_positive_int("n_features", n_features)
        check_positive_int("base_resolution", base_resolution)
        check_positive_int("max_resolution", max_resolution)
        check_positive_int("log2_hashmap_size", log2_hashmap_size)
        if base_resolution < 2:
            raise ValueError(f"base_resolution must be >= 2 (one cell), got {base_resolution}")
        if max_resolution < base_resolution:
            raise ValueError(
                f"max_resolution must be >= base_resolution ({base_resolution}), "
                f"got {max_resolution}"
            )
        self.dims = dims
        self.n_features = n_features
        self.log2_hashmap_size = log2_hashmap_size
        self.smoothstep = bool(smoothstep)
        self.resolutions = tuple(_level_resolutions(n_levels, base_resolution, max_resolution))

        table_size = 2**log2_hashmap_size
        self.tables = nn.ParameterList()
        for resolution in self.resolutions:
            if resolution**dims <= table_size:
                shape = (1, n_features) + (resolution,) * dims
            else:
                shape = (table_size, n_features)
            table = torch.empty(shape, device=device, dtype=dtype)
            # Drawn on the CPU so that a seeded generator gives the same
            # initialization on every device.
            values = torch.rand(shape, generator=generator, dtype=table.dtype)
            table.copy_((values * 2 - 1) * 1e-4)
            self.tables.append(nn.Parameter(table))

    @property
    def out_dims(self) -> int:
        return len(self.resolutions) * self.n_features

    @property
    def levels(self) -> tuple[GridLevel, ...]:
        """Layout and memory of each level, coarsest first."""
        return tuple(
            GridLevel(
                resolution=resolution,
                hashed=self._is_hashed(table),
                entries=table.numel() // self.n_features,
                nbytes=table.numel() * table.element_size(),
            )
            for resolution, table in zip(self.resolutions, self.tables)
        )

    def _is_hashed(self, table: torch.Tensor) -> bool:
        return table.dim() == 2

    def _points(self, coords: torch.Tensor) -> torch.Tensor:
        check_tensor("coords", coords)
        check_floating("coords", coords)
        if coords.dim() == 0 or coords.shape[-1] != self.dims:
            raise ValueError(
                f"coords must have a last dimension of {self.dims} (x, y"
                f"{', z' if self.dims == 3 else ''}), got {describe(coords)}"
            )
        check_same_device(coords=coords, tables=self.tables[0])
        # Half tables interpolate with float32 coordinates and weights.
        return coords.reshape(-1, self.dims).to(accumulation_dtype(self.tables[0].dtype))

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        points = self._points(coords)
        features = multires_encode(points, list(self.tables), self.resolutions, self.smoothstep)
        return features.reshape(*coords.shape[:-1], self.out_dims)

    def which_backend(self, coords: torch.Tensor) -> BackendChoice:
        """Which backend encodes ``coords``, and why (as :func:`torchsample.which_backend`).

        Examples
        --------
        >>> import torch
        >>> from torchsample.encoding import MultiResGrid
        >>> encode = MultiResGrid(2, n_levels=2, max_resolution=32)
        >>> encode.which_backend(torch.zeros(10, 2)).name in ("compiled", "native")
        True
        """
        return multires_backend(self._points(coords), list(self.tables))

    def extra_repr(self) -> str:
        n_dense = sum(not level.hashed for level in self.levels)
        return (
            f"dims={self.dims}, resolutions={self.resolutions[0]}..{self.resolutions[-1]}, "
            f"n_features={self.n_features}, dense_levels={n_dense}, "
            f"log2_hashmap_size={self.log2_hashmap_size}, smoothstep={self.smoothstep}"
        )
