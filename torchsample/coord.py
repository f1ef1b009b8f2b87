"""Generate and convert normalized coordinates.

Every coordinate in torchsample is normalized to ``[-1, 1]`` with its last
dimension in coordinate order ``(x, y)`` or ``(x, y, z)``; every size is in
the same order, ``(w, h)`` or ``(w, h, d)``. Tensor dimensions, by contrast,
stay in PyTorch order: ``full(0, (w, h))`` has shape ``(h, w, 2)`` and its
``[..., 0]`` (x) varies along the last (w) dimension.

Pixel ``i`` of a side with ``n`` pixels has its center at

- ``(2 * i + 1) / n - 1`` with ``align_corners=False`` (the default; the
  outer edges of the outer pixels sit at -1 and 1),
- ``2 * i / (n - 1) - 1`` with ``align_corners=True`` (the centers of the
  outer pixels sit at -1 and 1; a side of one pixel has its center at 0),

exactly as :func:`torch.nn.functional.grid_sample` reads them.

``batch=0`` means "no batch dimension" in every generator below.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from . import default
from ._checks import (
    check_choice,
    check_floating,
    check_ndim,
    check_positive_int,
    check_size,
    check_tensor,
    describe,
)
from ._nobatch import with_nobatch
from ._sample import feat_first, feat_last, sample

__all__ = [
    "feat_first",
    "feat_last",
    "full",
    "full_like",
    "normalize",
    "rand",
    "rand_biased",
    "randint",
    "randint_like",
    "tensor_to_size",
    "uncertain",
    "uncertain_pixels",
    "unnormalize",
]


def _check_batch(batch: object) -> int:
    return check_positive_int("batch", batch, allow_zero=True)


def _leading(batch: int) -> tuple[int, ...]:
    return (batch,) if batch else ()


def _float_dtype(name: str, dtype: torch.dtype | None) -> torch.dtype:
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating-point torch.dtype, got {dtype!r}")
    return dtype


def _side_lengths(coord: torch.Tensor, size: object) -> torch.Tensor:
    """``size`` as a tensor that broadcasts against ``coord``.

    An int is one side length for every element of ``coord`` (the
    original's form for a single axis, e.g. ``normalize(x, 480)``); a tuple
    has one entry per coordinate along ``coord``'s last dimension.
    """
    if isinstance(size, int) and not isinstance(size, bool):
        check_positive_int("size", size)
        return coord.new_tensor(size)
    # Any number of axes: these conversions are the same formula per axis.
    lengths = (len(size),) if isinstance(size, (tuple, list)) and size else (2, 3)
    size = check_size("size", size, dims=lengths)
    if coord.dim() == 0 or coord.shape[-1] != len(size):
        raise ValueError(
            f"the last dimension of coord must have one entry per entry of size "
            f"{size!r} ({len(size)}), got coord with {describe(coord)}; pass an int size "
            f"to convert values along a single axis"
        )
    return coord.new_tensor(size)


def _as_floating(coord: torch.Tensor) -> torch.Tensor:
    return coord if coord.is_floating_point() else coord.to(torch.get_default_dtype())


def _check_featmap(name: str, tensor: object) -> torch.Tensor:
    check_tensor(name, tensor)
    check_ndim(name, tensor, (4, 5), "(b, c, h, w) or (b, c, d, h, w)")
    return tensor


def tensor_to_size(tensor: torch.Tensor) -> torch.Size:
    """Spatial size of a feature map, in coordinate order.

    The dimensions after batch and channel, reversed.

    Parameters
    ----------
    tensor : torch.Tensor
        A feature map, usually 2D or 3D.

    Returns
    -------
    torch.Size
        ``(w, h)`` or ``(w, h, d)``; a tuple, as the original torchsample
        returned it.

    Shape
    -----
    - tensor: ``(b, c, h, w)`` or ``(b, c, d, h, w)`` (or ``(b, c, w)``, any
      number of spatial dimensions)

    Examples
    --------
    >>> import torch
    >>> from torchsample.coord import tensor_to_size
    >>> tensor_to_size(torch.zeros(1, 3, 480, 640))
    torch.Size([640, 480])
    >>> tensor_to_size(torch.zeros(1, 3, 8, 16, 32)) == (32, 16, 8)
    True
    """
    check_tensor("tensor", tensor)
    if tensor.dim() < 3:
        raise ValueError(
            f"tensor must be a feature map (b, c, *spatial) with at least one spatial "
            f"dimension, got {describe(tensor)}"
        )
    return tensor.shape[:1:-1]


def normalize(
    coord: torch.Tensor, size: int | Sequence[int], align_corners: bool = default.align_corners
) -> torch.Tensor:
    """Convert pixel indices to normalized coordinates in ``[-1, 1]``.

    Index ``i`` along a side of ``n`` pixels maps to ``(2 * i + 1) / n - 1``,
    or to ``2 * i / (n - 1) - 1`` with ``align_corners=True`` (``0`` when
    ``n == 1``). Fractional indices map linearly; this is the inverse of
    :func:`unnormalize`.

    Parameters
    ----------
    coord : torch.Tensor
        Pixel indices in coordinate order ``(x, y[, z])``; integer tensors are
        converted to the default floating dtype.
    size : int or tuple of int
        ``(w, h)`` or ``(w, h, d)``, one entry per coordinate; or one int,
        the length of a single axis, applied to every element of ``coord``.
    align_corners : bool
        Whether -1 and 1 are the centers of the outer pixels (``True``) or
        their outer edges (``False``).

    Returns
    -------
    torch.Tensor
        Normalized coordinates.

    Shape
    -----
    - coord: ``(..., dims)`` with ``dims == len(size)``; any shape with an
      int ``size``
    - output: the shape of ``coord``

    Examples
    --------
    >>> import torch
    >>> from torchsample.coord import normalize
    >>> normalize(torch.tensor([[0, 0], [3, 1]]), (4, 2))
    tensor([[-0.7500, -0.5000],
            [ 0.7500,  0.5000]])
    >>> normalize(torch.tensor([[0, 0], [3, 1]]), (4, 2), align_corners=True)
    tensor([[-1., -1.],
            [ 1.,  1.]])
    >>> normalize(torch.tensor([0, 479]), 480, align_corners=True)
    tensor([-1.,  1.])
    """
    check_tensor("coord", coord)
    coord = _as_floating(coord)
    n = _side_lengths(coord, size)
    if not align_corners:
        return (2 * coord + 1) / n - 1
    normalized = 2 * coord / (n - 1).clamp(min=1) - 1
    # A single pixel spans the whole [-1, 1] range; its center is 0.
    return torch.where(n > 1, normalized, torch.zeros_like(normalized))


def unnormalize(
    coord: torch.Tensor,
    size: int | Sequence[int],
    align_corners: bool = default.align_corners,
    clip: bool = False,
) -> torch.Tensor:
    """Convert normalized coordinates to (fractional) pixel indices.

    The inverse of :func:`normalize`, with the same formula
    :func:`torch.nn.functional.grid_sample` uses: ``((x + 1) * n - 1) / 2``,
    or ``(x + 1) / 2 * (n - 1)`` with ``align_corners=True``. Pixel centers
    come out as whole numbers; round the result to get the nearest pixel.

    Parameters
    ----------
    coord : torch.Tensor
        Normalized coordinates, last dimension ``(x, y[, z])``; integer
        tensors (such as the corners -1 and 1) are converted to the default
        floating dtype.
    size : int or tuple of int
        ``(w, h)`` or ``(w, h, d)``, one entry per coordinate; or one int,
        the length of a single axis, applied to every element of ``coord``.
    align_corners : bool
        See :func:`normalize`.
    clip : bool
        Clamp the result to ``[0, n - 1]`` along each side, i.e. to the span
        between the outer pixel centers.

    Returns
    -------
    torch.Tensor
        Pixel indices, same dtype as ``coord`` if that is floating.

    Shape
    -----
    - coord: ``(..., dims)`` with ``dims == len(size)``; any shape with an
      int ``size``
    - output: the shape of ``coord``

    Examples
    --------
    >>> import torch
    >>> from torchsample.coord import unnormalize
    >>> unnormalize(torch.tensor([[-1.0, -0.5], [1.0, 0.5]]), (4, 2))
    tensor([[-0.5000,  0.0000],
            [ 3.5000,  1.0000]])
    >>> unnormalize(torch.tensor([[-1.0, -0.5], [1.0, 0.5]]), (4, 2), clip=True)
    tensor([[0., 0.],
            [3., 1.]])
    >>> unnormalize(torch.tensor([-1, 1]), 480)
    tensor([ -0.5000, 479.5000])
    """
    check_tensor("coord", coord)
    coord = _as_floating(coord)
    n = _side_lengths(coord, size)
    if align_corners:
        index = (coord + 1) / 2 * (n - 1)
    else:
        index = ((coord + 1) * n - 1) / 2
    if clip:
        index = torch.clamp(index, min=torch.zeros_like(n), max=n - 1)
    return index


def _unravel_x_major(flat: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Flat indices in ``x``-major order (as ``torch.cartesian_prod`` over
    ``(w, h[, d])`` enumerates pixels) -> ``(x, y[, z])`` indices."""
    axes = []
    for n in reversed(size):
        axes.append(flat % n)
        flat = flat // n
    return torch.stack(axes[::-1], dim=-1)


def rand(
    batch: int,
    n_samples: int,
    dims: int = 2,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Coordinates drawn uniformly from ``[-1, 1)``.

    Parameters
    ----------
    batch : int
        Batch size; ``0`` for no batch dimension.
    n_samples : int
        Number of coordinates per batch element.
    dims : int
        2 for ``(x, y)``, 3 for ``(x, y, z)`` (any positive number works).
    dtype : torch.dtype, optional
        Floating dtype; the default dtype if not given.
    device : torch.device or str, optional
        Device of the result; must match ``generator``'s.
    generator : torch.Generator, optional
        Source of randomness, for reproducible draws.

    Returns
    -------
    torch.Tensor
        Random coordinates.

    Shape
    -----
    - output: ``(batch, n_samples, dims)``, or ``(n_samples, dims)`` when
      ``batch == 0``

    Examples
    --------
    >>> import torch
    >>> from torchsample.coord import rand
    >>> rand(4, 1000).shape
    torch.Size([4, 1000, 2])
    >>> rand(0, 10, dims=3).shape
    torch.Size([10, 3])
    >>> bool(torch.equal(rand(2, 5, generator=torch.Generator().manual_seed(0)),
    ...                  rand(2, 5, generator=torch.Generator().manual_seed(0))))
    True
    """
    batch = _check_batch(batch)
    check_positive_int("n_samples", n_samples, allow_zero=True)
    check_positive_int("dims", dims)
    dtype = _float_dtype("dtype", dtype)
    shape = (*_leading(batch), n_samples, dims)
    return 2 * torch.rand(shape, dtype=dtype, device=device, generator=generator) - 1


def randint(
    batch: int,
    n_samples: int,
    size: Sequence[int],
    device: torch.device | str | None = None,
    align_corners: bool = default.align_corners,
    replace: bool = False,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Coordinates of randomly chosen pixel centers.

    Every coordinate lies exactly on a pixel center (see :func:`normalize`),
    so sampling a feature map there with any interpolation mode returns the
    stored values.

    Parameters
    ----------
    batch : int
        Batch size; ``0`` for no batch dimension.
    n_samples : int
        Number of pixels per batch element.
    size : tuple of int
        ``(w, h)`` or ``(w, h, d)``.
    device : torch.device or str, optional
        Device of the result; must match ``generator``'s.
    align_corners : bool
        Pixel-center convention, see :func:`normalize`.
    replace : bool
        Draw with replacement. Without (the default) the pixels of one batch
        element are distinct, so ``n_samples`` may not exceed the number of
        pixels.
    generator : torch.Generator, optional
        Source of randomness, for reproducible draws.
    dtype : torch.dtype, optional
        Floating dtype; the default dtype if not given.

    Returns
    -------
    torch.Tensor
        Normalized pixel-center coordinates, last dimension ``(x, y[, z])``.

    Raises
    ------
    ValueError
        If ``replace=False`` and ``n_samples`` exceeds the number of pixels.

    Shape
    -----
    - output: ``(batch, n_samples, len(size))``, or ``(n_samples, len(size))``
      when ``batch == 0``

    Examples
    --------
    >>> import torch
    >>> from torchsample.coord import randint
    >>> coords = randint(0, 4, (2, 2), generator=torch.Generator().manual_seed(0))
    >>> sorted(coords.tolist())
    [[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]]
    >>> randint(3, 100, (64, 48, 8)).shape
    torch.Size([3, 100, 3])
    """
    batch = _check_batch(batch)
    check_positive_int("n_samples", n_samples, allow_zero=True)
    size = check_size("size", size)
    dtype = _float_dtype("dtype", dtype)
    n_pixels = math.prod(size)
    rows = max(batch, 1)
    # Both branches consume random numbers exactly as the original torchsample
    # did, so seeded code draws the same pixels.
    if replace:
        axes = [
            torch.randint(n, (rows, n_samples), device=device, generator=generator) for n in size
        ]
        index = torch.stack(axes, dim=-1)
    else:
        if n_samples > n_pixels:
            raise ValueError(
                f"n_samples must not exceed the number of pixels ({n_pixels} for size "
                f"{size!r}) when replace=False, got {n_samples}"
            )
        flat = torch.stack(
            [
                torch.randperm(n_pixels, device=device, generator=generator)[:n_samples]
                for _ in range(rows)
            ]
        )
        index = _unravel_x_major(flat, size)
    index = index.to(dtype)
    coords = normalize(index, size, align_corners=align_corners)
    return coords if batch else coords.squeeze(0)


def _like_dtype(tensor: torch.Tensor) -> torch.dtype:
    return tensor.dtype if tensor.is_floating_point() else torch.get_default_dtype()


@with_nobatch("tensor")
def randint_like(
    n_samples: int,
    tensor: torch.Tensor,
    align_corners: bool = default.align_corners,
    replace: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """:func:`randint` for the batch size, spatial size and device of a feature map.

    Parameters
    ----------
    n_samples : int
        Number of pixels per batch element.
    tensor : torch.Tensor
        Feature map; only its shape and device are used. Floating maps also
        give their dtype to the result.
    align_corners : bool
        Pixel-center convention, see :func:`normalize`.
    replace : bool
        Draw with replacement, see :func:`randint`.
    generator : torch.Generator, optional
        Source of randomness, for reproducible draws.

    Returns
    -------
    torch.Tensor
        Normalized pixel-center coordinates.

    Shape
    -----
    - tensor: ``(b, c, h, w)`` or ``(b, c, d, h, w)``
    - output: ``(b, n_samples, 2)`` or ``(b, n_samples, 3)``

    ``randint_like.nobatch(n_samples, tensor)`` takes ``(c, h, w)`` or
    ``(c, d, h, w)`` and returns ``(n_samples, 2)`` or ``(n_samples, 3)``.

    Examples
    --------
    >>> import torch
    >>> from torchsample.coord import randint_like
    >>> randint_like(100, torch.zeros(4, 3, 32, 64)).shape
    torch.Size([4, 100, 2])
    >>> randint_like.nobatch(100, torch.zeros(3, 32, 64)).shape
    torch.Size([100, 2])
    """
    _check_featmap("tensor", tensor)
    return randint(
        tensor.shape[0],
        n_samples,
        tensor_to_size(tensor),
        device=tensor.device,
        align_corners=align_corners,
        replace=replace,
        generator=generator,
        dtype=_like_dtype(tensor),
    )


@with_nobatch(batch_arg="batch")
def full(
    batch: int,
    size: Sequence[int],
    device: torch.device | str | None = None,
    align_corners: bool = default.align_corners,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Coordinates of every pixel center, laid out like the feature map.

    Parameters
    ----------
    batch : int
        Batch size; ``0`` for no batch dimension.
    size : tuple of int
        ``(w, h)`` or ``(w, h, d)``.
    device : torch.device or str, optional
        Device of the result.
    align_corners : bool
        Pixel-center convention, see :func:`normalize`.
    dtype : torch.dtype, optional
        Floating dtype; the default dtype if not given.

    Returns
    -------
    torch.Tensor
        ``output[..., j, i, :]`` is the center of pixel ``(x=i, y=j)`` (and
        ``output[..., k, j, i, :]`` of ``(x=i, y=j, z=k)`` in 3D).

    Shape
    -----
    - output: ``(batch, h, w, 2)`` or ``(batch, d, h, w, 3)``, without the
      leading ``batch`` when ``batch == 0``

    Examples
    --------
    >>> from torchsample.coord import full
    >>> full(0, (2, 2))
    tensor([[[-0.5000, -0.5000],
             [ 0.5000, -0.5000]],
    <BLANKLINE>
            [[-0.5000,  0.5000],
             [ 0.5000,  0.5000]]])
    >>> full(0, (3, 2), align_corners=True)[..., 0]
    tensor([[-1.,  0.,  1.],
            [-1.,  0.,  1.]])
    >>> full(4, (64, 32, 8)).shape
    torch.Size([4, 8, 32, 64, 3])
    """
    batch = _check_batch(batch)
    size = check_size("size", size)
    dtype = _float_dtype("dtype", dtype)
    # meshgrid runs over tensor dimensions (d, h, w); coordinates are (x, y, z).
    axes = [torch.arange(n, dtype=dtype, device=device) for n in reversed(size)]
    index = torch.stack(torch.meshgrid(*axes, indexing="ij")[::-1], dim=-1)
    coords = normalize(index, size, align_corners=align_corners)
    if batch:
        coords = coords.unsqueeze(0).repeat(batch, *(1,) * coords.dim())
    return coords


@with_nobatch("tensor")
def full_like(tensor: torch.Tensor, align_corners: bool = default.align_corners) -> torch.Tensor:
    """:func:`full` for the batch size, spatial size and device of a feature map.

    Parameters
    ----------
    tensor : torch.Tensor
        Feature map; only its shape and device are used. Floating maps also
        give their dtype to the result.
    align_corners : bool
        Pixel-center convention, see :func:`normalize`.

    Returns
    -------
    torch.Tensor
        Coordinates of every pixel center.

    Shape
    -----
    - tensor: ``(b, c, h, w)`` or ``(b, c, d, h, w)``
    - output: ``(b, h, w, 2)`` or ``(b, d, h, w, 3)``

    ``full_like.nobatch(tensor)`` takes ``(c, h, w)`` or ``(c, d, h, w)`` and
    returns ``(h, w, 2)`` or ``(d, h, w, 3)``.

    Examples
    --------
    >>> import torch
    >>> from torchsample.coord import full_like
    >>> full_like(torch.zeros(4, 3, 32, 64)).shape
    torch.Size([4, 32, 64, 2])
    >>> full_like.nobatch(torch.zeros(3, 32, 64)).shape
    torch.Size([32, 64, 2])
    """
    _check_featmap("tensor", tensor)
    return full(
        tensor.shape[0],
        tensor_to_size(tensor),
        device=tensor.device,
        align_corners=align_corners,
        dtype=_like_dtype(tensor),
    )


_CRITERIA = ("probability", "margin")


def _certainty(pred: torch.Tensor, dim: int, criterion: str) -> torch.Tensor:
    """How certain ``pred`` is along its channel dimension ``dim`` (removed).

    ``"probability"`` (the original torchsample's): the largest channel, for
    predictions that are probabilities. ``"margin"`` (PointRend's), for
    logits: ``|logit|`` for a single channel, the distance from a sigmoid's
    decision boundary; top-1 minus top-2 logit for several, the distance from
    a change of the arg-max class. Low values are uncertain.
    """
    if criterion == "probability":
        return pred.amax(dim)
    if pred.shape[dim] == 1:
        return pred.abs().squeeze(dim)
    top2 = pred.topk(2, dim=dim).values
    return top2.select(dim, 0) - top2.select(dim, 1)


def _check_pred(pred: object, criterion: object) -> torch.Tensor:
    check_tensor("pred", pred)
    check_ndim("pred", pred, (4, 5), "(b, c, h, w) or (b, c, d, h, w) predictions")
    check_floating("pred", pred)
    if pred.shape[1] == 0:
        raise ValueError(f"pred must have at least one channel, got {describe(pred)}")
    check_choice("criterion", criterion, _CRITERIA)
    return pred


def _check_threshold(threshold: object) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise TypeError(f"threshold must be a number, got {threshold!r}")
    return threshold


_CRITERION_DOC = """criterion : {"probability", "margin"}
        What makes a prediction uncertain. ``"probability"`` (the default, as
        in the original torchsample): ``pred`` holds probabilities and a low
        largest probability over the channels is uncertain. ``"margin"``
        (PointRend's, for logits): ``pred`` holds logits and a small
        confidence margin is uncertain, ``|logit|`` for one channel (sigmoid)
        and top-1 minus top-2 logit for several (softmax)."""


def rand_biased(
    batch: int,
    n_samples: int,
    pred: torch.Tensor,
    k: float = 3.0,
    beta: float = 0.75,
    align_corners: bool = default.align_corners,
    criterion: str = "probability",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Random coordinates biased towards uncertain predictions (PointRend training).

    The point selection of PointRend (Kirillov et al., 2020): draw
    ``int(k * n_samples)`` coordinates uniformly, bilinearly sample ``pred``
    there, keep the ``int(beta * n_samples)`` least certain (see
    ``criterion``), and add ``n_samples - int(beta * n_samples)`` fresh
    uniform coordinates for coverage.

    Parameters
    ----------
    batch : int
        Batch size; must equal ``pred``'s. ``0`` for no batch dimension in
        the result, in which case ``pred`` has a batch of one.
    n_samples : int
        Number of coordinates per batch element.
    pred : torch.Tensor
        A coarse prediction, 2D or 3D: probabilities, or logits with
        ``criterion="margin"``.
    k : float
        Oversampling factor, ``>= 1``.
    beta : float
        Fraction of the coordinates chosen by uncertainty, in ``[0, 1]``.
    align_corners : bool
        Pixel-center convention used to sample ``pred``, see :func:`normalize`.
    {criterion}
    generator : torch.Generator, optional
        Source of randomness, for reproducible draws.

    Returns
    -------
    torch.Tensor
        The uncertainty-chosen coordinates, most uncertain first, followed by
        the uniform ones. Same dtype and device as ``pred``; not part of the
        autograd graph.

    Shape
    -----
    - pred: ``(b, c, h, w)`` or ``(b, c, d, h, w)``
    - output: ``(batch, n_samples, 2)`` or ``(batch, n_samples, 3)``; without
      ``batch`` when ``batch == 0``

    Examples
    --------
    >>> import torch
    >>> from torchsample.coord import rand_biased
    >>> # Probabilities of two classes that tie (0.5 / 0.5) at x = 0.
    >>> p = torch.linspace(0, 1, 64).expand(2, 1, 64, 64)
    >>> pred = torch.cat([p, 1 - p], dim=1)
    >>> g = torch.Generator().manual_seed(0)
    >>> coords = rand_biased(2, 100, pred, k=10, generator=g)
    >>> coords.shape
    torch.Size([2, 100, 2])
    >>> bool((coords[:, :75, 0].abs() < 0.15).all())  # the 75 uncertain ones
    True
    >>> logits = torch.linspace(-10, 10, 64).expand(2, 1, 64, 64)  # sigmoid edge at x = 0
    >>> coords = rand_biased(2, 100, logits, k=10, criterion="margin", generator=g)
    >>> bool((coords[:, :75, 0].abs() < 0.15).all())
    True
    """
    batch = _check_batch(batch)
    check_positive_int("n_samples", n_samples, allow_zero=True)
    _check_pred(pred, criterion)
    if pred.shape[0] != max(batch, 1):
        expected = "1 when batch=0" if batch == 0 else str(batch)
        raise ValueError(f"pred must have batch size {expected}, got {describe(pred)}")
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not 1 <= k < math.inf:
        raise ValueError(f"k must be a finite number >= 1, got {k!r}")
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta <= 1:
        raise ValueError(f"beta must be a number in [0, 1], got {beta!r}")
    rows, dims = pred.shape[0], pred.dim() - 2
    n_uncertain = int(beta * n_samples)
    options = {"dtype": pred.dtype, "device": pred.device, "generator": generator}

    with torch.no_grad():
        candidates = rand(rows, int(k * n_samples), dims, **options)
        sampled = sample(candidates, pred, align_corners=align_corners)
        certainty = _certainty(sampled, dim=-1, criterion=criterion)
        chosen = certainty.topk(n_uncertain, dim=1, largest=False).indices
        uncertain_coords = candidates.gather(1, chosen.unsqueeze(-1).expand(-1, -1, dims))
        uniform_coords = rand(rows, n_samples - n_uncertain, dims, **options)
        coords = torch.cat([uncertain_coords, uniform_coords], dim=1)
    return coords if batch else coords.squeeze(0)


def uncertain(
    pred: torch.Tensor,
    threshold: float = 0.5,
    align_corners: bool = default.align_corners,
    criterion: str = "probability",
) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """Pixels whose prediction is uncertain, for refining them (PointRend inference).

    A pixel is uncertain when its certainty (see ``criterion``) is below
    ``threshold``. The result indexes ``pred`` directly, so refined values
    computed at the returned coordinates are written back in one line:

    .. code-block:: python

        index, coords = ts.coord.uncertain(pred)
        refined = point_head(ts.sample(coords, features))  # (1, n, c)
        pred[index] = ts.feat_first(refined).flatten()

    For a batch of more than one, use :func:`uncertain_pixels`.

    Parameters
    ----------
    pred : torch.Tensor
        A prediction with a batch of one, 2D or 3D: probabilities, or logits
        with ``criterion="margin"``.
    threshold : float
        Certainty below which a pixel counts as uncertain.
    align_corners : bool
        Pixel-center convention of the returned coordinates, see
        :func:`normalize`.
    {criterion}

    Returns
    -------
    index : tuple of torch.Tensor
        Advanced index (as ``torch.nonzero(..., as_tuple=True)`` gives it)
        of every channel of every uncertain pixel: ``pred[index]`` is
        ``(n * c,)``, channel-major, so it matches
        ``ts.feat_first(values).flatten()`` for values ``(1, n, c)`` sampled
        at ``coords``.
    coords : torch.Tensor
        ``(1, n, dims)`` normalized centers of the uncertain pixels, in
        row-major order, last dimension ``(x, y[, z])``; same dtype as
        ``pred``.

    Shape
    -----
    - pred: ``(1, c, h, w)`` or ``(1, c, d, h, w)``
    - coords: ``(1, n, 2)`` or ``(1, n, 3)``, with ``n`` the number of
      uncertain pixels

    Examples
    --------
    >>> import torch, torchsample as ts
    >>> pred = torch.tensor([[[[0.9, 0.6, 0.1]],
    ...                       [[0.1, 0.4, 0.9]]]])  # (1, 2, 1, 3) probabilities
    >>> index, coords = ts.coord.uncertain(pred, threshold=0.8)
    >>> coords
    tensor([[[0., 0.]]])
    >>> pred[index]
    tensor([0.6000, 0.4000])
    >>> refined = pred.clone()
    >>> refined[index] = ts.feat_first(ts.sample(coords, pred)).flatten()
    >>> torch.equal(refined, pred)
    True
    """
    _check_pred(pred, criterion)
    if pred.shape[0] != 1:
        raise ValueError(
            f"uncertain needs a batch of one (its coordinates for several would be "
            f"ragged), got pred with {describe(pred)}; use uncertain_pixels for batches"
        )
    rows, coords = uncertain_pixels(pred, threshold, align_corners, criterion)
    # Every channel of every row, channel-major: the order of
    # mask.expand(pred.shape).nonzero(), as the original returned it.
    channels = pred.shape[1]
    tiled = rows.repeat(channels, 1)
    channel = torch.arange(channels, device=rows.device).repeat_interleave(rows.shape[0])
    index = (tiled[:, 0], channel, *tiled[:, 1:].unbind(1))
    return index, coords.unsqueeze(0)


def uncertain_pixels(
    pred: torch.Tensor,
    threshold: float = 0.5,
    align_corners: bool = default.align_corners,
    criterion: str = "probability",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Uncertain pixels of a whole batch, as index rows and coordinates.

    The batched form of :func:`uncertain`: the same selection, for any batch
    size, with one row per uncertain pixel.

    Parameters
    ----------
    pred : torch.Tensor
        A prediction, 2D or 3D: probabilities, or logits with
        ``criterion="margin"``.
    threshold : float
        Certainty below which a pixel counts as uncertain.
    align_corners : bool
        Pixel-center convention of the returned coordinates, see
        :func:`normalize`.
    {criterion}

    Returns
    -------
    index : torch.Tensor
        ``int64`` indices of the uncertain pixels in *tensor* dimension order
        ``(batch, h, w)`` or ``(batch, d, h, w)``, as
        :func:`torch.nonzero` gives them (rows in row-major order), so that
        ``b, y, x = index.unbind(1); pred[b, :, y, x]`` selects their values.
    coords : torch.Tensor
        Normalized centers of the same pixels, row for row, in *coordinate*
        order ``(x, y[, z])``; same dtype as ``pred``. Row ``i`` belongs to
        batch element ``index[i, 0]``.

    Shape
    -----
    - pred: ``(b, c, h, w)`` or ``(b, c, d, h, w)``
    - index: ``(n, 3)`` or ``(n, 4)``, with ``n`` the number of uncertain
      pixels over the whole batch
    - coords: ``(n, 2)`` or ``(n, 3)``

    Examples
    --------
    >>> import torch
    >>> from torchsample.coord import uncertain_pixels
    >>> logits = torch.tensor([[[[-5.0, 0.1, 5.0],
    ...                          [-5.0, -0.2, 5.0]]]])
    >>> index, coords = uncertain_pixels(logits, criterion="margin")
    >>> index
    tensor([[0, 0, 1],
            [0, 1, 1]])
    >>> coords
    tensor([[ 0.0000, -0.5000],
            [ 0.0000,  0.5000]])
    """
    _check_pred(pred, criterion)
    _check_threshold(threshold)
    with torch.no_grad():
        index = torch.nonzero(_certainty(pred, dim=1, criterion=criterion) < threshold)
    spatial = index[:, 1:].flip(-1).to(pred.dtype)
    coords = normalize(spatial, tensor_to_size(pred), align_corners=align_corners)
    return index, coords


for _function in (rand_biased, uncertain, uncertain_pixels):
    _function.__doc__ = _function.__doc__.replace("{criterion}", _CRITERION_DOC)
del _function
