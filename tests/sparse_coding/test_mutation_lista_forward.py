"""LISTA's forward pass is its defining recursion at arbitrary (trained-looking) weights.

The tests that start from ISTA cannot see a transposed recurrent weight: there ``W2 = I - A^T A / L`` is
symmetric. Here every layer gets its own random, non-symmetric ``W1_k, W2_k`` and threshold, and the net must
equal the recursion of Gregor & LeCun (2010), ``x^{k+1} = S_{theta_k}(W1_k y + W2_k x^k)``, written out by hand.
"""

from __future__ import annotations

import torch

from unrolled.sparse_coding.nets import LISTA


def _soft(v: torch.Tensor, t: float) -> torch.Tensor:
    return torch.sign(v) * torch.clamp(v.abs() - t, min=0.0)


def test_lista_is_its_recursion_with_non_symmetric_weights():
    g = torch.Generator().manual_seed(0)
    m, n, K, B = 6, 9, 4, 5
    net = LISTA(m, n, K, dtype="float64")
    W1 = [torch.randn(n, m, generator=g, dtype=torch.float64) for _ in range(K)]
    W2 = [0.3 * torch.randn(n, n, generator=g, dtype=torch.float64) for _ in range(K)]
    theta = [0.05 * (k + 1) for k in range(K)]
    assert not torch.allclose(W2[0], W2[0].T)
    with torch.no_grad():
        for k in range(K):
            net.W1.set_value(W1[k], k)
            net.W2.set_value(W2[k], k)
            net.theta.set_value(torch.tensor(theta[k], dtype=torch.float64), k)
    y = torch.randn(B, m, generator=g, dtype=torch.float64)
    with torch.no_grad():
        layers = net(y, return_layers=True)
    x = torch.zeros(B, n, dtype=torch.float64)
    for k in range(K):
        x = _soft(y @ W1[k].T + x @ W2[k].T, theta[k])  # row form of W1 y + W2 x
        assert torch.allclose(layers[k], x, rtol=1e-12, atol=1e-12), f"layer {k + 1}"
    # one problem at a time, column form W1 y + W2 x, agrees too
    for b in range(B):
        xb = torch.zeros(n, dtype=torch.float64)
        for k in range(K):
            xb = _soft(W1[k] @ y[b] + W2[k] @ xb, theta[k])
        assert torch.allclose(layers[-1][b], xb, rtol=1e-12, atol=1e-12)
