"""Tests of the i-ResNet calibration (SLoG-Net Sec. V-E, Alg. 2), the binary data model and ROC-AUC."""

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from unrolled.core.io import load_model, save_model
from unrolled.graph.calibration import (
    InvertibleCalibration,
    SpectralDiffusion,
    binary_cascade,
    pretrain_calibration,
    roc_auc,
    source_detection_auc,
    weighted_support_loss,
)
from unrolled.graph.data import GraphDiffusionProblem


def _calib(N=12, **kw):
    calib = InvertibleCalibration(N, hidden=16, seed=1, **kw)
    # Make the weights large so that spectral normalisation is active.
    with torch.no_grad():
        for W in calib.weights:
            W.mul_(5.0)
    return calib


def test_fixed_point_inverse_recovers_input():
    calib = _calib(lip_init=0.8)
    x = torch.randn(3, 12, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = calib.inverse_map(x)
    x_rec, hist = calib.calibrate(y, n_iter=500, tol=1e-14, return_history=True)
    assert (x_rec - x).abs().max() < 1e-6
    assert (calib.inverse_map(x_rec) - y).abs().max() < 1e-10
    # converges geometrically at the contraction rate
    assert hist[-1] <= 1e-14 and len(hist) < 500
    lip = float(calib.lipschitz_bound())
    for a, b in zip(hist[1:10], hist[2:11]):
        assert b <= lip * a + 1e-15


def test_residual_is_a_contraction_numerically():
    calib = _calib(lip_init=0.85, lip_max=0.9)
    bound = float(calib.lipschitz_bound())
    assert 0 < bound < 0.9
    gen = torch.Generator().manual_seed(2)
    a = torch.randn(200, 12, 1, dtype=torch.float64, generator=gen)
    b = a + 0.1 * torch.randn(200, 12, 1, dtype=torch.float64, generator=gen)
    with torch.no_grad():
        ratio = (calib.residual(a) - calib.residual(b)).flatten(1).norm(dim=1) / (a - b).flatten(1).norm(dim=1)
    assert float(ratio.max()) <= bound + 1e-12
    # every normalised layer has spectral norm <= 1 even with large raw weights
    from unrolled.graph.calibration import _spectral_normalised

    for W in calib.weights:
        assert torch.linalg.matrix_norm(W, ord=2) > 1
        assert torch.linalg.matrix_norm(_spectral_normalised(W), ord=2) <= 1 + 1e-12


def test_lip_stays_below_bound_under_extreme_raw_value():
    calib = _calib(lip_max=0.5, lip_init=0.25)
    with torch.no_grad():
        calib.lip.raw[0].fill_(1e6)
    assert float(calib.lip[0].detach()) < 0.5
    with pytest.raises(ValueError):
        InvertibleCalibration(4, lip_max=1.0)


def test_gradients_flow():
    calib = _calib()
    nd = SpectralDiffusion(GraphDiffusionProblem("karate").V[:12, :12] * 0 + torch.eye(12, dtype=torch.float64))
    x = torch.rand(2, 12, 5, dtype=torch.float64)
    loss = calib.calibrate(nd(x), n_iter=20).pow(2).sum() + calib.inverse_map(nd(x)).sum()
    loss.backward()
    grads = [p.grad for p in list(calib.parameters()) + list(nd.parameters())]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(float(g.abs().sum()) > 0 for g in grads)


def test_pretraining_reduces_loss():
    prob = GraphDiffusionProblem("karate")
    Y, X = binary_cascade(prob.A, 4, 20, generator=torch.Generator().manual_seed(0))
    calib, nd = InvertibleCalibration(prob.N, hidden=16), SpectralDiffusion(prob.V)

    def held_out_loss():  # the loss on the problem pretrain_calibration holds out (the first of 4)
        with torch.no_grad():
            diffused = nd(X[:1])
            return float((calib.inverse_map(diffused) - Y[:1]).pow(2).mean() + 0.1 * (diffused - X[:1]).pow(2).mean())

    before = held_out_loss()
    result = pretrain_calibration(calib, nd, X, Y, steps=40, rho1=0.1, batch=3)
    assert result.best_val == pytest.approx(held_out_loss(), rel=1e-9)  # the kept weights are the best ones
    assert result.best_val < 0.9 * before
    with pytest.raises(ValueError, match="both"):
        pretrain_calibration(calib, nd, X, Y[..., :5])


def test_binary_cascade():
    prob = GraphDiffusionProblem("dolphins")
    Y, X = binary_cascade(prob.A, 3, 10, n_sources=2, generator=torch.Generator().manual_seed(0))
    assert Y.shape == X.shape == (3, prob.N, 10)
    assert set(Y.unique().tolist()) <= {0.0, 1.0} and set(X.unique().tolist()) == {0.0, 1.0}
    assert (X <= Y).all() and (X.sum(1) == 2).all()
    assert (Y.sum() > X.sum())
    # infected non-sources are reachable: every infected node is a source or has an infected neighbour
    A = prob.A
    assert ((A @ Y > 0) | (X > 0) | (Y == 0)).all()


def test_roc_auc_hand_computed():
    # positives 0.8, 0.4; negatives 0.6, 0.4, 0.1 -> pairs: (0.8>all)=3, (0.4>0.1)=1, (0.4=0.4)=0.5 -> 4.5/6
    scores = [0.8, 0.4, 0.6, 0.4, 0.1]
    labels = [1, 1, 0, 0, 0]
    assert roc_auc(scores, labels) == pytest.approx(0.75)
    assert roc_auc([1, 2, 3], [0, 1, 1]) == 1.0
    assert roc_auc([3, 2, 1], [0, 1, 1]) == 0.0
    rng = np.random.default_rng(0)
    s, lab = rng.normal(size=300).round(1), rng.random(300) < 0.3
    assert roc_auc(s, lab) == pytest.approx(roc_auc_score(lab, s))
    with pytest.raises(ValueError):
        roc_auc([1, 2], [1, 1])


def test_source_detection_auc_on_support_of_Y():
    Y = torch.tensor([[1.0, 1.0, 0.0, 1.0]])
    X = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    # the off-support entry (huge score) must be ignored; sign is ignored
    X_hat = torch.tensor([[-0.9, 0.2, 100.0, 0.5]])
    assert source_detection_auc(X_hat, X, Y) == 1.0


def test_weighted_support_loss_sign_invariant():
    X = torch.zeros(1, 3, 2, dtype=torch.float64)
    X[0, 0, 0] = 1.0
    Y = torch.ones_like(X)
    assert float(weighted_support_loss(-X, X, Y)) == pytest.approx(0.0, abs=1e-12)
    Y2 = Y.clone()
    Y2[0, 2, 1] = 0.0
    E = X.clone()
    E[0, 2, 1] = 1.0  # error only off supp(Y): weighted by phi
    assert float(weighted_support_loss(E, X, Y2, phi=0.01)) == pytest.approx(0.01, rel=1e-6)


def test_save_load_roundtrip(tmp_path):
    calib = _calib()
    save_model(calib, tmp_path / "c")
    loaded = load_model(tmp_path / "c")
    x = torch.randn(2, 12, 3, dtype=torch.float64)
    assert torch.allclose(loaded.calibrate(x), calib.calibrate(x))


def test_quick_experiment_writes_files(tmp_path):
    from unrolled.experiments.registry import EXPERIMENTS

    EXPERIMENTS["slognet-calibration"].run(tmp_path, quick=True, progress=False)
    payload = json.loads((tmp_path / "results.json").read_text())
    assert (tmp_path / "results.md").read_text().count("karate") >= 1
    assert {r["graph"] for r in payload["rows"]} == {"karate", "dolphins"}
    assert (tmp_path / "roc.png").is_file()
    for r in payload["rows"]:
        for m, v in r["auc"].items():
            assert 0.0 <= v <= 1.0
            # the stored ROC curve is the one the AUC integrates (tiny loss from thinning long curves)
            fpr, tpr = np.array(r["roc"][m]["fpr"]), np.array(r["roc"][m]["tpr"])
            assert fpr[0] == tpr[0] == 0.0 and fpr[-1] == tpr[-1] == 1.0
            area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
            assert area == pytest.approx(v, abs=0.02)
        assert r["lipschitz_bound"] < 0.9
        assert r["inverse_residual"] < 1e-6
