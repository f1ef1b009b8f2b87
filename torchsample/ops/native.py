"""Native backend: :func:`torch.nn.functional.grid_sample` itself."""

from __future__ import annotations

import torch.nn.functional as F

from . import reference


def unavailable_reason(device_type: str = "cpu") -> str | None:
    return None


def unsupported_reason(input, grid, mode, padding_mode, align_corners, smoothstep) -> str | None:
    if smoothstep:
        return "F.grid_sample has no smoothstep weights"
    if not input.is_floating_point():
        return f"F.grid_sample rejects integer feature maps (got {input.dtype})"
    return None


def unsupported_fps_reason(points) -> str | None:
    return "torch has no farthest point sampling"


def grid_sample(input, grid, mode, padding_mode, align_corners, smoothstep):
    return F.grid_sample(
        input, grid, mode=mode, padding_mode=padding_mode, align_corners=align_corners
    )


def unsupported_multires_reason(coords, tables) -> str | None:
    return None


# torch has no fused multi-resolution encoding: the plain-PyTorch path, whose
# dense levels go through the dispatch and so through F.grid_sample when this
# backend is forced.
multires_encode = reference.multires_encode
