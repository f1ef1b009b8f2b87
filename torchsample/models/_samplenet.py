"""SampleNet: a learned point-cloud sampler (Lang, Manor and Avidan, CVPR 2020)."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from .._checks import check_choice, check_positive_int, check_tensor, describe
from ..points import SoftProjection, chamfer_distance, knn, nn_matching

__all__ = ["SampleNet"]

_ENCODER_WIDTHS = (3, 64, 64, 64, 128)
_DECODER_WIDTHS = (256, 256, 256)


def _shared_mlp(widths: list[int]) -> nn.Sequential:
    """Per-point layers (1x1 convolutions) with batch norm and ReLU after each."""
    layers = []
    for width_in, width_out in itertools.pairwise(widths):
        layers += [nn.Conv1d(width_in, width_out, 1), nn.BatchNorm1d(width_out), nn.ReLU()]
    return nn.Sequential(*layers)


def _fully_connected(widths: list[int]) -> nn.Sequential:
    """Linear layers with batch norm and ReLU between them, none after the last."""
    layers = []
    for width_in, width_out in itertools.pairwise(widths[:-1]):
        layers += [nn.Linear(width_in, width_out), nn.BatchNorm1d(width_out), nn.ReLU()]
    layers.append(nn.Linear(widths[-2], widths[-1]))
    return nn.Sequential(*layers)


class SampleNet(nn.Module):
    """Learned sampling of a point cloud down to ``num_out_points`` points.

    A PointNet-style network (per-point layers 3-64-64-64-128-``bottleneck_size``,
    max-pooling, fully connected layers 256-256-256) proposes ``num_out_points``
    points. In training mode they are softly projected onto the input cloud with a
    :class:`~torchsample.points.SoftProjection` so a task network can be trained
    through them; in evaluation mode each proposal is matched to its nearest input
    point and the matches are deduplicated and completed by farthest point sampling
    (:func:`~torchsample.points.nn_matching`), so the result is a true subset of
    the input. The method is that of Lang, Manor and Avidan, "SampleNet:
    Differentiable Point Cloud Sampling" (CVPR 2020).

    Parameters
    ----------
    num_out_points : int
        Number of points sampled.
    bottleneck_size : int
        Width of the global feature.
    group_size : int
        Neighbours of the soft projection.
    initial_temperature, is_temperature_trainable, min_sigma
        Passed to :class:`~torchsample.points.SoftProjection`.
    input_shape, output_shape : {"bnc", "bcn"}
        Layout of input and output clouds: coordinates last (``"bnc"``, the
        torchsample convention) or first (``"bcn"``).
    complete_fps : bool
        In evaluation, deduplicate the matches and complete them with farthest
        point sampling; otherwise matches are returned as they are.
    skip_projection : bool
        In training, return the raw proposals instead of their projection.

    Shape
    -----
    - input: ``(b, n, 3)`` (``"bnc"``) or ``(b, 3, n)`` (``"bcn"``)
    - outputs: ``(b, num_out_points, 3)`` or ``(b, 3, num_out_points)``

    Examples
    --------
    >>> import torch
    >>> from torchsample.models import SampleNet
    >>> _ = torch.manual_seed(0)
    >>> sampler = SampleNet(num_out_points=16, bottleneck_size=32, group_size=4)
    >>> cloud = torch.rand(2, 256, 3)
    >>> simplified, projected = sampler(cloud)
    >>> simplified.shape, projected.shape
    (torch.Size([2, 16, 3]), torch.Size([2, 16, 3]))
    >>> simplified, matched = sampler.eval()(cloud)
    >>> bool((matched[0, :, None] == cloud[0, None]).all(-1).any(-1).all())
    True
    """

    def __init__(
        self,
        num_out_points: int,
        bottleneck_size: int,
        group_size: int,
        initial_temperature: float = 1.0,
        is_temperature_trainable: bool = True,
        min_sigma: float = 1e-2,
        input_shape: str = "bnc",
        output_shape: str = "bnc",
        complete_fps: bool = True,
        skip_projection: bool = False,
    ) -> None:
        super().__init__()
        self.num_out_points = check_positive_int("num_out_points", num_out_points)
        self.bottleneck_size = check_positive_int("bottleneck_size", bottleneck_size)
        self.input_shape = check_choice("input_shape", input_shape, ("bnc", "bcn"))
        self.output_shape = check_choice("output_shape", output_shape, ("bnc", "bcn"))
        self.complete_fps = bool(complete_fps)
        self.skip_projection = bool(skip_projection)
        self.encoder = _shared_mlp([*_ENCODER_WIDTHS, bottleneck_size])
        self.decoder = _fully_connected([bottleneck_size, *_DECODER_WIDTHS, 3 * num_out_points])
        self.project = SoftProjection(
            group_size, initial_temperature, is_temperature_trainable, min_sigma
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Propose points, then project them (training) or match them (evaluation).

        Parameters
        ----------
        x : torch.Tensor
            Input clouds in ``input_shape`` layout.

        Returns
        -------
        simplified : torch.Tensor
            The proposed points.
        projected_or_matched : torch.Tensor
            Training: their soft projection onto ``x`` (or the proposals again with
            ``skip_projection``). Evaluation: the matched subset of ``x``.
        """
        x = check_tensor("x", x)
        points = x if self.input_shape == "bnc" else x.transpose(1, 2)
        if points.dim() != 3 or points.shape[2] != 3:
            expected = "(b, n, 3)" if self.input_shape == "bnc" else "(b, 3, n)"
            raise ValueError(
                f"x must be {expected} (input_shape={self.input_shape!r}), got {describe(x)}"
            )
        global_feature = self.encoder(points.transpose(1, 2)).amax(dim=2)
        simplified = self.decoder(global_feature).view(-1, self.num_out_points, 3)

        if self.training:
            second = (
                simplified if self.skip_projection else self.project.project(points, simplified)
            )
        else:
            with torch.no_grad():
                _, nearest = knn(simplified, points, 1)
                second, _ = nn_matching(
                    points, nearest[..., 0], self.num_out_points, self.complete_fps
                )
        if self.output_shape == "bcn":
            return simplified.transpose(1, 2), second.transpose(1, 2)
        return simplified, second

    @staticmethod
    def get_simplification_loss(
        ref: torch.Tensor, samp: torch.Tensor, pc_size: int, gamma: float = 1, delta: float = 0
    ) -> torch.Tensor:
        """How well the sampled points cover the input and stay close to it.

        ``mean(c_s) + mean_b(max(c_s)) + (gamma + delta * pc_size) * mean(c_r)``, where
        ``c_s`` is the squared distance of each sampled point to its nearest input
        point and ``c_r`` that of each input point to its nearest sampled point.

        Parameters
        ----------
        ref : torch.Tensor
            The input clouds, ``(b, n, 3)``.
        samp : torch.Tensor
            The sampled (simplified) clouds, ``(b, m, 3)``.
        pc_size : int
            Sample size, which scales the coverage term with ``delta``.
        gamma, delta : float
            Weight of the coverage term: ``gamma + delta * pc_size``.

        Returns
        -------
        torch.Tensor
            The loss, a scalar.
        """
        _, cost_samp, cost_ref = chamfer_distance(samp, ref)
        worst = cost_samp.amax(dim=1).mean()
        return cost_samp.mean() + worst + (gamma + delta * pc_size) * cost_ref.mean()

    def get_projection_loss(self) -> torch.Tensor:
        """The projection's ``sigma``, minimized to drive projections onto input points.

        Returns
        -------
        torch.Tensor
            ``sigma`` in training mode with projection, otherwise zero.
        """
        sigma = self.project.sigma()
        if self.skip_projection or not self.training:
            return torch.zeros_like(sigma)
        return sigma
