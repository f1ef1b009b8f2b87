"""SampleNet's soft projection of points onto a point cloud."""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_positive_int, check_same_device, describe
from ._knn import knn
from ._validate import check_cloud


class SoftProjection(nn.Module):
    """Differentiable projection of query points onto a point cloud (SampleNet).

    Each query point ``q`` is replaced by a weighted average of its ``group_size``
    nearest points ``p_j`` of the cloud, with weights
    ``softmax_j(-|p_j - q|^2 / sigma)`` and ``sigma = max(temperature^2, min_sigma)``
    (Lang, Manor and Avidan, "SampleNet: Differentiable Point Cloud Sampling",
    CVPR 2020). As the temperature goes to zero the projection becomes the nearest
    cloud point; a trainable temperature lets training push it there. The
    neighbours are searched without gradient; the weights and averages are
    differentiable with respect to the cloud, the queries and the temperature.

    Parameters
    ----------
    group_size : int
        Number of nearest cloud points each query is averaged over.
    initial_temperature : float
        Starting temperature.
    is_temperature_trainable : bool
        Whether the temperature is a trained parameter.
    min_sigma : float
        Lower bound of ``sigma``, which keeps the weights finite.

    Shape
    -----
    - point_cloud: ``(b, n, 3)``; point_features: ``(b, n, c)`` (feature-last)
    - query_cloud: ``(b, m, 3)``
    - projected points: ``(b, m, 3)``; propagated features: ``(b, m, c)``

    Examples
    --------
    >>> import torch
    >>> from torchsample.points import SoftProjection
    >>> cloud = torch.tensor([[[0.0, 0, 0], [1, 0, 0]]])
    >>> query = torch.tensor([[[0.25, 0, 0]]])
    >>> projection = SoftProjection(group_size=2, initial_temperature=1.0)
    >>> projection.project(cloud, query).round(decimals=4)
    tensor([[[0.3775, 0.0000, 0.0000]]], grad_fn=<RoundBackward1>)
    >>> SoftProjection(2, initial_temperature=1e-3, min_sigma=1e-6).project(cloud, query)
    tensor([[[0., 0., 0.]]], grad_fn=<SumBackward1>)
    """

    def __init__(
        self,
        group_size: int,
        initial_temperature: float = 1.0,
        is_temperature_trainable: bool = True,
        min_sigma: float = 1e-4,
    ) -> None:
        super().__init__()
        self.group_size = check_positive_int("group_size", group_size)
        if not min_sigma > 0:
            raise ValueError(f"min_sigma must be > 0, got {min_sigma!r}")
        self.min_sigma = float(min_sigma)
        self.temperature = nn.Parameter(
            torch.tensor(float(initial_temperature)), requires_grad=is_temperature_trainable
        )

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, min_sigma={self.min_sigma}"

    def sigma(self) -> torch.Tensor:
        """The softmax scale ``max(temperature^2, min_sigma)`` (a 0-d tensor).

        Returns
        -------
        torch.Tensor
            ``sigma``, differentiable with respect to the temperature while it is
            above the bound.
        """
        return torch.clamp(self.temperature**2, min=self.min_sigma)

    def _weights(
        self, point_cloud: torch.Tensor, query_cloud: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Neighbour indices ``(b, m, k)`` and their softmax weights ``(b, m, k)``."""
        point_cloud = check_cloud("point_cloud", point_cloud)
        query_cloud = check_cloud("query_cloud", query_cloud)
        check_same_device(point_cloud=point_cloud, query_cloud=query_cloud)
        if point_cloud.shape[0] != query_cloud.shape[0]:
            raise ValueError(
                "point_cloud and query_cloud must have the same batch size, got "
                f"point_cloud {describe(point_cloud)} and query_cloud {describe(query_cloud)}"
            )
        with torch.no_grad():
            _, indices = knn(query_cloud.detach(), point_cloud.detach(), self.group_size)
        grouped = _group(point_cloud, indices)
        squared = ((grouped - query_cloud[:, :, None, :]) ** 2).sum(dim=-1)
        sigma = self.sigma().to(squared.dtype)
        return indices, torch.softmax(-squared / sigma, dim=-1)

    def project(self, point_cloud: torch.Tensor, query_cloud: torch.Tensor) -> torch.Tensor:
        """Move each query point to the weighted average of its nearest cloud points.

        Parameters
        ----------
        point_cloud : torch.Tensor
            The cloud projected onto, ``(b, n, 3)``.
        query_cloud : torch.Tensor
            The points projected, ``(b, m, 3)``.

        Returns
        -------
        torch.Tensor
            Projected points ``(b, m, 3)``.
        """
        indices, weights = self._weights(point_cloud, query_cloud)
        return _average(point_cloud, indices, weights)

    def propagate(
        self, point_cloud: torch.Tensor, point_features: torch.Tensor, query_cloud: torch.Tensor
    ) -> torch.Tensor:
        """Features of the query points, averaged from the cloud with the same weights.

        Parameters
        ----------
        point_cloud : torch.Tensor
            The cloud, ``(b, n, 3)``.
        point_features : torch.Tensor
            Features of the cloud's points, ``(b, n, c)``.
        query_cloud : torch.Tensor
            The points whose features are wanted, ``(b, m, 3)``.

        Returns
        -------
        torch.Tensor
            Propagated features ``(b, m, c)``.
        """
        return self.project_and_propagate(point_cloud, point_features, query_cloud)[1]

    def project_and_propagate(
        self, point_cloud: torch.Tensor, point_features: torch.Tensor, query_cloud: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`project` and :meth:`propagate` with one neighbour search.

        Parameters
        ----------
        point_cloud : torch.Tensor
            The cloud, ``(b, n, 3)``.
        point_features : torch.Tensor
            Features of the cloud's points, ``(b, n, c)``.
        query_cloud : torch.Tensor
            The points projected, ``(b, m, 3)``.

        Returns
        -------
        projected : torch.Tensor
            ``(b, m, 3)``.
        features : torch.Tensor
            ``(b, m, c)``.
        """
        point_features = check_cloud("point_features", point_features, dims=None)
        if point_features.shape[:2] != point_cloud.shape[:2]:
            raise ValueError(
                "point_features must have one row per point of point_cloud, got "
                f"point_features {describe(point_features)} and point_cloud {describe(point_cloud)}"
            )
        indices, weights = self._weights(point_cloud, query_cloud)
        return _average(point_cloud, indices, weights), _average(point_features, indices, weights)


def _group(values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``values`` ``(b, n, c)`` gathered at ``indices`` ``(b, m, k)``: ``(b, m, k, c)``."""
    batch, m, k = indices.shape
    flat = indices.reshape(batch, m * k, 1).expand(-1, -1, values.shape[-1])
    return values.gather(1, flat).reshape(batch, m, k, values.shape[-1])


def _average(values: torch.Tensor, indices: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (_group(values, indices) * weights[..., None].to(values.dtype)).sum(dim=2)
