"""Exact k-nearest-neighbour search in bounded memory."""

from __future__ import annotations

import torch

from .._checks import check_positive_int, check_same_device, describe
from .._nobatch import with_nobatch
from ._validate import check_cloud, check_lengths

# Working memory allowed for one chunk of queries: the distance block and one
# temporary of the same size.
MEMORY_BUDGET_BYTES = 64 * 2**20


def _squared_distances(query: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """``(b, m, n)`` squared distances, accumulated one coordinate at a time.

    Differences rather than the ``|q|^2 - 2 q.p + |p|^2`` expansion: no cancellation,
    so near neighbours are ranked correctly, and only two ``(b, m, n)`` blocks live
    at once.
    """
    total = None
    for q, p in zip(query.unbind(-1), points.unbind(-1)):
        delta = q[:, :, None] - p[:, None, :]
        total = delta * delta if total is None else total + delta * delta
    return total


def _knn_chunked(query, points, k, lengths, budget_bytes):
    batch, m, _ = query.shape
    n = points.shape[1]
    row_bytes = 2 * batch * n * query.element_size()
    chunk = max(1, budget_bytes // max(row_bytes, 1))
    padding = (torch.arange(n, device=points.device) >= lengths[:, None])[:, None, :]
    distances, indices = [], []
    for first in range(0, m, chunk):
        block = _squared_distances(query[:, first : first + chunk], points)
        block = block.masked_fill(padding, torch.inf)
        d, i = block.topk(k, dim=2, largest=False, sorted=True)
        distances.append(d)
        indices.append(i)
    if not distances:
        empty = query.new_empty((batch, 0, k))
        return empty, empty.long()
    return torch.cat(distances, dim=1), torch.cat(indices, dim=1)


@with_nobatch("query", "points")
def knn(
    query: torch.Tensor, points: torch.Tensor, k: int, lengths: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest points of each query point, exactly, in bounded memory.

    Queries are processed in chunks whose distance block fits a fixed budget
    (``MEMORY_BUDGET_BYTES``, 64 MiB), so the peak memory does not grow with the
    number of queries. Distances are differentiable with respect to both clouds.

    Parameters
    ----------
    query : torch.Tensor
        Points whose neighbours are wanted.
    points : torch.Tensor
        Points searched, with the same number of coordinates as ``query``.
    k : int
        Number of neighbours, at most the number of valid points of every cloud.
    lengths : torch.Tensor, optional
        Number of valid points of each cloud of ``points`` (a padded batch).

    Returns
    -------
    distances : torch.Tensor
        Squared Euclidean distances, ascending along the last dimension.
    indices : torch.Tensor
        Indices into ``points`` (int64).

    Shape
    -----
    - query: ``(b, m, d)``; points: ``(b, n, d)``; lengths: ``(b,)``
    - distances, indices: ``(b, m, k)``
    - ``knn.nobatch``: query ``(m, d)``, points ``(n, d)``, results ``(m, k)``.

    Examples
    --------
    >>> import torch
    >>> from torchsample.points import knn
    >>> points = torch.tensor([[0.0, 0, 0], [1, 0, 0], [3, 0, 0]])
    >>> distances, indices = knn.nobatch(torch.tensor([[0.9, 0, 0]]), points, 2)
    >>> indices
    tensor([[1, 0]])
    >>> distances.round(decimals=2)
    tensor([[0.0100, 0.8100]])
    """
    query = check_cloud("query", query, dims=None)
    points = check_cloud("points", points, dims=None)
    check_same_device(query=query, points=points)
    if query.shape[0] != points.shape[0] or query.shape[2] != points.shape[2]:
        raise ValueError(
            "query and points must have the same batch size and number of coordinates, "
            f"got query {describe(query)} and points {describe(points)}"
        )
    if query.dtype != points.dtype:
        raise TypeError(
            f"query and points must have the same dtype, got {query.dtype} and {points.dtype}"
        )
    lengths = check_lengths(lengths, points)
    k = check_positive_int("k", k)
    if lengths.numel() and k > int(lengths.min()):
        raise ValueError(
            f"k must not exceed the number of points of any cloud; got k={k} but the "
            f"smallest cloud has {int(lengths.min())} points"
        )
    return _knn_chunked(query, points, k, lengths, MEMORY_BUDGET_BYTES)
