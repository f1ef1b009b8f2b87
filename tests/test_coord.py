import itertools

import pytest
import torch
import torch.nn.functional as F

from torchsample import coord


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def on_centers(coords, size, align_corners):
    """Whether every coordinate is exactly a pixel center inside the map."""
    index = coord.unnormalize(coords, size, align_corners=align_corners)
    n = torch.tensor(size, dtype=coords.dtype)
    return bool(
        torch.allclose(index, index.round(), atol=1e-5)
        and (index.round() >= 0).all()
        and (index.round() <= n - 1).all()
    )


# --- normalize / unnormalize ---------------------------------------------------


def test_normalize_known_values():
    index = torch.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, 4.0]])
    expected = torch.tensor([[-0.75, -0.8], [-0.25, 0.0], [0.75, 0.8]])
    torch.testing.assert_close(coord.normalize(index, (4, 5)), expected)
    expected_aligned = torch.tensor([[-1.0, -1.0], [-1 / 3, 0.0], [1.0, 1.0]])
    torch.testing.assert_close(coord.normalize(index, (4, 5), align_corners=True), expected_aligned)


def test_normalize_single_pixel():
    index = torch.zeros(1, 3)
    assert coord.normalize(index, (1, 1, 1)).tolist() == [[0.0, 0.0, 0.0]]
    assert coord.normalize(index, (1, 1, 1), align_corners=True).tolist() == [[0.0, 0.0, 0.0]]
    # Mixed: only the one-pixel axis is special.
    assert coord.normalize(torch.tensor([[2.0, 0.0]]), (3, 1), align_corners=True).tolist() == [
        [1.0, 0.0]
    ]


def test_normalize_integer_input_becomes_floating():
    out = coord.normalize(torch.tensor([[0, 1]]), (2, 2))
    assert out.dtype == torch.get_default_dtype()
    assert out.tolist() == [[-0.5, 0.5]]


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(5, 7), (3, 4, 6), (1, 9)])
def test_normalize_unnormalize_round_trip(size, align_corners):
    x = coord.rand(10, 50, dims=len(size), dtype=torch.float64, generator=generator())
    index = coord.unnormalize(x, size, align_corners=align_corners)
    back = coord.normalize(index, size, align_corners=align_corners)
    # A one-pixel side with align_corners=True collapses every coordinate to 0.
    expected = torch.where(
        torch.tensor([align_corners and n == 1 for n in size]), torch.zeros_like(x), x
    )
    torch.testing.assert_close(back, expected)
    index = torch.rand(10, 50, len(size), dtype=torch.float64) * torch.tensor(size) - 0.5
    if not align_corners or 1 not in size:
        torch.testing.assert_close(
            coord.unnormalize(coord.normalize(index, size, align_corners), size, align_corners),
            index,
        )


def test_unnormalize_matches_grid_sample_convention():
    # The pixel grid_sample reads at a coordinate is the one unnormalize names.
    size = (7, 5)
    image = torch.arange(35, dtype=torch.float64).reshape(1, 1, 5, 7)
    for align_corners in (False, True):
        index = torch.tensor([[i, j] for j in range(5) for i in range(7)], dtype=torch.float64)
        x = coord.normalize(index, size, align_corners)
        values = F.grid_sample(
            image, x.view(1, 1, -1, 2), mode="nearest", align_corners=align_corners
        ).flatten()
        assert values.tolist() == [float(j * 7 + i) for j in range(5) for i in range(7)]


def test_unnormalize_known_values_and_clip():
    x = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0], [-1.5, 2.0]])
    out = coord.unnormalize(x, (4, 2))
    torch.testing.assert_close(
        out, torch.tensor([[-0.5, -0.5], [3.5, 1.5], [1.5, 0.5], [-1.5, 2.5]])
    )
    clipped = coord.unnormalize(x, (4, 2), clip=True)
    torch.testing.assert_close(
        clipped, torch.tensor([[0.0, 0.0], [3.0, 1.0], [1.5, 0.5], [0.0, 1.0]])
    )
    aligned = coord.unnormalize(x, (4, 2), align_corners=True)
    torch.testing.assert_close(
        aligned, torch.tensor([[0.0, 0.0], [3.0, 1.0], [1.5, 0.5], [-0.75, 1.5]])
    )


