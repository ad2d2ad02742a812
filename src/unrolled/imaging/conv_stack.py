"""The plain convolutional stack behind the imaging family's generic-network baselines."""

from __future__ import annotations

import torch
from torch import nn


def conv_relu_stack(channels: int, width: int, depth: int, dtype: torch.dtype) -> nn.Sequential:
    """A stack of ``depth`` 3x3 circular convolutions with ReLUs between them.

    Channels go from ``channels`` to ``width``, stay at ``width``, and return to ``channels`` in the last layer.
    Circular padding matches the periodic boundary of the family's FFT-based operators.
    """
    chans = [channels] + [width] * (depth - 1) + [channels]
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Conv2d(chans[i], chans[i + 1], 3, padding=1, padding_mode="circular", dtype=dtype))
        if i < depth - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
