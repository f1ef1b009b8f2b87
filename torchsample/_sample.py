"""Sampling feature maps at coordinates: the user-facing face of grid_sample."""

from __future__ import annotations

from collections.abc import Callable

import einops
import torch

from . import default
from ._checks import check_same_device, check_tensor, describe
from ._nobatch import with_nobatch
from .ops import grid_sample


def feat_first(t: torch.Tensor) -> torch.Tensor:
    """Move the feature dimension from last to second, after the batch.

    Shape
    -----
    ``(b, *spatial, c) -> (b, c, *spatial)``

    Examples
    --------
    >>> import torch, torchsample as ts
    >>> ts.feat_first(torch.zeros(2, 5, 7, 3)).shape
    torch.Size([2, 3, 5, 7])
    """
    check_tensor("t", t)
    if t.dim() < 2:
        raise ValueError(f"t must have a batch and a feature dimension, got {describe(t)}")
    return einops.rearrange(t, "b ... c -> b c ...")


def feat_last(t: torch.Tensor) -> torch.Tensor:
    """Move the feature dimension from second to last.

    Shape
    -----
    ``(b, c, *spatial) -> (b, *spatial, c)``

    Examples
    --------
    >>> import torch, torchsample as ts
    >>> ts.feat_last(torch.zeros(2, 3, 5, 7)).shape
    torch.Size([2, 5, 7, 3])
    """
    check_tensor("t", t)
    if t.dim() < 2:
        raise ValueError(f"t must have a batch and a feature dimension, got {describe(t)}")
    return einops.rearrange(t, "b c ... -> b ... c")


def _sample(
    coords, featmap, dims, mode, padding_mode, align_corners, encoder, feat_last_, smoothstep
):
    check_tensor("coords", coords)
    check_tensor("featmap", featmap)
    if featmap.dim() not in (4, 5) or (dims is not None and featmap.dim() != dims + 2):
        expected = {
            2: "(b, c, h, w)",
            3: "(b, c, d, h, w)",
            None: "(b, c, h, w) or (b, c, d, h, w)",
        }
        raise ValueError(f"featmap must be {expected[dims]}, got {describe(featmap)}")
    dims = featmap.dim() - 2
    if coords.dim() < 3 or coords.shape[-1] != dims:
        raise ValueError(
            f"coords must be (b, n, {dims}) or (b, *spatial, {dims}) to sample a {dims}D "
            f"featmap of shape {tuple(featmap.shape)}, got {describe(coords)}"
        )
    if coords.shape[0] != featmap.shape[0]:
        raise ValueError(
            f"coords and featmap must have the same batch size, got coords {describe(coords)} "
            f"and featmap {describe(featmap)}"
        )
    check_same_device(coords=coords, featmap=featmap)
    if featmap.is_floating_point() and coords.dtype != featmap.dtype:
        raise TypeError(
            f"coords and featmap must have the same dtype, got coords {coords.dtype} and "
            f"featmap {featmap.dtype}; cast one of them explicitly"
        )

    batch, channels = featmap.shape[:2]
    spatial = coords.shape[1:-1]
    # grid_sample wants a grid of the featmap's rank; a flat row of points works.
    grid = coords.reshape(batch, *([1] * (dims - 1)), -1, dims)
    sampled = grid_sample(
        featmap,
        grid,
        mode=mode,
        padding_mode=padding_mode,
        align_corners=align_corners,
        smoothstep=smoothstep,
    )
    sampled = feat_last(sampled.reshape(batch, channels, *spatial))

    if encoder is not None:
        encoded = encoder(coords)
        if not isinstance(encoded, torch.Tensor) or encoded.shape[:-1] != coords.shape[:-1]:
            got = describe(encoded) if isinstance(encoded, torch.Tensor) else type(encoded).__name__
            raise ValueError(
                f"encoder must return (*coords.shape[:-1], features) = "
                f"{(*coords.shape[:-1], 'e')}, got {got}"
            )
        sampled = torch.cat([sampled, encoded], dim=-1)
    return sampled if feat_last_ else feat_first(sampled)


