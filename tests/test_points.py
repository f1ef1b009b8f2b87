"""torchsample.points against brute-force definitions."""

import math

import pytest
import torch

from torchsample.ops import compiled as compiled_backend
from torchsample.ops import reference as reference_backend
from torchsample.points import (
    SoftProjection,
    _knn,
    chamfer_distance,
    farthest_point_sample,
    knn,
    nn_matching,
    random_sample,
)


@pytest.fixture(scope="module")
def compiled_fps():
    if compiled_backend.unavailable_reason() is not None:
        pytest.skip("the compiled extension is not available")
    return compiled_backend.farthest_point_sample


def brute_force_fps(points, n_samples, start, initial=None):
    """The definition: next is the unchosen point farthest from the chosen set."""
    chosen = [start]
    for _ in range(1, n_samples):
        delta = points[:, None, :] - points[chosen][None, :, :]
        distance = (delta * delta).sum(-1).min(dim=1).values
        if initial is not None:
            distance = torch.minimum(distance, initial)
        distance[chosen] = -1
        chosen.append(int(distance.argmax()))
    return torch.tensor(chosen)


def full(points):
    return torch.full((points.shape[0],), points.shape[1], dtype=torch.long)


# ---------------------------------------------------------------- farthest point sampling


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("start", [0, 17])
def test_fps_matches_brute_force(dtype, start):
    torch.manual_seed(0)
    points = torch.randn(3, 300, 3, dtype=dtype)
    sampled, indices = farthest_point_sample(points, 40, start_index=start)
    for cloud, found in zip(points, indices):
        assert torch.equal(found, brute_force_fps(cloud, 40, start))
    assert torch.equal(sampled, points[torch.arange(3)[:, None], indices])


def test_fps_reference_matches_brute_force():
    torch.manual_seed(1)
    points = torch.rand(2, 200, 3)
    indices = reference_backend.farthest_point_sample(
        points, full(points), 50, torch.tensor([0, 5])
    )
    assert torch.equal(indices[0], brute_force_fps(points[0], 50, 0))
    assert torch.equal(indices[1], brute_force_fps(points[1], 50, 5))


def _tie_heavy_cloud():
    # A grid listed twice: every step has ties, and duplicates reach distance zero.
    axis = torch.arange(5.0)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    return torch.cat([grid, grid])[None]


@pytest.mark.parametrize(
    "points",
    [torch.rand(2, 5000, 3, generator=torch.Generator().manual_seed(2)), _tie_heavy_cloud()],
    ids=["random", "ties"],
)
def test_fps_compiled_equals_reference(compiled_fps, points):
    n = points.shape[1]
    starts = torch.arange(points.shape[0]) * 7
    n_samples = min(n, 600)
    compiled = compiled_fps(points, full(points), n_samples, starts, None)
    reference = reference_backend.farthest_point_sample(points, full(points), n_samples, starts)
    assert torch.equal(compiled, reference)
    assert all(len(set(row.tolist())) == n_samples for row in compiled)


def test_fps_ties_pick_smallest_index_and_exhaust_duplicates():
    points = _tie_heavy_cloud()
    n = points.shape[1]
    _, indices = farthest_point_sample(points, n)
    assert sorted(indices[0].tolist()) == list(range(n))
    assert torch.equal(indices[0, :100], brute_force_fps(points[0], 100, 0))


def test_fps_compiled_equals_reference_float64_and_seeded(compiled_fps):
    torch.manual_seed(3)
    points = torch.randn(2, 2000, 3, dtype=torch.float64)
    initial = torch.rand(2, 2000, dtype=torch.float64)
    initial[:, :10] = -1
    starts = initial.argmax(dim=1)
    compiled = compiled_fps(points, full(points), 300, starts, initial)
    reference = reference_backend.farthest_point_sample(points, full(points), 300, starts, initial)
    assert torch.equal(compiled, reference)
    assert torch.equal(compiled[1, :60], brute_force_fps(points[1], 60, int(starts[1]), initial[1]))


def test_fps_padded_batch_equals_clouds_alone():
    torch.manual_seed(4)
    points = torch.rand(3, 120, 3)
    lengths = torch.tensor([120, 50, 31])
    points[1, 50:] = 100.0  # padding far away must be ignored, not picked
    points[2, 31:] = float("nan")
    _, indices = farthest_point_sample(
        points, 30, lengths=lengths, start_index=torch.tensor([3, 0, 30])
    )
    for cloud, length, start, found in zip(points, lengths, [3, 0, 30], indices):
        assert torch.equal(found, brute_force_fps(cloud[:length], 30, start))


