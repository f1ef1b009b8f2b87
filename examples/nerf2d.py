"""Fit an image with an MLP on NeRF-encoded coordinates ("2D NeRF").

The network maps a coordinate ``(x, y)`` in ``[-1, 1]`` to an RGB colour. It
never sees the image as a grid: every step draws random coordinates
(``ts.coord.rand``), looks the target colours up there (``ts.sample``,
bilinear), encodes the coordinates with the NeRF positional encoding
(``ts.encoding.Gamma``) and fits ``ts.models.MLP`` to them. Evaluation
queries every pixel center (``ts.coord.full_like``), writes ground truth
beside the prediction as a PNG and prints the PSNR::

    python examples/nerf2d.py                     # writes nerf2d.png
    python examples/nerf2d.py --order 0           # raw coordinates: blurry

Defaults take about a minute on two CPU cores; ``--device cuda`` (the default
when a GPU is present) is much faster.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

import torchsample as ts

DEFAULT_IMAGE = Path(__file__).resolve().parent.parent / "assets" / "image.png"


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="image to fit")
    parser.add_argument("--out", type=Path, default=Path("nerf2d.png"), help="figure to write")
    parser.add_argument("--steps", type=positive_int, default=1000, help="optimizer steps")
    parser.add_argument(
        "--batch-size", type=positive_int, default=2048, help="coordinates per step"
    )
    parser.add_argument(
        "--order", type=int, default=8, help="frequencies of the encoding; 0 for raw coordinates"
    )
    parser.add_argument("--width", type=positive_int, default=128, help="hidden width of the MLP")
    parser.add_argument("--depth", type=positive_int, default=3, help="hidden layers of the MLP")
    parser.add_argument("--lr", type=float, default=3e-3, help="initial learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="torch device (default: cuda if available, else cpu)",
    )
    return parser.parse_args()


def load_image(path: Path, device: torch.device) -> torch.Tensor:
    """An RGB image as a ``(1, 3, h, w)`` float tensor in ``[0, 1]``."""
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0).to(device)


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB for values in ``[0, 1]``."""
    return -10 * math.log10(torch.mean((prediction - target) ** 2).item())


class CoordinateNet(torch.nn.Module):
    """Coordinates -> colours: encoding, MLP, and a sigmoid to land in [0, 1]."""

    def __init__(self, order: int, width: int, depth: int) -> None:
        super().__init__()
        self.encode = ts.encoding.Gamma(order) if order else ts.encoding.Identity()
        in_features = 2 * 2 * order if order else 2
        self.mlp = ts.models.MLP(in_features, *[width] * depth, 3)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.mlp(self.encode(coords)))


def fit(args: argparse.Namespace, image: torch.Tensor) -> tuple[CoordinateNet, float]:
    generator = torch.Generator(args.device).manual_seed(args.seed)
    model = CoordinateNet(args.order, args.width, args.depth).to(args.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    # Cosine decay: large steps early, fine detail late.
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.steps)
    start = time.perf_counter()
    progress = tqdm(range(args.steps), desc="fitting", unit="step")
    for step in progress:
        coords = ts.coord.rand(1, args.batch_size, device=args.device, generator=generator)
        target = ts.sample(coords, image)
        loss = torch.mean((model(coords) - target) ** 2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 50 == 0 or step == args.steps - 1:
            progress.set_postfix(psnr=f"{-10 * math.log10(loss.item()):.1f} dB")
    return model, time.perf_counter() - start


def save_figure(path: Path, truth: torch.Tensor, prediction: torch.Tensor, title: str) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.3))
    for ax, picture, name in zip(axes, (truth, prediction), ("ground truth", "prediction")):
        ax.imshow(picture[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy(), interpolation="nearest")
        ax.set_title(name)
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)  # the MLP's initial weights
    image = load_image(args.image, torch.device(args.device))
    model, seconds = fit(args, image)
    with torch.no_grad():
        # Every pixel center, laid out (1, h, w, 2) like the image.
        prediction = ts.feat_first(model(ts.coord.full_like(image)))
    score = psnr(prediction, image)
    title = f"{args.steps} steps, Gamma(order={args.order}): PSNR {score:.2f} dB"
    save_figure(args.out, image, prediction, title)
    print(f"PSNR {score:.2f} dB after {args.steps} steps in {seconds:.0f} s on {args.device}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
