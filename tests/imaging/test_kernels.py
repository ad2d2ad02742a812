"""Blur kernels: the constraint set of (7)-(9) (non-negative, unit sum), their shapes' moments, and the
circular embedding that FFT convolution uses (checked against scipy's direct convolution)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from unrolled.imaging.kernels import (
    KernelSource,
    check_kernel,
    disk_kernels,
    gaussian_kernels,
    image_to_kernel,
    kernel_to_image,
    motion_kernels,
)

SAMPLERS = [gaussian_kernels, motion_kernels, disk_kernels]


def _moments(k: torch.Tensor):
    """Centroid (row, col) offsets from the centre pixel and the 2x2 covariance of a kernel as a distribution."""
    s = k.shape[-1]
    r = torch.arange(s, dtype=k.dtype) - s // 2
    rows, cols = torch.meshgrid(r, r, indexing="ij")
    mr, mc = (k * rows).sum(), (k * cols).sum()
    d = torch.stack([rows - mr, cols - mc])
    cov = torch.einsum("ahw,bhw,hw->ab", d, d, k)
    return torch.stack([mr, mc]), cov


@pytest.mark.parametrize("sampler", SAMPLERS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("size", [5, 15])
def test_kernels_are_in_the_constraint_set_and_reproducible(sampler, size):
    k = sampler(6, size, generator=torch.Generator().manual_seed(0))
    assert k.shape == (6, size, size) and k.dtype == torch.float64
    assert bool((k >= 0).all())
    torch.testing.assert_close(k.sum((-2, -1)), torch.ones(6, dtype=torch.float64), rtol=0, atol=1e-12)
    check_kernel("k", k)  # accepted by the validator
    again = sampler(6, size, generator=torch.Generator().manual_seed(0))
    other = sampler(6, size, generator=torch.Generator().manual_seed(1))
    assert torch.equal(k, again) and not torch.allclose(k, other)
    assert sampler(2, size, dtype=torch.float32).dtype == torch.float32


def test_isotropic_gaussian_has_the_drawn_variance():
    # sampled on the integer grid, a Gaussian of std 1 has variance 1 up to ~exp(-2 pi^2) (Poisson summation)
    k = gaussian_kernels(3, 15, sigma=(1.0, 1.0), generator=torch.Generator().manual_seed(0))
    for kb in k:
        centre, cov = _moments(kb)
        torch.testing.assert_close(centre, torch.zeros(2, dtype=torch.float64), rtol=0, atol=1e-12)
        torch.testing.assert_close(cov, torch.eye(2, dtype=torch.float64), rtol=0, atol=1e-6)


def test_anisotropic_gaussian_axes_lie_in_the_range():
    k = gaussian_kernels(20, 21, sigma=(0.8, 2.5), generator=torch.Generator().manual_seed(3))
    ratios = []
    for kb in k:
        ev = torch.linalg.eigvalsh(_moments(kb)[1])
        assert 0.8**2 - 1e-3 <= ev[0] <= ev[1] <= 2.5**2 + 1e-3
        ratios.append(float(ev[1] / ev[0]))
    assert max(ratios) > 2.0  # anisotropic, not only round blobs


def test_straight_motion_is_a_centred_segment_of_the_drawn_length():
    L = 10.0
    k = motion_kernels(8, 15, length=(L, L), turn=0.0, jerk=0.0, generator=torch.Generator().manual_seed(0))
    angles = []
    for kb in k:
        centre, cov = _moments(kb)
        # bilinear splatting keeps the centroid, and the trajectory is centred on its mean
        torch.testing.assert_close(centre, torch.zeros(2, dtype=torch.float64), rtol=0, atol=1e-9)
        ev, vec = torch.linalg.eigh(cov)
        # T equispaced points on a segment of length L have variance L^2 (T + 1) / (12 (T - 1)) along it;
        # bilinear splatting adds at most 1/4 in any direction
        T = 8 * 15
        along = L**2 * (T + 1) / (12 * (T - 1))
        assert along - 1e-9 <= ev[1] <= along + 0.25
        assert ev[0] <= 0.25
        angles.append(math.atan2(float(vec[0, 1]), float(vec[1, 1])) % math.pi)
    assert max(angles) - min(angles) > 0.5  # random directions


def test_motion_kernels_are_centred_and_fit_the_support():
    k = motion_kernels(16, 7, length=(20.0, 40.0), generator=torch.Generator().manual_seed(2))  # longer than 7
    for kb in k:
        torch.testing.assert_close(_moments(kb)[0], torch.zeros(2, dtype=torch.float64), rtol=0, atol=1e-9)
    assert float(k[:, [0, -1], :].sum() + k[:, :, [0, -1]].sum()) > 0  # shrunk to the support, not cropped


def test_disk_has_the_area_and_variance_of_its_radius():
    r = 4.0
    k = disk_kernels(1, 15, radius=(r, r), supersample=16)[0]
    centre, cov = _moments(k)
    torch.testing.assert_close(centre, torch.zeros(2, dtype=torch.float64), rtol=0, atol=1e-12)
    # uniform disk: variance r^2/4 per axis; pixel integration (Sheppard) adds about 1/12
    torch.testing.assert_close(cov, (r**2 / 4 + 1 / 12) * torch.eye(2, dtype=torch.float64), rtol=0, atol=0.05)
    area = float(1.0 / k.max())  # interior pixels hold 1/area each
    assert area == pytest.approx(math.pi * r**2, rel=0.02)


def test_kernel_source_mixture_and_config():
    src = KernelSource(("gaussian", "motion", "disk"), 9, options={"motion": {"length": (3.0, 8.0)}})
    k = src.sample(30, torch.Generator().manual_seed(0))
    check_kernel("k", k)
    assert KernelSource(**src.config()).config() == src.config()
    assert torch.equal(KernelSource(**src.config()).sample(30, torch.Generator().manual_seed(0)), k)
    gauss = KernelSource("gaussian", 9).sample(30, torch.Generator().manual_seed(0))
    motion = KernelSource("motion", 9).sample(30, torch.Generator().manual_seed(0))
    # Gaussians are nowhere exactly zero; motion paths cover few pixels: the mixture holds both
    assert bool((gauss > 0).all())
    assert float((motion > 0).double().mean()) < 0.5
    n_dense = int(((k > 0).double().mean((-2, -1)) == 1).sum())
    assert 0 < n_dense < 30


@pytest.mark.parametrize("bad, match", [
    (dict(kinds="blur"), "kinds"), (dict(kinds=()), "kinds"), (dict(size=8), "size"), (dict(size=1), "size"),
    (dict(kinds="gaussian", options={"motion": {}}), "options"),
])
def test_kernel_source_refuses_bad_settings(bad, match):
    with pytest.raises(ValueError, match=match):
        KernelSource(**bad)


def test_sampler_ranges_are_checked():
    with pytest.raises(ValueError, match="sigma"):
        gaussian_kernels(2, 9, sigma=(2.0, 1.0))
    with pytest.raises(ValueError, match="radius"):
        disk_kernels(2, 9, radius=(1.0, 9.0))
    with pytest.raises(ValueError, match="turn"):
        motion_kernels(2, 9, turn=float("nan"))


def test_check_kernel_refuses_bad_kernels():
    good = gaussian_kernels(1, 5)[0]
    cases = {
        "square": torch.ones(5, 7) / 35, "odd": torch.ones(4, 4) / 16, "non-negative": good - 0.5 * good.max(),
        "sum to 1": 2 * good, "NaN": torch.full((5, 5), float("nan")), "larger": torch.ones(9, 9) / 81,
        "dimensions": torch.ones(5) / 5,
    }
    for what, k in cases.items():
        with pytest.raises(ValueError, match="kernel") as info:
            check_kernel("kernel", k, image_shape=(8, 8))
        assert what.split()[0].lower() in str(info.value).lower() or what == "NaN", (what, info.value)


@pytest.mark.parametrize("shape", [(16, 16), (13, 18)])
def test_circular_embedding_matches_direct_convolution(shape):
    g = torch.Generator().manual_seed(0)
    k = motion_kernels(1, 5, generator=g)[0]
    x = torch.rand(shape, generator=g, dtype=torch.float64)
    kimg = kernel_to_image(k, shape)
    assert torch.equal(image_to_kernel(kimg, 5), k)
    fft = torch.fft.ifft2(torch.fft.fft2(kimg) * torch.fft.fft2(x)).real
    direct = convolve2d(x.numpy(), k.numpy(), mode="same", boundary="wrap")  # true convolution (kernel flipped)
    np.testing.assert_allclose(fft.numpy(), direct, atol=1e-12)
