"""The four losses of Table 4, evaluation helpers and the LISTA baseline's mixing-matrix estimate."""

from __future__ import annotations

import pytest
import torch

from unrolled.separation.data import gennorm_sources, mix, mixing_matrices
from unrolled.separation.nets import LPALM
from unrolled.separation.training import LOSSES, evaluate, get_loss, nmse_per_layer, predict

DT = torch.float64


@pytest.fixture(scope="module")
def data():
    A = mixing_matrices(6)[:, ::5]
    A = A / A.norm(dim=1, keepdim=True)
    return mix(A, gennorm_sources(6, 4, 30, seed=2), 30.0, seed=3)


def test_losses_match_their_formulas(data):
    g = torch.Generator().manual_seed(0)
    A_hat = data.A + 0.1 * torch.randn(data.A.shape, generator=g, dtype=DT)
    S_hat = data.S + 0.2 * torch.randn(data.S.shape, generator=g, dtype=DT)
    target = (data.A, data.S, data.X)

    def per(est, ref):
        return torch.stack([((e - r) ** 2).sum() / (r**2).sum() for e, r in zip(est, ref)])

    ns, na = per(S_hat, data.S), per(A_hat, data.A)
    nx = per(A_hat @ S_hat, data.X)
    expected = {"s+a": (ns + na).mean(), "s": ns.mean(), "a": na.mean(), "unsupervised": nx.mean()}
    for name, value in expected.items():
        assert float(get_loss(name)((A_hat, S_hat), target)) == pytest.approx(float(value), rel=1e-12)
    assert set(LOSSES) == set(expected)
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss("l1")


def test_evaluation_helpers_agree(data):
    net = LPALM.from_training_pair(data.A[0], data.S[0], 3, lam=1e-3, dtype="float64")
    A, S = predict(net, data.X, chunk=4)
    A_ref, S_ref = net(data.X)
    assert torch.equal(A, A_ref) and torch.equal(S, S_ref)
    raw = evaluate(net, data, correct=False)
    layers = nmse_per_layer(net, data, chunk=4)
    assert len(layers["S"]) == 3
    assert layers["S"][-1] == pytest.approx(float(raw["S"].mean()), rel=1e-12)
    assert layers["A"][-1] == pytest.approx(float(raw["A"].mean()), rel=1e-12)
    corrected = evaluate(net, data)
    assert corrected["A"].shape == (len(data),) and not torch.equal(corrected["A"], raw["A"])


def test_lista_baseline_gets_its_mixing_matrix_from_least_squares(data):
    """With a_update='none', predict() fits A to the network's sources; with the true sources this gives back A."""
    net = LPALM.from_training_pair(data.A[0], data.S[0], 2, s_update="lista", a_update="none", dtype="float64")
    A, S = predict(net, data.X)
    assert not torch.allclose(A, net.A_init.expand_as(A))
    assert (A.norm(dim=1) <= 1 + 1e-9).all()
    from unrolled.separation.solvers import estimate_mixing

    clean = data.A @ data.S
    A_fit = estimate_mixing(clean, data.S, tol=1e-13, max_iter=50000)
    assert torch.allclose(A_fit, data.A, atol=1e-6)
