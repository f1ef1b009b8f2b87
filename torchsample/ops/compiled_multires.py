"""Compiled multi-resolution grid encoding: every level of a MultiResGrid in one op.

The kernels live in ``torchsample/csrc`` (``multires.cpp`` declares the ops,
``multires.h`` holds the per-point math shared by the CPU and CUDA kernels)
and are registered as ``torch.ops.torchsample.multires_encode``,
``multires_encode_backward`` and ``multires_encode_double_backward``. This
module adds their fakes, which check the kernels' contract
(``csrc/multires_host.h``) with ``torch._check``, and the autograd formulas
chaining the three ops: first derivatives with respect to the coordinates
and the tables, and the second derivatives an eikonal loss needs. A third
derivative raises an error that points to the reference backend.
"""

from __future__ import annotations

import torch

from . import compiled

_TABLE_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
#: Features per level the kernels handle (csrc/multires.h, kMaxFeatures).
MAX_FEATURES = 8


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """The coordinates' dtype for tables of ``dtype``: float32 for half tables."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def unsupported_reason(coords, tables) -> str | None:
    """None when the compiled kernels can encode with these tables, otherwise why not."""
    if coords.device.type not in ("cpu", "cuda"):
        return f"the compiled backend runs on CPU and CUDA, got device {coords.device}"
    if tables[0].dtype not in _TABLE_DTYPES:
        return f"the compiled backend has no kernels for tables of dtype {tables[0].dtype}"
    if tables[0].shape[1] > MAX_FEATURES:
        return (
            f"the compiled kernels take at most {MAX_FEATURES} features per level, "
            f"got {tables[0].shape[1]}"
        )
    return None


def encode(coords, tables, resolutions, smoothstep):
    """All levels at once: ``(n, dims)`` coordinates to ``(n, levels * features)``.

    ``coords`` must have the accumulation dtype of the tables (see
    :func:`accumulation_dtype`); see ``csrc/multires.cpp`` for the layout.
    """
    compiled._register()
    # Views give the leaves (parameters) a node the autograd engine can say
    # it will not run, so a pass that only wants coordinate gradients skips
    # the table scatters (see compiled._engine_mask).
    coords = compiled._non_leaf(coords)
    tables = [compiled._non_leaf(table) for table in tables]
    return torch.ops.torchsample.multires_encode(coords, tables, list(resolutions), smoothstep)


# The fakes check what csrc/multires_host.h checks, with the same messages.


def _check_args(op, coords, tables, resolutions):
    torch._check(
        coords.dim() == 2 and coords.shape[1] in (2, 3),
        lambda: f"{op}: coords must be (n, 2) or (n, 3), got shape {list(coords.shape)}",
    )
    torch._check(len(tables) > 0, lambda: f"{op}: tables must hold at least one level")
    torch._check(
        len(tables) == len(resolutions),
        lambda: f"{op}: {len(tables)} tables but {len(resolutions)} resolutions",
    )
    dtype = tables[0].dtype
    torch._check(
        dtype.is_floating_point, lambda: f"{op}: tables must be floating point, got {dtype}"
    )
    torch._check(
        coords.dtype == accumulation_dtype(dtype),
        lambda: (
            f"{op}: coords must be {accumulation_dtype(dtype)} for {dtype} tables, "
            f"got {coords.dtype}"
        ),
    )
    torch._check(
        tables[0].dim() >= 2 and tables[0].shape[1] > 0,
        lambda: (
            f"{op}: tables[0] must have at least one feature, got shape {list(tables[0].shape)}"
        ),
    )
    torch._check(
        tables[0].shape[1] <= MAX_FEATURES,
        lambda: f"{op}: at most {MAX_FEATURES} features per level, got {tables[0].shape[1]}",
    )
    for level, (table, resolution) in enumerate(zip(tables, resolutions)):
        _check_level(op, level, table, resolution, tables[0], coords)


def _check_level(op, level, table, resolution, first, coords):
    dtype, features, dims = first.dtype, first.shape[1], coords.shape[1]
    torch._check(
        resolution >= 2, lambda: f"{op}: resolutions[{level}] must be >= 2, got {resolution}"
    )
    torch._check(
        table.dtype == dtype,
        lambda: f"{op}: tables[{level}] has dtype {table.dtype}, tables[0] {dtype}",
    )
    torch._check(
        table.device == coords.device,
        lambda: f"{op}: tables[{level}] is on {table.device}, coords on {coords.device}",
    )
    if table.dim() == 2:
        rows = table.shape[0]
        torch._check(
            rows > 0 and rows & (rows - 1) == 0,
            lambda: (
                f"{op}: hashed tables[{level}] must have a power-of-two number of rows, "
                f"got shape {list(table.shape)}"
            ),
        )
        torch._check(
            table.shape[1] == features,
            lambda: f"{op}: tables[{level}] has {table.shape[1]} features, tables[0] {features}",
        )
    else:
        expected = [1, features] + [resolution] * dims
        torch._check(
            list(table.shape) == expected,
            lambda: (
                f"{op}: dense tables[{level}] must have shape {expected} for resolution "
                f"{resolution}, got {list(table.shape)}"
            ),
        )


def _check_per_point(op, name, t, coords, width, dtype):
    torch._check(
        t.dim() == 2 and t.shape[0] == coords.shape[0] and t.shape[1] == width,
        lambda: f"{op}: {name} must have shape ({coords.shape[0]}, {width}), got {list(t.shape)}",
    )
    torch._check(t.dtype == dtype, lambda: f"{op}: {name} must have dtype {dtype}, got {t.dtype}")
    torch._check(
        t.device == coords.device,
        lambda: f"{op}: {name} must be on {coords.device}, got {t.device}",
    )


def _check_like_table(op, level, given, table):
    torch._check(
        given.shape == table.shape and given.dtype == table.dtype and given.device == table.device,
        lambda: (
            f"{op}: grad_grad_tables[{level}] must match tables[{level}] (shape "
            f"{list(table.shape)}, {table.dtype}, {table.device}), got shape "
            f"{list(given.shape)}, {given.dtype}, {given.device}"
        ),
    )


def _width(tables):
    return tables[0].shape[1] * len(tables)


def _fake_encode(coords, tables, resolutions, smoothstep):
    _check_args("multires_encode", coords, tables, resolutions)
    return tables[0].new_empty((coords.shape[0], _width(tables)))


def _grads_like(tables, wanted):
    return [torch.empty_like(t) if wanted else t.new_empty((0,)) for t in tables]


def _fake_backward(grad_output, coords, tables, resolutions, smoothstep, output_mask):
    op = "multires_encode_backward"
    _check_args(op, coords, tables, resolutions)
    _check_per_point(op, "grad_output", grad_output, coords, _width(tables), tables[0].dtype)
    grad_coords = torch.empty_like(coords) if output_mask[0] else coords.new_empty((0,))
    return grad_coords, _grads_like(tables, output_mask[1])


def _fake_double_backward(
    grad_grad_coords,
    grad_grad_tables,
    grad_output,
    coords,
    tables,
    resolutions,
    smoothstep,
    output_mask,
):
    op = "multires_encode_double_backward"
    _check_args(op, coords, tables, resolutions)
    _check_per_point(op, "grad_output", grad_output, coords, _width(tables), tables[0].dtype)
    if grad_grad_coords is not None:
        _check_per_point(
            op, "grad_grad_coords", grad_grad_coords, coords, coords.shape[1], coords.dtype
        )
    if grad_grad_tables:
        torch._check(
            len(grad_grad_tables) == len(tables),
            lambda: (
                f"{op}: grad_grad_tables must hold {len(tables)} tensors like tables, "
                f"got {len(grad_grad_tables)}"
            ),
        )
        for level, (given, table) in enumerate(zip(grad_grad_tables, tables)):
            _check_like_table(op, level, given, table)
    grad_grad_output = (
        torch.empty_like(grad_output) if output_mask[0] else grad_output.new_empty((0,))
    )
    grad_coords = torch.empty_like(coords) if output_mask[1] else coords.new_empty((0,))
    return grad_grad_output, grad_coords, _grads_like(tables, output_mask[2])


def _needed(ctx, count: int) -> list[bool]:
    """Which of the first ``count`` differentiable inputs (the tables' list
    flattened, as in ``ctx.next_functions``) this backward pass needs."""
    flat = []
    for entry in ctx.needs_input_grad:
        flat.extend(entry if isinstance(entry, (list, tuple)) else [entry])
    return compiled._engine_mask(ctx, flat[:count])


def _setup_encode(ctx, inputs, output):
    coords, tables, resolutions, smoothstep = inputs
    ctx.save_for_backward(coords, *tables)
    ctx.options = (list(resolutions), smoothstep)


def _encode_grad(ctx, grad_output):
    coords, *tables = ctx.saved_tensors
    mask = _needed(ctx, 1 + len(tables))
    need_tables = any(mask[1:])
    grad_coords, grad_tables = torch.ops.torchsample.multires_encode_backward(
        grad_output.contiguous(), coords, tables, *ctx.options, [mask[0], need_tables]
    )
    # A list input takes a list of gradients, None where not wanted.
    grad_tables = [g if wanted else None for g, wanted in zip(grad_tables, mask[1:])]
    return grad_coords if mask[0] else None, grad_tables, None, None


def _setup_backward(ctx, inputs, output):
    grad_output, coords, tables, resolutions, smoothstep, output_mask = inputs
    ctx.save_for_backward(grad_output, coords, *tables)
    ctx.options = (list(resolutions), smoothstep)
    ctx.computed = tuple(output_mask)


def _backward_grad(ctx, grad_grad_coords, grad_grad_tables):
    grad_output, coords, *tables = ctx.saved_tensors
    # Outputs the backward op left empty carry no gradient.
    if not ctx.computed[0]:
        grad_grad_coords = None
    if not ctx.computed[1] or grad_grad_tables is None or all(g is None for g in grad_grad_tables):
        grad_grad_tables = []
    else:
        grad_grad_tables = [
            torch.zeros_like(t) if g is None else g for g, t in zip(grad_grad_tables, tables)
        ]
    mask = _needed(ctx, 2 + len(tables))
    need_tables = any(mask[2:])
    grad_grad_output, grad_coords, grad_tables = (
        torch.ops.torchsample.multires_encode_double_backward(
            grad_grad_coords,
            grad_grad_tables,
            grad_output,
            coords,
            tables,
            *ctx.options,
            [mask[0], mask[1], need_tables],
        )
    )
    grad_tables = [g if wanted else None for g, wanted in zip(grad_tables, mask[2:])]
    return (
        grad_grad_output if mask[0] else None,
        grad_coords if mask[1] else None,
        grad_tables,
        None,
        None,
        None,
    )


def _third_order(ctx, *grads):
    raise RuntimeError(
        "torchsample's compiled MultiResGrid encoding provides first and second derivatives "
        "only; for third and higher orders use the reference backend "
        "(TORCHSAMPLE_BACKEND=reference), which is differentiable to any order"
    )


def register(library: str) -> None:
    """Attach the fakes and autograd formulas; called once by :mod:`.compiled`."""
    torch.library.register_fake(library + "multires_encode", _fake_encode)
    torch.library.register_fake(library + "multires_encode_backward", _fake_backward)
    torch.library.register_fake(library + "multires_encode_double_backward", _fake_double_backward)
    torch.library.register_autograd(
        library + "multires_encode", _encode_grad, setup_context=_setup_encode
    )
    torch.library.register_autograd(
        library + "multires_encode_backward", _backward_grad, setup_context=_setup_backward
    )
    torch.library.register_autograd(library + "multires_encode_double_backward", _third_order)
