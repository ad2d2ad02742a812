"""LPALM's layers are the recursions of Eq. (8) at arbitrary (trained-looking) parameters.

``from_algorithm`` starts every variant at PALM, where the LISTA weight ``W2 = I - A^T A / L`` is symmetric and
the learned A-step is PALM's, so those tests cannot see a transposed ``W2`` or a dropped ``a_step_scale``. Here
each layer gets random, non-symmetric parameters and the net must equal the recursion written out by hand.
"""

from __future__ import annotations

import torch

from unrolled.separation.nets import LPALM

D = torch.float64


def _soft(v, t):
    return torch.sign(v) * torch.clamp(v.abs() - t, min=0.0)


def _project(A):  # columns onto the l2 unit ball
    return A / torch.clamp(torch.linalg.vector_norm(A, dim=0, keepdim=True), min=1.0)


def _mixtures(g, m, t, B):
    return torch.rand(B, m, t, generator=g, dtype=D)


def test_lista_variant_is_its_recursion_with_non_symmetric_weights():
    g = torch.Generator().manual_seed(1)
    m, n, t, K, B = 4, 3, 7, 3, 2
    net = LPALM(m, n, K, s_update="lista", a_update="none", dtype="float64")
    W1 = [torch.randn(n, m, generator=g, dtype=D) for _ in range(K)]
    W2 = [0.4 * torch.randn(n, n, generator=g, dtype=D) for _ in range(K)]
    theta = [0.02 * (k + 1) for k in range(K)]
    assert not torch.allclose(W2[0], W2[0].T)
    with torch.no_grad():
        for k in range(K):
            net.W1.set_value(W1[k], k)
            net.W2.set_value(W2[k], k)
            net.theta.set_value(torch.tensor(theta[k], dtype=D), k)
    X = _mixtures(g, m, t, B)
    with torch.no_grad():
        A, S = net(X)
    for b in range(B):
        Sb = torch.zeros(n, t, dtype=D)
        for k in range(K):
            Sb = _soft(W1[k] @ X[b] + W2[k] @ Sb, theta[k])
        assert torch.allclose(S[b], Sb, rtol=1e-12, atol=1e-12)
        assert torch.equal(A[b], net.A_init)  # no A-update in this variant


def test_lista_cp_variant_with_a_step_scale_is_its_recursion():
    g = torch.Generator().manual_seed(2)
    m, n, t, K, B = 4, 3, 6, 3, 2
    net = LPALM(m, n, K, s_update="lista-cp", a_update="ista-ll", dtype="float64")
    W = [0.3 * torch.randn(m, n, generator=g, dtype=D) for _ in range(K)]
    theta = [0.01 * (k + 1) for k in range(K)]
    gamma_a = [0.05 * (k + 2) for k in range(K)]
    with torch.no_grad():
        for k in range(K):
            net.W.set_value(W[k], k)
            net.theta.set_value(torch.tensor(theta[k], dtype=D), k)
            net.gamma_a.set_value(torch.tensor(gamma_a[k], dtype=D), k)
    X = _mixtures(g, m, t, B)
    for scale in (1.0, 0.25):
        with torch.no_grad():
            A, S = net(X, a_step_scale=scale)
        for b in range(B):
            Ab, Sb = net.A_init.clone(), torch.zeros(n, t, dtype=D)
            for k in range(K):
                Sb = _soft(Sb - W[k].T @ (Ab @ Sb - X[b]), theta[k])  # Eq. (8), S line
                Ab = _project(Ab - scale * gamma_a[k] * (Ab @ Sb - X[b]) @ Sb.T)  # Eq. (8), A line, new S
            assert torch.allclose(S[b], Sb, rtol=1e-11, atol=1e-12), scale
            assert torch.allclose(A[b], Ab, rtol=1e-11, atol=1e-12), scale
