"""Every family's classic solver runs on an accelerator and agrees with its CPU run (issue 30, item 5).

Skipped without CUDA. ``UNROLLED_TEST_DEVICE`` names another device to run them on (e.g. ``cuda:1``,
or ``cpu`` to exercise this module itself on a machine without a GPU). Each solver runs a fixed number
of iterations (``tol=0`` where the solver allows it) in float64 on the device and on the CPU, and the
results must agree to a tolerance that a wrong device path (a tensor created on the default device, a
dropped synchronisation, a numba kernel fed a CUDA tensor) would break, while floating-point reordering
by different kernels stays far inside it. Graph ``admm``, the imaging solvers and ``irls_admm`` have their
own device tests beside their families' tests; the nets are covered by ``tests/contracts``.
"""

from __future__ import annotations

import os

import pytest
import torch

DEVICE = os.environ.get("UNROLLED_TEST_DEVICE", "cuda")


def _available(device: str) -> bool:
    try:
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError):
        return False
    return True


pytestmark = pytest.mark.skipif(not _available(DEVICE), reason=f"needs device {DEVICE!r} (UNROLLED_TEST_DEVICE)")
DT = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _same(got: torch.Tensor, ref: torch.Tensor, tol: float = 1e-8) -> None:
    assert got.device.type == torch.device(DEVICE).type, "result left the device"
    got = got.cpu()
    scale = ref.abs().max().clamp_min(1e-12)
    assert torch.isfinite(got).all()
    assert (got - ref).abs().max() / scale < tol


@pytest.fixture(scope="module")
def sparse_problem():
    g = _gen(0)
    A = torch.randn(30, 60, generator=g, dtype=DT) / 30 ** 0.5
    x = torch.randn(5, 60, generator=g, dtype=DT) * (torch.rand(5, 60, generator=g) < 0.1)
    y = x @ A.T + 0.01 * torch.randn(5, 30, generator=g, dtype=DT)
    return y, A


@pytest.mark.parametrize("name", ["ista", "fista"])
def test_ista_fista(sparse_problem, name):
    from unrolled.sparse_coding import solvers

    y, A = sparse_problem
    solver = getattr(solvers, name)
    ref = solver(y, A, 0.05, max_iter=40, tol=0.0)
    got = solver(y.to(DEVICE), A.to(DEVICE), 0.05, max_iter=40, tol=0.0)
    _same(got.x, ref.x)
    assert got.n_iter.cpu().tolist() == ref.n_iter.tolist()


def test_iht(sparse_problem):
    from unrolled.sparse_coding.solvers import iht

    y, A = sparse_problem
    ref = iht(y, A, 6, max_iter=40, tol=0.0)
    _same(iht(y.to(DEVICE), A.to(DEVICE), 6, max_iter=40, tol=0.0).x, ref.x)


def test_lasso_torch_path_matches_the_cpu_kernel(sparse_problem):
    """On the device ``lasso`` runs its batched torch path; both solve to KKT 1e-10, so x agrees closely."""
    from unrolled.sparse_coding import lasso

    y, A = sparse_problem
    ref = lasso(y, A, 0.05, tol=1e-10)
    got = lasso(y.to(DEVICE), A.to(DEVICE), 0.05, tol=1e-10, method="torch")
    assert bool(got.converged.all()) and bool(ref.converged.all())
    _same(got.x, ref.x, tol=1e-7)


def test_sbl():
    from unrolled.sbl import sbl

    g = _gen(1)
    Phi = torch.randn(20, 40, generator=g, dtype=DT) / 20 ** 0.5
    x = torch.zeros(4, 40, dtype=DT)
    x[:, :3] = torch.randn(4, 3, generator=g, dtype=DT)
    y = x @ Phi.T + 0.01 * torch.randn(4, 20, generator=g, dtype=DT)
    for update in ("em", "mackay"):
        ref = sbl(y, Phi, 1e-4, update=update, max_iter=30, tol=0.0)
        got = sbl(y.to(DEVICE), Phi.to(DEVICE), 1e-4, update=update, max_iter=30, tol=0.0)
        _same(got.gamma, ref.gamma, tol=1e-6)
        _same(got.x, ref.x, tol=1e-6)


def test_palm():
    from unrolled.separation import palm

    g = _gen(2)
    A0 = torch.randn(3, 6, 4, generator=g, dtype=DT)
    S = torch.randn(3, 4, 50, generator=g, dtype=DT) * (torch.rand(3, 4, 50, generator=g) < 0.3)
    X = A0 @ S + 0.01 * torch.randn(3, 6, 50, generator=g, dtype=DT)
    ref = palm(X, A0, None, 0.05, max_iter=25, tol=0.0)
    got = palm(X.to(DEVICE), A0.to(DEVICE), None, 0.05, max_iter=25, tol=0.0)
    _same(got.A, ref.A)
    _same(got.S, ref.S)


def test_rpca_ista():
    from unrolled.lowrank import rpca_ista

    g = _gen(3)
    L = torch.randn(2, 8, 1, 1, generator=g, dtype=DT) * torch.randn(2, 1, 6, 6, generator=g, dtype=DT)
    S = torch.randn(2, 8, 6, 6, generator=g, dtype=DT) * (torch.rand(2, 1, 6, 6, generator=g) < 0.1)
    D = L + S
    for fast in (True, False):
        ref = rpca_ista(D, 0.1, 0.05, max_iter=20, tol=0.0, fast=fast)
        got = rpca_ista(D.to(DEVICE), 0.1, 0.05, max_iter=20, tol=0.0, fast=fast)
        _same(got.x, ref.x)


def test_nmf_mu():
    from unrolled.nmf import nmf_mu

    g = _gen(4)
    M = torch.rand(2, 16, 20, generator=g, dtype=DT) + 0.1
    W0 = torch.rand(16, 5, generator=g, dtype=DT) + 0.1
    for beta in (0.0, 1.0, 2.0):
        ref = nmf_mu(M, W0, beta=beta, mu=0.01, max_iter=15, tol=0.0)
        got = nmf_mu(M.to(DEVICE), W0.to(DEVICE), beta=beta, mu=0.01, max_iter=15, tol=0.0)
        _same(got.x, ref.x)
        _same(got.W, ref.W)


@pytest.mark.parametrize("filtering", ["exact", "fast"])
def test_mean_field(filtering):
    from unrolled.segmentation import mean_field

    g = _gen(5)
    unary = torch.randn(2, 3, 12, 12, generator=g, dtype=DT)
    image = torch.rand(2, 3, 12, 12, generator=g, dtype=DT)
    ref = mean_field(unary, image, max_iter=5, filtering=filtering)
    got = mean_field(unary.to(DEVICE), image.to(DEVICE), max_iter=5, filtering=filtering)
    _same(got.x, ref.x)
