"""Learn to sample point clouds for a classifier with SampleNet, and compare.

Point clouds of five procedural shape classes (sphere, box, torus, cylinder,
cone; random stretch, rotation and noise) are generated on the fly. A small
PointNet classifier (the task network) is trained on full clouds first and
then frozen. SampleNet (``ts.models.SampleNet``) is then trained to pick
``--samples`` points such that the frozen classifier still recognises the
shape, with the paper's loss: the task loss on the softly projected points,
plus ``alpha`` times the simplification loss, plus ``lambda`` times the
projection loss (Lang, Manor and Avidan, CVPR 2020).

On a held-out set the classifier is then fed the same number of points chosen
three ways: uniformly at random (``ts.points.random_sample``), by farthest
point sampling (``ts.points.farthest_point_sample``) and by SampleNet in
evaluation mode (its proposals matched to input points and completed with
FPS). The accuracies are printed and written as JSON next to the figure,
which shows a few clouds with each selection::

    python examples/samplenet.py                  # writes samplenet.png, samplenet.json
    python examples/samplenet.py --samples 16 --out small.png

Defaults take one to three minutes on two CPU cores, depending on their load.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from torchsample.models import SampleNet
from torchsample.points import farthest_point_sample, random_sample

CLASSES = ("sphere", "box", "torus", "cylinder", "cone")


def _surface(kind: str, count: int, n: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` clouds of ``n`` points on the surface of a unit-sized shape."""

    def uniform(*shape):
        return torch.rand(*shape, generator=generator)

    if kind == "sphere":
        points = torch.randn(count, n, 3, generator=generator)
        return points / points.norm(dim=-1, keepdim=True)
    if kind == "box":
        face = torch.randint(0, 3, (count, n), generator=generator)
        sign = torch.randint(0, 2, (count, n), generator=generator) * 2.0 - 1
        points = uniform(count, n, 3) * 2 - 1
        return points.scatter(2, face[..., None], sign[..., None])
    angle = uniform(count, n) * 2 * math.pi
    if kind == "torus":
        tube = uniform(count, n) * 2 * math.pi
        radius = 1 + 0.35 * torch.cos(tube)
        return torch.stack([radius * angle.cos(), radius * angle.sin(), 0.35 * tube.sin()], -1)
    if kind == "cylinder":
        height = uniform(count, n) * 2 - 1
        # Half the points on the side, the rest on the two caps (uniform on the disks).
        on_cap = uniform(count, n) < 0.5
        radius = torch.where(on_cap, uniform(count, n).sqrt(), torch.ones(count, n))
        height = torch.where(on_cap, height.sign(), height)
        return torch.stack([radius * angle.cos(), radius * angle.sin(), height], -1)
    if kind == "cone":
        # Apex at z = 1, unit base at z = -1; sqrt makes the lateral density uniform.
        radius = uniform(count, n).sqrt()
        return torch.stack([radius * angle.cos(), radius * angle.sin(), 1 - 2 * radius], -1)
    raise ValueError(f"unknown shape {kind!r}")


def make_clouds(
    count: int, n: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random clouds ``(count, n, 3)`` in the unit ball and their labels ``(count,)``."""
    labels = torch.randint(0, len(CLASSES), (count,), generator=generator)
    clouds = torch.empty(count, n, 3)
    for label, kind in enumerate(CLASSES):
        chosen = labels == label
        clouds[chosen] = _surface(kind, int(chosen.sum()), n, generator)
    stretch = 0.6 + 0.8 * torch.rand(count, 1, 3, generator=generator)
    rotation, _ = torch.linalg.qr(torch.randn(count, 3, 3, generator=generator))
    clouds = (clouds * stretch) @ rotation
    clouds = clouds + 0.01 * torch.randn(clouds.shape, generator=generator)
    clouds = clouds - clouds.mean(dim=1, keepdim=True)
    return clouds / clouds.norm(dim=-1).amax(dim=1)[:, None, None], labels


class PointNetClassifier(nn.Module):
    """Per-point layers, max-pooling, then a small classifier head."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        widths = (3, 32, 64, 128)
        layers = []
        for width_in, width_out in itertools.pairwise(widths):
            layers += [nn.Conv1d(width_in, width_out, 1), nn.BatchNorm1d(width_out), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Linear(128, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, classes)
        )

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(points.transpose(1, 2)).amax(dim=2))


