"""Segmentation networks: the weak unary FCN, the deeper plain-CNN baseline, and FCN + CRF-RNN (review, Fig. 12)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from unrolled.core.validation import check_int, check_tensor
from unrolled.segmentation.nets import CRFRNN


def _image_batch(image) -> tuple[Tensor, bool]:
    image = check_tensor("image", torch.as_tensor(image) if not isinstance(image, Tensor) else image, ndim=(3, 4))
    if image.dim() == 3:
        return image.unsqueeze(0), True
    if image.shape[0] == 0:
        raise ValueError("image is an empty batch (0 images)")
    return image, False


class _ConvStack(nn.Module):
    """3x3 convolutions with ReLU (dilations per layer, 'same' padding), then a 1x1 convolution to the scores."""

    def __init__(self, in_channels: int, n_classes: int, width: int, dilations: tuple[int, ...]):
        super().__init__()
        self.in_channels = check_int("in_channels", in_channels, minimum=1)
        self.n_classes = check_int("n_classes", n_classes, minimum=2)
        self.width = check_int("width", width, minimum=1)
        self.dilations = tuple(int(d) for d in dilations)
        layers, c = [], in_channels
        for d in self.dilations:
            layers += [nn.Conv2d(c, width, 3, padding=d, dilation=d), nn.ReLU()]
            c = width
        layers.append(nn.Conv2d(c, n_classes, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, image) -> Tensor:
        """Scores ``(B, L, H, W)`` (logits) of an image ``(B, C, H, W)`` (or ``(C, H, W)``)."""
        x, single = _image_batch(image)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"image must have {self.in_channels} channels, got shape {tuple(x.shape)}")
        out = self.body(x)
        return out.squeeze(0) if single else out

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class UnaryFCN(_ConvStack):
    """A small fully convolutional unary network: ``depth`` 3x3 layers of ``width`` channels (receptive field
    ``2 depth + 1`` pixels). Deliberately weak: it sees a small window, so it errs in blobs along the boundaries."""

    def __init__(self, in_channels: int = 3, n_classes: int = 4, width: int = 12, depth: int = 2):
        super().__init__(in_channels, n_classes, width, (1,) * check_int("depth", depth, minimum=1))

    def config(self) -> dict:
        return {"in_channels": self.in_channels, "n_classes": self.n_classes, "width": self.width,
                "depth": len(self.dilations)}


class PlainCNN(_ConvStack):
    """The deeper plain-CNN baseline: 3x3 layers with growing dilations (a receptive field like the CRF's
    kernels), more parameters than unary + CRF-RNN, and no CRF."""

    def __init__(self, in_channels: int = 3, n_classes: int = 4, width: int = 32,
                 dilations: tuple[int, ...] = (1, 1, 2, 4, 8, 1)):
        super().__init__(in_channels, n_classes, width, dilations)

    def config(self) -> dict:
        return {"in_channels": self.in_channels, "n_classes": self.n_classes, "width": self.width,
                "dilations": list(self.dilations)}


class UnaryCRF(nn.Module):
    """A unary network followed by CRF-RNN, trained end to end (review, Fig. 12): ``image -> Q``."""

    def __init__(self, unary: nn.Module, crf: CRFRNN):
        super().__init__()
        self.unary, self.crf = unary, crf

    def forward(self, image) -> Tensor:
        """Marginals ``(B, L, H, W)`` of the CRF-RNN given the unary network's scores."""
        return self.crf((self.unary(image), image))

    def log_marginals(self, image) -> Tensor:
        """``log Q`` (for the cross-entropy loss)."""
        return self.crf.log_marginals((self.unary(image), image))
