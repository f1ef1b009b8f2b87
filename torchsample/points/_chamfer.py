"""Chamfer distance between point clouds."""

from __future__ import annotations

import torch

from .._checks import check_choice, check_same_device, describe
from ._knn import knn
from ._validate import check_cloud


def chamfer_distance(
    a: torch.Tensor, b: torch.Tensor, reduction: str = "mean"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Symmetric Chamfer distance: mean squared distance to the nearest point, both ways.

    ``cost_a[i] = min_j |a_i - b_j|^2`` and ``cost_b[j] = min_i |a_i - b_j|^2``;
    a cloud's Chamfer distance is ``cost_a.mean() + cost_b.mean()``. Differentiable
    with respect to both clouds.

    Parameters
    ----------
    a, b : torch.Tensor
        Point clouds with the same batch size and number of coordinates; their
        numbers of points may differ.
    reduction : {"mean", "sum", "none"}
        How the per-cloud distances are combined over the batch.

    Returns
    -------
    distance : torch.Tensor
        The Chamfer distance, reduced over the batch.
    cost_a : torch.Tensor
        Squared distance of every point of ``a`` to its nearest point of ``b``.
    cost_b : torch.Tensor
        Squared distance of every point of ``b`` to its nearest point of ``a``.

    Shape
    -----
    - a: ``(batch, n, d)``; b: ``(batch, m, d)``
    - distance: ``()``, or ``(batch,)`` with ``reduction="none"``
    - cost_a: ``(batch, n)``; cost_b: ``(batch, m)``

    Examples
    --------
    >>> import torch
    >>> from torchsample.points import chamfer_distance
    >>> a = torch.tensor([[[0.0, 0, 0], [1, 0, 0]]])
    >>> b = torch.tensor([[[0.0, 0, 0], [0, 2, 0], [1, 0, 1]]])
    >>> distance, cost_a, cost_b = chamfer_distance(a, b)
    >>> cost_a, cost_b
    (tensor([[0., 1.]]), tensor([[0., 4., 1.]]))
    >>> distance
    tensor(2.1667)
    """
    a = check_cloud("a", a, dims=None)
    b = check_cloud("b", b, dims=None)
    check_same_device(a=a, b=b)
    check_choice("reduction", reduction, ("mean", "sum", "none"))
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[2]:
        raise ValueError(
            "a and b must have the same batch size and number of coordinates, "
            f"got a {describe(a)} and b {describe(b)}"
        )
    cost_a = knn(a, b, 1)[0][..., 0]
    cost_b = knn(b, a, 1)[0][..., 0]
    distance = cost_a.mean(dim=1) + cost_b.mean(dim=1)
    if reduction == "mean":
        distance = distance.mean()
    elif reduction == "sum":
        distance = distance.sum()
    return distance, cost_a, cost_b
