import math

import pytest
import torch
from torch import nn

from torchsample import coord
from torchsample.encoding import Gamma, Identity, NearestPixel, gamma, identity, nearest_pixel

# --- gamma -----------------------------------------------------------------------


def gamma_by_formula(coords, order):
    """NeRF eq. 4 written out, one scalar at a time."""
    rows = []
    for point in coords.reshape(-1, coords.shape[-1]).tolist():
        row = []
        for p in point:
            for j in range(order):
                row += [math.sin(2**j * math.pi * p), math.cos(2**j * math.pi * p)]
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
    expected = torch.tensor([1.0, 0.0, 0.0, -1.0, -s, s, -1.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(out, expected)


def test_gamma_default_order_and_dtype():
    out = gamma(torch.zeros(3, 2, dtype=torch.float16))
    assert out.shape == (3, 40) and out.dtype == torch.float16
    # At the origin every sine is 0 and every cosine 1.
    assert out[:, 0::2].abs().max() == 0 and (out[:, 1::2] == 1).all()


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


def test_nearest_pixel_known_values():
    # Width 4: centers at -0.75, -0.25, 0.25, 0.75, one pixel is 0.5 wide.
    # Height 2: centers at -0.5, 0.5, one pixel is 1 wide.
    coords = torch.tensor(
        [
            [-0.75, -0.5],  # on a center
            [-0.5, 0.0],  # on a pixel boundary in both axes: rounds half up
            [0.3, 0.75],
            [-1.0, -1.0],  # outer corner
            [1.5, 0.5],  # outside the map
        ],
        dtype=torch.float64,
    )
    out = nearest_pixel(coords, (4, 2))
    expected_offset = torch.tensor(
        [[0.0, 0.0], [-1.0, -1.0], [0.2, 0.5], [-1.0, -1.0], [3.0, 0.0]], dtype=torch.float64
    )
    torch.testing.assert_close(out, torch.cat([coords, expected_offset], dim=-1))


def test_nearest_pixel_align_corners():
    # Width 3 with align_corners: centers at -1, 0, 1; one pixel is 1 wide.
    x = torch.tensor([-1.0, -0.25, 0.4, 1.0], dtype=torch.float64)
    out = nearest_pixel(torch.stack([x, x], dim=-1), (3, 3), align_corners=True)
    torch.testing.assert_close(out[:, 2], torch.tensor([0.0, -0.5, 0.8, 0.0], dtype=torch.float64))


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(5, 7), (4, 3, 6)])
def test_nearest_pixel_against_brute_force(size, align_corners):
    coords = coord.rand(50, 20, dims=len(size), dtype=torch.float64)
    out = nearest_pixel(coords, size, align_corners=align_corners)
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
    assert repr(module) == "NearestPixel(size=(8, 6), align_corners=True)"
    with pytest.raises(ValueError, match="size"):
        nearest_pixel(coords, (8, 6, 4))
    with pytest.raises(ValueError, match="size"):
        NearestPixel((8, 0))
    with pytest.raises(TypeError, match="coords"):
        nearest_pixel(coords.long(), (8, 6))


def test_modules_compose_in_sequential():
    encoder = nn.Sequential(NearestPixel((8, 8)), Gamma(order=2))
    assert encoder(torch.zeros(10, 2)).shape == (10, 2 * 4 * 2)