def test_fps_padded_batch_reference_path():
    torch.manual_seed(5)
    points = torch.rand(2, 80, 3)
    points[1, 20:] = float("nan")
    lengths = torch.tensor([80, 20])
    indices = reference_backend.farthest_point_sample(points, lengths, 20, torch.tensor([0, 1]))
    assert torch.equal(indices[1], brute_force_fps(points[1, :20], 20, 1))


def test_fps_nobatch_gradient_and_half_precision():
    torch.manual_seed(6)
    points = torch.rand(64, 3, requires_grad=True)
    sampled, indices = farthest_point_sample.nobatch(points, 8)
    assert sampled.shape == (8, 3) and indices.shape == (8,)
    sampled.sum().backward()
    assert points.grad.sum() == 24 and points.grad[indices].eq(1).all()
    half_sampled, half_indices = farthest_point_sample(points.detach().half()[None], 8)
    assert half_sampled.dtype == torch.float16 and half_indices.shape == (1, 8)


def test_fps_errors():
    points = torch.rand(2, 10, 3)
    with pytest.raises(ValueError, match="n_samples must not exceed.*smallest cloud has 4"):
        farthest_point_sample(points, 5, lengths=torch.tensor([10, 4]))
    with pytest.raises(ValueError, match="n_samples must not exceed"):
        farthest_point_sample(points, 11)
    with pytest.raises(ValueError, match="start_index must lie in"):
        farthest_point_sample(points, 2, lengths=torch.tensor([10, 4]), start_index=5)
    with pytest.raises(ValueError, match="3 coordinates"):
        farthest_point_sample(torch.rand(2, 10, 2), 2)
    with pytest.raises(ValueError, match="lengths must lie in"):
        farthest_point_sample(points, 2, lengths=torch.tensor([10, 11]))
    with pytest.raises(TypeError, match="n_samples must be an int"):
        farthest_point_sample(points, 2.0)
    with pytest.raises(TypeError, match="floating-point"):
        farthest_point_sample(points.long(), 2)
    with pytest.raises(TypeError, match="start_index must have an integer dtype"):
        farthest_point_sample(points, 2, start_index=torch.tensor([2.7, 0.0]))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_fps_and_nn_matching_reject_non_finite_points(bad):
    # NaN distances compare false both ways: points were picked twice.
    points = torch.rand(2, 10, 3)
    points[1, 4, 2] = bad
    with pytest.raises(ValueError, match="points must be finite, got .* at point 4 of cloud 1"):
        farthest_point_sample(points, 6)
    with pytest.raises(ValueError, match="points must be finite"):
        nn_matching(points, torch.zeros(2, 3, dtype=torch.long), 6)
    # Padding past a cloud's length may hold anything.
    _, indices = farthest_point_sample(points, 4, lengths=torch.tensor([10, 4]))
    assert all(len(set(row.tolist())) == 4 for row in indices)


# ---------------------------------------------------------------- random sampling


def test_random_sample_distinct_reproducible():
    points = torch.rand(4, 50, 3)
    first = random_sample(points, 20, generator=torch.Generator().manual_seed(0))
    second = random_sample(points, 20, generator=torch.Generator().manual_seed(0))
    assert torch.equal(first[1], second[1])
    assert all(len(set(row.tolist())) == 20 for row in first[1])
    assert torch.equal(first[0], points[torch.arange(4)[:, None], first[1]])
    assert random_sample.nobatch(points[0], 3)[0].shape == (3, 3)
    with pytest.raises(ValueError, match="at most the number of points 50"):
        random_sample(points, 51)


# ---------------------------------------------------------------- kNN


def brute_force_knn(query, points, k):
    distance = torch.cdist(query.double(), points.double()) ** 2
    return distance.topk(k, dim=-1, largest=False)


def test_knn_matches_brute_force():
    torch.manual_seed(7)
    query, points = torch.rand(2, 70, 3), torch.rand(2, 90, 3)
    distances, indices = knn(query, points, 5)
    expected_d, expected_i = brute_force_knn(query, points, 5)
    assert torch.equal(indices, expected_i)
    torch.testing.assert_close(distances, expected_d.float())
    assert (distances[..., 1:] >= distances[..., :-1]).all()