_PARAMETERS_DOC = """
    Parameters
    ----------
    coords : Tensor
        ``(b, n, dims)`` or ``(b, *spatial, dims)``, last dimension ``(x, y[, z])``
        normalized to [-1, 1].
    featmap : Tensor
        {featmap}. Integer and bool maps work with ``mode="nearest"`` and are
        returned exactly, in their own dtype.
    mode : {{"bilinear", "nearest", "bicubic", "trilinear"}}
        Interpolation, as in :func:`torchsample.grid_sample`.
    padding_mode : {{"border", "zeros", "reflection"}}
        Values outside the map. Defaults to ``"border"``: coordinates at the
        edges of [-1, 1] are outside the outer pixel centers when
        ``align_corners=False``, and implicit-function models usually want
        the edge value there rather than a fade to zero.
    align_corners : bool
        See :doc:`/align_corners`.
    encoder : callable, optional
        Called on ``coords``; its result ``(b, *spatial, e)`` is concatenated
        after the sampled features (e.g. :class:`torchsample.encoding.Gamma`).
    feat_last : bool
        Return features last ``(b, *spatial, c)`` (default) or first
        ``(b, c, *spatial)``.
    smoothstep : bool
        Smoothstep interpolation weights (bilinear/trilinear only).

    Returns
    -------
    Tensor
        ``(b, *spatial, c [+ e])`` with ``feat_last=True``, else
        ``(b, c [+ e], *spatial)``.
"""


def _sampler(name: str, dims: int | None, doc: str):
    """One public sampling function; ``dims`` fixes the map's rank, or not."""

    def sampler(
        coords: torch.Tensor,
        featmap: torch.Tensor,
        mode: str = "bilinear",
        padding_mode: str = default.padding_mode,
        align_corners: bool = default.align_corners,
        encoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
        feat_last: bool = True,
        smoothstep: bool = False,
    ) -> torch.Tensor:
        return _sample(
            coords, featmap, dims, mode, padding_mode, align_corners, encoder, feat_last, smoothstep
        )

    sampler.__name__ = sampler.__qualname__ = name
    sampler.__doc__ = doc
    return with_nobatch("coords", "featmap")(sampler)


sample = _sampler(
    "sample",
    None,
    """Sample a 2D or 3D feature map at normalized coordinates.

    The rank of ``featmap`` decides: 4D maps take 2D coordinates, 5D maps 3D
    ones. ``sample.nobatch(coords, featmap, ...)`` does the same without the
    batch dimension, for use inside a ``Dataset``.
"""
    + _PARAMETERS_DOC.format(featmap="``(b, c, h, w)`` or ``(b, c, d, h, w)``")
    + """
    Examples
    --------
    >>> import torch, torchsample as ts
    >>> image = torch.arange(4.0).reshape(1, 1, 2, 2)  # pixel values 0, 1 / 2, 3
    >>> coords = torch.tensor([[[-0.5, -0.5], [0.5, -0.5], [0.0, 0.0]]])  # (x, y)
    >>> ts.sample(coords, image)
    tensor([[[0.0000],
             [1.0000],
             [1.5000]]])
    >>> ts.sample.nobatch(torch.zeros(10, 2), torch.rand(3, 4, 4)).shape
    torch.Size([10, 3])
    >>> labels = torch.tensor([[[[0, 1], [2, 3]]]], dtype=torch.uint8)
    >>> centers = torch.tensor([[[0.5, 0.5], [-0.5, 0.5]]])
    >>> ts.sample(centers, labels, mode="nearest").flatten().tolist()
    [3, 2]
""",
)
sample2d = _sampler(
    "sample2d",
    2,
    """Sample a 2D feature map at normalized ``(x, y)`` coordinates.

    Like :func:`sample`, but ``featmap`` must be 4D.
"""
    + _PARAMETERS_DOC.format(featmap="``(b, c, h, w)``")
    + """
    Examples
    --------
    >>> import torch, torchsample as ts
    >>> ts.sample2d(torch.rand(2, 100, 2) * 2 - 1, torch.rand(2, 3, 8, 8)).shape
    torch.Size([2, 100, 3])
""",
)
sample3d = _sampler(
    "sample3d",
    3,
    """Sample a 3D feature map at normalized ``(x, y, z)`` coordinates.

    Like :func:`sample`, but ``featmap`` must be 5D.
"""
    + _PARAMETERS_DOC.format(featmap="``(b, c, d, h, w)``")
    + """
    Examples
    --------
    >>> import torch, torchsample as ts
    >>> volume = torch.rand(1, 4, 8, 8, 8)
    >>> ts.sample3d(torch.zeros(1, 5, 6, 3), volume, feat_last=False).shape
    torch.Size([1, 4, 5, 6])
""",
)
