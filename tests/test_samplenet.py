"""SampleNet: shapes, losses, and that training lowers the loss."""

import pytest
import torch

from torchsample.models import SampleNet
from torchsample.points import chamfer_distance


def make(**kwargs):
    torch.manual_seed(0)
    options = {"num_out_points": 12, "bottleneck_size": 32, "group_size": 4}
    options.update(kwargs)
    return SampleNet(**options)


def test_train_and_eval_shapes_and_matching():
    sampler = make()
    cloud = torch.rand(3, 100, 3)
    simplified, projected = sampler(cloud)
    assert simplified.shape == projected.shape == (3, 12, 3)
    assert projected.requires_grad
    sampler.eval()
    simplified, matched = sampler(cloud)
    assert simplified.shape == matched.shape == (3, 12, 3)
    # Evaluation returns distinct points of the input cloud.
    equal = (matched[:, :, None, :] == cloud[:, None, :, :]).all(-1)
    assert equal.any(-1).all()
    assert all(len({tuple(p) for p in row.tolist()}) == 12 for row in matched)


def test_channel_first_layouts_and_skip_projection():
    sampler = make(input_shape="bcn", output_shape="bcn", skip_projection=True)
    cloud = torch.rand(2, 3, 50)
    simplified, second = sampler(cloud)
    assert simplified.shape == (2, 3, 12) and torch.equal(simplified, second)
    assert sampler.get_projection_loss() == 0
    with pytest.raises(ValueError, match=r"x must be \(b, 3, n\)"):
        sampler(torch.rand(2, 50, 3))


def test_eval_without_completion_returns_raw_matches():
    sampler = make(complete_fps=False).eval()
    cloud = torch.rand(2, 40, 3)
    simplified, matched = sampler(cloud)
    nearest = torch.cdist(simplified, cloud).argmin(dim=2)
    assert torch.equal(matched, cloud[torch.arange(2)[:, None], nearest])


def test_losses_follow_their_definitions():
    sampler = make(initial_temperature=0.5)
    ref, samp = torch.rand(2, 30, 3), torch.rand(2, 8, 3)
    _, cost_samp, cost_ref = chamfer_distance(samp, ref)
    expected = (
        cost_samp.mean() + cost_samp.max(dim=1).values.mean() + (1 + 0.1 * 8) * cost_ref.mean()
    )
    loss = sampler.get_simplification_loss(ref, samp, 8, gamma=1, delta=0.1)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(sampler.get_projection_loss(), torch.tensor(0.25))
    assert sampler.eval().get_projection_loss() == 0


def test_few_optimizer_steps_lower_the_loss():
    sampler = make(num_out_points=16)
    torch.manual_seed(1)
    cloud = torch.rand(8, 128, 3)
    optimizer = torch.optim.Adam(sampler.parameters(), lr=1e-3)

    def loss_now():
        simplified, projected = sampler(cloud)
        return (
            sampler.get_simplification_loss(cloud, simplified, 16)
            + sampler.get_projection_loss()
            + chamfer_distance(projected, cloud)[0]
        )

    first = loss_now().item()
    for _ in range(30):
        optimizer.zero_grad()
        loss_now().backward()
        optimizer.step()
    assert loss_now().item() < 0.7 * first


def test_constructor_errors():
    with pytest.raises(ValueError, match="input_shape must be one of"):
        make(input_shape="nbc")
    with pytest.raises(ValueError, match="num_out_points must be >= 1"):
        make(num_out_points=0)
