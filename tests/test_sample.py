"""ts.sample and friends: shapes, conventions, encoders, nobatch and integer maps."""

import pytest
import torch
import torch.nn.functional as F

import torchsample as ts


def test_coordinates_are_x_then_y():
    # A map whose value is the column index: only x should move it.
    image = torch.arange(4.0).repeat(3, 1).reshape(1, 1, 3, 4)
    coords = torch.tensor([[[-0.75, -1.0], [0.75, 1.0], [-0.25, 0.3]]])
    out = ts.sample(coords, image, align_corners=False)
    assert out.flatten().tolist() == pytest.approx([0.0, 3.0, 1.0])


@pytest.mark.parametrize("dims", [2, 3])
def test_points_and_spatial_coordinates(dims):
    featmap = torch.randn(2, 5, *([6] * dims))
    points = torch.rand(2, 7, dims) * 2 - 1
    out = ts.sample(points, featmap)
    assert out.shape == (2, 7, 5)
    grid = torch.rand(2, 3, 4, dims) * 2 - 1
    spatial = ts.sample(grid, featmap, feat_last=False)
    assert spatial.shape == (2, 5, 3, 4)
    native_grid = grid.reshape(2, *([1] * (dims - 2)), 3, 4, dims)
    expected = F.grid_sample(featmap, native_grid, padding_mode="border", align_corners=False)
    torch.testing.assert_close(spatial, expected.reshape(2, 5, 3, 4))


def test_feat_first_and_last_are_inverse():
    t = torch.randn(2, 3, 4, 5)
    torch.testing.assert_close(ts.feat_first(ts.feat_last(t)), t)
    assert ts.feat_last(t).shape == (2, 4, 5, 3)
    with pytest.raises(ValueError, match="t must have a batch and a feature dimension"):
        ts.feat_last(torch.zeros(3))


def test_encoder_is_concatenated_after_features():
    featmap = torch.randn(1, 3, 4, 4)
    coords = torch.rand(1, 6, 2) * 2 - 1
    out = ts.sample(coords, featmap, encoder=lambda c: c * 10)
    assert out.shape == (1, 6, 5)
    torch.testing.assert_close(out[..., 3:], coords * 10)
    first = ts.sample(coords, featmap, encoder=lambda c: c * 10, feat_last=False)
    torch.testing.assert_close(first, ts.feat_first(out))
    with pytest.raises(ValueError, match="encoder must return"):
        ts.sample(coords, featmap, encoder=lambda c: c[0])


def test_nobatch_forms():
    featmap = torch.randn(3, 4, 4)
    coords = torch.rand(5, 2) * 2 - 1
    expected = ts.sample(coords[None], featmap[None])[0]
    torch.testing.assert_close(ts.sample.nobatch(coords, featmap), expected)
    torch.testing.assert_close(ts.sample2d.nobatch(coords, featmap), expected)
    volume = torch.randn(3, 4, 4, 4)
    assert ts.sample3d.nobatch(torch.zeros(5, 3), volume, feat_last=False).shape == (3, 5)


def test_sample2d_and_sample3d_check_rank():
    with pytest.raises(
        ValueError, match=r"featmap must be \(b, c, h, w\), got shape \(1, 2, 3, 3, 3\)"
    ):
        ts.sample2d(torch.zeros(1, 4, 2), torch.zeros(1, 2, 3, 3, 3))
    with pytest.raises(ValueError, match=r"featmap must be \(b, c, d, h, w\)"):
        ts.sample3d(torch.zeros(1, 4, 3), torch.zeros(1, 2, 3, 3))


@pytest.mark.parametrize(
    "coords,featmap,error,message",
    [
        (torch.zeros(1, 4, 3), torch.zeros(1, 2, 3, 3), ValueError, r"coords must be \(b, n, 2\)"),
        (torch.zeros(4, 2), torch.zeros(1, 2, 3, 3), ValueError, r"coords must be \(b, n, 2\)"),
        (torch.zeros(2, 4, 2), torch.zeros(1, 2, 3, 3), ValueError, "same batch size"),
        (
            torch.zeros(1, 4, 2),
            torch.zeros(1, 2, 3, 3).double(),
            TypeError,
            "coords and featmap must have the same dtype",
        ),
        (torch.zeros(1, 4, 2), torch.zeros(2, 3, 3), ValueError, "featmap must be"),
    ],
)
def test_bad_arguments_are_named(coords, featmap, error, message):
    with pytest.raises(error, match=message):
        ts.sample(coords, featmap)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.bool])
def test_label_maps_come_back_exact(dtype):
    labels = torch.randint(0, 2 if dtype == torch.bool else 250, (2, 1, 5, 6)).to(dtype)
    centers_x = (2 * torch.arange(6) + 1) / 6 - 1
    centers_y = (2 * torch.arange(5) + 1) / 5 - 1
    coords = torch.stack(torch.meshgrid(centers_x, centers_y, indexing="xy"), -1)
    out = ts.sample(coords.expand(2, 5, 6, 2), labels, mode="nearest", feat_last=False)
    assert out.dtype == dtype
    assert torch.equal(out, labels)


def test_smoothstep_reaches_the_sampler():
    featmap = torch.tensor([[[[0.0, 1.0]]]])
    coords = torch.tensor([[[0.0, 0.0]], [[-0.25, 0.0]]]).reshape(1, 2, 2)
    linear = ts.sample(coords, featmap).flatten()
    smooth = ts.sample(coords, featmap, smoothstep=True).flatten()
    assert linear.tolist() == pytest.approx([0.5, 0.25])
    assert smooth.tolist() == pytest.approx([0.5, 0.15625])
