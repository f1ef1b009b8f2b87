"""Module-level defaults of the original torchsample, kept for code that reads them.

The original exposed the library's defaults here, and code written for it
uses them to stay consistent with the library, e.g.
``ts.coord.full(1, size, align_corners=ts.default.align_corners)``.

Every function binds its defaults when torchsample is imported, so assigning
to these names changes nothing, exactly as in the original; pass arguments
explicitly to change behaviour.

Examples
--------
>>> import torchsample as ts
>>> ts.default.align_corners, ts.default.padding_mode
(False, 'border')
"""

align_corners = False
padding_mode = "border"
