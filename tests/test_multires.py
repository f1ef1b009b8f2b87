import itertools

import pytest
import torch
from torch.func import functional_call

import torchsample
from torchsample.encoding import MultiResGrid
from torchsample.ops.reference import _cell_corners, _spatial_hash

PRIMES = (1, 2654435761, 805459861)


def _reference_hash(vertex, table_size):
    """Instant-NGP's hash in wrapping uint32 arithmetic, in plain Python."""
    slot = 0
    for index, prime in zip(vertex, PRIMES):
        slot ^= (index * prime) % 2**32
    return slot % table_size


def _slot(vertices, table_size):
    """Hash slots of vertices ``(..., dims)``."""
    return _spatial_hash(torch.as_tensor(vertices).unbind(-1), table_size)


def _randomize(encoder, generator, scale=1.0):
    """Replace the tiny initial features with O(1) ones so differences show."""
    with torch.no_grad():
        for table in encoder.tables:
            table.copy_(torch.randn(table.shape, generator=generator, dtype=table.dtype) * scale)
    return encoder


def _vertex_coord(index, resolution):
    return 2 * index / (resolution - 1) - 1


def test_resolutions_grow_geometrically_from_base_to_max():
    encoder = MultiResGrid(
        2, n_levels=16, base_resolution=16, max_resolution=2048, log2_hashmap_size=8
    )
    # round(16 * b**l) with b = 128 ** (1 / 15)
    assert encoder.resolutions == (
        16,
        22,
        31,
        42,
        58,
        81,
        111,
        154,
        213,
        294,
        406,
        562,
        776,
        1072,
        1482,
        2048,
    )


def test_single_level_uses_base_resolution():
    assert MultiResGrid(2, n_levels=1, base_resolution=5, max_resolution=50).resolutions == (5,)


@pytest.mark.parametrize("dims", [2, 3])
def test_dense_levels_up_to_table_size_then_hashed(dims):
    encoder = MultiResGrid(
        dims, n_levels=4, n_features=3, base_resolution=4, max_resolution=32, log2_hashmap_size=10
    )
    table_size = 2**10
    for level, table in zip(encoder.levels, encoder.tables):
        dense = level.resolution**dims <= table_size
        assert level.hashed is not dense
        if dense:
            assert table.shape == (1, 3) + (level.resolution,) * dims
            assert level.entries == level.resolution**dims
        else:
            assert table.shape == (table_size, 3)
            assert level.entries == table_size
        assert level.nbytes == level.entries * 3 * 4
    # 2D: 16, 64, 256, 1024 vertices; 3D: 64, 512, 4096, 32768.
    assert [level.hashed for level in encoder.levels] == (
        [False, False, False, False] if dims == 2 else [False, False, True, True]
    )


def test_default_3d_memory_matches_documentation():
    # A meta-device module allocates nothing but knows its layout.
    encoder = MultiResGrid(3, device="meta")
    levels = encoder.levels
    dense = [level for level in levels if not level.hashed]
    assert [level.resolution for level in dense] == [16, 22, 31, 42, 58]
    assert all(level.nbytes == 4 * 2**20 for level in levels if level.hashed)
    assert round(sum(level.nbytes for level in dense) / 2**20, 1) == 2.4
    assert round(sum(level.nbytes for level in levels) / 2**20) == 46


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_output_shape_and_dtype(dims, dtype):
    encoder = MultiResGrid(
        dims,
        n_levels=3,
        n_features=4,
        base_resolution=4,
        max_resolution=16,
        log2_hashmap_size=6,
        dtype=dtype,
    )
    coords = torch.rand(2, 5, 7, dims) * 2 - 1
    out = encoder(coords)
    assert out.shape == (2, 5, 7, 12)
    assert out.dtype == dtype
    assert encoder.out_dims == 12


def test_initialization_is_small_uniform_and_seeded():
    def make():
        return MultiResGrid(
            2,
            n_levels=3,
            base_resolution=4,
            max_resolution=32,
            log2_hashmap_size=6,
            generator=torch.Generator().manual_seed(3),
        )

    a, b = make(), make()
    values = torch.cat([t.detach().flatten() for t in a.tables])
    assert values.abs().max() <= 1e-4
    assert values.abs().max() > 0.9e-4 and values.std() > 0.5e-4
    for ta, tb in zip(a.tables, b.tables):
        assert torch.equal(ta, tb)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("smoothstep", [False, True])