def test_normalize_errors():
    with pytest.raises(ValueError, match="size"):
        coord.normalize(torch.zeros(4, 2), (4, 4, 4))
    with pytest.raises(ValueError, match="size"):
        coord.normalize(torch.zeros(4, 2), (4, 0))
    with pytest.raises(ValueError, match="size must be >= 1, got 0"):
        coord.normalize(torch.zeros(4, 2), 0)
    with pytest.raises(TypeError, match="size"):
        coord.normalize(torch.zeros(4, 2), 4.0)
    with pytest.raises(TypeError, match="coord"):
        coord.normalize([[0.0, 0.0]], (4, 4))


# --- tensor_to_size ------------------------------------------------------------


def test_tensor_to_size():
    assert coord.tensor_to_size(torch.zeros(2, 3, 4, 5)) == (5, 4)
    assert coord.tensor_to_size(torch.zeros(2, 3, 4, 5, 6)) == (6, 5, 4)
    assert coord.tensor_to_size(torch.zeros(3, 4, 5)) == (5,)
    with pytest.raises(ValueError, match="at least one spatial dimension"):
        coord.tensor_to_size(torch.zeros(3, 4))


# --- full ------------------------------------------------------------------------


def test_full_2x2_known_values():
    out = coord.full(0, (2, 2))
    assert out.shape == (2, 2, 2)
    assert out.tolist() == [
        [[-0.5, -0.5], [0.5, -0.5]],
        [[-0.5, 0.5], [0.5, 0.5]],
    ]
    assert coord.full(0, (2, 2), align_corners=True).tolist() == [
        [[-1.0, -1.0], [1.0, -1.0]],
        [[-1.0, 1.0], [1.0, 1.0]],
    ]


def test_full_layout_is_xy_over_hw():
    w, h = 4, 3
    out = coord.full(0, (w, h), dtype=torch.float64)
    assert out.shape == (h, w, 2)
    # x varies along w (the last tensor dim), y along h.
    for j, i in itertools.product(range(h), range(w)):
        assert out[j, i].tolist() == [(2 * i + 1) / w - 1, (2 * j + 1) / h - 1]


def test_full_3d_layout():
    w, h, d = 4, 3, 2
    out = coord.full(0, (w, h, d), align_corners=True)
    assert out.shape == (d, h, w, 3)
    for k, j, i in itertools.product(range(d), range(h), range(w)):
        expected = [2 * i / (w - 1) - 1, 2 * j / (h - 1) - 1, 2 * k / (d - 1) - 1]
        torch.testing.assert_close(out[k, j, i], torch.tensor(expected))


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(5, 3), (4, 3, 2)])
def test_full_samples_every_pixel_exactly(size, align_corners):
    featmap = torch.randn(2, 3, *reversed(size), dtype=torch.float64)
    grid = coord.full(2, size, align_corners=align_corners, dtype=torch.float64)
    out = F.grid_sample(featmap, grid, mode="bilinear", align_corners=align_corners)
    torch.testing.assert_close(out, featmap, rtol=0, atol=1e-12)


def test_full_batch_dtype_device():
    out = coord.full(3, (5, 4), dtype=torch.float64, device="cpu")
    assert out.shape == (3, 4, 5, 2) and out.dtype == torch.float64
    assert torch.equal(out[2], coord.full(0, (5, 4), dtype=torch.float64))
    out[0, 0, 0, 0] = 7.0  # every batch element owns its memory
    assert out[1, 0, 0, 0] != 7.0


def test_full_nobatch_takes_the_batched_arguments():
    # As in the original torchsample: full.nobatch(batch, size) is full(1, size)[0].
    assert torch.equal(coord.full.nobatch(1, (5, 4)), coord.full(0, (5, 4)))
    assert torch.equal(coord.full.nobatch(3, (5, 4)), coord.full(0, (5, 4)))
    assert torch.equal(coord.full.nobatch(0, (5, 4)), coord.full(0, (5, 4)))
    assert coord.full.nobatch(1, (5, 4, 3), align_corners=True).shape == (3, 4, 5, 3)
    with pytest.raises(ValueError, match="batch must be >= 0"):
        coord.full.nobatch(-1, (5, 4))


