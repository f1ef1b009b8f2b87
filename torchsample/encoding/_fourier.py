"""Random Fourier features (Tancik et al., 2020).

A coordinate-based MLP on raw coordinates is biased towards low frequencies
("spectral bias"). Mapping the coordinates through sinusoids of random
frequencies first, ``[cos(2 pi x B), sin(2 pi x B)]`` with a Gaussian ``B``,
lets the MLP fit detail up to frequencies of about ``scale``; ``scale`` trades
detail against noise in the fit.

Reference: M. Tancik et al., "Fourier Features Let Networks Learn High
Frequency Functions in Low Dimensional Domains", NeurIPS 2020.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import (
    check_floating,
    check_ndim,
    check_positive_int,
    check_same_device,
    check_tensor,
    describe,
)

__all__ = ["FourierFeatures", "fourier_features"]


def fourier_features(coords: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Encode coordinates with the Fourier feature mapping of a frequency matrix.

    Computes ``[cos(2 pi coords @ B), sin(2 pi coords @ B)]``: all cosines
    first, then all sines, concatenated along the last dimension.

    Parameters
    ----------
    coords : torch.Tensor
        Coordinates, last dimension ``(x, y[, z])`` (any number of leading
        dimensions).
    B : torch.Tensor
        Frequency matrix; column ``j`` is the frequency vector of feature
        ``j``, in cycles per unit of coordinate.

    Returns
    -------
    torch.Tensor
        The features, ``2 * m`` of them per coordinate.

    Shape
    -----
    - coords: ``(..., d)``
    - B: ``(d, m)``
    - output: ``(..., 2 * m)``; ``output[..., j]`` is ``cos(2 pi coords @ B[:, j])``
      and ``output[..., m + j]`` is ``sin(2 pi coords @ B[:, j])``.

    Examples
    --------
    >>> import torch
    >>> from torchsample.encoding import fourier_features
    >>> B = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    >>> fourier_features(torch.tensor([[0.125, 0.0]]), B)  # phases pi/4 and 0
    tensor([[0.7071, 1.0000, 0.7071, 0.0000]])
    """
    check_tensor("coords", coords)
    check_tensor("B", B)
    check_floating("coords", coords)
    check_floating("B", B)
    check_ndim("B", B, (2,), "(d, m): one frequency vector per column")
    if coords.dim() == 0 or coords.shape[-1] != B.shape[0]:
        raise ValueError(
            f"the last dimension of coords must equal the number of rows of B "
            f"({B.shape[0]}), got coords with {describe(coords)}"
        )
    if coords.dtype != B.dtype:
        raise TypeError(
            f"coords and B must have the same dtype, got coords {coords.dtype} and B {B.dtype}"
        )
    check_same_device(coords=coords, B=B)
    phase = (2 * math.pi) * (coords @ B)
    return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)


class FourierFeatures(nn.Module):
    """Random Fourier feature encoding with Gaussian frequencies.

    Draws a frequency matrix ``B`` of shape ``(in_dims, n_features)`` with
    entries from ``N(0, scale**2)`` once, at construction, and encodes
    coordinates with :func:`fourier_features`. ``B`` is a buffer, not a
    parameter: it is not trained, but it moves with ``.to()`` and is saved in
    and restored from the ``state_dict``, so a trained model keeps its
    frequencies.

    Parameters
    ----------
    in_dims : int
        Number of coordinate dimensions ``d``.
    n_features : int
        Number of random frequencies ``m``; the output has ``2 * m`` features
        (:attr:`out_dims`).
    scale : float
        Standard deviation of the frequencies, in cycles per unit of
        coordinate. For coordinates in [-1, 1], features oscillate up to about
        ``2 * scale`` times across the domain.
    generator : torch.Generator, optional
        Source of randomness for ``B``.

    Attributes
    ----------
    B : torch.Tensor
        The frequency matrix, ``(in_dims, n_features)``.
    out_dims : int
        ``2 * n_features``.

    Shape
    -----
    - input: ``(..., in_dims)``
    - output: ``(..., 2 * n_features)``, cosines then sines (see
      :func:`fourier_features`).

    Examples
    --------
    >>> import torch
    >>> from torchsample.encoding import FourierFeatures
    >>> encode = FourierFeatures(2, 128, scale=10.0, generator=torch.Generator().manual_seed(0))
    >>> encode(torch.rand(4, 1000, 2)).shape
    torch.Size([4, 1000, 256])
    >>> encode.out_dims, tuple(encode.B.shape)
    (256, (2, 128))
    """

    B: torch.Tensor

    def __init__(
        self,
        in_dims: int,
        n_features: int,
        scale: float = 10.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        check_positive_int("in_dims", in_dims)
        check_positive_int("n_features", n_features)
        if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not scale > 0:
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        self.in_dims = in_dims
        self.n_features = n_features
        self.scale = float(scale)
        B = torch.randn(in_dims, n_features, generator=generator) * self.scale
        self.register_buffer("B", B)

    @property
    def out_dims(self) -> int:
        return 2 * self.n_features

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return fourier_features(coords, self.B.to(coords.dtype))

    def extra_repr(self) -> str:
        return f"in_dims={self.in_dims}, n_features={self.n_features}, scale={self.scale}"
