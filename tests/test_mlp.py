import functools
import itertools

import pytest
import torch
from torch import nn

from torchsample.models import MLP


def test_layers_and_widths():
    mlp = MLP(2, 32, 16, 3)
    assert isinstance(mlp.layers, nn.ModuleList)
    assert [(m.in_features, m.out_features) for m in mlp.layers] == [(2, 32), (32, 16), (16, 3)]
    # The original torchsample's default: one in-place ReLU.
    assert isinstance(mlp.activation, nn.ReLU) and mlp.activation.inplace


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
    first, second = mlp.layers
    expected = torch.relu(x @ first.weight.T + first.bias) @ second.weight.T + second.bias
    torch.testing.assert_close(mlp(x), expected)


def test_no_activation_after_last_layer():
    mlp = MLP(1, 1)
    with torch.no_grad():
        mlp.layers[0].weight.fill_(1.0)
        mlp.layers[0].bias.fill_(0.0)
    assert mlp(torch.tensor([[-3.0]])).item() == -3.0


def explicit_forward(mlp, x, activation):
    for linear in mlp.layers[:-1]:
        x = activation(x @ linear.weight.T + linear.bias)
    last = mlp.layers[-1]
    return x @ last.weight.T + last.bias


@pytest.mark.parametrize(
    "activation, expected",
    [
        (torch.sin, torch.sin),  # a function
        (nn.ReLU(inplace=True), torch.relu),  # a module instance, as in the original
        (
            functools.partial(torch.nn.functional.leaky_relu, negative_slope=0.2),
            lambda x: torch.where(x > 0, x, 0.2 * x),
        ),
        (nn.Tanh, torch.tanh),  # a module class, instantiated once
    ],
)
def test_activations(activation, expected):
    torch.manual_seed(0)
    mlp = MLP(2, 8, 8, 1, activation=activation)
    x = torch.randn(5, 2)
    torch.testing.assert_close(mlp(x), explicit_forward(mlp, x, expected))


def test_a_module_activation_is_one_shared_submodule():
    mlp = MLP(2, 8, 8, 1, activation=nn.PReLU())
    assert isinstance(mlp.activation, nn.PReLU)
    assert sorted(mlp.state_dict()) == [
        "activation.weight",
        *(f"layers.{i}.{p}" for i in range(3) for p in ("bias", "weight")),
    ]


def test_original_torchsample_checkpoint_loads():
    # The original's MLP stored only its Linear layers, as layers.0, layers.1, ...
    torch.manual_seed(0)
    widths = [3, 16, 16, 2]
    state = {}
    for i, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
        state[f"layers.{i}.weight"] = torch.randn(n_out, n_in)
        state[f"layers.{i}.bias"] = torch.randn(n_out)
    mlp = MLP(*widths)
    mlp.load_state_dict(state)  # strict: no missing or unexpected keys
    x = torch.randn(4, 7, 3)
    expected = x
    for i in range(3):
        expected = expected @ state[f"layers.{i}.weight"].T + state[f"layers.{i}.bias"]
        expected = torch.relu(expected) if i < 2 else expected
    torch.testing.assert_close(mlp(x), expected)


def test_repr_names_a_function_activation():
    assert "activation=sin" in repr(MLP(2, 4, 1, activation=torch.sin))


def test_errors():
    with pytest.raises(ValueError, match="at least two widths"):
        MLP(3)
    with pytest.raises(ValueError, match="at least two widths"):
        MLP([3])
    with pytest.raises(ValueError, match=r"layers\[1\]"):
        MLP(3, 0, 1)
    with pytest.raises(TypeError, match=r"layers\[0\]"):
        MLP(2.0, 1)
    with pytest.raises(TypeError, match="activation must be a callable"):
        MLP(2, 4, 1, activation="relu")