def test_full_like():
    featmap = torch.zeros(2, 3, 4, 5, dtype=torch.float64)
    out = coord.full_like(featmap, align_corners=True)
    assert out.dtype == torch.float64
    assert torch.equal(out, coord.full(2, (5, 4), align_corners=True, dtype=torch.float64))
    labels = torch.zeros(2, 1, 6, 4, 5, dtype=torch.uint8)
    assert coord.full_like(labels).dtype == torch.get_default_dtype()
    assert coord.full_like(labels).shape == (2, 6, 4, 5, 3)
    assert torch.equal(
        coord.full_like.nobatch(featmap[0], align_corners=True),
        coord.full(0, (5, 4), align_corners=True, dtype=torch.float64),
    )


def test_full_errors():
    with pytest.raises(ValueError, match="batch"):
        coord.full(-1, (4, 4))
    with pytest.raises(TypeError, match="batch"):
        coord.full(1.0, (4, 4))
    with pytest.raises(ValueError, match="size"):
        coord.full(1, (4,))
    with pytest.raises(TypeError, match="dtype"):
        coord.full(1, (4, 4), dtype=torch.int64)
    with pytest.raises(ValueError, match="tensor"):
        coord.full_like(torch.zeros(4, 4))


# --- rand ------------------------------------------------------------------------


def test_rand_shapes_range_and_reproducibility():
    out = coord.rand(3, 1000, dims=3, dtype=torch.float64, generator=generator(1))
    assert out.shape == (3, 1000, 3) and out.dtype == torch.float64
    assert (out >= -1).all() and (out < 1).all()
    # Spread over the whole range, not e.g. [0, 1).
    assert out.min() < -0.95 and out.max() > 0.95
    assert torch.equal(
        out, coord.rand(3, 1000, dims=3, dtype=torch.float64, generator=generator(1))
    )
    assert not torch.equal(
        out, coord.rand(3, 1000, dims=3, dtype=torch.float64, generator=generator(2))
    )
    assert coord.rand(0, 10).shape == (10, 2)


def test_rand_errors():
    with pytest.raises(ValueError, match="dims must be >= 1"):
        coord.rand(1, 10, dims=0)
    assert coord.rand(1, 10, dims=4).shape == (1, 10, 4)  # any number, as the original
    with pytest.raises(ValueError, match="n_samples"):
        coord.rand(1, -1)
    assert coord.rand(2, 0).shape == (2, 0, 2)
    with pytest.raises(TypeError, match="dtype"):
        coord.rand(1, 10, dtype=torch.int32)


# --- randint ---------------------------------------------------------------------


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(7, 5), (4, 3, 5)])
def test_randint_lands_on_distinct_centers(size, align_corners):
    out = coord.randint(4, 30, size, align_corners=align_corners, generator=generator())
    assert out.shape == (4, 30, len(size))
    assert on_centers(out, size, align_corners)
    for element in out:
        assert len({tuple(c) for c in element.tolist()}) == 30


@pytest.mark.parametrize("align_corners", [False, True])
def test_randint_sampling_returns_stored_values(align_corners):
    featmap = torch.randn(2, 3, 6, 9, dtype=torch.float64)
    coords = coord.randint(2, 20, (9, 6), align_corners=align_corners, dtype=torch.float64)
    sampled = F.grid_sample(
        featmap, coords.unsqueeze(1), mode="bilinear", align_corners=align_corners
    ).squeeze(2)
    index = coord.unnormalize(coords, (9, 6), align_corners).round().long()
    for b in range(2):
        stored = featmap[b][:, index[b, :, 1], index[b, :, 0]]
        torch.testing.assert_close(sampled[b], stored, rtol=0, atol=1e-12)


def test_randint_all_pixels_is_a_permutation():
    out = coord.randint(0, 12, (4, 3), generator=generator())
    assert sorted(map(tuple, out.tolist())) == sorted(
        map(tuple, coord.full(0, (4, 3)).view(-1, 2).tolist())
    )