def test_dense_levels_match_grid_sample_on_the_level_grid(dims, smoothstep):
    g = torch.Generator().manual_seed(0)
    encoder = _randomize(
        MultiResGrid(
            dims,
            n_levels=2,
            n_features=3,
            base_resolution=3,
            max_resolution=5,
            log2_hashmap_size=8,
            smoothstep=smoothstep,
        ),
        g,
    )
    assert not any(level.hashed for level in encoder.levels)
    # Include points outside [-1, 1], which are clamped onto the border.
    coords = torch.rand(40, dims, generator=g) * 2.4 - 1.2
    out = encoder(coords)
    for level, table in enumerate(encoder.tables):
        grid = coords.reshape((1,) * dims + coords.shape)
        expected = torchsample.grid_sample(
            table,
            grid,
            mode="bilinear",
            padding_mode="border",
            align_corners=True,
            smoothstep=smoothstep,
        )
        torch.testing.assert_close(out[:, 3 * level : 3 * (level + 1)], expected.reshape(3, -1).t())


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("smoothstep", [False, True])
def test_hashed_interpolation_uses_the_dense_vertex_convention(dims, smoothstep):
    # The hashed path's corners and weights, applied to a dense grid, must
    # reproduce grid_sample on that grid: both paths place vertices alike.
    g = torch.Generator().manual_seed(1)
    resolution = 5
    grid = torch.randn((1, 2) + (resolution,) * dims, generator=g, dtype=torch.float64)
    coords = torch.rand(50, dims, generator=g, dtype=torch.float64) * 2.4 - 1.2
    vertices, weights = _cell_corners(coords, resolution, smoothstep)
    # Spatial axes of the grid are (d,) h, w: reverse the (x, y[, z]) indices.
    corner_values = grid[0][(slice(None), *reversed(vertices))]
    interpolated = (weights * corner_values).sum(-1).t()
    expected = torchsample.grid_sample(
        grid,
        coords.reshape((1,) * dims + coords.shape),
        mode="bilinear",
        padding_mode="border",
        align_corners=True,
        smoothstep=smoothstep,
    )
    torch.testing.assert_close(interpolated, expected.reshape(2, -1).t())


@pytest.mark.parametrize("smoothstep", [False, True])
def test_hashed_level_matches_brute_force_interpolation(smoothstep):
    g = torch.Generator().manual_seed(2)
    resolution = 7
    encoder = _randomize(
        MultiResGrid(
            2,
            n_levels=1,
            n_features=2,
            base_resolution=resolution,
            max_resolution=resolution,
            log2_hashmap_size=4,
            smoothstep=smoothstep,
            dtype=torch.float64,
        ),
        g,
    )
    table = encoder.tables[0]
    assert encoder.levels[0].hashed
    coords = torch.rand(20, 2, generator=g, dtype=torch.float64) * 2 - 1
    out = encoder(coords)
    for point, features in zip(coords.tolist(), out):
        position = [(c + 1) / 2 * (resolution - 1) for c in point]
        cell = [min(int(p), resolution - 2) for p in position]
        expected = torch.zeros(2, dtype=torch.float64)
        for upper in itertools.product((0, 1), repeat=2):
            weight = 1.0
            for axis in range(2):
                t = position[axis] - cell[axis]
                if smoothstep:
                    t = t * t * (3 - 2 * t)
                weight *= t if upper[axis] else 1 - t
            vertex = [cell[axis] + upper[axis] for axis in range(2)]
            expected += weight * table[_reference_hash(vertex, 16)].detach()
        torch.testing.assert_close(features.detach(), expected)


def test_spatial_hash_known_values():
    assert _slot([0, 0, 0], 2**19).item() == 0
    assert _slot([5, 0, 0], 2**19).item() == 5
    # 2654435761 mod 2**19 and 805459861 mod 2**19
    assert _slot([0, 1, 0], 2**19).item() == 2654435761 % 2**19 == 489905
    assert _slot([0, 0, 1], 2**19).item() == 805459861 % 2**19 == 153493
    assert _slot([3, 1], 2**19).item() == 3 ^ 489905
    # Large indices: the int64 products overflow 32 bits but the slot still
    # equals Instant-NGP's wrapping uint32 hash.
    vertices = torch.tensor([[2047, 2047, 2047], [1000, 2000, 123], [7, 0, 9999]])
    for log2_size in (4, 19, 24):
        expected = [_reference_hash(v, 2**log2_size) for v in vertices.tolist()]
        assert _slot(vertices, 2**log2_size).tolist() == expected


def test_hash_collisions_share_features_and_are_deterministic():
    resolution = 9
    encoder = MultiResGrid(
        2, n_levels=1, base_resolution=resolution, max_resolution=resolution, log2_hashmap_size=4
    )  # 81 vertices, 16 slots
    _randomize(encoder, torch.Generator().manual_seed(0))
    vertices = torch.cartesian_prod(torch.arange(resolution), torch.arange(resolution))
    slots = _slot(vertices, 16)
    # Pigeonhole: at least 81 - 16 vertices share a slot with another one.
    assert len(vertices) - len(torch.unique(slots)) >= 81 - 16
    first, second = (vertices[slots == slots[0]][:2]).tolist()

    def at(vertex):
        return torch.tensor([[_vertex_coord(i, resolution) for i in vertex]])

    torch.testing.assert_close(encoder(at(first)), encoder(at(second)))
    coords = torch.rand(100, 2) * 2 - 1
    assert torch.equal(encoder(coords), encoder(coords))


def _coordinate_gradient(encoder, coords, direction):
    coords = coords.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad((encoder(coords) * direction).sum(), coords)
    return grad


