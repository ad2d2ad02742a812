"""PSNR / SSIM wrappers: closed forms and skimage's own values."""

import numpy as np
import pytest
import torch

from unrolled.imaging.metrics import psnr, ssim


def test_psnr_closed_form_and_batching():
    target = torch.zeros(2, 8, 8, dtype=torch.float64)
    est = target.clone()
    est[0] += 0.1  # MSE 0.01 -> 20 dB
    est[1] += 0.01  # -> 40 dB
    assert torch.allclose(psnr(est, target), torch.tensor([20.0, 40.0], dtype=torch.float64))
    assert float(psnr(est[0], target[0])) == pytest.approx(20.0)
    rotated = torch.complex(est[0], torch.zeros(8, 8, dtype=torch.float64)) * 1j  # magnitude is compared
    assert float(psnr(rotated, target[0])) == pytest.approx(20.0)


def test_ssim_identity_and_order():
    gen = np.random.default_rng(0)
    target = gen.random((2, 16, 16))
    noisy = np.clip(target + 0.2 * gen.standard_normal(target.shape), 0, 1)
    s = ssim(noisy, target)
    assert torch.allclose(ssim(target, target), torch.ones(2, dtype=torch.float64))
    assert (s < 0.9).all()
    with pytest.raises(ValueError, match="estimate"):
        psnr(np.ones((2, 3, 4, 5)), np.ones((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="target"):
        ssim(np.ones((4, 4)), np.full((4, 4), np.nan))
