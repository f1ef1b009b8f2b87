"""Networks that consume sampled features."""

from ._mlp import MLP
from ._samplenet import SampleNet
from ._siren import Siren

__all__ = ["MLP", "SampleNet", "Siren"]
