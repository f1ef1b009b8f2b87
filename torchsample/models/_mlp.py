"""A plain multilayer perceptron for features-last inputs."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .._checks import check_positive_int

__all__ = ["MLP"]


def _widths(layers: tuple) -> list[int]:
    if len(layers) == 1 and isinstance(layers[0], Sequence):
        layers = tuple(layers[0])
    if len(layers) < 2:
        raise ValueError(
            f"layers must give at least two widths (input and output), got {list(layers)!r}"
        )
    return [check_positive_int(f"layers[{i}]", width) for i, width in enumerate(layers)]


def _activation(activation: object) -> Callable[[torch.Tensor], torch.Tensor]:
    if activation is None:
        return nn.ReLU(inplace=True)
    if isinstance(activation, type) and issubclass(activation, nn.Module):
        return activation()
    if not callable(activation):
        raise TypeError(
            f"activation must be a callable applied to tensors (such as torch.sin or "
            f"nn.GELU()) or an nn.Module class, got {activation!r}"
        )
    return activation


class MLP(nn.Module):
    """Fully connected network: linear layers with an activation between them.

    One linear layer per consecutive pair of widths, the activation after
    every linear layer but the last, so the output is unbounded (apply a
    sigmoid or similar yourself if needed). ``nn.Linear`` acts on the last
    dimension, so inputs may have any number of leading dimensions, as
    sampled features (``feat_last=True``) do. Layout, defaults and
    ``state_dict`` keys (``layers.0.weight``, ``layers.1.weight``, ...) are
    those of the original torchsample, whose checkpoints load unchanged.

    Parameters
    ----------
    *layers : int or sequence of int
        Widths, input first and output last, as separate ints or as one
        list or tuple; at least two.
    activation : callable or nn.Module class, optional
        Applied after every hidden layer: a function such as ``torch.sin``
        or ``torch.nn.functional.gelu``, or a module instance such as
        ``nn.GELU()`` (one instance, shared by every hidden layer, so a
        learnable activation like ``nn.PReLU()`` has one set of
        parameters). A module class such as ``nn.GELU`` is instantiated once
        with no arguments. Defaults to ``nn.ReLU(inplace=True)``.

    Attributes
    ----------
    layers : nn.ModuleList
        The linear layers, in order.
    activation : callable
        The activation.

    Shape
    -----
    - input: ``(..., layers[0])``
    - output: ``(..., layers[-1])``

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from torchsample.models import MLP
    >>> MLP(2, 64, 64, 3)(torch.rand(4, 32, 32, 2)).shape
    torch.Size([4, 32, 32, 3])
    >>> MLP([2, 16, 1], activation=nn.GELU())
    MLP(
      (activation): GELU(approximate='none')
      (layers): ModuleList(
        (0): Linear(in_features=2, out_features=16, bias=True)
        (1): Linear(in_features=16, out_features=1, bias=True)
      )
    )
    >>> MLP(2, 16, 1, activation=torch.sin)
    MLP(
      activation=sin
      (layers): ModuleList(
        (0): Linear(in_features=2, out_features=16, bias=True)
        (1): Linear(in_features=16, out_features=1, bias=True)
      )
    )
    """

    def __init__(
        self,
        *layers: int | Sequence[int],
        activation: Callable[[torch.Tensor], torch.Tensor] | type[nn.Module] | None = None,
    ) -> None:
        super().__init__()
        widths = _widths(layers)
        self.activation = _activation(activation)
        self.layers = nn.ModuleList(
            nn.Linear(width_in, width_out) for width_in, width_out in itertools.pairwise(widths)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)

    def extra_repr(self) -> str:
        # A module activation shows up as a child; a plain function needs naming.
        if isinstance(self.activation, nn.Module):
            return ""
        return f"activation={getattr(self.activation, '__name__', repr(self.activation))}"