def test_randint_too_many_unique_samples():
    with pytest.raises(ValueError, match=r"n_samples must not exceed the number of pixels \(12"):
        coord.randint(1, 13, (4, 3))
    # With replacement any number is fine.
    out = coord.randint(1, 100, (2, 2), replace=True, generator=generator())
    assert out.shape == (1, 100, 2) and on_centers(out, (2, 2), False)


def test_randint_replace_is_roughly_uniform():
    out = coord.randint(0, 8000, (2, 2), replace=True, generator=generator())
    _, counts = torch.unique(out, dim=0, return_counts=True)
    assert counts.numel() == 4
    assert ((counts - 2000).abs() < 200).all()


def test_randint_reproducible():
    a = coord.randint(2, 10, (16, 16), generator=generator(3))
    b = coord.randint(2, 10, (16, 16), generator=generator(3))
    assert torch.equal(a, b)
    assert coord.randint(0, 10, (16, 16)).shape == (10, 2)


def test_randint_like():
    featmap = torch.zeros(3, 2, 5, 6, 7, dtype=torch.float64)
    out = coord.randint_like(40, featmap, align_corners=True, generator=generator())
    assert out.shape == (3, 40, 3) and out.dtype == torch.float64
    assert on_centers(out, (7, 6, 5), True)
    assert torch.equal(
        out,
        coord.randint(
            3, 40, (7, 6, 5), align_corners=True, generator=generator(), dtype=torch.float64
        ),
    )
    single = coord.randint_like.nobatch(40, featmap[0], generator=generator())
    assert single.shape == (40, 3)
    with pytest.raises(ValueError, match="n_samples"):
        coord.randint_like(211, featmap)


# --- rand_biased -----------------------------------------------------------------


def edge_logits(batch=2, size=32):
    """One-channel logits that cross zero (the uncertain edge) at x = 0."""
    ramp = torch.linspace(-8, 8, size)
    return ramp.expand(batch, 1, size, size).clone()


def test_rand_biased_prefers_the_edge():
    pred = edge_logits()
    out = coord.rand_biased(
        2, 200, pred, k=5.0, beta=0.75, criterion="margin", generator=generator()
    )
    assert out.shape == (2, 200, 2) and out.dtype == pred.dtype
    uncertain_part, uniform_part = out[:, :150], out[:, 150:]
    # The 150 chosen from 1000 uniform candidates are the 15% closest to x = 0.
    assert uncertain_part[..., 0].abs().max() < 0.25
    assert uniform_part[..., 0].abs().max() > 0.5
    # Sorted from most to least uncertain.
    distance = uncertain_part[..., 0].abs()
    assert (distance[:, :10].mean(1) < distance[:, -10:].mean(1)).all()


def test_rand_biased_multichannel_uses_top2_gap():
    # Class 0 wins for x < 0, class 1 for x > 0; a far-away class 2 never
    # matters. The gap between the top two closes at x = 0.
    x = torch.linspace(-1, 1, 32).expand(1, 32, 32)
    pred = torch.cat([-4 * x, 4 * x, torch.full_like(x, -100.0)]).unsqueeze(0)
    out = coord.rand_biased(
        1, 100, pred, k=10.0, beta=1.0, criterion="margin", generator=generator()
    )
    assert out[..., 0].abs().max() < 0.15


def test_rand_biased_beta_extremes_and_nobatch():
    pred = edge_logits(batch=1)
    uniform = coord.rand_biased(1, 100, pred, beta=0.0, generator=generator())
    assert uniform[..., 0].abs().max() > 0.9
    single = coord.rand_biased(0, 50, pred, generator=generator(5))
    assert single.shape == (50, 2)
    assert torch.equal(single, coord.rand_biased(1, 50, pred, generator=generator(5))[0])


def test_rand_biased_3d():
    ramp = torch.linspace(-8, 8, 16)
    pred = ramp.view(16, 1, 1).expand(1, 1, 16, 16, 16)  # z is the uncertain axis
    out = coord.rand_biased(
        1, 100, pred, k=10.0, beta=1.0, criterion="margin", generator=generator()
    )
    assert out.shape == (1, 100, 3)
    assert out[..., 2].abs().max() < 0.15


