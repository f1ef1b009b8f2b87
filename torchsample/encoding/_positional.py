"""Deterministic coordinate encodings: NeRF's positional encoding, identity, LIIF's offsets.

Each encoding exists as a function and as an ``nn.Module`` with the same
keyword arguments, so it can be passed as ``encoder=`` to
:func:`torchsample.sample` or placed in an ``nn.Sequential``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .._checks import check_floating, check_positive_int, check_size, check_tensor, describe
from ..coord import unnormalize

__all__ = ["Gamma", "Identity", "NearestPixel", "gamma", "identity", "nearest_pixel"]


def gamma(coords: torch.Tensor, order: int = 10) -> torch.Tensor:
    """NeRF positional encoding.

    Every coordinate ``p`` is mapped to
    ``sin(2**0 pi p), cos(2**0 pi p), ..., sin(2**(order-1) pi p), cos(2**(order-1) pi p)``
    (Mildenhall et al., 2020, eq. 4), and the encodings of ``x``, ``y`` (and
    ``z``) are concatenated in that order. The coordinates themselves are not
    included; concatenate them if wanted.

    Parameters
    ----------
    coords : torch.Tensor
        Floating-point coordinates, last dimension ``(x, y[, z])`` (any
        length, any number of leading dimensions).
    order : int
        Number of frequencies ``L``.

    Returns
    -------
    torch.Tensor
        ``output[..., 2 * order * d + 2 * j]`` is ``sin(2**j * pi * coords[..., d])``
        and ``output[..., 2 * order * d + 2 * j + 1]`` is
        ``cos(2**j * pi * coords[..., d])``.

    Shape
    -----
    - coords: ``(..., dims)``
    - output: ``(..., 2 * dims * order)``

    Examples
    --------
    >>> import torch
    >>> from torchsample.encoding import gamma
    >>> gamma(torch.tensor([[0.5, -0.25]]), order=2).round(decimals=4) + 0  # + 0: no -0.
    tensor([[ 1.0000,  0.0000,  0.0000, -1.0000, -0.7071,  0.7071, -1.0000,  0.0000]])
    >>> gamma(torch.rand(4, 100, 3)).shape
    torch.Size([4, 100, 60])
    """
    check_tensor("coords", coords)
    check_floating("coords", coords)
    check_positive_int("order", order)
    if coords.dim() == 0:
        raise ValueError(f"coords must have a last (coordinate) dimension, got {describe(coords)}")
    frequencies = math.pi * 2.0 ** torch.arange(order, dtype=coords.dtype, device=coords.device)
    angles = coords.unsqueeze(-1) * frequencies
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-3)


def identity(coords: torch.Tensor) -> torch.Tensor:
    """Return the coordinates unchanged.

    The trivial encoding, for ``encoder=`` arguments that should append the
    raw coordinates.

    Parameters
    ----------
    coords : torch.Tensor
        Coordinates.

    Returns
    -------
    torch.Tensor
        ``coords`` itself.

    Shape
    -----
    - coords: ``(..., dims)``
    - output: ``(..., dims)``

    Examples
    --------
    >>> import torch
    >>> from torchsample.encoding import identity
    >>> identity(torch.tensor([[0.5, -0.25]]))
    tensor([[ 0.5000, -0.2500]])
    """
    check_tensor("coords", coords)
    return coords


def nearest_pixel(
    coords: torch.Tensor, size: Sequence[int], align_corners: bool = False
) -> torch.Tensor:
    """Coordinates together with their offset from the nearest pixel center (LIIF).

    LIIF (Chen et al., 2021) conditions its decoder on where a query lies
    relative to the latent code it reads. With ``u`` the query in pixel units
    (:func:`~torchsample.coord.unnormalize`) and ``c`` the nearest pixel
    center (``u`` rounded half up, then clamped to the map), the offset is
    ``2 * (u - c)``: it spans ``[-1, 1]`` across one pixel, the same range
    that ``[-1, 1]`` spans across the whole map, and is ``0`` at a pixel
    center. Queries outside the map keep the offset from the outermost center,
    which then exceeds 1 in magnitude.

    Parameters
    ----------
    coords : torch.Tensor
        Normalized floating-point coordinates, last dimension ``(x, y[, z])``.
    size : tuple of int
        ``(w, h)`` or ``(w, h, d)`` of the feature map, one entry per
        coordinate.
    align_corners : bool
        Pixel-center convention, see :func:`torchsample.coord.normalize`.

    Returns
    -------
    torch.Tensor
        ``coords`` followed by the offsets, in the same ``(x, y[, z])`` order.

    Shape
    -----
    - coords: ``(..., dims)`` with ``dims == len(size)``
    - output: ``(..., 2 * dims)``

    Examples
    --------
    >>> import torch
    >>> from torchsample.encoding import nearest_pixel
    >>> # Pixel centers of a 4-wide map are at -0.75, -0.25, 0.25, 0.75.
    >>> nearest_pixel(torch.tensor([[-0.75, 0.0], [-0.6, -0.375]]), (4, 4))
    tensor([[-0.7500,  0.0000,  0.0000, -1.0000],
            [-0.6000, -0.3750,  0.6000, -0.5000]])
    """
    check_tensor("coords", coords)
    check_floating("coords", coords)
    size = check_size("size", size)
    if coords.dim() == 0 or coords.shape[-1] != len(size):
        raise ValueError(
            f"the last dimension of coords must have one entry per entry of size "
            f"{size!r} ({len(size)}), got coords with {describe(coords)}"
        )
    index = unnormalize(coords, size, align_corners=align_corners)
    n = coords.new_tensor(size)
    nearest = torch.clamp(torch.floor(index + 0.5), min=torch.zeros_like(n), max=n - 1)
    offset = 2 * (index - nearest)
    return torch.cat([coords, offset], dim=-1)


class Gamma(nn.Module):
    """NeRF positional encoding as a module; see :func:`gamma`.

    Parameters
    ----------
    order : int
        Number of frequencies ``L``.

    Shape
    -----
    - input: ``(..., dims)``
    - output: ``(..., 2 * dims * order)``

    Examples
    --------
    >>> import torch
    >>> from torchsample.encoding import Gamma
    >>> Gamma(order=4)(torch.rand(8, 2)).shape
    torch.Size([8, 16])
    """

    def __init__(self, order: int = 10) -> None:
        super().__init__()
        self.order = check_positive_int("order", order)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return gamma(coords, order=self.order)

    def extra_repr(self) -> str:
        return f"order={self.order}"


class Identity(nn.Module):
    """The identity encoding as a module; see :func:`identity`.

    Shape
    -----
    - input: ``(..., dims)``
    - output: ``(..., dims)``

    Examples
    --------
    >>> import torch
    >>> from torchsample.encoding import Identity
    >>> Identity()(torch.zeros(8, 2)).shape
    torch.Size([8, 2])
    """

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return identity(coords)


class NearestPixel(nn.Module):
    """LIIF nearest-pixel offsets as a module; see :func:`nearest_pixel`.

    Parameters
    ----------
    size : tuple of int
        ``(w, h)`` or ``(w, h, d)`` of the feature map.
    align_corners : bool
        Pixel-center convention, see :func:`torchsample.coord.normalize`.

    Shape
    -----
    - input: ``(..., dims)`` with ``dims == len(size)``
    - output: ``(..., 2 * dims)``

    Examples
    --------
    >>> import torch
    >>> from torchsample.encoding import NearestPixel
    >>> NearestPixel((64, 48))(torch.zeros(8, 2)).shape
    torch.Size([8, 4])
    """

    def __init__(self, size: Sequence[int], align_corners: bool = False) -> None:
        super().__init__()
        self.size = check_size("size", size)
        self.align_corners = align_corners

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return nearest_pixel(coords, self.size, align_corners=self.align_corners)

    def extra_repr(self) -> str:
        return f"size={self.size}, align_corners={self.align_corners}"
