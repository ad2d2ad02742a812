"""Message passing (19): exact dense filtering against the naive kernel, and the fast filters against exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unrolled.segmentation.filtering import (Filtering, bilateral_matrix, kernel_cache, messages, relative_error,
                                             separable_spatial, spatial_matrix)


def _data(B=2, L=3, H=6, W=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q = torch.softmax(torch.randn(B, L, H, W, generator=g, dtype=torch.float64), dim=1)
    image = torch.rand(B, 3, H, W, generator=g, dtype=torch.float64)
    return Q, image


def test_kernel_matrices_equal_the_naive_kernel(naive):
    Q, image = _data(B=1, H=4, W=5)
    widths = torch.tensor([1.2, 2.5, 0.35], dtype=torch.float64)
    ks, kb = naive.kernel_values(image[0].numpy(), 1.2, 2.5, 0.35)
    np.testing.assert_allclose(spatial_matrix(4, 5, widths[0], dtype=torch.float64, device="cpu").numpy(), ks,
                               rtol=0, atol=1e-14)
    np.testing.assert_allclose(bilateral_matrix(image, widths[1], widths[2])[0].numpy(), kb, rtol=0, atol=1e-14)


def test_exact_messages_exclude_the_pixel_itself():
    """A marginal that is a one-hot at one pixel sends nothing to that pixel (sum over j != i)."""
    Q = torch.zeros(1, 2, 5, 5, dtype=torch.float64)
    Q[0, 1, 2, 3] = 1.0
    image = torch.rand(1, 3, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    widths = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    for f in (Filtering("exact"), Filtering("fast", 1, 50.0)):
        sp, bi = messages(Q, image, widths, f)
        assert sp[0, 1, 2, 3].abs() < 1e-14 and bi[0, 1, 2, 3].abs() < 1e-14
        assert sp[0, 1, 2, 2] == pytest.approx(np.exp(-1 / 2), abs=1e-14)  # one pixel to the left
        assert torch.all(sp[0, 0] == 0)


def test_separable_spatial_equals_dense_when_the_taps_cover_the_image():
    Q, _ = _data(H=6, W=9)
    gamma = torch.tensor(1.7, dtype=torch.float64)
    dense = messages(Q, torch.zeros(2, 1, 6, 9, dtype=torch.float64), torch.stack([gamma, gamma, gamma]),
                     Filtering("exact"))[0]
    torch.testing.assert_close(separable_spatial(Q, gamma, truncate=100.0), dense, rtol=0, atol=1e-13)
    # truncated at 2 widths: a small but visible error, smaller at 4 widths
    e2 = relative_error(separable_spatial(Q, gamma, 2.0), dense)
    e4 = relative_error(separable_spatial(Q, gamma, 4.0), dense)
    assert 1e-2 > e2 > e4 > 0 and e4 < 1e-3


def test_bilateral_stride_one_is_exact_and_error_falls_with_the_width():
    Q, image = _data(B=2, H=24, W=24, seed=2)
    image = 0.1 * image  # nearly flat colours: the spatial part of the kernel decides the error
    errors = {}
    for alpha in (1.0, 3.0, 8.0):
        w = torch.tensor([1.0, alpha, 0.5], dtype=torch.float64)
        exact = messages(Q, image, w, Filtering("exact"))[1]
        assert relative_error(messages(Q, image, w, Filtering("fast", 1))[1], exact) < 1e-14
        errors[alpha] = relative_error(messages(Q, image, w, Filtering("fast", 2))[1], exact)
    assert errors[1.0] > errors[3.0] > errors[8.0]
    assert errors[8.0] < 0.02


def test_kernel_cache_gives_the_same_messages():
    Q, image = _data()
    w = torch.tensor([1.0, 2.0, 0.4], dtype=torch.float64)
    for f in (Filtering("exact"), Filtering("fast", 2)):
        a = messages(Q, image, w, f, kernel_cache(image, w, f))
        b = messages(Q, image, w, f)
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_messages_are_differentiable_in_the_widths():
    Q, image = _data()
    w = torch.tensor([1.0, 2.0, 0.4], dtype=torch.float64, requires_grad=True)
    for f in (Filtering("exact"), Filtering("fast", 2)):
        sp, bi = messages(Q, image, w, f)
        (g,) = torch.autograd.grad((sp + bi).sum(), w)
        assert torch.isfinite(g).all() and torch.all(g > 0)  # wider kernels pass more mass


@pytest.mark.parametrize("kw", [{"method": "lattice"}, {"stride": 0}, {"stride": 1.5}, {"truncate": -1.0}])
def test_filtering_settings_are_checked(kw):
    with pytest.raises(ValueError):
        Filtering(**kw)