def test_rand_biased_errors():
    pred = edge_logits()
    with pytest.raises(ValueError, match="batch size 3"):
        coord.rand_biased(3, 10, pred)
    with pytest.raises(ValueError, match="k must be"):
        coord.rand_biased(2, 10, pred, k=0.5)
    with pytest.raises(ValueError, match="beta must be"):
        coord.rand_biased(2, 10, pred, beta=1.5)
    with pytest.raises(TypeError, match="pred"):
        coord.rand_biased(2, 10, pred.long())
    with pytest.raises(ValueError, match="batch size 1 when batch=0"):
        coord.rand_biased(0, 10, pred)
    with pytest.raises(ValueError, match=r"pred must have 4 or 5 dimensions"):
        coord.rand_biased(0, 10, pred[0])
    with pytest.raises(ValueError, match="k must be a finite number"):
        coord.rand_biased(2, 10, pred, k=float("inf"))
    with pytest.raises(ValueError, match="criterion must be one of"):
        coord.rand_biased(2, 10, pred, criterion="entropy")


# --- uncertain_pixels (batched; the original's uncertain is in test_legacy_api) ----


def test_uncertain_pixels_single_channel_margin_known_values():
    pred = torch.tensor(
        [[[[3.0, 0.4, -0.49], [-0.5, 0.0, 9.0]]], [[[0.1, 2.0, 2.0], [2.0, 2.0, 2.0]]]]
    )
    index, coords = coord.uncertain_pixels(pred, criterion="margin")
    assert index.tolist() == [[0, 0, 1], [0, 0, 2], [0, 1, 1], [1, 0, 0]]
    torch.testing.assert_close(
        coords, torch.tensor([[0.0, -0.5], [2 / 3, -0.5], [0.0, 0.5], [-2 / 3, -0.5]])
    )
    index, _ = coord.uncertain_pixels(pred, threshold=0.2, criterion="margin")
    assert index.tolist() == [[0, 1, 1], [1, 0, 0]]


def test_uncertain_pixels_multichannel_margin():
    # Per pixel: top-1 minus top-2 logit is 0.3, 1.0, 0.0, 5.0.
    logits = torch.tensor(
        [[1.0, 0.7, 0.1], [2.0, 1.0, -1.0], [0.5, 0.5, 0.5], [-5.0, 0.0, -7.0]]
    ).T.reshape(1, 3, 2, 2)
    index, coords = coord.uncertain_pixels(logits, criterion="margin")
    assert index.tolist() == [[0, 0, 0], [0, 1, 0]]
    assert coords.tolist() == [[-0.5, -0.5], [-0.5, 0.5]]


@pytest.mark.parametrize("align_corners", [False, True])
def test_uncertain_pixels_coords_are_the_indexed_centers(align_corners):
    pred = torch.randn(2, 1, 3, 4, 5, generator=generator())
    index, coords = coord.uncertain_pixels(
        pred, threshold=1.0, align_corners=align_corners, criterion="margin"
    )
    assert index.shape[1] == 4 and coords.shape == (index.shape[0], 3)
    assert torch.equal(index, torch.nonzero(pred[:, 0].abs() < 1.0))
    b, z, y, x = index.unbind(1)
    centers = coord.full_like(pred, align_corners=align_corners)
    assert torch.equal(coords, centers[b, z, y, x])


@pytest.mark.parametrize("function", [coord.uncertain, coord.uncertain_pixels])
def test_uncertain_errors(function):
    with pytest.raises(ValueError, match="pred"):
        function(torch.zeros(1, 4, 4))
    with pytest.raises(TypeError, match="pred"):
        function(torch.zeros(1, 1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="at least one channel"):
        function(torch.zeros(1, 0, 4, 4))
    with pytest.raises(TypeError, match="threshold"):
        function(torch.zeros(1, 1, 4, 4), threshold="0.5")
    with pytest.raises(ValueError, match="criterion must be one of"):
        function(torch.zeros(1, 1, 4, 4), criterion="logits")


def test_uncertain_needs_a_batch_of_one():
    with pytest.raises(ValueError, match="batch of one.*uncertain_pixels"):
        coord.uncertain(torch.zeros(2, 1, 4, 4))
