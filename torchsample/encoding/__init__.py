"""Coordinate encodings: map coordinates to features an MLP can fit."""

from . import functional, oop
from ._fourier import FourierFeatures, fourier_features
from ._multires import MultiResGrid
from ._positional import Gamma, Identity, NearestPixel, gamma, identity, nearest_pixel

__all__ = [
    "FourierFeatures",
    "Gamma",
    "Identity",
    "MultiResGrid",
    "NearestPixel",
    "fourier_features",
    "functional",
    "gamma",
    "identity",
    "nearest_pixel",
    "oop",
]
