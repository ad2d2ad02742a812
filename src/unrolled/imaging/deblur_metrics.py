r"""Translation-invariant scores of blind deblurring (review, DUBLID box: "the translation-invariant MSE loss").

Blind deconvolution recovers :math:`(x, k)` only up to a shift: :math:`k * x = (k \circ \tau_t) * (x \circ
\tau_{-t})`. Every score here is therefore taken at the best integer shift :math:`t` with
:math:`|t_r|, |t_c| \le` ``max_shift``:

* :func:`shifted_mse`: the circular shift-invariant MSE per image, for all shifts at once from one FFT
  cross-correlation (:math:`\|a \circ \tau_t - b\|^2 = \|a\|^2 + \|b\|^2 - 2 (a \star b)[t]`); differentiable,
  the training loss :func:`deblur_loss` uses it;
* :func:`shift_corrected_psnr`: the PSNR (from :func:`skimage.metrics.peak_signal_noise_ratio` via
  :func:`unrolled.imaging.metrics.psnr`) of the estimate moved by the shift that minimises its MSE;
* :func:`kernel_error`: :math:`\min_t \|k \circ \tau_t - k_\star\| / \|k_\star\|` with zero fill (kernels are
  not periodic).
"""

from __future__ import annotations

import torch
from torch import Tensor

from unrolled.imaging.metrics import psnr

__all__ = ["shifted_mse", "best_shift", "shift_corrected_psnr", "kernel_error", "deblur_loss", "shift_correct"]


def _batch(name: str, a: Tensor) -> Tensor:
    a = torch.as_tensor(a)
    if a.dim() == 2:
        a = a.unsqueeze(0)
    if a.dim() != 3:
        raise ValueError(f"{name} must be (B, H, W) or (H, W), got shape {tuple(a.shape)}")
    return a


def _all_shift_mse(a: Tensor, b: Tensor, max_shift: int) -> tuple[Tensor, Tensor]:
    """MSE of ``roll(a, t)`` against ``b`` for every ``t`` in the window: ``(B, n)`` and the shifts ``(n, 2)``."""
    if a.shape != b.shape:
        raise ValueError(f"estimate {tuple(a.shape)} and target {tuple(b.shape)} differ in shape")
    H, W = a.shape[-2:]
    m = int(max_shift)
    if not 0 <= 2 * m < min(H, W):
        raise ValueError(f"max_shift must be in [0, {(min(H, W) - 1) // 2}], got {max_shift}")
    # corr[t] = sum_n a[n - t] b[n]: the inner product of roll(a, t) with b
    corr = torch.fft.ifft2(torch.fft.fft2(a) * torch.fft.fft2(b).conj()).real
    corr = torch.flip(torch.roll(corr, shifts=(-1, -1), dims=(-2, -1)), dims=(-2, -1))  # index t, not -t
    r = torch.arange(-m, m + 1, device=a.device)
    tr, tc = torch.meshgrid(r, r, indexing="ij")
    shifts = torch.stack([tr.reshape(-1), tc.reshape(-1)], -1)
    inner = corr[:, shifts[:, 0] % H, shifts[:, 1] % W]
    sq = (a**2).sum((-2, -1), keepdim=True).squeeze(-1) + (b**2).sum((-2, -1), keepdim=True).squeeze(-1)
    return (sq - 2 * inner).clamp_min(0) / (H * W), shifts


def shifted_mse(estimate: Tensor, target: Tensor, max_shift: int) -> Tensor:
    """Per image ``(B,)``: the smallest MSE of the circularly shifted estimate against the target."""
    mse, _ = _all_shift_mse(_batch("estimate", estimate), _batch("target", target), max_shift)
    return mse.amin(-1)


def best_shift(estimate: Tensor, target: Tensor, max_shift: int) -> Tensor:
    """Per image ``(B, 2)``: the integer shift ``(rows, cols)`` that :func:`shifted_mse` takes."""
    mse, shifts = _all_shift_mse(_batch("estimate", estimate), _batch("target", target), max_shift)
    return shifts[mse.argmin(-1)]


def shift_correct(estimate: Tensor, target: Tensor, max_shift: int) -> Tensor:
    """The estimate ``(B, H, W)`` rolled by its :func:`best_shift`."""
    est = _batch("estimate", estimate)
    t = best_shift(est, target, max_shift)
    return torch.stack([torch.roll(e, (int(r), int(c)), (-2, -1)) for e, (r, c) in zip(est, t.tolist())])


def shift_corrected_psnr(estimate: Tensor, target: Tensor, max_shift: int, data_range: float = 1.0) -> Tensor:
    """PSNR in dB per image ``(B,)`` (float64, CPU) after the best circular shift (skimage's PSNR)."""
    est = shift_correct(estimate, target, max_shift)
    return torch.as_tensor(psnr(est.detach(), _batch("target", target).detach(), data_range=data_range)).reshape(-1)


def kernel_error(estimate: Tensor, target: Tensor, max_shift: int | None = None) -> Tensor:
    """Relative error ``(B,)`` of kernels ``(B, s, s)`` at their best shift, zero fill (``max_shift``: s // 2)."""
    a, b = _batch("estimate", estimate), _batch("target", target)
    m = a.shape[-1] // 2 if max_shift is None else int(max_shift)
    pad = (m, m, m, m)
    a, b = torch.nn.functional.pad(a, pad), torch.nn.functional.pad(b, pad)  # zero fill: no wrap for |t| <= m
    mse, _ = _all_shift_mse(a, b, m)
    n = a.shape[-1] * a.shape[-2]
    return (mse.amin(-1) * n).sqrt() / torch.linalg.vector_norm(b, dim=(-2, -1))


def deblur_loss(prediction, target, *, max_shift: int | None = None, kernel_weight: float = 1.0) -> Tensor:
    """Training loss: shift-invariant image MSE plus ``kernel_weight`` times the kernel's shift-invariant squared error.

    ``prediction`` and ``target`` are pairs ``(x (B, H, W), k (B, s, s))``; ``max_shift`` defaults to ``s // 2``.
    """
    (x, k), (x0, k0) = prediction, target
    m = k0.shape[-1] // 2 if max_shift is None else int(max_shift)
    image = shifted_mse(x, x0, m).mean()
    pad = (m, m, m, m)
    kp, k0p = torch.nn.functional.pad(_batch("k", k), pad), torch.nn.functional.pad(_batch("k0", k0), pad)
    kernel = (shifted_mse(kp, k0p, m) * kp.shape[-1] * kp.shape[-2]).mean()
    return image + kernel_weight * kernel
