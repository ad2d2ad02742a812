"""Tests of learned-support screening + SBL: exact pruning, equality with SBL on the sub-dictionary."""

from __future__ import annotations

import pytest
import torch

from unrolled.sbl.data import CorrelatedSparseProblem
from unrolled.sbl.screening import candidate_gamma0, screened_sbl
from unrolled.sbl.solvers import sbl


@pytest.fixture(scope="module")
def problem():
    prob = CorrelatedSparseProblem(n=20, m=100, d=4, noise_std=1e-3, seed=5)
    y, x = prob.sample(6, torch.Generator().manual_seed(6))
    scores = torch.randn(6, 100, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    return prob.Phi, y, x, scores


def test_candidate_gamma0_is_the_top_k_indicator():
    scores = torch.tensor([[0.1, 3.0, -1.0, 2.0], [5.0, 4.0, 3.0, -2.0]])
    torch.testing.assert_close(candidate_gamma0(scores, 2), torch.tensor([[0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]]))


@pytest.mark.parametrize("update", ["mackay", "em"])
@pytest.mark.parametrize("tol", [0.0, 1e-8])
def test_screened_sbl_is_sbl_on_each_candidate_subdictionary(problem, update, tol):
    """Pruned atoms stay exactly zero and the rest follow SBL on Phi[:, candidates], problem by problem."""
    Phi, y, _, scores = problem
    k, lam = 12, 1e-5
    res = screened_sbl(y, Phi, scores, k, lam, update=update, max_iter=60, tol=tol)
    for b in range(y.shape[0]):
        cand = scores[b].topk(k).indices
        off = torch.ones(Phi.shape[1], dtype=torch.bool); off[cand] = False
        assert torch.all(res.gamma[b, off] == 0) and torch.all(res.x[b, off] == 0)
        one = sbl(y[b], Phi[:, cand], lam, update=update, max_iter=60, tol=tol)
        torch.testing.assert_close(res.gamma[b, cand], one.gamma, rtol=1e-9, atol=1e-14)
        torch.testing.assert_close(res.x[b, cand], one.x, rtol=1e-9, atol=1e-12)
        assert int(res.n_iter[b]) == int(one.n_iter) and bool(res.converged[b]) == bool(one.converged)


def test_screening_that_keeps_the_support_recovers_it():
    """With candidates that contain the true support, noiseless screened SBL finds it exactly."""
    prob = CorrelatedSparseProblem(n=20, m=100, d=4, noise_std=0.0, correlated=False, seed=2)
    y, x = prob.sample(10, torch.Generator().manual_seed(3))
    scores = (x != 0).double() + 0.5 * torch.rand(x.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    res = screened_sbl(y, prob.Phi, scores, 10, 1e-8, max_iter=2000, tol=1e-8)
    assert torch.equal(res.gamma.topk(4).indices.sort().values, (x != 0).nonzero()[:, 1].view(10, 4))
    torch.testing.assert_close(res.x, x, atol=1e-4, rtol=0)


@pytest.mark.parametrize("change, match", [
    ({"k": 0}, "k"),
    ({"k": 101}, "larger than the number of atoms"),
    ({"update": "lstm"}, "keep pruned atoms"),
    ({"scores": "complex"}, "real"),
    ({"scores": "short"}, "shape"),
    ({"scores": "nan"}, "NaN"),
])
def test_bad_input(problem, change, match):
    Phi, y, _, scores = problem
    kwargs = {"k": 10, "update": "mackay", **{k: v for k, v in change.items() if k != "scores"}}
    if change.get("scores") == "complex":
        scores = scores.to(torch.complex128)
    elif change.get("scores") == "short":
        scores = scores[:, :-1]
    elif change.get("scores") == "nan":
        scores = scores.clone(); scores[0, 0] = float("nan")
    with pytest.raises(ValueError, match=match):
        screened_sbl(y, Phi, scores, kwargs.pop("k"), 1e-5, **kwargs)


def test_sbl_gamma0_must_be_non_negative_with_a_positive_entry(problem):
    Phi, y, _, _ = problem
    g = torch.ones(y.shape[0], Phi.shape[1], dtype=torch.float64)
    g[0, 0] = -1.0
    with pytest.raises(ValueError, match="non-negative"):
        sbl(y, Phi, 1e-5, gamma0=g)
    g = torch.ones_like(g); g[1] = 0.0
    with pytest.raises(ValueError, match="at least one positive"):
        sbl(y, Phi, 1e-5, gamma0=g)
