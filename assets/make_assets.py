"""Draw the images bundled in ``assets/``.

The images are generated rather than downloaded so the project ships nothing
of uncertain origin and needs no network. Rerun after changing a drawing::

    python assets/make_assets.py

- ``image.png`` (128 x 128): the target of ``examples/nerf2d.py``, with smooth
  colour gradients, hard edges, stripes of rising frequency and lettering, so
  a fit shows both what a coordinate MLP captures easily and what it does not.
- ``logo.png`` (256 x 256): a pixel grid, a query point between four pixel
  centers, and its bilinear weights.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent


def _hsv_to_rgb(hue: np.ndarray, saturation: float, value: np.ndarray) -> np.ndarray:
    """Vectorized HSV -> RGB (channels first), all values in [0, 1]."""
    channels = []
    for n in (5, 3, 1):
        k = (n + hue * 6) % 6
        channels.append(value * (1 - saturation * np.clip(np.minimum(k, 4 - k), 0, 1)))
    return np.stack(channels)


def draw_image(size: int = 128) -> Image.Image:
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    # Background: a hue sweep along the diagonal, darker towards the bottom.
    background = _hsv_to_rgb((0.6 * x + 0.3 * y) % 1.0, 0.55, 0.95 - 0.35 * y)
    image = Image.fromarray((background.transpose(1, 2, 0) * 255).astype(np.uint8))

    draw = ImageDraw.Draw(image)
    s = size / 128
    # Hard-edged shapes in saturated colours.
    draw.ellipse(
        [10 * s, 12 * s, 58 * s, 60 * s],
        fill=(235, 60, 45),
        outline=(20, 20, 30),
        width=round(2 * s),
    )
    draw.rectangle([72 * s, 10 * s, 118 * s, 44 * s], fill=(250, 210, 40))
    draw.polygon([(70 * s, 118 * s), (96 * s, 66 * s), (122 * s, 118 * s)], fill=(40, 90, 200))
    # Stripes whose frequency rises from left to right: the spectral-bias test.
    for i, stripe_x in enumerate(np.cumsum(np.linspace(6, 2, 12)) * s):
        if i % 2 == 0:
            draw.rectangle(
                [8 * s + stripe_x, 70 * s, 8 * s + stripe_x + 1.5 * s, 92 * s], fill=(20, 20, 30)
            )
    font = ImageFont.load_default(size=round(22 * s))
    draw.text(
        (8 * s, 96 * s),
        "ts",
        font=font,
        fill=(255, 255, 255),
        stroke_width=round(s),
        stroke_fill=(20, 20, 30),
    )
    return image


def draw_logo(size: int = 256) -> Image.Image:
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    cell = size / 4
    colours = [(66, 133, 244), (234, 67, 53), (251, 188, 5), (52, 168, 83)]
    # A 4x4 pixel grid with the four pixels around the query point coloured.
    for j in range(4):
        for i in range(4):
            box = [i * cell + 3, j * cell + 3, (i + 1) * cell - 3, (j + 1) * cell - 3]
            corner = (i - 1) + 2 * (j - 1) if i in (1, 2) and j in (1, 2) else None
            fill = colours[corner] + (255,) if corner is not None else (200, 205, 215, 255)
            draw.rounded_rectangle(box, radius=cell / 6, fill=fill)
    query = (1.8 * cell, 1.65 * cell)
    # Lines from the query to the four centers, thicker for heavier weights.
    for corner, (i, j) in enumerate([(1, 1), (2, 1), (1, 2), (2, 2)]):
        center = ((i + 0.5) * cell, (j + 0.5) * cell)
        weight = (1 - abs(query[0] - center[0]) / cell) * (1 - abs(query[1] - center[1]) / cell)
        draw.line([query, center], fill=(20, 20, 30, 255), width=max(2, round(14 * weight)))
        radius = cell / 10
        draw.ellipse(
            [center[0] - radius, center[1] - radius, center[0] + radius, center[1] + radius],
            fill=(20, 20, 30, 255),
        )
    radius = cell / 6
    draw.ellipse(
        [query[0] - radius, query[1] - radius, query[0] + radius, query[1] + radius],
        fill=(255, 255, 255, 255),
        outline=(20, 20, 30, 255),
        width=5,
    )
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="directory to write into")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    draw_image().save(args.out / "image.png", optimize=True)
    draw_logo().save(args.out / "logo.png", optimize=True)


if __name__ == "__main__":
    main()
