import math

import pytest
import torch
from torch import nn

from torchsample.models import MLP, Siren
from torchsample.models._siren import Sine


@pytest.mark.parametrize("w0", [30.0, 5.0])
def test_initialization_bounds(w0):
    torch.manual_seed(0)
    net = Siren(3, 512, 512, 256, 1, w0=w0)
    bounds = [1 / 3] + [math.sqrt(6 / fan_in) / w0 for fan_in in (512, 512, 256)]
    for linear, bound in zip(net.layers, bounds, strict=True):
        weight = linear.weight.detach()
        assert weight.abs().max() <= bound
        # Uniform on (-bound, bound): fills the interval, std bound / sqrt(3).
        assert weight.abs().max() > 0.9 * bound
        assert weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)


def test_layout_sine_between_linears_and_a_linear_output():
    net = Siren([2, 16, 16, 4], w0=12.0)
    assert [type(m) for m in net.layers] == [nn.Linear, nn.Linear, nn.Linear]
    assert isinstance(net.activation, Sine) and net.activation.w0 == 12.0
    assert isinstance(net, MLP)
    assert net(torch.rand(5, 7, 2)).shape == (5, 7, 4)


def test_forward_is_sine_of_scaled_affine_maps():
    torch.manual_seed(1)
    net = Siren(2, 8, 3, w0=30.0)
    first, last = net.layers
    x = torch.rand(10, 2) * 2 - 1
    expected = torch.sin(30.0 * (x @ first.weight.T + first.bias)) @ last.weight.T + last.bias
    torch.testing.assert_close(net(x), expected)


def test_sine_known_values():
    torch.testing.assert_close(
        Sine(3.0)(torch.tensor([0.0, math.pi / 6, -math.pi / 6])), torch.tensor([0.0, 1.0, -1.0])
    )


def test_hidden_activations_keep_the_arcsine_distribution_through_depth():
    # The point of the SIREN initialization: sin(w0 * Wx + b) has the arcsine
    # distribution on [-1, 1] (std 1/sqrt(2)) at every depth, neither
    # vanishing nor saturating.
    torch.manual_seed(2)
    net = Siren(2, *[256] * 6, 1)
    activation = torch.rand(4096, 2) * 2 - 1
    stds = []
    for linear in net.layers[:-1]:
        activation = net.activation(linear(activation))
        stds.append(activation.std().item())
    assert len(stds) == 6
    for std in stds:
        assert std == pytest.approx(1 / math.sqrt(2), abs=0.05)


def test_second_derivatives():
    torch.manual_seed(3)
    net = Siren(2, 8, 1).double()
    x = torch.rand(3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(net, (x,))


@pytest.mark.parametrize("w0", [0, -1.0, "30", True])
def test_invalid_w0(w0):
    with pytest.raises(ValueError, match="w0 must be a positive number"):
        Siren(2, 8, 1, w0=w0)


def test_invalid_layers_are_reported_like_mlp():
    with pytest.raises(ValueError, match="at least two widths"):
        Siren(3)
