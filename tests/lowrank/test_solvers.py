"""rpca_ista against cvxpy and the optimality conditions of (16); the circular PSF operators against matrices."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unrolled.lowrank.iteration import objective
from unrolled.lowrank.operators import (
    adjoint_kernel, algorithm_filters, blur, casorati, compose_kernels, lipschitz, mix,
)
from unrolled.lowrank.solvers import rpca_ista

DT = torch.complex128


def _movie(shape, seed=0):
    return torch.randn(*shape, dtype=DT, generator=torch.Generator().manual_seed(seed))


def _operator_matrix(h, H, W) -> np.ndarray:
    """The (HW x HW) matrix of the per-frame circular cross-correlation with ``h`` (column j: blur of e_j)."""
    eye = torch.eye(H * W, dtype=DT).reshape(H * W, H, W)
    return blur(eye, h).reshape(H * W, H * W).T.numpy()


def _cvxpy_objective(D: torch.Tensor, lam1, lam2, H1=None, H2=None) -> float:
    cp = pytest.importorskip("cvxpy")
    T, H, W = D.shape
    M = casorati(D).numpy()  # (HW, T)
    A1 = np.eye(H * W) if H1 is None else _operator_matrix(H1, H, W)
    A2 = np.eye(H * W) if H2 is None else _operator_matrix(H2, H, W)
    L, S = cp.Variable(M.shape, complex=True), cp.Variable(M.shape, complex=True)
    obj = 0.5 * cp.sum_squares(M - A1 @ L - A2 @ S) + lam1 * cp.normNuc(L) + lam2 * cp.sum(cp.norm(S, 2, axis=1))
    problem = cp.Problem(cp.Minimize(obj))
    problem.solve(solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    return float(problem.value)


@pytest.mark.parametrize("fast", [True, False])
def test_objective_matches_cvxpy(fast):
    D = _movie((2, 5, 3, 3))
    lam1, lam2 = 0.8, 0.5
    res = rpca_ista(D, lam1, lam2, max_iter=20000, tol=1e-9, fast=fast)
    assert bool(res.converged.all())
    ours = objective(D, res.L, res.S, lam1, lam2)
    for b in range(2):
        ref = _cvxpy_objective(D[b], lam1, lam2)
        assert abs(float(ours[b]) - ref) <= 1e-6 * abs(ref)
    assert res.history["objective"][-1] == pytest.approx(float(ours.mean()), rel=1e-12)


def test_objective_matches_cvxpy_with_psf_operators():
    h1 = torch.tensor([[0.0, 0.2j, 0.0], [0.1, 1.0, -0.2], [0.0, 0.1 - 0.1j, 0.1]], dtype=DT)
    h2 = torch.tensor([[0.0, 0.1, 0.0], [0.1, 0.9, 0.1j], [0.0, 0.2, 0.0]], dtype=DT)
    D = _movie((3, 5, 5), seed=1)
    res = rpca_ista(D, 0.6, 0.4, H1=h1, H2=h2, max_iter=50000, tol=1e-9)
    print(res)
    assert bool(res.converged)
    ours = float(objective(D[None], res.L[None], res.S[None], 0.6, 0.4, h1, h2))
    ref = _cvxpy_objective(D, 0.6, 0.4, h1, h2)
    assert abs(ours - ref) <= 1e-6 * abs(ref)


def test_solution_satisfies_the_optimality_conditions():
    """At the FISTA solution (H = I), R = D - L - S is lam1 (U V^H + W), ||W|| <= 1, W orthogonal to L's
    singular vectors; and row by row r_i = lam2 s_i / ||s_i|| on the support, ||r_i|| <= lam2 off it."""
    D = _movie((6, 4, 4), seed=2)
    lam1, lam2 = 1.0, 0.6
    res = rpca_ista(D, lam1, lam2, max_iter=20000, tol=1e-12)
    L, S = casorati(res.L), casorati(res.S)
    R = casorati(D) - L - S
    U, s, Vh = torch.linalg.svd(L, full_matrices=False)
    r = int((s > 1e-8 * s[0]).sum())
    assert 0 < r < min(L.shape)  # a genuinely low-rank, non-zero L
    U, Vh = U[:, :r], Vh[:r]
    assert torch.allclose(U.mH @ R @ Vh.mH, lam1 * torch.eye(r, dtype=DT), atol=1e-8)
    Wres = R - lam1 * U @ Vh
    assert torch.allclose(U.mH @ Wres, torch.zeros_like(U.mH @ Wres), atol=1e-8)
    assert float(torch.linalg.matrix_norm(Wres, 2)) <= lam1 * (1 + 1e-8)
    norms = S.abs().pow(2).sum(-1).sqrt()
    on = norms > 1e-10
    assert 0 < int(on.sum()) < S.shape[0]  # some pixels are blood, some are not
    assert torch.allclose(R[on], lam2 * S[on] / norms[on, None], atol=1e-8)
    assert float(R[~on].abs().pow(2).sum(-1).sqrt().max()) <= lam2 * (1 + 1e-8)


def test_batched_equals_one_movie_at_a_time_and_numpy_is_accepted():
    D = _movie((3, 5, 4, 4), seed=3)
    batched = rpca_ista(D, 0.8, 0.4, max_iter=3000, tol=1e-6)
    for b in range(3):
        single = rpca_ista(D[b], 0.8, 0.4, max_iter=3000, tol=1e-6)
        assert single.x.shape == (2, 5, 4, 4)
        assert torch.allclose(single.x, batched.x[b], atol=1e-12)
        assert int(single.n_iter) == int(batched.n_iter[b])
    assert torch.equal(rpca_ista(D.numpy(), 0.8, 0.4, max_iter=50, tol=0).x,
                       rpca_ista(D, 0.8, 0.4, max_iter=50, tol=0).x)
    assert rpca_ista(D.to(torch.complex64), 0.8, 0.4, max_iter=20, tol=0).x.dtype == torch.complex64


def test_fista_needs_fewer_iterations_than_ista():
    D = _movie((2, 6, 4, 4), seed=4)
    fista = rpca_ista(D, 0.5, 0.3, max_iter=20000, tol=1e-7, fast=True)
    ista = rpca_ista(D, 0.5, 0.3, max_iter=20000, tol=1e-7, fast=False)
    assert torch.allclose(fista.x, ista.x, atol=1e-4)
    assert int(fista.n_iter.max()) < int(ista.n_iter.max())


def test_blur_adjoint_composition_and_lipschitz_against_matrices():
    g = torch.Generator().manual_seed(5)
    h1 = torch.randn(3, 3, dtype=DT, generator=g)
    h2 = torch.randn(5, 5, dtype=DT, generator=g)
    H, W = 9, 10
    A1, A2 = _operator_matrix(h1, H, W), _operator_matrix(h2, H, W)
    assert np.allclose(_operator_matrix(adjoint_kernel(h1), H, W), A1.conj().T, atol=1e-12)
    assert np.allclose(_operator_matrix(compose_kernels(h1, h2), H, W), A2 @ A1, atol=1e-12)
    assert np.allclose(_operator_matrix(compose_kernels(h2, adjoint_kernel(h1)), H, W), A1.conj().T @ A2,
                       atol=1e-12)
    ref = np.linalg.norm(np.hstack([A1, A2]), 2) ** 2
    assert lipschitz(h1, h2, H, W, torch.zeros(1, dtype=DT)) == pytest.approx(ref, rel=1e-10)
    assert lipschitz(None, None, H, W, torch.zeros(1, dtype=DT)) == 2.0


def test_algorithm_filters_make_a_gradient_step():
    """mix with algorithm_filters = (L, S) - (1/mu) grad f(L, S): the ISTA step of (16) before the proxes."""
    g = torch.Generator().manual_seed(6)
    h1, h2 = torch.randn(3, 3, dtype=DT, generator=g), torch.randn(3, 3, dtype=DT, generator=g)
    L, S, D = (torch.randn(2, 3, 7, 8, dtype=DT, generator=g) for _ in range(3))
    mu = 1.3 * lipschitz(h1, h2, 7, 8, D)
    P = algorithm_filters(h1, h2, mu, dtype=DT)
    assert P["P1"].shape == (5, 5)
    a, b = mix(L, S, D, P)
    R = D - blur(L, h1) - blur(S, h2)
    assert torch.allclose(a, L + blur(R, adjoint_kernel(h1)) / mu, atol=1e-12)
    assert torch.allclose(b, S + blur(R, adjoint_kernel(h2)) / mu, atol=1e-12)
    P = algorithm_filters(None, None, 2.0, dtype=DT)
    assert all(p.shape == (1, 1) for p in P.values())
    a, b = mix(L, S, D, P)
    assert torch.allclose(a, L + (D - L - S) / 2, atol=1e-14)


@pytest.mark.parametrize("call,name", [
    (lambda D: rpca_ista(D[0, 0], 1.0, 1.0), "D"),
    (lambda D: rpca_ista(D[None], 1.0, 1.0), "D"),
    (lambda D: rpca_ista(D.masked_fill(torch.zeros_like(D.real, dtype=torch.bool).index_fill_(1, torch.tensor([0]),
                                                                                              True), float("nan")),
                         1.0, 1.0), "D"),
    (lambda D: rpca_ista(D[:0], 1.0, 1.0), "D"),
    (lambda D: rpca_ista(D, -1.0, 1.0), "lam1"),
    (lambda D: rpca_ista(D, 1.0, float("inf")), "lam2"),
    (lambda D: rpca_ista(D, 1.0, 1.0, H1=torch.ones(2, 2, dtype=DT)), "H1"),
    (lambda D: rpca_ista(D, 1.0, 1.0, H2=torch.ones(5, 5, dtype=DT)), "H2"),
    (lambda D: rpca_ista(D, 1.0, 1.0, mu=1.0), "mu"),
    (lambda D: rpca_ista(D.real, 1.0, 1.0, H1=torch.ones(3, 3, dtype=DT)), "H1"),
    (lambda D: rpca_ista(D, 1.0, 1.0, max_iter=0), "max_iter"),
    (lambda D: rpca_ista(D, 1.0, 1.0, tol=-1.0), "tol"),
])
def test_bad_input_is_refused_naming_the_argument(call, name):
    D = _movie((2, 4, 6, 6), seed=7)
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call(D)
