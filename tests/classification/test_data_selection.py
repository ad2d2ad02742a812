"""Data models of Sec. IV-A / the p >> n stand-in, and the feature-selection scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unrolled.classification.data import CorrelatedFeaturesProblem, gene_expression_like
from unrolled.classification.selection import consensus_set, fp_fn_rates, jaccard_stability, selection_score, top_q


def test_simulation_structure():
    prob = CorrelatedFeaturesProblem(noise_std=0.0)
    (X, y), beta = prob.sample(1, torch.Generator().manual_seed(0))
    X, y, beta = X[0], y[0], beta[0]
    assert X.shape == (500, 50) and y.shape == (500,) and set(y.tolist()) == {-1.0, 1.0}
    assert torch.equal(torch.nonzero(beta).squeeze(-1), prob.support)
    # S2 is S1 plus N(0, 0.1^2): residual std 0.1, correlation ~0.995
    resid = X[:, 4:8] - X[:, :4]
    assert resid.std().item() == pytest.approx(0.1, rel=0.1)
    assert torch.corrcoef(X[:, [0, 4]].T)[0, 1] > 0.99
    # noiseless labels are the sign of the linear model; paired weights share their sign
    assert torch.equal(y, torch.where(X @ beta >= 0, 1.0, -1.0).to(y.dtype))
    assert torch.equal(torch.sign(beta[:4]), torch.sign(beta[4:8]))
    (X2, y2), _ = prob.sample(1, torch.Generator().manual_seed(0))
    X2, y2 = X2[0], y2[0]
    assert torch.equal(X, X2) and torch.equal(y, y2)
    noisy = CorrelatedFeaturesProblem(noise_std=1.0).sample(1, torch.Generator().manual_seed(0))[0][1][0]
    assert 0 < (noisy != y).sum() < 100
    with pytest.raises(ValueError):
        CorrelatedFeaturesProblem(n_features=6, n_true=4)


def test_gene_expression_like():
    X, y, inf = gene_expression_like(20, 350, n_blocks=35, generator=torch.Generator().manual_seed(0))
    assert X.shape == (20, 350) and inf.sum() == 30
    np.testing.assert_allclose(X.mean(0).numpy(), 0, atol=1e-12)
    C = np.corrcoef(X.numpy().T)
    assert np.mean(C[0, 1:10]) > 0.5 and abs(np.mean(C[0, 100:200])) < 0.3  # within-block vs across
    d = (X[y == 1][:, inf].mean(0) - X[y == -1][:, inf].mean(0)).abs().mean()
    assert d > (X[y == 1][:, ~inf].mean(0) - X[y == -1][:, ~inf].mean(0)).abs().mean()


def test_selection_scores():
    assert top_q(np.array([0.1, -3.0, 2.0, 0.0]), 2).tolist() == [1, 2]
    assert jaccard_stability([np.array([1, 2]), np.array([1, 2])]) == 1.0
    assert jaccard_stability([np.array([1, 2]), np.array([2, 3])]) == pytest.approx(1 / 3)
    assert selection_score(0.9, [np.array([1]), np.array([2])]) == 0.0
    ranks = [np.array([3.0, 2.0, 0.0, 1.0]), np.array([3.0, 0.0, 2.0, 1.0]), np.array([3.0, 2.0, 1.0, 0.0])]
    assert consensus_set(ranks, 2).tolist() == [0, 1]
    fp, fn = fp_fn_rates(np.array([0, 1, 9]), np.array([0, 1, 2, 3]), 10)
    assert fp == pytest.approx(1 / 6) and fn == pytest.approx(0.5)
    with pytest.raises(ValueError):
        selection_score(1.5, [])
