"""The original torchsample's documented behaviour, pinned.

torchsample continues the original torchsample 0.1; code written for it must
run unchanged and give the same numbers. Each test states the original's
formula or recipe and checks ours against values computed from it. The
encodings' layouts (gamma's order, nearest_pixel's sign) are pinned in
test_encoding_positional.py and the MLP's layout in test_mlp.py.
"""

import inspect
import subprocess
import sys

import pytest
import torch

import torchsample as ts


def test_legacy_names_exist():
    assert ts.tensor_to_size is ts.coord.tensor_to_size
    size = ts.tensor_to_size(torch.zeros(2, 3, 480, 640))
    assert isinstance(size, torch.Size) and size == (640, 480)
    assert ts.coord.feat_first is ts.feat_first and ts.coord.feat_last is ts.feat_last
    assert ts.encoding.functional.gamma is ts.encoding.gamma
    assert ts.encoding.functional.nearest_pixel is ts.encoding.nearest_pixel
    assert ts.encoding.functional.identity is ts.encoding.identity
    assert ts.encoding.oop.Gamma is ts.encoding.Gamma
    assert ts.encoding.oop.NearestPixel is ts.encoding.NearestPixel
    assert ts.encoding.oop.Identity is ts.encoding.Identity


def test_legacy_modules_import_by_name():
    code = (
        "import torchsample.encoding.functional as f, torchsample.encoding.oop as o, "
        "torchsample.default as d; "
        "from torchsample.encoding.functional import gamma; "
        "from torchsample.encoding.oop import Gamma; "
        "assert (d.align_corners, d.padding_mode) == (False, 'border')"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_defaults_come_from_ts_default():
    # The original bound ts.default's values as every function's defaults.
    for function in (ts.sample, ts.sample2d, ts.sample3d):
        parameters = inspect.signature(function).parameters
        assert parameters["padding_mode"].default == ts.default.padding_mode == "border"
        assert parameters["align_corners"].default is ts.default.align_corners is False
    for function in (
        ts.coord.normalize,
        ts.coord.unnormalize,
        ts.coord.randint,
        ts.coord.randint_like,
        ts.coord.full,
        ts.coord.full_like,
        ts.coord.rand_biased,
        ts.coord.uncertain,
        ts.encoding.nearest_pixel,
    ):
        assert inspect.signature(function).parameters["align_corners"].default is False


def test_original_positional_signatures():
    # Positional arguments of the original, in its order; ours only appends.
    expected = {
        ts.coord.normalize: ["coord", "size", "align_corners"],
        ts.coord.unnormalize: ["coord", "size", "align_corners", "clip"],
        ts.coord.rand: ["batch", "n_samples", "dims", "dtype", "device"],
        ts.coord.randint: ["batch", "n_samples", "size", "device", "align_corners", "replace"],
        ts.coord.randint_like: ["n_samples", "tensor", "align_corners", "replace"],
        ts.coord.full: ["batch", "size", "device", "align_corners"],
        ts.coord.rand_biased: ["batch", "n_samples", "pred", "k", "beta", "align_corners"],
        ts.coord.uncertain: ["pred", "threshold", "align_corners"],
        ts.sample: [
            "coords",
            "featmap",
            "mode",
            "padding_mode",
            "align_corners",
            "encoder",
            "feat_last",
        ],
        ts.encoding.gamma: ["coords", "order"],
        ts.encoding.nearest_pixel: ["coords", "size", "align_corners"],
    }
    for function, names in expected.items():
        assert list(inspect.signature(function).parameters)[: len(names)] == names, function


# --- normalize / unnormalize with one int size ------------------------------------


def test_int_size_normalizes_every_element():
    x = torch.tensor([0, 479])
    torch.testing.assert_close(
        ts.coord.normalize(x, 480, align_corners=True), torch.tensor([-1.0, 1.0])
    )
    # (2 i + 1) / n - 1
    torch.testing.assert_close(
        ts.coord.normalize(x, 480), torch.tensor([1 / 480 - 1, 959 / 480 - 1])
    )
    grid = torch.tensor([[0, 3], [7, 1]])
    torch.testing.assert_close(ts.coord.normalize(grid, 8), ts.coord.normalize(grid, (8, 8)))


def test_int_size_and_integer_coords_unnormalize():
    corners = torch.tensor([-1, 1])
    out = ts.coord.unnormalize(corners, 480)
    assert out.dtype == torch.get_default_dtype()
    torch.testing.assert_close(out, torch.tensor([-0.5, 479.5]))
    torch.testing.assert_close(
        ts.coord.unnormalize(corners, 480, align_corners=True), torch.tensor([0.0, 479.0])
    )
    x = 2 * torch.rand(3, 100, 2, dtype=torch.float64) - 1
    for align_corners in (False, True):
        index = ts.coord.unnormalize(x, 1024, align_corners=align_corners)
        torch.testing.assert_close(ts.coord.normalize(index, 1024, align_corners), x)


def test_sizes_of_any_length_in_normalize_and_unnormalize():
    x = torch.tensor([[0.0], [9.0]])
    torch.testing.assert_close(
        ts.coord.normalize(x, (10,), align_corners=True), torch.tensor([[-1.0], [1.0]])
    )
    four = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    torch.testing.assert_close(
        ts.coord.unnormalize(ts.coord.normalize(four, (5, 6, 7, 8)), (5, 6, 7, 8)), four
    )


# --- random draws: the original's streams --------------------------------------------


def original_randint(batch, n_samples, size, align_corners, replace):
    """The original's draws, written from its documentation: with replacement
    one torch.randint per axis; without, one torch.randperm per batch element
    over the pixels in torch.cartesian_prod order (x slowest)."""
    if replace:
        index = torch.stack([torch.randint(n, (batch, n_samples)) for n in size], dim=-1)
    else:
        pixels = torch.cartesian_prod(*(torch.arange(n) for n in size))
        index = torch.stack([pixels[torch.randperm(len(pixels))[:n_samples]] for _ in range(batch)])
    return ts.coord.normalize(index, size, align_corners)


@pytest.mark.parametrize("replace", [False, True])
@pytest.mark.parametrize("size", [(5, 3), (4, 3, 2)])
def test_randint_draws_the_original_pixels_for_a_seed(size, replace):
    torch.manual_seed(3)
    expected = original_randint(2, 6, size, align_corners=False, replace=replace)
    torch.manual_seed(3)
    torch.testing.assert_close(ts.coord.randint(2, 6, size, replace=replace), expected)
    torch.manual_seed(3)
    expected = original_randint(1, 6, size, align_corners=True, replace=replace)
    torch.manual_seed(3)
    torch.testing.assert_close(
        ts.coord.randint(0, 6, size, align_corners=True, replace=replace), expected[0]
    )


def test_rand_is_the_original_formula():
    torch.manual_seed(5)
    expected = 2 * torch.rand(3, 10, 2) - 1
    torch.manual_seed(5)
    assert torch.equal(ts.coord.rand(3, 10), expected)


# --- nobatch forms ---------------------------------------------------------------


def test_full_nobatch_has_the_original_signature():
    assert list(inspect.signature(ts.coord.full).parameters)[:2] == ["batch", "size"]
    out = ts.coord.full.nobatch(1, (3, 2), align_corners=True)
    assert out.shape == (2, 3, 2)
    assert out[0, 0].tolist() == [-1.0, -1.0] and out[1, 2].tolist() == [1.0, 1.0]


# --- rand_biased ---------------------------------------------------------------------


def original_rand_biased(n_samples, pred, k, beta):
    """The original's algorithm for batch 1, written from its documentation:
    k * n uniform candidates, sampled bilinearly (border padding), ranked by
    the largest probability over the channels, lowest first; then uniform ones."""
    candidates = 2 * torch.rand(1, int(k * n_samples), 2) - 1
    grid = candidates[:, None]
    sampled = torch.nn.functional.grid_sample(
        pred, grid, padding_mode="border", align_corners=False
    )
    certainty = sampled[:, :, 0].amax(1)  # (1, k * n)
    n_biased = int(beta * n_samples)
    chosen = candidates[0, certainty[0].argsort()[:n_biased]]
    uniform = 2 * torch.rand(n_samples - n_biased, 2) - 1
    return torch.cat([chosen, uniform])[None]


def test_rand_biased_ranks_by_the_largest_probability():
    # Two classes whose probabilities tie at x = 0.
    p = torch.linspace(0, 1, 32).expand(1, 1, 32, 32)
    pred = torch.cat([p, 1 - p], dim=1)
    torch.manual_seed(7)
    expected = original_rand_biased(50, pred, k=3.0, beta=0.75)
    torch.manual_seed(7)
    actual = ts.coord.rand_biased(1, 50, pred)
    torch.testing.assert_close(actual, expected)
    torch.manual_seed(7)
    assert torch.equal(ts.coord.rand_biased(0, 50, pred), actual[0])
    assert actual[0, :37, 0].abs().max() < 0.3  # 37 of 150 candidates: |x| < ~0.25


def test_rand_biased_align_corners_samples_pred_with_it():
    # A map whose value at x = -0.9 differs between the conventions: 3 pixels,
    # the lowest probability only in the left pixel.
    pred = torch.tensor([[[[0.0, 1.0, 1.0]]]]).expand(1, 1, 1, 3)
    torch.manual_seed(0)
    near_left = ts.coord.rand_biased(1, 20, pred, k=5.0, beta=1.0, align_corners=True)
    assert near_left[..., 0].max() < -0.5


# --- uncertain ---------------------------------------------------------------------


@pytest.fixture
def probabilities():
    # Two classes on a 3 x 3 map; the largest probability is below 0.9 at
    # (y, x) = (0, 0), (0, 1), (1, 0), (1, 1), (2, 0).
    first = torch.tensor([[0.8, 0.5, 0.95], [0.3, 0.5, 0.0], [0.5, 1.0, 1.0]])
    return torch.stack([first, 1 - first])[None]


def test_uncertain_selects_low_maximum_probability(probabilities):
    index, coords = ts.coord.uncertain(probabilities, threshold=0.9)
    assert isinstance(index, tuple) and len(index) == 4
    mask = torch.zeros_like(probabilities)
    mask[index] = 1
    expected = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert torch.equal(mask, expected.expand(1, 2, 3, 3))
    centers = torch.tensor([-2 / 3, 0.0])
    expected_coords = torch.tensor(
        [
            [centers[0], centers[0]],
            [centers[1], centers[0]],
            [centers[0], centers[1]],
            [centers[1], centers[1]],
            [centers[0], 2 / 3],
        ]
    )
    torch.testing.assert_close(coords, expected_coords[None])


def test_uncertain_recipe_writes_refined_values_back(probabilities):
    index, coords = ts.coord.uncertain(probabilities, threshold=0.9)
    refined = probabilities.clone()
    refined[index] = 0.0
    # The original's documented recipe: values sampled at the coordinates go
    # back through the index, every channel of every pixel in place.
    refined[index] = ts.feat_first(ts.sample(coords, probabilities)).flatten()
    torch.testing.assert_close(refined, probabilities)


def test_uncertain_nothing_uncertain(probabilities):
    index, coords = ts.coord.uncertain(probabilities, threshold=0)
    assert coords.shape == (1, 0, 2) and probabilities[index].numel() == 0


def test_uncertain_margin_criterion_is_opt_in():
    logits = torch.tensor([[[[-5.0, 0.1, 5.0]]]])
    index, coords = ts.coord.uncertain(logits, criterion="margin")
    assert logits[index].tolist() == [pytest.approx(0.1)]
    assert coords.tolist() == [[[0.0, 0.0]]]
    # By probability (the default) every pixel with a value below 0.5 counts.
    index, _ = ts.coord.uncertain(logits)
    assert logits[index].tolist() == [-5.0, pytest.approx(0.1)]


def test_uncertain_pixels_agrees_with_uncertain(probabilities):
    tuple_index, coords = ts.coord.uncertain(probabilities, threshold=0.9)
    rows, flat_coords = ts.coord.uncertain_pixels(probabilities, threshold=0.9)
    assert torch.equal(flat_coords, coords[0])
    b, y, x = rows.unbind(1)
    torch.testing.assert_close(probabilities[b, :, y, x].T.flatten(), probabilities[tuple_index])


# --- the original README's usage -----------------------------------------------------


def test_original_readme_workflow():
    images, gt = torch.rand(2, 3, 24, 32), torch.rand(2, 1, 24, 32)
    feature_extractor = torch.nn.Conv2d(3, 8, 3, padding=1)
    # Training: random points, features and ground truth sampled there.
    b, _, h, w = images.shape
    coords = ts.coord.rand(b, 4096, 2)
    featmap = feature_extractor(images)
    assert ts.sample(coords, featmap).shape == (b, 4096, 8)
    assert ts.sample(coords, gt).shape == (b, 4096, 1)
    # Inference: every pixel.
    coords_full = ts.coord.full_like(images)
    assert ts.sample(coords_full, featmap).shape == (b, h, w, 8)
    # Positional encoding, as a function and concatenated by ts.sample.
    assert ts.encoding.gamma(coords).shape == (b, 4096, 40)
    sampled = ts.sample(coords, featmap, encoder=ts.encoding.Gamma())
    torch.testing.assert_close(sampled[..., 8:], ts.encoding.gamma(coords))
    # Models on (..., feat) tensors.
    model = ts.models.MLP(48, 64, 1)
    assert model(sampled).shape == (b, 4096, 1)
