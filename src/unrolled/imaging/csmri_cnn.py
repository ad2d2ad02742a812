"""The generic-network baseline of compressive MRI (the third column of the review's Table II).

A ReconNet/DnCNN-like residual CNN (``torch.nn`` only): the zero-filled image ``F^H y`` as two channels (real,
imaginary), ``depth`` 3x3 convolutions of ``width`` channels with ReLUs (circular padding, as k-space
periodicity suggests), and a residual connection, ``x = F^H y + CNN(F^H y)``. No physics beyond the
zero-filling: it is the network the unrolled one is compared with, with ~100x its parameters.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from unrolled.core.io import register_model
from unrolled.core.unrolled_net import check_n_layers, dtype_from_name, dtype_name
from unrolled.imaging.admm import check_kspace
from unrolled.imaging.conv_stack import conv_relu_stack
from unrolled.imaging.csmri import zero_filled

__all__ = ["CSMRICNN"]


@register_model
class CSMRICNN(nn.Module):
    """Residual CNN on the zero-filled image: input k-space ``y (B, H, W)`` (complex), output ``(B, H, W)`` complex.

    Parameters
    ----------
    shape : (int, int)
        k-space size ``(H, W)``.
    depth : int
        Number of convolutions (``>= 2``).
    width : int
        Channels of the hidden layers.
    dtype : {'float64', 'float32'}
    """

    def __init__(self, shape, depth: int = 8, width: int = 48, dtype: str = "float32"):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.depth, self.width = check_n_layers(depth, "depth"), check_n_layers(width, "width")
        if self.depth < 2:
            raise ValueError(f"depth must be >= 2, got {depth}")
        real = dtype_from_name(dtype)
        self.body = conv_relu_stack(2, width, depth, real)
        with torch.no_grad():  # start at the zero-filled image
            self.body[-1].weight.mul_(0.1)
            self.body[-1].bias.zero_()

    def forward(self, y) -> Tensor:
        y, unbatched = check_kspace(y, torch.empty(self.shape), "y")
        real = next(self.parameters()).dtype
        zf = zero_filled(y)
        h = torch.stack([zf.real, zf.imag], dim=1).to(real)
        out = h + self.body(h)
        x = torch.complex(out[:, 0], out[:, 1])
        return x[0] if unbatched else x

    def config(self) -> dict:
        return {"shape": list(self.shape), "depth": self.depth, "width": self.width,
                "dtype": dtype_name(next(self.parameters()).dtype)}
