"""PALM's first iterates are Eq. (6) written out by hand (Gauss-Seidel: the A-update uses the new S).

Fixed-point checks at convergence cannot tell Gauss-Seidel from Jacobi (both have the same fixed points); the
iterates themselves can.
"""

from __future__ import annotations

import torch

from unrolled.separation.solvers import palm

D = torch.float64


def _soft(v, t):
    return torch.sign(v) * torch.clamp(v.abs() - t, min=0.0)


def test_palm_iterates_are_eq6_by_hand():
    g = torch.Generator().manual_seed(3)
    m, n, t, B, lam, K = 5, 3, 40, 2, 0.05, 4
    X = torch.rand(B, m, t, generator=g, dtype=D)
    A0 = torch.randn(B, m, n, generator=g, dtype=D)
    A0 = A0 / torch.linalg.vector_norm(A0, dim=1, keepdim=True)
    S0 = torch.rand(B, n, t, generator=g, dtype=D)
    res = palm(X, A0, S0, lam, max_iter=K, tol=0.0)
    assert (res.n_iter == K).all()
    for b in range(B):
        A, S = A0[b].clone(), S0[b].clone()
        for _ in range(K):
            L_S = float(torch.linalg.matrix_norm(A.T @ A, ord=2))
            step = 1.0 / (1.01 * L_S)
            S = _soft(S - step * A.T @ (A @ S - X[b]), lam * step)
            L_A = float(torch.linalg.matrix_norm(S @ S.T, ord=2))  # at the NEW S
            W = A - (1.0 / (1.01 * L_A)) * (A @ S - X[b]) @ S.T
            A = W / torch.clamp(torch.linalg.vector_norm(W, dim=0, keepdim=True), min=1.0)
        assert torch.allclose(res.S[b], S, rtol=1e-10, atol=1e-12)
        assert torch.allclose(res.A[b], A, rtol=1e-10, atol=1e-12)
