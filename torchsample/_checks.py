"""Argument validation shared by the whole public API.

Every check raises ``TypeError`` (wrong kind of object or dtype) or
``ValueError`` (wrong shape, value or device) with a message that names the
argument, what was expected and what was given, so a user never has to read a
traceback into library internals to find out what was wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch


def describe(t: torch.Tensor) -> str:
    """One-line summary of a tensor for error messages."""
    return f"shape {tuple(t.shape)}, dtype {t.dtype}, device {t.device}"


def check_tensor(name: str, value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_ndim(name: str, t: torch.Tensor, allowed: Iterable[int], meaning: str = "") -> None:
    allowed = tuple(allowed)
    if t.dim() not in allowed:
        expected = " or ".join(str(n) for n in allowed)
        hint = f" ({meaning})" if meaning else ""
        raise ValueError(f"{name} must have {expected} dimensions{hint}, got {describe(t)}")


def check_floating(name: str, t: torch.Tensor) -> None:
    if not t.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {describe(t)}")


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value  # type: ignore[return-value]


def check_same_device(**tensors: torch.Tensor) -> None:
    devices = {name: t.device for name, t in tensors.items()}
    if len(set(devices.values())) > 1:
        listing = ", ".join(f"{name} on {dev}" for name, dev in devices.items())
        raise ValueError(f"tensors must be on the same device, got {listing}")


def check_positive_int(name: str, value: object, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else ">= 1"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_size(name: str, size: object, dims: Iterable[int] = (2, 3)) -> tuple[int, ...]:
    """A spatial size in coordinate order, ``(w, h)`` or ``(w, h, d)``."""
    dims = tuple(dims)
    if isinstance(size, (torch.Size, tuple, list)):
        size = tuple(size)
    else:
        raise TypeError(f"{name} must be a tuple of ints (w, h) or (w, h, d), got {size!r}")
    if len(size) not in dims or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size
    ):
        lengths = " or ".join(str(d) for d in dims)
        raise ValueError(
            f"{name} must be {lengths} positive ints in coordinate order (w, h[, d]), got {size!r}"
        )
    return size
