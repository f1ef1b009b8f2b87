"""The encodings as functions, under the original torchsample's module name.

``torchsample.encoding.functional.gamma`` is :func:`torchsample.encoding.gamma`;
this module exists so that code written for the original imports unchanged.
"""

from ._positional import gamma, identity, nearest_pixel

__all__ = ["gamma", "identity", "nearest_pixel"]
