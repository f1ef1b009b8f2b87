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

from .. import default
from .._checks import check_floating, check_positive_int, check_size, check_tensor, describe
from ..coord import unnormalize

__all__ = ["Gamma", "Identity", "NearestPixel", "gamma", "identity", "nearest_pixel"]


def gamma(coords: torch.Tensor, order: int = 10) -> torch.Tensor:
    """NeRF positional encoding.

    For each frequency ``2**j * pi``, ``j = 0 .. order - 1``, the cosines of
    all coordinates, then their sines (the original torchsample's layout):
    ``cos(2**0 pi x), cos(2**0 pi y), sin(2**0 pi x), sin(2**0 pi y),
    cos(2**1 pi x), ...``. The frequencies are those of Mildenhall et al.
    (2020, eq. 4); the coordinates themselves are not included, concatenate
    them if wanted. Because the features are grouped by frequency, the first
    ``2 * dims * m`` columns are the encoding of order ``m``, which is what
    coarse-to-fine frequency masking needs.

    Parameters
    ----------
    coords : torch.Tensor
        Floating-point coordinates, last dimension ``(x, y[, z])`` (any
        length, any number of leading dimensions).
    order : int
        Number of frequencies ``L``; ``2**(order - 1) * pi`` must be finite in
        ``coords``' dtype.

    Returns
    -------
    torch.Tensor
        ``output[..., 2 * dims * j + d]`` is ``cos(2**j * pi * coords[..., d])``
        and ``output[..., 2 * dims * j + dims + d]`` is
        ``sin(2**j * pi * coords[..., d])``.

    Shape
    -----
    - coords: ``(..., dims)``
    - output: ``(..., 2 * dims * order)``

    Examples
    --------
    >>> import torch
    >>> from torchsample.encoding import gamma
    >>> # cos(pi x), cos(pi y), sin(pi x), sin(pi y), then the same at 2 pi:
    >>> gamma(torch.tensor([[0.5, -0.25]]), order=2).round(decimals=4) + 0  # + 0: no -0.
    tensor([[ 0.0000,  0.7071,  1.0000, -0.7071, -1.0000,  0.0000,  0.0000, -1.0000]])
    >>> gamma(torch.rand(4, 100, 3)).shape
    torch.Size([4, 100, 60])
    """
    check_tensor("coords", coords)
    check_floating("coords", coords)
    check_positive_int("order", order)
    if coords.dim() == 0:
        raise ValueError(f"coords must have a last (coordinate) dimension, got {describe(coords)}")
    if math.ldexp(math.pi, order - 1) > torch.finfo(coords.dtype).max:
        raise ValueError(
            f"order={order} needs the frequency 2**{order - 1} * pi, which overflows "
            f"{coords.dtype}; use a lower order or a wider dtype"
        )
    frequencies = math.pi * 2.0 ** torch.arange(order, dtype=coords.dtype, device=coords.device)
    angles = coords.unsqueeze(-2) * frequencies.unsqueeze(-1)  # (..., order, dims)
    return torch.stack([angles.cos(), angles.sin()], dim=-2).flatten(-3)


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
    coords: torch.Tensor,
    size: int | Sequence[int],
    align_corners: bool = default.align_corners,
    liif: bool = False,
) -> torch.Tensor:
    """Coordinates together with their offset to the nearest pixel center.

    With ``u`` the query in pixel units (:func:`~torchsample.coord.unnormalize`),
    the offset is ``2 * (round(u) - u)``, as in the original torchsample:
    from the query to the nearest center, with ``torch.round``'s halfway
    rule (half to even: ``u = 0.5`` rounds to 0 and gives ``-1``, ``u = 1.5``
    rounds to 2 and gives ``1``). The
    factor 2 makes it span ``[-1, 1]`` across one pixel, the range that
    ``[-1, 1]`` spans across the whole map; it is ``0`` at a pixel center.

    ``liif=True`` gives LIIF's relative coordinate (Chen et al., 2021)
    instead: ``2 * (u - c)``, from the nearest center ``c`` to the query
    (the opposite sign), with ``c`` rounded half up and clamped to the map,
    so that queries outside the map keep the offset from the outermost
    center, which then exceeds 1 in magnitude.

    Parameters
    ----------
    coords : torch.Tensor
        Normalized floating-point coordinates, last dimension ``(x, y[, z])``.
    size : int or tuple of int
        ``(w, h)`` or ``(w, h, d)`` of the feature map, one entry per
        coordinate (or one int for every coordinate).
    align_corners : bool
        Pixel-center convention, see :func:`torchsample.coord.normalize`.
    liif : bool
        Use LIIF's convention (sign, halfway rule and clamping) described above.

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
    >>> coords = torch.tensor([[-0.75, 0.0], [-0.6, -0.375]])
    >>> nearest_pixel(coords, (4, 4))  # y = 0 is u = 1.5, halfway: rounds to 2
    tensor([[-0.7500,  0.0000,  0.0000,  1.0000],
            [-0.6000, -0.3750, -0.6000,  0.5000]])
    >>> nearest_pixel(coords, (4, 4), liif=True)
    tensor([[-0.7500,  0.0000,  0.0000, -1.0000],
            [-0.6000, -0.3750,  0.6000, -0.5000]])
    """
    check_tensor("coords", coords)
    check_floating("coords", coords)
    index = unnormalize(coords, size, align_corners=align_corners)
    if not liif:
        return torch.cat([coords, 2 * (torch.round(index) - index)], dim=-1)
    n = coords.new_tensor(size)
    nearest = torch.clamp(torch.floor(index + 0.5), min=torch.zeros_like(n), max=n - 1)
    return torch.cat([coords, 2 * (index - nearest)], dim=-1)


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
    size : int or tuple of int
        ``(w, h)`` or ``(w, h, d)`` of the feature map.
    align_corners : bool
        Pixel-center convention, see :func:`torchsample.coord.normalize`.
    liif : bool
        LIIF's convention, see :func:`nearest_pixel`.

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

    def __init__(
        self,
        size: int | Sequence[int],
        align_corners: bool = default.align_corners,
        liif: bool = False,
    ) -> None:
        super().__init__()
        single_axis = isinstance(size, int) and not isinstance(size, bool)
        self.size = check_positive_int("size", size) if single_axis else check_size("size", size)
        self.align_corners = align_corners
        self.liif = liif

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return nearest_pixel(coords, self.size, align_corners=self.align_corners, liif=self.liif)

    def extra_repr(self) -> str:
        return f"size={self.size}, align_corners={self.align_corners}, liif={self.liif}"
