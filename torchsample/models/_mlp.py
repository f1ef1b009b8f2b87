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


class MLP(nn.Module):
    """Fully connected network: linear layers with an activation between them.

    ``MLP(2, 256, 256, 3).layers`` is
    ``Sequential(Linear(2, 256), ReLU(), Linear(256, 256), ReLU(), Linear(256, 3))``:
    one linear layer per consecutive pair of widths, the activation after
    every linear layer but the last, so the output is unbounded (apply a
    sigmoid or similar yourself if needed). ``nn.Linear`` acts on the last
    dimension, so inputs may have any number of leading dimensions, as
    sampled features (``feat_last=True``) do.

    Parameters
    ----------
    *layers : int or sequence of int
        Widths, input first and output last, as separate ints or as one
        list or tuple; at least two.
    activation : callable, optional
        A factory called with no arguments once per hidden layer, returning
        an ``nn.Module``: a module class such as ``nn.GELU``, or e.g.
        ``functools.partial(nn.LeakyReLU, 0.2)``. Defaults to ``nn.ReLU``.
        Each hidden layer gets its own instance.

    Attributes
    ----------
    layers : nn.Sequential
        The linear layers and activations, in order.

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
    >>> MLP([2, 16, 1], activation=nn.GELU)
    MLP(
      (layers): Sequential(
        (0): Linear(in_features=2, out_features=16, bias=True)
        (1): GELU(approximate='none')
        (2): Linear(in_features=16, out_features=1, bias=True)
      )
    )
    """

    def __init__(
        self, *layers: int | Sequence[int], activation: Callable[[], nn.Module] | None = None
    ) -> None:
        super().__init__()
        widths = _widths(layers)
        activation = nn.ReLU if activation is None else activation
        if isinstance(activation, nn.Module):
            raise TypeError(
                f"activation must be a factory such as the class nn.ReLU, not a module "
                f"instance (each hidden layer gets its own), got {activation!r}"
            )
        if not callable(activation):
            raise TypeError(
                f"activation must be a callable returning an nn.Module (such as nn.ReLU), "
                f"got {activation!r}"
            )
        modules: list[nn.Module] = [nn.Linear(widths[0], widths[1])]
        for width_in, width_out in itertools.pairwise(widths[1:]):
            modules += [_make_activation(activation), nn.Linear(width_in, width_out)]
        self.layers = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _make_activation(activation: Callable[[], nn.Module]) -> nn.Module:
    module = activation()
    if not isinstance(module, nn.Module):
        raise TypeError(
            f"activation must return an nn.Module when called with no arguments, "
            f"{activation!r} returned {type(module).__name__}"
        )
    return module
