"""Figure for the smoothstep page: linear vs smoothstep interpolation and derivative."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless builds; must come before pyplot is imported
import matplotlib.pyplot as plt
import torch

import torchsample as ts

VALUES = (0.0, 1.0, 0.3, 0.8, 0.2)


def _interpolate(x, smoothstep):
    """Sample a 1-pixel-high map at ``x`` and return the values and d/dx."""
    image = torch.tensor(VALUES, dtype=torch.float64).view(1, 1, 1, -1)
    grid = torch.stack([x, torch.zeros_like(x)], dim=-1).view(1, -1, 1, 2).requires_grad_()
    out = ts.grid_sample(image, grid, align_corners=True, smoothstep=smoothstep)
    (slope,) = torch.autograd.grad(out.sum(), grid)
    return out.detach().flatten(), slope[..., 0].flatten()


def make(outdir):
    """Write ``smoothstep.png`` into ``outdir``: values (top) and slopes (bottom)."""
    x = torch.linspace(-1, 1, 801, dtype=torch.float64)[1:-1]
    nodes = torch.linspace(-1, 1, len(VALUES))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 5), sharex=True)
    for smoothstep, style in ((False, "-"), (True, "--")):
        values, slope = _interpolate(x, smoothstep)
        label = "smoothstep" if smoothstep else "linear"
        top.plot(x, values, style, label=label)
        bottom.plot(x, slope, style, label=label)
    top.plot(nodes, VALUES, "ko", label="pixel values")
    top.set_ylabel("sampled value")
    top.legend(fontsize=8)
    bottom.set_ylabel("d value / dx")
    bottom.set_xlabel("normalized x (align_corners=True: pixels at the dots)")
    for ax in (top, bottom):
        for node in nodes:
            ax.axvline(float(node), color="0.85", linewidth=0.8, zorder=0)
    fig.suptitle(
        "Linear weights give a kinked curve with a jumping slope;\n"
        "smoothstep weights give a continuous slope, zero at every pixel",
        fontsize=10,
    )
    fig.tight_layout()
    path = Path(outdir) / "smoothstep.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
