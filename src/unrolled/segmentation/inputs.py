"""Input checks of the segmentation family: unary scores, images, kernel settings (each error names its argument)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from unrolled.core.validation import check_tensor


@dataclass(frozen=True)
class GaussianKernels:
    """Widths of the two Gaussian kernels of the dense CRF (:mod:`unrolled.segmentation.filtering`).

    Attributes
    ----------
    spatial : float
        :math:`\\gamma`, width of the spatial (smoothness) kernel, in pixels.
    bilateral_spatial : float
        :math:`\\alpha`, position width of the bilateral (appearance) kernel, in pixels.
    bilateral_colour : float
        :math:`\\beta`, colour width of the bilateral kernel, in the units of the image.
    """

    spatial: float = 1.5
    bilateral_spatial: float = 6.0
    bilateral_colour: float = 0.15

    def __post_init__(self):
        for name in ("spatial", "bilateral_spatial", "bilateral_colour"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"kernels.{name} must be a finite number > 0, got {v!r}")

    def as_tuple(self) -> tuple[float, float, float]:
        """``(gamma, alpha, beta)``."""
        return (float(self.spatial), float(self.bilateral_spatial), float(self.bilateral_colour))


def as_kernels(kernels) -> GaussianKernels:
    """A :class:`GaussianKernels` from itself, a mapping of its fields, or a triple ``(gamma, alpha, beta)``."""
    if isinstance(kernels, GaussianKernels):
        return kernels
    if isinstance(kernels, dict):
        try:
            return GaussianKernels(**kernels)
        except TypeError as e:
            raise ValueError(f"kernels: {e}") from None
    if isinstance(kernels, (tuple, list)) and len(kernels) == 3:
        return GaussianKernels(*kernels)
    raise ValueError(f"kernels must be GaussianKernels, a dict of its fields or (gamma, alpha, beta), got {kernels!r}")


def _tensor(name: str, x) -> Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    return check_tensor(name, x)


def check_unary_image(unary, image, *, n_classes: int | None = None) -> tuple[Tensor, Tensor, bool]:
    """Validate ``unary (B, L, H, W)`` and ``image (B, C, H, W)`` (or both unbatched); returns batched tensors.

    Raises ``ValueError`` naming ``unary`` or ``image``: wrong type, dtype (not float32/float64), rank, NaN/inf,
    an empty batch, fewer than 2 labels, sizes that do not match each other, different dtypes or devices.
    """
    unary, image = _tensor("unary", unary), _tensor("image", image)
    if unary.is_complex():
        raise ValueError(f"unary must be real, got {unary.dtype}")
    if image.is_complex():
        raise ValueError(f"image must be real, got {image.dtype}")
    if unary.dim() not in (3, 4):
        raise ValueError(f"unary must be (B, L, H, W) or (L, H, W), got shape {tuple(unary.shape)}")
    if image.dim() != unary.dim():
        raise ValueError(f"image must be {'(B, C, H, W)' if unary.dim() == 4 else '(C, H, W)'} like unary "
                         f"{tuple(unary.shape)}, got shape {tuple(image.shape)}")
    unbatched = unary.dim() == 3
    if unbatched:
        unary, image = unary.unsqueeze(0), image.unsqueeze(0)
    if unary.shape[0] == 0:
        raise ValueError("unary is an empty batch (0 images)")
    if image.shape[0] != unary.shape[0]:
        raise ValueError(f"image has {image.shape[0]} images but unary has {unary.shape[0]}")
    if unary.shape[1] < 2:
        raise ValueError(f"unary needs at least 2 labels, got shape {tuple(unary.shape)}")
    if n_classes is not None and unary.shape[1] != n_classes:
        raise ValueError(f"unary must have {n_classes} labels (dimension 1), got shape {tuple(unary.shape)}")
    if image.shape[1] < 1 or min(image.shape[-2:]) < 1:
        raise ValueError(f"image needs at least one channel and one pixel, got shape {tuple(image.shape)}")
    if unary.shape[-2:] != image.shape[-2:]:
        raise ValueError(f"unary is {tuple(unary.shape[-2:])} pixels but image is {tuple(image.shape[-2:])}")
    if image.dtype != unary.dtype:
        raise ValueError(f"image has dtype {image.dtype} but unary has dtype {unary.dtype}; convert one of them")
    if image.device != unary.device:
        raise ValueError(f"image is on {image.device} but unary is on {unary.device}")
    return unary, image, unbatched


def potts(n_classes: int, *, dtype: torch.dtype = torch.float64, device=None) -> Tensor:
    """The Potts compatibility :math:`\\mu(l, l') = [l \\ne l']`, ``(L, L)``."""
    return 1.0 - torch.eye(n_classes, dtype=dtype, device=device)


def as_compatibility(compatibility, n_classes: int, *, dtype: torch.dtype, device) -> Tensor:
    """``'potts'`` or an ``(L, L)`` / ``(2, L, L)`` finite matrix, as a tensor of ``dtype`` on ``device``."""
    if isinstance(compatibility, str):
        if compatibility != "potts":
            raise ValueError(f"compatibility must be 'potts' or a matrix, got {compatibility!r}")
        return potts(n_classes, dtype=dtype, device=device)
    mu = torch.as_tensor(compatibility, dtype=dtype, device=device)
    if mu.shape not in ((n_classes, n_classes), (2, n_classes, n_classes)):
        raise ValueError(f"compatibility must be ({n_classes}, {n_classes}) or (2, {n_classes}, {n_classes}), "
                         f"got shape {tuple(mu.shape)}")
    if not bool(torch.isfinite(mu).all()):
        raise ValueError("compatibility contains NaN or inf")
    return mu


def as_weights(weights, *, dtype: torch.dtype, device) -> Tensor:
    """``(w_spatial, w_bilateral)``: two finite weights ``> 0`` as a ``(2,)`` tensor."""
    w = torch.as_tensor(weights, dtype=dtype, device=device)
    if w.shape != (2,) or not bool(torch.isfinite(w).all()) or not bool((w > 0).all()):
        raise ValueError(f"weights must be two finite numbers > 0 (w_spatial, w_bilateral), got {weights!r}")
    return w
