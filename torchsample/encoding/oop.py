"""The encodings as modules, under the original torchsample's module name.

``torchsample.encoding.oop.Gamma`` is :class:`torchsample.encoding.Gamma`;
this module exists so that code written for the original imports unchanged.
"""

from ._positional import Gamma, Identity, NearestPixel

__all__ = ["Gamma", "Identity", "NearestPixel"]
