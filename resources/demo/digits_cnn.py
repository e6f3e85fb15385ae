"""The demo network: a small CNN for the 28x28 digits sample.

It is wider than the task needs on purpose: at batch 1 on one CPU thread its ~101 M multiply-adds
make latency compute-bound, so pruning and quantization show real speed-ups on it. The layers are
plain ``nn.Sequential`` blocks (``features`` / ``classifier``) so channel-pruning libraries can
trace the dependency graph without custom handlers.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

INPUT_SHAPE = (1, 1, 28, 28)
NUM_CLASSES = 10


def _conv_block(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


def build_model() -> nn.Module:
    """Fresh, untrained network; load ``digits_cnn.safetensors`` into it for the trained one."""
    features = nn.Sequential(
        *_conv_block(1, 32),
        *_conv_block(32, 64),
        *_conv_block(64, 128),
        nn.MaxPool2d(2),
        *_conv_block(128, 128),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(1),
    )
    classifier = nn.Sequential(nn.Flatten(), nn.Linear(128, NUM_CLASSES))
    return nn.Sequential(OrderedDict(features=features, classifier=classifier))
