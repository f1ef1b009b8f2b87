"""torchsample: sample feature maps and point clouds at explicit coordinates."""

__version__ = "0.1.0"