def test_knn_lengths_nobatch_and_other_dimensions():
    torch.manual_seed(8)
    query, points = torch.rand(2, 30, 5), torch.rand(2, 40, 5)
    _, indices = knn(query, points, 3, lengths=torch.tensor([40, 12]))
    assert torch.equal(indices[1], brute_force_knn(query[1], points[1, :12], 3)[1])
    assert torch.equal(indices[0], brute_force_knn(query[0], points[0], 3)[1])
    d, i = knn.nobatch(query[0], points[0], 2)
    assert d.shape == i.shape == (30, 2)
    with pytest.raises(ValueError, match="k must not exceed.*smallest cloud has 12"):
        knn(query, points, 13, lengths=torch.tensor([40, 12]))
    with pytest.raises(ValueError, match="same batch size and number of coordinates"):
        knn(query, points[..., :3], 2)


def test_knn_chunks_stay_within_budget_and_match(monkeypatch):
    torch.manual_seed(9)
    query, points = torch.rand(2, 100, 3), torch.rand(2, 64, 3)
    lengths = torch.tensor([64, 40])
    whole = _knn._knn_chunked(query, points, 4, lengths, budget_bytes=2**40)
    blocks = []
    original = _knn._squared_distances

    def spy(q, p):
        result = original(q, p)
        blocks.append(result.numel() * result.element_size())
        return result

    monkeypatch.setattr(_knn, "_squared_distances", spy)
    budget = 2 * 2 * 64 * 4 * 7  # seven query rows per chunk
    chunked = _knn._knn_chunked(query, points, 4, lengths, budget_bytes=budget)
    assert len(blocks) == math.ceil(100 / 7)
    assert max(blocks) * 2 <= budget
    assert torch.equal(whole[0], chunked[0]) and torch.equal(whole[1], chunked[1])


def test_knn_distance_gradients():
    torch.manual_seed(10)
    query = torch.rand(1, 6, 3, dtype=torch.float64, requires_grad=True)
    points = torch.rand(1, 9, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda q, p: knn(q, p, 3)[0], (query, points))


# ---------------------------------------------------------------- Chamfer


def test_chamfer_matches_brute_force():
    torch.manual_seed(11)
    a, b = torch.rand(3, 40, 3), torch.rand(3, 25, 3)
    distance, cost_a, cost_b = chamfer_distance(a, b)
    pairwise = torch.cdist(a.double(), b.double()) ** 2
    torch.testing.assert_close(cost_a, pairwise.min(dim=2).values.float())
    torch.testing.assert_close(cost_b, pairwise.min(dim=1).values.float())
    per_cloud = cost_a.mean(1) + cost_b.mean(1)
    torch.testing.assert_close(distance, per_cloud.mean())
    torch.testing.assert_close(chamfer_distance(a, b, reduction="sum")[0], per_cloud.sum())
    torch.testing.assert_close(chamfer_distance(a, b, reduction="none")[0], per_cloud)
    with pytest.raises(ValueError, match="reduction must be one of"):
        chamfer_distance(a, b, reduction="max")


def test_chamfer_gradcheck():
    torch.manual_seed(12)
    a = torch.rand(2, 7, 3, dtype=torch.float64, requires_grad=True)
    b = torch.rand(2, 5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: chamfer_distance(x, y)[0], (a, b))
    assert torch.autograd.gradgradcheck(lambda x, y: chamfer_distance(x, y)[0], (a, b))


# ---------------------------------------------------------------- soft projection


def test_soft_projection_hand_computed():
    cloud = torch.tensor([[[0.0, 0, 0], [1, 0, 0], [5, 5, 5]]])
    query = torch.tensor([[[0.25, 0, 0]]])
    projection = SoftProjection(group_size=2, initial_temperature=1.0)
    # weights softmax(-[0.0625, 0.5625]) = [1, e^-0.5] / (1 + e^-0.5)
    expected = math.exp(-0.5) / (1 + math.exp(-0.5))
    projected = projection.project(cloud, query)
    torch.testing.assert_close(projected, torch.tensor([[[expected, 0.0, 0.0]]]))
    features = torch.tensor([[[2.0], [4.0], [100.0]]])
    propagated = projection.propagate(cloud, features, query)
    torch.testing.assert_close(propagated, torch.tensor([[[2 + 2 * expected]]]))
    both = projection.project_and_propagate(cloud, features, query)
    torch.testing.assert_close(both[0], projected)
    torch.testing.assert_close(both[1], propagated)


