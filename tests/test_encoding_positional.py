import math

import pytest
import torch
from torch import nn

from torchsample import coord
from torchsample.encoding import Gamma, Identity, NearestPixel, gamma, identity, nearest_pixel

# --- gamma -----------------------------------------------------------------------


def gamma_by_formula(coords, order):
    """The original torchsample's layout, one scalar at a time: per frequency,
    the cosines of all coordinates, then their sines."""
    rows = []
    for point in coords.reshape(-1, coords.shape[-1]).tolist():
        row = []
        for j in range(order):
            row += [math.cos(2**j * math.pi * p) for p in point]
            row += [math.sin(2**j * math.pi * p) for p in point]
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64).reshape(*coords.shape[:-1], -1)


@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("order", [1, 4, 10])
def test_gamma_matches_formula(dims, order):
    coords = torch.rand(2, 5, dims, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    coords = 2 * coords - 1
    out = gamma(coords, order=order)
    assert out.shape == (2, 5, 2 * dims * order)
    torch.testing.assert_close(out, gamma_by_formula(coords, order))


def test_gamma_known_values():
    out = gamma(torch.tensor([0.5, -0.25], dtype=torch.float64), order=2)
    s = math.sqrt(0.5)
    # cos(pi x), cos(pi y), sin(pi x), sin(pi y), cos(2 pi x), cos(2 pi y), sin(2 pi x), ...
    expected = torch.tensor([0.0, s, 1.0, -s, -1.0, 0.0, 0.0, -1.0], dtype=torch.float64)
    torch.testing.assert_close(out, expected)


def test_gamma_default_order_and_dtype():
    out = gamma(torch.zeros(3, 2, dtype=torch.float16))
    assert out.shape == (3, 40) and out.dtype == torch.float16
    # At the origin every cosine (the first two of each four) is 1, every sine 0.
    cosines, sines = out.view(3, 10, 2, 2).unbind(-2)
    assert (cosines == 1).all() and sines.abs().max() == 0


def test_gamma_lower_orders_are_a_prefix():
    # Grouped by frequency: coarse-to-fine masking keeps the first columns.
    coords = torch.rand(7, 3, dtype=torch.float64)
    torch.testing.assert_close(gamma(coords, order=6)[:, : 2 * 3 * 4], gamma(coords, order=4))


def test_gamma_order_that_overflows_the_dtype_is_refused():
    with pytest.raises(ValueError, match=r"order=128 needs the frequency 2\*\*127 \* pi"):
        gamma(torch.zeros(3, 2), order=128)
    assert torch.isfinite(gamma(torch.zeros(3, 2), order=127)).all()
    assert torch.isfinite(gamma(torch.zeros(3, 2, dtype=torch.float64), order=128)).all()


def test_gamma_gradient():
    coords = torch.rand(4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c: gamma(c, order=3), (coords,))


def test_gamma_errors():
    with pytest.raises(TypeError, match="coords"):
        gamma(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="order"):
        gamma(torch.zeros(3, 2), order=0)
    with pytest.raises(TypeError, match="order"):
        gamma(torch.zeros(3, 2), order=2.0)
    with pytest.raises(ValueError, match="coords"):
        gamma(torch.tensor(0.5))


def test_gamma_module():
    coords = torch.rand(3, 7, 2)
    module = Gamma(order=6)
    torch.testing.assert_close(module(coords), gamma(coords, order=6))
    assert repr(module) == "Gamma(order=6)"
    assert list(module.parameters()) == []
    with pytest.raises(ValueError, match="order"):
        Gamma(order=-1)


# --- identity --------------------------------------------------------------------


def test_identity():
    coords = torch.rand(3, 2)
    assert identity(coords) is coords
    assert Identity()(coords) is coords
    with pytest.raises(TypeError, match="coords"):
        identity([0.0, 1.0])


# --- nearest_pixel ---------------------------------------------------------------


# Width 4: centers at -0.75, -0.25, 0.25, 0.75, one pixel is 0.5 wide.
# Height 2: centers at -0.5, 0.5, one pixel is 1 wide.
NEAREST_PIXEL_QUERIES = torch.tensor(
    [
        [-0.75, -0.5],  # on a center
        [-0.5, 0.0],  # on a pixel boundary in both axes (u = 0.5)
        [0.0, 0.75],  # u = 1.5: halfway, in the other direction
        [0.3, 0.75],
        [-1.0, -1.0],  # outer corner
        [1.5, 0.5],  # outside the map
    ],
    dtype=torch.float64,
)


def test_nearest_pixel_known_values():
    # 2 * (round(u) - u), torch.round halving to even: u = 0.5 -> 0, 1.5 -> 2, 4.5 -> 4.
    out = nearest_pixel(NEAREST_PIXEL_QUERIES, (4, 2))
    expected_offset = torch.tensor(
        [[0.0, 0.0], [-1.0, -1.0], [1.0, -0.5], [-0.2, -0.5], [1.0, 1.0], [-1.0, 0.0]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(out, torch.cat([NEAREST_PIXEL_QUERIES, expected_offset], dim=-1))


def test_nearest_pixel_liif_known_values():
    # 2 * (u - c), c rounded half up and clamped to the map.
    out = nearest_pixel(NEAREST_PIXEL_QUERIES, (4, 2), liif=True)
    expected_offset = torch.tensor(
        [[0.0, 0.0], [-1.0, -1.0], [-1.0, 0.5], [0.2, 0.5], [-1.0, -1.0], [3.0, 0.0]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(out, torch.cat([NEAREST_PIXEL_QUERIES, expected_offset], dim=-1))


def test_nearest_pixel_align_corners():
    # Width 3 with align_corners: centers at -1, 0, 1; one pixel is 1 wide.
    x = torch.tensor([-1.0, -0.25, 0.4, 1.0], dtype=torch.float64)
    out = nearest_pixel(torch.stack([x, x], dim=-1), (3, 3), align_corners=True)
    torch.testing.assert_close(out[:, 2], torch.tensor([0.0, 0.5, -0.8, 0.0], dtype=torch.float64))
    out = nearest_pixel(torch.stack([x, x], dim=-1), (3, 3), align_corners=True, liif=True)
    torch.testing.assert_close(out[:, 2], torch.tensor([0.0, -0.5, 0.8, 0.0], dtype=torch.float64))


def test_nearest_pixel_int_size_is_every_axis():
    coords = coord.rand(4, 10, dtype=torch.float64)
    torch.testing.assert_close(nearest_pixel(coords, 6), nearest_pixel(coords, (6, 6)))


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(5, 7), (4, 3, 6)])
def test_nearest_pixel_liif_against_brute_force(size, align_corners):
    coords = coord.rand(50, 20, dims=len(size), dtype=torch.float64)
    out = nearest_pixel(coords, size, align_corners=align_corners, liif=True)
    assert out.shape == (50, 20, 2 * len(size))
    assert torch.equal(out[..., : len(size)], coords)
    pixel_units = coord.unnormalize(coords, size, align_corners)
    for axis, n in enumerate(size):
        # The nearest center along this axis, by exhaustive search.
        u = pixel_units[..., axis]
        centers = torch.arange(n, dtype=torch.float64)
        nearest = centers[(u.unsqueeze(-1) - centers).abs().argmin(dim=-1)]
        torch.testing.assert_close(out[..., len(size) + axis], 2 * (u - nearest))


def test_nearest_pixel_module_and_errors():
    coords = torch.rand(3, 5, 2) * 2 - 1
    module = NearestPixel((8, 6), align_corners=True)
    torch.testing.assert_close(module(coords), nearest_pixel(coords, (8, 6), align_corners=True))
    assert repr(module) == "NearestPixel(size=(8, 6), align_corners=True, liif=False)"
    module = NearestPixel(size=(8, 6), liif=True)
    torch.testing.assert_close(module(coords), nearest_pixel(coords, (8, 6), liif=True))
    with pytest.raises(ValueError, match="size"):
        nearest_pixel(coords, (8, 6, 4))
    with pytest.raises(ValueError, match="size"):
        NearestPixel((8, 0))
    with pytest.raises(TypeError, match="coords"):
        nearest_pixel(coords.long(), (8, 6))


def test_modules_compose_in_sequential():
    encoder = nn.Sequential(NearestPixel((8, 8)), Gamma(order=2))
    assert encoder(torch.zeros(10, 2)).shape == (10, 2 * 4 * 2)
