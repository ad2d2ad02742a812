r"""Starlet (isotropic undecimated wavelet) transform, LPALM paper appendix A.

The starlet of Starck et al. (2010) smooths with the separable B3-spline kernel
``h = [1, 4, 6, 4, 1] / 16`` (à trous: ``2^j - 1`` zeros between taps at scale
``j``): ``c_{j+1} = h_j * h_j^T * c_j`` and the detail is ``w_{j+1} = c_j - c_{j+1}``.
The inverse is the sum ``c_0 = c_J + sum_j w_j``, so reconstruction is exact by
construction. The paper uses ``J = 1``: one coarse scale and one detail scale.

Boundary handling: mirror symmetry about the edge samples without repeating
them (``x[-1] = x[1]``), i.e. ``torch.nn.functional.pad(mode='reflect')``,
which equals ``scipy.ndimage.convolve1d(mode='mirror')``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from unrolled.core.validation import check_int, check_tensor

B3_SPLINE = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)


def _smooth(c: Tensor, scale: int) -> Tensor:
    """Separable à-trous B3-spline smoothing of ``(N, H, W)`` images at ``scale`` (0-based)."""
    step = 2**scale
    pad = 2 * step
    if min(c.shape[-2:]) <= pad:
        raise ValueError(f"images of shape {tuple(c.shape[-2:])} are too small for scale {scale + 1} (need > {pad} pixels)")
    kernel = torch.zeros(4 * step + 1, dtype=c.dtype, device=c.device)
    kernel[::step] = torch.tensor(B3_SPLINE, dtype=c.dtype, device=c.device)
    x = c[:, None]
    x = F.conv2d(F.pad(x, (pad, pad, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, pad, pad), mode="reflect"), kernel.view(1, 1, -1, 1))
    return x[:, 0]


def starlet_forward(images: Tensor, n_scales: int = 1) -> tuple[Tensor, list[Tensor]]:
    """Starlet transform of ``(..., H, W)`` images.

    Parameters
    ----------
    images : Tensor
        Real images, any leading batch shape.
    n_scales : int
        ``J``, the number of detail scales (paper: 1).

    Returns
    -------
    (Tensor, list of Tensor)
        The coarse scale ``c_J`` and the details ``[w_1, ..., w_J]`` (finest
        first), each shaped like ``images``.
    """
    check_tensor("images", images)
    if images.dim() < 2:
        raise ValueError(f"images must have at least 2 dimensions (H, W), got shape {tuple(images.shape)}")
    check_int("n_scales", n_scales, minimum=1)
    shape = images.shape
    c = images.reshape(-1, *shape[-2:])
    details = []
    for j in range(n_scales):
        c_next = _smooth(c, j)
        details.append((c - c_next).reshape(shape))
        c = c_next
    return c.reshape(shape), details


def starlet_inverse(coarse: Tensor, details: list[Tensor]) -> Tensor:
    """Inverse starlet transform: ``c_J + sum_j w_j``."""
    out = coarse.clone()
    for w in details:
        if w.shape != coarse.shape:
            raise ValueError(f"detail of shape {tuple(w.shape)} does not match coarse scale {tuple(coarse.shape)}")
        out = out + w
    return out
