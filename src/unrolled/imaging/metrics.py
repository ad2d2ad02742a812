"""Image quality for batches: PSNR and SSIM computed by :mod:`skimage.metrics` (not re-implemented).

Inputs are ``(B, H, W)`` or ``(H, W)`` tensors or arrays; complex estimates (MRI reconstructions) are compared
by their magnitude. Values are per image, as a float64 CPU tensor ``(B,)`` (a 0-d tensor for one image).
Metrics run outside the hot path: tensors are moved to the CPU and converted to numpy here.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["psnr", "ssim", "as_images"]


def as_images(name: str, x) -> tuple[np.ndarray, bool]:
    """``x`` as a real float64 numpy stack ``(B, H, W)`` (magnitude if complex) and whether it was one image."""
    if isinstance(x, Tensor):
        x = x.detach().cpu()
        x = (x.abs() if x.is_complex() else x).to(torch.float64).numpy()
    x = np.asarray(x)
    if np.iscomplexobj(x):
        x = np.abs(x)
    if x.ndim not in (2, 3):
        raise ValueError(f"{name} must be (B, H, W) or (H, W), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf")
    return (x[None] if x.ndim == 2 else x).astype(np.float64), x.ndim == 2


def _pairs(estimate, target):
    est, single = as_images("estimate", estimate)
    ref, _ = as_images("target", target)
    if est.shape != ref.shape:
        raise ValueError(f"estimate of shape {est.shape} does not match target of shape {ref.shape}")
    return est, ref, single


def psnr(estimate, target, data_range: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio in dB, ``skimage.metrics.peak_signal_noise_ratio`` per image."""
    from skimage.metrics import peak_signal_noise_ratio

    est, ref, single = _pairs(estimate, target)
    values = torch.tensor([peak_signal_noise_ratio(r, e, data_range=data_range) for e, r in zip(est, ref)],
                          dtype=torch.float64)
    return values[0] if single else values


def ssim(estimate, target, data_range: float = 1.0) -> Tensor:
    """Structural similarity, ``skimage.metrics.structural_similarity`` per image (7x7 window, or the image
    side when smaller, made odd)."""
    from skimage.metrics import structural_similarity

    est, ref, single = _pairs(estimate, target)
    win = min(7, est.shape[-1], est.shape[-2])
    win -= 1 - win % 2
    values = torch.tensor([structural_similarity(r, e, data_range=data_range, win_size=win)
                           for e, r in zip(est, ref)], dtype=torch.float64)
    return values[0] if single else values
