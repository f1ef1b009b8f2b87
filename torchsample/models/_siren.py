"""SIREN: a multilayer perceptron with sine activations (Sitzmann et al., 2020).

Reference: V. Sitzmann, J. Martel, A. Bergman, D. Lindell, G. Wetzstein,
"Implicit Neural Representations with Periodic Activation Functions",
NeurIPS 2020.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._mlp import MLP

__all__ = ["Siren"]


class Sine(nn.Module):
    """``sin(w0 * x)``, the activation of :class:`Siren`.

    Parameters
    ----------
    w0 : float
        Frequency factor.

    Examples
    --------
    >>> import math, torch
    >>> from torchsample.models._siren import Sine
    >>> Sine(2.0)(torch.tensor([0.0, math.pi / 4]))
    tensor([0., 1.])
    """

    def __init__(self, w0: float) -> None:
        super().__init__()
        self.w0 = w0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.w0 * x)

    def extra_repr(self) -> str:
        return f"w0={self.w0}"


class Siren(MLP):
    """Fully connected network with sine activations and the SIREN initialization.

    Layout and arguments as :class:`~torchsample.models.MLP`, with
    ``sin(w0 * x)`` as the activation after every linear layer but the last
    (the output is linear). Weights are drawn uniformly so that the
    pre-activations stay roughly standard normal through any depth:

    - first layer: ``U(-1 / fan_in, 1 / fan_in)``, so ``sin(w0 * W x)`` spans
      several periods over inputs in [-1, 1];
    - every other layer, the last included:
      ``U(-sqrt(6 / fan_in) / w0, sqrt(6 / fan_in) / w0)``.

    Biases keep PyTorch's default initialization. Every derivative of a SIREN
    is itself a SIREN-like network, which suits fitting with losses on
    gradients (normals, eikonal, Poisson); ``w0`` sets the bandwidth (30 for
    images and shapes on [-1, 1], as in the paper).

    Parameters
    ----------
    *layers : int or sequence of int
        Widths, input first and output last, as separate ints or as one list
        or tuple; at least two.
    w0 : float
        Frequency factor of the sine activations.

    Shape
    -----
    - input: ``(..., layers[0])``
    - output: ``(..., layers[-1])``

    Examples
    --------
    >>> import torch
    >>> from torchsample.models import Siren
    >>> net = Siren(2, 32, 32, 3)
    >>> net
    Siren(
      (activation): Sine(w0=30.0)
      (layers): ModuleList(
        (0): Linear(in_features=2, out_features=32, bias=True)
        (1): Linear(in_features=32, out_features=32, bias=True)
        (2): Linear(in_features=32, out_features=3, bias=True)
      )
    )
    >>> net(torch.rand(4, 100, 2) * 2 - 1).shape
    torch.Size([4, 100, 3])
    """

    def __init__(self, *layers: int | Sequence[int], w0: float = 30.0) -> None:
        if isinstance(w0, bool) or not isinstance(w0, (int, float)) or not w0 > 0:
            raise ValueError(f"w0 must be a positive number, got {w0!r}")
        super().__init__(*layers, activation=Sine(float(w0)))
        self.w0 = float(w0)
        self._initialize()

    @torch.no_grad()
    def _initialize(self) -> None:
        for index, linear in enumerate(self.layers):
            fan_in = linear.in_features
            bound = 1 / fan_in if index == 0 else math.sqrt(6 / fan_in) / self.w0
            linear.weight.uniform_(-bound, bound)
