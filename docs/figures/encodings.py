"""Figure for the encodings page: which frequencies each encoding lets an MLP fit.

A 1D signal with components at 1, 4, 16 and 40 cycles per unit is fitted by
small networks on raw coordinates, on random Fourier features of two scales,
by a SIREN, and on a multi-resolution grid (a 2D grid read along the line
y = 0); the figure shows a stretch of each fit and the amplitude each one
recovers at the four frequencies.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from torch import nn

from torchsample.encoding import FourierFeatures, MultiResGrid
from torchsample.models import MLP, Siren

FREQUENCIES = (1.0, 4.0, 16.0, 40.0)  # cycles per unit of x
AMPLITUDES = (1.0, 0.6, 0.4, 0.3)
TRAIN_POINTS = 512
STEPS = 300
WIDTH = 64


def _signal(x):
    return sum(a * torch.sin(2 * torch.pi * f * x + f) for f, a in zip(FREQUENCIES, AMPLITUDES))


def _amplitudes(x, y):
    """Amplitude of ``y`` at each of the signal's frequencies (x uniform over whole periods)."""
    return [(2 * (y * torch.exp(-2j * torch.pi * f * x)).mean()).abs().item() for f in FREQUENCIES]


class _OnALine(nn.Module):
    """Feeds 1D coordinates to a 2D encoder along the line y = 0."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, x):
        return self.encoder(torch.cat([x, torch.zeros_like(x)], dim=-1))


def _fourier_mlp(scale, generator):
    fourier = FourierFeatures(1, WIDTH // 2, scale=scale, generator=generator)
    return nn.Sequential(fourier, MLP(fourier.out_dims, WIDTH, WIDTH, 1))


def _models(generator):
    """Name -> (model, Adam learning rate)."""
    grid = MultiResGrid(
        2,
        n_levels=4,
        n_features=2,
        base_resolution=16,
        max_resolution=512,
        log2_hashmap_size=12,
        generator=generator,
    )
    return {
        "MLP on x": (MLP(1, WIDTH, WIDTH, 1), 1e-3),
        "Fourier features, scale 2": (_fourier_mlp(2.0, generator), 1e-3),
        "Fourier features, scale 20": (_fourier_mlp(20.0, generator), 1e-3),
        "SIREN, w0 = 30": (Siren(1, WIDTH, WIDTH, 1), 1e-3),
        "MultiResGrid, 4 levels": (
            nn.Sequential(_OnALine(grid), MLP(grid.out_dims, WIDTH, 1)),
            1e-2,
        ),
    }


def _fit(model, lr, x, y):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(STEPS):
        loss = ((model(x) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def make(outdir):
    """Write ``encodings.png`` into ``outdir``."""
    # The MLPs draw their initialization from the global generator; seed it
    # without disturbing whoever builds the docs.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return _draw(Path(outdir))


def _draw(outdir):
    generator = torch.Generator().manual_seed(0)
    x_train = torch.linspace(-1, 1, TRAIN_POINTS + 1)[:-1, None]
    x_test = torch.linspace(-1, 1, 8 * TRAIN_POINTS + 1)[:-1, None]
    y_train, y_test = _signal(x_train), _signal(x_test)

    fig, (curves, spectrum) = plt.subplots(
        1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1.6, 1]}
    )
    window = (x_test[:, 0] >= 0) & (x_test[:, 0] <= 0.5)
    curves.plot(x_test[window], y_test[window], color="k", linewidth=2.5, alpha=0.3, label="signal")
    bars = {"signal": _amplitudes(x_test[:, 0], y_test[:, 0])}
    for name, (model, lr) in _models(generator).items():
        fitted = _fit(model, lr, x_train, y_train)
        with torch.no_grad():
            y_fit = fitted(x_test)
        curves.plot(x_test[window], y_fit[window], linewidth=1, label=name)
        bars[name] = _amplitudes(x_test[:, 0], y_fit[:, 0])
    curves.set_xlabel("x")
    curves.set_title(f"fits after {STEPS} Adam steps on {TRAIN_POINTS} samples (detail)")
    curves.legend(fontsize=7, loc="lower left")

    width = 0.8 / len(bars)
    for i, (name, amplitude) in enumerate(bars.items()):
        positions = [k + (i - (len(bars) - 1) / 2) * width for k in range(len(FREQUENCIES))]
        spectrum.bar(
            positions, amplitude, width, label=name, color="0.7" if name == "signal" else None
        )
    spectrum.set_xticks(range(len(FREQUENCIES)), [f"{f:g}" for f in FREQUENCIES])
    spectrum.set_xlabel("frequency (cycles per unit of x)")
    spectrum.set_ylabel("amplitude recovered")
    spectrum.set_title("amplitude at each frequency")
    fig.tight_layout()
    path = outdir / "encodings.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]