def train_classifier(args, generator) -> PointNetClassifier:
    classifier = PointNetClassifier(len(CLASSES))
    optimizer = torch.optim.Adam(classifier.parameters(), lr=2e-3)
    progress = tqdm(range(args.classifier_steps), desc="classifier")
    for _ in progress:
        clouds, labels = make_clouds(args.batch_size, args.points, generator)
        loss = F.cross_entropy(classifier(clouds), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        progress.set_postfix(loss=f"{loss.item():.3f}")
    return classifier.eval().requires_grad_(False)


def train_sampler(args, classifier, generator) -> SampleNet:
    sampler = SampleNet(
        num_out_points=args.samples,
        bottleneck_size=128,
        group_size=8,
        initial_temperature=args.temperature,
    )
    optimizer = torch.optim.Adam(sampler.parameters(), lr=1e-3)
    progress = tqdm(range(args.sampler_steps), desc="SampleNet")
    for _ in progress:
        clouds, labels = make_clouds(args.batch_size, args.points, generator)
        simplified, projected = sampler(clouds)
        task = F.cross_entropy(classifier(projected), labels)
        simplification = sampler.get_simplification_loss(clouds, simplified, args.samples)
        loss = task + args.alpha * simplification + args.lam * sampler.get_projection_loss()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        progress.set_postfix(
            task=f"{task.item():.3f}", sigma=f"{sampler.project.sigma().item():.4f}"
        )
    return sampler.eval()


@torch.no_grad()
def evaluate(args, classifier, sampler, generator):
    clouds, labels = make_clouds(args.test_size, args.points, generator)
    selections = {
        "random": random_sample(clouds, args.samples, generator=generator)[0],
        "FPS": farthest_point_sample(clouds, args.samples)[0],
        "SampleNet": sampler(clouds)[1],
    }
    accuracy = {"all points": (classifier(clouds).argmax(1) == labels).float().mean().item()}
    for name, points in selections.items():
        accuracy[name] = (classifier(points).argmax(1) == labels).float().mean().item()
    return clouds, labels, selections, accuracy


def draw(path: Path, clouds, labels, selections, accuracy, samples: int, rows: int) -> None:
    # One cloud of each of the first classes, so the rows show different shapes.
    shown = [int((labels == c).nonzero()[0]) for c in range(min(rows, len(CLASSES)))]
    fig = plt.figure(figsize=(3 * len(selections), 3 * len(shown)))
    for row, index in enumerate(shown):
        for col, (name, points) in enumerate(selections.items()):
            ax = fig.add_subplot(
                len(shown), len(selections), row * len(selections) + col + 1, projection="3d"
            )
            full = clouds[index]
            ax.scatter(*full.T, s=1, c="0.8", depthshade=False)
            ax.scatter(*points[index].T, s=14, c="tab:red", depthshade=False)
            ax.set_axis_off()
            ax.set_box_aspect((1, 1, 1))
            if row == 0:
                ax.set_title(f"{name}\naccuracy {accuracy[name]:.1%}")
            if col == 0:
                ax.text2D(
                    -0.05,
                    0.5,
                    CLASSES[int(labels[index])],
                    transform=ax.transAxes,
                    rotation=90,
                    va="center",
                )
    fig.suptitle(
        f"{samples} of {clouds.shape[1]} points (all points: {accuracy['all points']:.1%} accuracy)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("samplenet.png"), help="figure path")
    parser.add_argument("--points", type=int, default=256, help="points per cloud")
    parser.add_argument("--samples", type=int, default=32, help="points kept per cloud")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--classifier-steps", type=int, default=250)
    parser.add_argument("--sampler-steps", type=int, default=400)
    parser.add_argument("--alpha", type=float, default=30.0, help="simplification loss weight")
    parser.add_argument("--lam", type=float, default=1.0, help="projection loss weight")
    parser.add_argument(
        "--temperature", type=float, default=0.1, help="initial soft-projection temperature"
    )
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=3, help="clouds shown in the figure")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)

    start = time.perf_counter()
    classifier = train_classifier(args, generator)
    sampler = train_sampler(args, classifier, generator)
    clouds, labels, selections, accuracy = evaluate(args, classifier, sampler, generator)
    elapsed = time.perf_counter() - start

    for name, value in accuracy.items():
        print(f"{name:>10}: {value:.1%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    draw(args.out, clouds, labels, selections, accuracy, args.samples, args.rows)
    summary = {
        "classes": CLASSES,
        "points": args.points,
        "samples": args.samples,
        "test_clouds": args.test_size,
        "accuracy": accuracy,
        "seconds": round(elapsed, 1),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    json_path = args.out.with_suffix(".json")
    json_path.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {args.out} and {json_path} ({elapsed:.0f} s)")


if __name__ == "__main__":
    main()
