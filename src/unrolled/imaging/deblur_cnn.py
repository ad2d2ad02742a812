"""The generic-network baseline of blind deblurring (the third column of the review's Table II).

:class:`DeblurCNN` is a plain residual convolutional network (DnCNN-like, ``torch.nn`` only): ``depth`` 3 x 3
convolutions of ``width`` channels with ReLUs, circular padding (the data model's blur is circular), predicting
the correction :math:`x - y` from the blurred image. It knows nothing of the blur model, estimates no kernel, and
has far more parameters than :class:`~unrolled.imaging.dublid.DUBLID` (about ``depth * 9 * width**2``). It stands
in for DeblurGAN / SRN, trained on the same data with the same budget.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from unrolled.core.io import register_model
from unrolled.core.unrolled_net import dtype_from_name, dtype_name
from unrolled.core.validation import check_int, from_numpy
from unrolled.imaging.conv_stack import conv_relu_stack
from unrolled.imaging.hqs import check_blurred

__all__ = ["DeblurCNN"]


@register_model
class DeblurCNN(nn.Module):
    """Residual CNN ``y (B, H, W) -> x (B, H, W)``.

    Parameters
    ----------
    depth : int, default 8
        Number of convolutions (>= 2).
    width : int, default 64
        Channels of the hidden layers.
    dtype : {'float32', 'float64'}, default 'float32'
    """

    def __init__(self, depth: int = 8, width: int = 64, dtype: str = "float32"):
        super().__init__()
        self.depth = check_int("depth", depth, minimum=2)
        self.width = check_int("width", width, minimum=1)
        dt = dtype_from_name(dtype)
        self.body = conv_relu_stack(1, width, depth, dt)
        with torch.no_grad():  # start at the identity map (zero correction)
            self.body[-1].weight.zero_()
            self.body[-1].bias.zero_()

    @property
    def dtype(self) -> torch.dtype:
        return self.body[0].weight.dtype

    def forward(self, y) -> Tensor:
        y, unbatched = check_blurred("y", from_numpy(y))
        if y.dtype != self.dtype:
            raise ValueError(f"y has dtype {y.dtype} but the network is {self.dtype}")
        x = y + self.body(y.unsqueeze(1)).squeeze(1)
        return x[0] if unbatched else x

    def config(self) -> dict:
        return {"depth": self.depth, "width": self.width, "dtype": dtype_name(self.dtype)}

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