def test_soft_projection_sigma_and_small_temperature_limit():
    projection = SoftProjection(4, initial_temperature=0.5, min_sigma=1e-4)
    torch.testing.assert_close(projection.sigma(), torch.tensor(0.25))
    assert SoftProjection(4, initial_temperature=1e-3, min_sigma=1e-4).sigma() == 1e-4
    assert not SoftProjection(4, is_temperature_trainable=False).temperature.requires_grad

    torch.manual_seed(13)
    cloud, query = torch.rand(2, 50, 3), torch.rand(2, 10, 3)
    cold = SoftProjection(8, initial_temperature=1e-4, min_sigma=1e-8)
    _, nearest = knn(query, cloud, 1)
    expected = cloud[torch.arange(2)[:, None], nearest[..., 0]]
    torch.testing.assert_close(cold.project(cloud, query), expected)


def test_soft_projection_matches_definition():
    torch.manual_seed(14)
    cloud = torch.rand(2, 30, 3, dtype=torch.float64)
    query = torch.rand(2, 6, 3, dtype=torch.float64)
    features = torch.rand(2, 30, 4, dtype=torch.float64)
    projection = SoftProjection(5, initial_temperature=0.3).double()
    projected, propagated = projection.project_and_propagate(cloud, features, query)
    sigma = max(0.3**2, 1e-4)
    for b in range(2):
        for j in range(6):
            squared = ((cloud[b] - query[b, j]) ** 2).sum(-1)
            group = squared.argsort()[:5]
            weights = torch.softmax(-squared[group] / sigma, dim=0)
            torch.testing.assert_close(projected[b, j], weights @ cloud[b, group])
            torch.testing.assert_close(propagated[b, j], weights @ features[b, group])


def test_soft_projection_gradcheck():
    torch.manual_seed(15)
    projection = SoftProjection(3, initial_temperature=0.4).double()
    cloud = torch.rand(1, 8, 3, dtype=torch.float64, requires_grad=True)
    query = torch.rand(1, 4, 3, dtype=torch.float64, requires_grad=True)
    features = torch.rand(1, 8, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(projection.project, (cloud, query))
    assert torch.autograd.gradcheck(projection.propagate, (cloud, features, query))
    projection.project(cloud, query).sum().backward()
    assert projection.temperature.grad is not None and projection.temperature.grad != 0


def test_soft_projection_errors():
    with pytest.raises(ValueError, match="group_size must be >= 1"):
        SoftProjection(0)
    with pytest.raises(ValueError, match="min_sigma must be > 0"):
        SoftProjection(2, min_sigma=0.0)
    with pytest.raises(ValueError, match="same batch size"):
        SoftProjection(2).project(torch.rand(2, 5, 3), torch.rand(1, 3, 3))


# ---------------------------------------------------------------- nn_matching


def test_nn_matching_unique_then_seeded_fps():
    torch.manual_seed(16)
    cloud = torch.rand(3, 60, 3)
    proposals = torch.tensor([[4, 4, 9, 4, 1, 9], [7] * 6, [0, 1, 2, 3, 4, 5]])
    matched, indices = nn_matching(cloud, proposals, 6)
    assert torch.equal(matched, cloud[torch.arange(3)[:, None], indices])
    for b, unique in enumerate([[4, 9, 1], [7], [0, 1, 2, 3, 4, 5]]):
        row = indices[b].tolist()
        assert len(set(row)) == 6 and row[: len(unique)] == unique
        # The completion is farthest point sampling continued from the matches.
        seeds = torch.tensor(unique)
        initial = ((cloud[b][:, None] - cloud[b][seeds][None]) ** 2).sum(-1).min(1).values
        initial[seeds] = -1
        if len(unique) < 6:
            expected = brute_force_fps(cloud[b], 7 - len(unique), int(initial.argmax()), initial)
            assert row[len(unique) :] == expected[: 6 - len(unique)].tolist()


def test_nn_matching_without_completion_and_errors():
    cloud = torch.rand(1, 10, 3)
    proposals = torch.tensor([[3, 3, 8]])
    matched, indices = nn_matching(cloud, proposals, 2, complete_fps=False)
    assert indices.tolist() == [[3, 3]] and torch.equal(matched[0], cloud[0, [3, 3]])
    with pytest.raises(ValueError, match="at most the number of proposals 3"):
        nn_matching(cloud, proposals, 4, complete_fps=False)
    with pytest.raises(ValueError, match="at most the number of points 10"):
        nn_matching(cloud, proposals, 11)
    with pytest.raises(ValueError, match=r"lie in \[0, 10\)"):
        nn_matching(cloud, torch.tensor([[10]]), 2)
