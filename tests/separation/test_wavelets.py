"""The starlet transform: exact reconstruction and agreement with an independent scipy convolution."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from unrolled.separation.wavelets import starlet_forward, starlet_inverse

H = np.array([1, 4, 6, 4, 1]) / 16


def scipy_smooth(img: np.ndarray, scale: int) -> np.ndarray:
    step = 2**scale
    kernel = np.zeros(4 * step + 1)
    kernel[::step] = H
    out = ndimage.convolve1d(img, kernel, axis=-1, mode="mirror")
    return ndimage.convolve1d(out, kernel, axis=-2, mode="mirror")


@pytest.mark.parametrize("n_scales", [1, 2])
def test_matches_scipy_mirror_convolution(n_scales):
    g = torch.Generator().manual_seed(0)
    imgs = torch.rand(3, 23, 31, generator=g, dtype=torch.float64)
    coarse, details = starlet_forward(imgs, n_scales)
    c = imgs.numpy()
    for j in range(n_scales):
        c_next = scipy_smooth(c, j)
        np.testing.assert_allclose(details[j].numpy(), c - c_next, atol=1e-13)
        c = c_next
    np.testing.assert_allclose(coarse.numpy(), c, atol=1e-13)


def test_perfect_reconstruction_and_constant_images():
    g = torch.Generator().manual_seed(1)
    imgs = torch.randn(2, 4, 20, 20, generator=g, dtype=torch.float64)
    coarse, details = starlet_forward(imgs, 1)
    assert coarse.shape == imgs.shape and details[0].shape == imgs.shape
    assert torch.allclose(starlet_inverse(coarse, details), imgs, atol=1e-14)
    # the kernel sums to one: a constant image has no detail (boundaries included)
    c, (w,) = starlet_forward(torch.full((1, 16, 16), 3.0, dtype=torch.float64), 1)
    assert torch.allclose(w, torch.zeros_like(w), atol=1e-14) and torch.allclose(c, torch.full_like(c, 3.0))
    # a single bright pixel away from the edges is smoothed by the separable B3 spline
    delta = torch.zeros(1, 15, 15, dtype=torch.float64)
    delta[0, 7, 7] = 1.0
    c, _ = starlet_forward(delta, 1)
    assert torch.allclose(c[0, 5:10, 5:10], torch.from_numpy(np.outer(H, H)), atol=1e-15)


def test_bad_input():
    with pytest.raises(ValueError, match="too small"):
        starlet_forward(torch.zeros(2, 5, dtype=torch.float64), 1)
    with pytest.raises(ValueError, match="NaN or inf"):
        starlet_forward(torch.full((8, 8), float("nan")), 1)
    with pytest.raises(ValueError, match="n_scales"):
        starlet_forward(torch.zeros(8, 8), 0)
    with pytest.raises(ValueError, match="does not match"):
        starlet_inverse(torch.zeros(8, 8), [torch.zeros(7, 8)])
