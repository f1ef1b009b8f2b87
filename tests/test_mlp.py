import functools

import pytest
import torch
from torch import nn

from torchsample.models import MLP


def test_layers_and_widths():
    mlp = MLP(2, 32, 16, 3)
    kinds = [type(m) for m in mlp.layers]
    assert kinds == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    linears = [m for m in mlp.layers if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2, 32), (32, 16), (16, 3)]


def test_widths_as_one_list_or_tuple():
    for widths in ([2, 8, 1], (2, 8, 1), torch.Size([2, 8, 1])):
        mlp = MLP(widths)
        assert repr(mlp) == repr(MLP(2, 8, 1))


def test_single_layer_has_no_activation():
    mlp = MLP(5, 3)
    assert len(mlp.layers) == 1 and isinstance(mlp.layers[0], nn.Linear)


@pytest.mark.parametrize("leading", [(), (7,), (2, 3), (2, 4, 5, 6)])
def test_any_rank_features_last(leading):
    mlp = MLP(3, 8, 4)
    x = torch.randn(*leading, 3)
    out = mlp(x)
    assert out.shape == (*leading, 4)
    # Every position goes through the same network independently.
    torch.testing.assert_close(out.reshape(-1, 4), mlp(x.reshape(-1, 3)))


def test_forward_matches_explicit_computation():
    torch.manual_seed(0)
    mlp = MLP(2, 4, 1)
    x = torch.randn(10, 2)
    first, second = mlp.layers[0], mlp.layers[2]
    expected = torch.relu(x @ first.weight.T + first.bias) @ second.weight.T + second.bias
    torch.testing.assert_close(mlp(x), expected)


def test_no_activation_after_last_layer():
    mlp = MLP(1, 1)
    with torch.no_grad():
        mlp.layers[0].weight.fill_(1.0)
        mlp.layers[0].bias.fill_(0.0)
    assert mlp(torch.tensor([[-3.0]])).item() == -3.0


def test_custom_activation_factories():
    mlp = MLP(2, 8, 8, 1, activation=nn.Tanh)
    assert [type(m) for m in mlp.layers][1::2] == [nn.Tanh, nn.Tanh]
    leaky = MLP(2, 8, 8, 1, activation=functools.partial(nn.LeakyReLU, 0.2))
    assert all(m.negative_slope == 0.2 for m in leaky.layers[1::2])
    # One instance per hidden layer, never shared.
    assert leaky.layers[1] is not leaky.layers[3]


def test_errors():
    with pytest.raises(ValueError, match="at least two widths"):
        MLP(3)
    with pytest.raises(ValueError, match="at least two widths"):
        MLP([3])
    with pytest.raises(ValueError, match=r"layers\[1\]"):
        MLP(3, 0, 1)
    with pytest.raises(TypeError, match=r"layers\[0\]"):
        MLP(2.0, 1)
    with pytest.raises(TypeError, match="not a module instance"):
        MLP(2, 4, 1, activation=nn.ReLU())
    with pytest.raises(TypeError, match="activation must be a callable"):
        MLP(2, 4, 1, activation="relu")
    with pytest.raises(TypeError, match="activation must return an nn.Module"):
        MLP(2, 4, 1, activation=lambda: torch.relu)