@pytest.mark.parametrize("hashed", [False, True])
def test_coordinate_gradient_is_continuous_across_vertices_only_with_smoothstep(hashed):
    resolution = 6
    g = torch.Generator().manual_seed(4)
    jumps = {}
    for smoothstep in (False, True):
        encoder = _randomize(
            MultiResGrid(
                2,
                n_levels=1,
                n_features=3,
                base_resolution=resolution,
                max_resolution=resolution,
                log2_hashmap_size=4 if hashed else 8,
                smoothstep=smoothstep,
                dtype=torch.float64,
            ),
            torch.Generator().manual_seed(5),
        )
        assert encoder.levels[0].hashed is hashed
        direction = torch.randn(3, generator=g, dtype=torch.float64)
        jumps[smoothstep] = []
        for eps in (1e-3, 1e-5):
            # Points just left and right of vertex x = 2, y inside a cell.
            x = _vertex_coord(2, resolution)
            left = torch.tensor([[x - eps, 0.13]], dtype=torch.float64)
            right = torch.tensor([[x + eps, 0.13]], dtype=torch.float64)
            grad_left = _coordinate_gradient(encoder, left, direction)
            grad_right = _coordinate_gradient(encoder, right, direction)
            assert torch.isfinite(grad_left).all() and grad_left.abs().sum() > 0
            jumps[smoothstep].append((grad_right - grad_left).norm().item())
    # Linear weights: the jump stays O(1) however close the points are.
    assert min(jumps[False]) > 0.1
    assert jumps[False][1] == pytest.approx(jumps[False][0], rel=0.05)
    # Smoothstep: the jump shrinks in proportion to the distance.
    assert jumps[True][1] < 1e-2 * jumps[False][1]
    assert jumps[True][1] == pytest.approx(jumps[True][0] / 100, rel=0.05)


@pytest.mark.parametrize(
    "dims, layout",
    [
        (2, {"n_levels": 3, "base_resolution": 3, "max_resolution": 6, "log2_hashmap_size": 4}),
        (3, {"n_levels": 2, "base_resolution": 2, "max_resolution": 4, "log2_hashmap_size": 3}),
    ],
)
@pytest.mark.parametrize("smoothstep", [False, True])
def test_gradgradcheck_through_dense_and_hashed_levels(dims, layout, smoothstep):
    encoder = MultiResGrid(dims, n_features=2, smoothstep=smoothstep, dtype=torch.float64, **layout)
    _randomize(encoder, torch.Generator().manual_seed(6))
    hashed = [level.hashed for level in encoder.levels]
    assert hashed[0] is False and hashed[-1] is True
    names = [name for name, _ in encoder.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in encoder.parameters()]
    # Away from cell boundaries, where the encoding is not differentiable.
    coords = (
        torch.rand(4, dims, generator=torch.Generator().manual_seed(7), dtype=torch.float64) * 1.6
        - 0.8
    ).requires_grad_(True)

    def encode(coords, *params):
        return functional_call(encoder, dict(zip(names, params)), (coords,))

    assert torch.autograd.gradcheck(encode, (coords, *params))
    assert torch.autograd.gradgradcheck(encode, (coords, *params))


def test_eikonal_style_double_backward_reaches_every_level():
    encoder = MultiResGrid(
        3, n_levels=3, base_resolution=3, max_resolution=8, log2_hashmap_size=6, smoothstep=True
    )
    _randomize(encoder, torch.Generator().manual_seed(8))
    coords = (torch.rand(64, 3) * 2 - 1).requires_grad_(True)
    (normals,) = torch.autograd.grad(encoder(coords).sum(), coords, create_graph=True)
    ((normals.norm(dim=-1) - 1) ** 2).mean().backward()
    for table in encoder.tables:
        assert table.grad is not None and table.grad.abs().sum() > 0


def test_coords_are_cast_to_the_parameter_dtype():
    encoder = MultiResGrid(2, n_levels=2, base_resolution=4, max_resolution=8, log2_hashmap_size=4)
    coords = torch.rand(10, 2, dtype=torch.float64)
    torch.testing.assert_close(encoder(coords), encoder(coords.float()))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"dims": 4}, "dims must be 2 or 3"),
        ({"dims": 2, "base_resolution": 1}, "base_resolution must be >= 2"),
        ({"dims": 2, "base_resolution": 8, "max_resolution": 4}, "max_resolution must be >= "),
        ({"dims": 2, "n_levels": 0}, "n_levels must be >= 1"),
    ],
)
def test_invalid_construction_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiResGrid(**kwargs)


def test_invalid_coordinates():
    encoder = MultiResGrid(3, n_levels=1, base_resolution=4, max_resolution=4)
    with pytest.raises(ValueError, match=r"last dimension of 3 \(x, y, z\), got shape \(5, 2\)"):
        encoder(torch.zeros(5, 2))
    with pytest.raises(TypeError, match="coords must have a floating-point dtype"):
        encoder(torch.zeros(5, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="coords on cpu, tables on meta"):
        MultiResGrid(3, n_levels=1, base_resolution=4, max_resolution=4, device="meta")(
            torch.zeros(5, 3)
        )
