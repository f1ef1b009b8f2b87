"""Figure for the align_corners page: where pixel centers sit on the [-1, 1] axis."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless builds; must come before pyplot is imported
import matplotlib.pyplot as plt

import torchsample as ts

WIDTH = 4


def make(outdir):
    """Write ``align_corners.png`` into ``outdir``: a row of pixels per setting."""
    fig, axes = plt.subplots(2, 1, figsize=(7.5, 3.6), sharex=True)
    for ax, align_corners in zip(axes, (False, True)):
        centers = ts.coord.full(0, (WIDTH, 1), align_corners=align_corners)[0, :, 0].tolist()
        pitch = centers[1] - centers[0]
        for i, x in enumerate(centers):
            ax.add_patch(
                plt.Rectangle(
                    (x - pitch / 2, -0.5),
                    pitch,
                    1.0,
                    facecolor=f"C{i}",
                    alpha=0.25,
                    edgecolor="black",
                )
            )
            ax.plot(x, 0, "o", color="black")
            ax.annotate(
                f"pixel {i}\nx = {x:+.2f}",
                (x, 0),
                xytext=(0, -28),
                textcoords="offset points",
                ha="center",
                va="top",
                fontsize=8,
            )
        for edge in (-1, 1):
            ax.axvline(edge, color="crimson", linewidth=2)
        ax.set_title(f"align_corners={align_corners}", fontsize=10, loc="left")
        ax.set_ylim(-1.6, 0.7)
        ax.set_yticks([])
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
    axes[-1].set_xlim(-1.75, 1.75)
    axes[-1].set_xticks([-1, -0.5, 0, 0.5, 1])
    axes[-1].set_xlabel("normalized x (red lines: -1 and +1)")
    fig.suptitle(
        f"{WIDTH} pixels wide: pixel centers (dots) and pixel extents (boxes)", fontsize=10
    )
    fig.tight_layout()
    path = Path(outdir) / "align_corners.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
