"""Invalid calls across the public API raise errors that say what was wrong.

Each row is one distinct mistake: the call, the exception type, and a pattern
the message must match (the argument's name and what was expected or given).
"""

import pytest
import torch

import torchsample as ts

IMAGE = torch.zeros(1, 2, 4, 4)
COORDS = torch.zeros(1, 3, 2)
CLOUD = torch.rand(1, 10, 3)

INVALID_CALLS = [
    # ts.grid_sample / ts.sample
    (lambda: ts.grid_sample(IMAGE[0], torch.zeros(1, 2, 2, 2)), ValueError, r"input must be a 4D"),
    (
        lambda: ts.grid_sample(IMAGE, torch.zeros(1, 2, 2, 3)),
        ValueError,
        r"grid must be \(b, h_out, w_out, 2\).*got shape \(1, 2, 2, 3\)",
    ),
    (lambda: ts.grid_sample(IMAGE, torch.zeros(2, 2, 2, 2)), ValueError, r"same batch size"),
    (
        lambda: ts.grid_sample(IMAGE, torch.zeros(1, 2, 2, 2).double()),
        TypeError,
        r"input torch.float32 and grid torch.float64",
    ),
    (
        lambda: ts.grid_sample(IMAGE, torch.zeros(1, 2, 2, 2), mode="area"),
        ValueError,
        r"mode must be one of .* got 'area'",
    ),
    (
        lambda: ts.grid_sample(IMAGE, torch.zeros(1, 2, 2, 2), smoothstep=True, mode="bicubic"),
        ValueError,
        r"smoothstep=True applies to mode='bilinear'",
    ),
    (
        lambda: ts.grid_sample(IMAGE, torch.zeros(1, 2, 2, 2), padding_mode="circular"),
        ValueError,
        r"padding_mode must be one of .* got 'circular'",
    ),
    (
        lambda: ts.grid_sample(
            torch.zeros(1, 1, 2, 2, 2), torch.zeros(1, 1, 1, 1, 3), mode="bicubic"
        ),
        ValueError,
        r"bicubic' supports 4D inputs only",
    ),
    (
        lambda: ts.grid_sample(IMAGE, torch.zeros(1, 2, 2, 2), mode="trilinear"),
        ValueError,
        r"trilinear' needs a 5D input",
    ),
    (
        lambda: ts.sample(COORDS, IMAGE.long()),
        TypeError,
        r"only be sampled with mode='nearest', got mode='bilinear'",
    ),
    (
        lambda: ts.sample(torch.zeros(1, 3, 3), IMAGE),
        ValueError,
        r"coords must be \(b, n, 2\) .* got shape \(1, 3, 3\)",
    ),
    (
        lambda: ts.sample(COORDS, IMAGE.to("meta")),
        ValueError,
        r"same device, got coords on cpu, featmap on meta",
    ),
    (
        lambda: ts.sample(COORDS.double(), IMAGE),
        TypeError,
        r"coords and featmap must have the same",
    ),
    (
        lambda: ts.sample3d(torch.zeros(1, 3, 3), IMAGE),
        ValueError,
        r"featmap must be \(b, c, d, h, w\)",
    ),
    (
        lambda: ts.sample(COORDS, IMAGE, encoder=lambda c: c.sum()),
        ValueError,
        r"encoder must return",
    ),
    (lambda: ts.feat_first(torch.zeros(3)), ValueError, r"t must have a batch and a feature"),
    # ts.coord
    (lambda: ts.coord.rand(-1, 5), ValueError, r"batch must be >= 0, got -1"),
    (lambda: ts.coord.rand(1, 5, dims=0), ValueError, r"dims must be >= 1, got 0"),
    (lambda: ts.coord.rand(1, 5.0), TypeError, r"n_samples must be an int, got float"),
    (
        lambda: ts.coord.randint(1, 10, (3, 3)),
        ValueError,
        r"n_samples must not exceed the number of pixels \(9 for size \(3, 3\)\)",
    ),
    (
        lambda: ts.coord.randint(1, 2, (3,)),
        ValueError,
        r"size must be 2 or 3 positive ints.*\(3,\)",
    ),
    (lambda: ts.coord.full(1, (3, 0)), ValueError, r"size must be .* got \(3, 0\)"),
    (
        lambda: ts.coord.full_like(torch.zeros(3, 4, 4)),
        ValueError,
        r"tensor must have 4 or 5 dimensions .* got shape \(3, 4, 4\)",
    ),
    (lambda: ts.coord.randint_like(5, torch.zeros(3, 4)), ValueError, r"tensor must have 4 or 5"),
    (lambda: ts.coord.rand_biased(1, 5, torch.zeros(4, 4)), ValueError, r"pred must have 4 or 5"),
    (
        lambda: ts.coord.rand_biased(1, 5, torch.zeros(1, 1, 4, 4), beta=1.5),
        ValueError,
        r"beta must be a number in \[0, 1\], got 1.5",
    ),
    (
        lambda: ts.coord.rand_biased(1, 5, torch.zeros(1, 1, 4, 4), k=0.5),
        ValueError,
        r"k must be a finite number >= 1, got 0.5",
    ),
    (
        lambda: ts.coord.rand_biased(2, 5, torch.zeros(1, 1, 4, 4)),
        ValueError,
        r"pred must have batch size 2, got shape \(1, 1, 4, 4\)",
    ),
    (lambda: ts.coord.uncertain(torch.zeros(4, 4)), ValueError, r"pred must have 4 or 5"),
    (
        lambda: ts.coord.normalize(torch.zeros(5, 2), (4, 4, 4)),
        ValueError,
        r"last dimension of coord must have one entry per entry of size \(4, 4, 4\)",
    ),
    (
        lambda: ts.coord.unnormalize(torch.zeros(5, 3), (4, 4)),
        ValueError,
        r"last dimension of coord .* got coord with shape \(5, 3\)",
    ),
    (
        lambda: ts.coord.tensor_to_size(torch.zeros(4, 4)),
        ValueError,
        r"tensor must be a feature map \(b, c, \*spatial\) with at least one spatial",
    ),
    # ts.encoding
    (lambda: ts.encoding.gamma(torch.zeros(3, 2), order=0), ValueError, r"order must be >= 1"),
    (
        lambda: ts.encoding.gamma(torch.zeros(3, 2, dtype=torch.long)),
        TypeError,
        r"coords must have a floating-point dtype",
    ),
    (
        lambda: ts.encoding.nearest_pixel(torch.zeros(3, 2), (4, 4, 4)),
        ValueError,
        r"coord must have one entry per entry of size \(4, 4, 4\)",
    ),
    (
        lambda: ts.encoding.fourier_features(torch.zeros(3, 2), torch.zeros(3, 8)),
        ValueError,
        r"coords must equal the number of rows of B \(3\)",
    ),
    (lambda: ts.encoding.FourierFeatures(0, 8), ValueError, r"in_dims must be >= 1, got 0"),
    (lambda: ts.encoding.MultiResGrid(4), ValueError, r"dims must be 2 or 3, got 4"),
    (
        lambda: ts.encoding.MultiResGrid(2, base_resolution=64, max_resolution=16),
        ValueError,
        r"max_resolution must be >= base_resolution \(64\), got 16",
    ),
    (
        lambda: ts.encoding.MultiResGrid(2, n_levels=2, max_resolution=32)(torch.zeros(5, 3)),
        ValueError,
        r"coords must have a last dimension of 2 \(x, y\), got shape \(5, 3\)",
    ),
    # ts.models
    (lambda: ts.models.MLP(3), ValueError, r"layers must give at least two widths"),
    (lambda: ts.models.MLP(3, -1), ValueError, r"layers\[1\] must be >= 1, got -1"),
    (
        lambda: ts.models.MLP(3, 4, activation="relu"),
        TypeError,
        r"activation must be a callable applied to tensors",
    ),
    (lambda: ts.models.Siren(3, 4, w0=0), ValueError, r"w0 must be a positive number, got 0"),
    (
        lambda: ts.models.SampleNet(4, 16, 3, input_shape="nbc"),
        ValueError,
        r"input_shape must be one of 'bnc', 'bcn', got 'nbc'",
    ),
    # ts.points
    (
        lambda: ts.points.farthest_point_sample(CLOUD, 11),
        ValueError,
        r"n_samples=11 but the smallest cloud has 10 points",
    ),
    (
        lambda: ts.points.farthest_point_sample(CLOUD[0], 3),
        ValueError,
        r"points must have 3 dimensions .* got shape \(10, 3\)",
    ),
    (
        lambda: ts.points.farthest_point_sample(CLOUD, 3, lengths=torch.tensor([2])),
        ValueError,
        r"smallest cloud has 2 points",
    ),
    (
        lambda: ts.points.farthest_point_sample(CLOUD, 3, start_index=10),
        ValueError,
        r"start_index must lie in \[0, length\) of each cloud, got \[10\]",
    ),
    (lambda: ts.points.knn(CLOUD, CLOUD, 11), ValueError, r"k must not exceed .* got k=11"),
    (
        lambda: ts.points.knn(CLOUD, torch.rand(2, 10, 3), 1),
        ValueError,
        r"query and points must have the same batch size",
    ),
    (
        lambda: ts.points.random_sample(CLOUD, 11),
        ValueError,
        r"n_samples must be at most the number of points 10, got 11",
    ),
    (
        lambda: ts.points.chamfer_distance(CLOUD, CLOUD, reduction="max"),
        ValueError,
        r"reduction must be one of 'mean', 'sum', 'none', got 'max'",
    ),
    (
        lambda: ts.points.chamfer_distance(CLOUD, torch.rand(1, 4, 2)),
        ValueError,
        r"a and b must have the same batch size and number of coordinates",
    ),
    (lambda: ts.points.SoftProjection(0), ValueError, r"group_size must be >= 1, got 0"),
    (
        lambda: ts.points.SoftProjection(4).project(CLOUD, torch.rand(1, 5, 2)),
        ValueError,
        r"query_cloud must have 3 coordinates",
    ),
    (
        lambda: ts.points.nn_matching(CLOUD, torch.zeros(1, 3, dtype=torch.long), 20),
        ValueError,
        r"n_samples must be at most the number of points 10 of full_cloud, got 20",
    ),
]


def test_the_table_is_large_enough():
    assert len(INVALID_CALLS) >= 40


@pytest.mark.parametrize("call,error,message", INVALID_CALLS)
def test_invalid_call_is_explained(call, error, message):
    with pytest.raises(error, match=message):
        call()
