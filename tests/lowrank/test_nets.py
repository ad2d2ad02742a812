"""CORONA: untrained = ISTA (identity and PSF operators), phase equivariance, stable gradients on rank-deficient
batches; the ResNet baseline."""

from __future__ import annotations

import math

import pytest
import torch

from unrolled.core.io import load_model, save_model
from unrolled.core.testing import assert_untrained_equals_solver
from unrolled.lowrank.data import UltrasoundMovieProblem
from unrolled.lowrank.nets import CORONA, ResNetRPCA
from unrolled.lowrank.registration import rpca_loss
from unrolled.lowrank.solvers import rpca_ista

DT = torch.complex128


def _ista(D, lam1, lam2, **kw):
    return lambda max_iter, tol, callback=None: rpca_ista(D, lam1, lam2, max_iter=max_iter, tol=tol,
                                                          callback=callback, fast=False, **kw)


@pytest.mark.parametrize("kernel_size", [1, 3])
def test_untrained_corona_equals_ista_with_identity_operators(kernel_size):
    D, _ = UltrasoundMovieProblem(height=8, width=8, frames=6, rank=2).sample(3, torch.Generator().manual_seed(0))
    net = CORONA.from_algorithm(5, 1.2, 0.3, kernel_size=kernel_size)
    assert_untrained_equals_solver(net, D, _ista(D, 1.2, 0.3), atol=1e-12)


def test_untrained_corona_equals_ista_with_complex_psfs():
    """Two different non-symmetric complex kernels: a dropped conjugate or flip, or H1 and H2 swapped, in any of
    the six filters breaks this (the Gaussian PSF of the data model is Hermitian-symmetric, so it is not used)."""
    g = torch.Generator().manual_seed(3)
    h1, h2 = (torch.randn(3, 3, dtype=DT, generator=g) for _ in range(2))
    assert not torch.allclose(h1, h1.flip(0, 1).conj())
    D = torch.randn(2, 5, 9, 10, dtype=DT, generator=g)
    net = CORONA.from_algorithm(4, 0.9, 0.2, H1=h1, H2=h2, frame_shape=(9, 10), kernel_size=5)
    assert_untrained_equals_solver(net, D, _ista(D, 0.9, 0.2, H1=h1, H2=h2), atol=1e-11)
    swapped = CORONA.from_algorithm(4, 0.9, 0.2, H1=h2, H2=h1, frame_shape=(9, 10), kernel_size=5)
    with torch.no_grad():
        assert not torch.allclose(swapped(D), net(D), atol=1e-3)
    with pytest.raises(ValueError, match="kernel"):
        CORONA.from_algorithm(4, 0.9, 0.2, H1=h1, H2=h2, frame_shape=(9, 10), kernel_size=3)
    psf = UltrasoundMovieProblem(height=9, width=10, frames=5, operator="psf").H  # the data model's PSF fits k = 9
    CORONA.from_algorithm(1, 0.9, 0.2, H1=psf, H2=psf, frame_shape=(9, 10), kernel_size=9)


def test_corona_is_equivariant_to_a_global_phase():
    """Complex filters, SVT and l1,2 shrinkage commute with e^{i phi}: so must the trained-like net."""
    g = torch.Generator().manual_seed(2)
    net = CORONA(3, kernel_size=3)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.3 * torch.randn(p.shape, dtype=p.dtype, generator=g))
    D = torch.randn(2, 5, 7, 7, dtype=DT, generator=g)
    phase = complex(math.cos(0.7), math.sin(0.7))
    with torch.no_grad():
        assert torch.allclose(net(D * phase), net(D) * phase, atol=1e-12)


def _rank_deficient_batch():
    """Movie 0: rank 1 (19 zero singular values); movie 1: two components of equal energy (a repeated singular
    value) and no blood; movie 2: all zeros."""
    g = torch.Generator().manual_seed(4)
    T, H, W = 6, 8, 8
    u = torch.randn(H * W, dtype=DT, generator=g)
    v = torch.randn(T, dtype=DT, generator=g)
    rank1 = torch.outer(v, u).reshape(T, H, W)
    Q = torch.linalg.qr(torch.randn(H * W, 2, dtype=DT, generator=g))[0]
    V = torch.linalg.qr(torch.randn(T, 2, dtype=DT, generator=g))[0]
    equal = (3.0 * V @ Q.mT).reshape(T, H, W)
    D = torch.stack([rank1, equal, torch.zeros(T, H, W, dtype=DT)])
    targets = torch.stack([D, torch.zeros_like(D)], dim=1)
    targets[0, 1, :, 2, 3] = 0.5  # some blood in the first movie's targets
    return D, targets


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_training_step_on_a_rank_deficient_batch_has_finite_gradients(dtype):
    D, targets = _rank_deficient_batch()
    sv = torch.linalg.svdvals(D[1].reshape(6, -1))
    assert abs(float(sv[0] - sv[1])) < 1e-12 and float(sv[2]) < 1e-12
    net = CORONA.from_algorithm(4, 0.5, 0.1, kernel_size=3, dtype=dtype)
    cdt = DT if dtype == "float64" else torch.complex64
    loss = rpca_loss(net(D.to(cdt)), targets.to(cdt))
    loss.backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    opt.step()
    with torch.no_grad():
        assert torch.isfinite(net(D.to(cdt))).all()
    assert all(float(net.lam1[k]) > 0 and float(net.lam2[k]) > 0 for k in range(4))


def test_corona_input_checks_name_D():
    net = CORONA(2)
    D = torch.randn(1, 4, 6, 6, dtype=DT)
    for bad in (D.real, D.to(torch.complex64), D[0, 0], D[:0], D[..., :2, :2]):
        with pytest.raises(ValueError, match=r"\bD\b"):
            net(bad)


def test_resnet_baseline_shapes_parameters_and_round_trip(tmp_path):
    res = ResNetRPCA(dtype="float64")
    corona = CORONA(10)
    n_res, n_cor = (sum(p.numel() for p in m.parameters()) for m in (res, corona))
    assert n_res == 8252 and n_cor == 1100 and n_res > 4 * n_cor
    D = torch.randn(2, 4, 6, 6, dtype=DT)
    out = res(D)
    assert out.shape == (2, 2, 4, 6, 6) and out.dtype == DT
    assert res(D[0]).shape == (2, 4, 6, 6)
    save_model(res, tmp_path / "r")
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path / "r")(D), out.detach())
    with pytest.raises(ValueError, match=r"\bD\b"):
        res(D.to(torch.complex64))
