"""What the port onto the iteration core added: the solver's callback and history, sample(n, generator),
tied nets, the relative-change stopping test and the NetSpec registration."""

from __future__ import annotations

import pytest
import torch

from unrolled.classification.data import CorrelatedFeaturesProblem
from unrolled.classification.iteration import IRLSADMMIteration
from unrolled.classification.nets import DeepIRLSADMMNet
from unrolled.classification.solvers import irls_admm
from unrolled.core.io import load_model, save_model
from unrolled.core.registry import NETS

DT = torch.float64


@pytest.fixture(scope="module")
def batch():
    (X, y), beta = CorrelatedFeaturesProblem(n_samples=60, n_features=6, n_true=1, noise_std=0.5).sample(
        3, torch.Generator().manual_seed(2))
    return X, y, beta


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_callback_sees_every_iterate_and_frozen_problems_stay(batch, fit_intercept):
    X, y, _ = batch
    w = torch.tensor([[0.5], [3.0], [30.0]], dtype=DT).expand(3, 6)  # very different lambdas: different n_iter
    seen = []
    res = irls_admm(X, y, w, fit_intercept=fit_intercept, tol=1e-7, callback=lambda k, b: seen.append((k, b.clone())))
    n_iter = res.n_iter.tolist()
    assert min(n_iter) < max(n_iter) and res.converged.all()
    assert [k for k, _ in seen] == list(range(1, max(n_iter) + 1))
    assert all(b.shape == (3, 6) for _, b in seen)  # coefficients only, batch-first
    for i, t in enumerate(n_iter):
        torch.testing.assert_close(seen[t - 1][1][i], res.beta[i], atol=0, rtol=0)
        assert all(torch.equal(b[i], res.beta[i]) for k, b in seen if k >= t)
    h = res.history
    assert len(h["criterion"]) == len(h["objective"]) == max(n_iter)
    assert all(isinstance(v, float) for v in h["criterion"] + h["objective"])
    assert h["criterion"][-1] == pytest.approx(float(res.kkt.max()), rel=1e-12)
    assert res.state["beta"].shape == (3, 6 + fit_intercept)


def test_sample_n_data_sets(batch):
    X, y, beta = batch
    assert X.shape == (3, 60, 6) and y.shape == (3, 60) and beta.shape == (3, 6)
    assert not torch.equal(X[0], X[1]) and not torch.equal(beta[0].abs(), beta[1].abs())
    prob = CorrelatedFeaturesProblem(n_samples=60, n_features=6, n_true=1, seed=4)
    (_, _), b1 = prob.sample(2, torch.Generator().manual_seed(0))
    (_, _), b2 = prob.sample(1, torch.Generator().manual_seed(9))
    assert torch.equal(b1[0], b1[1]) and torch.equal(b1[0], b2[0])  # seed: one fixed model
    assert not torch.equal(b1[0], CorrelatedFeaturesProblem(n_samples=60, n_features=6, n_true=1, seed=5)._beta)
    assert prob.config()["seed"] == 4
    with pytest.raises(ValueError, match="n must be"):
        prob.sample(0)


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_tied_net(batch, tmp_path, fit_intercept):
    X, y, _ = batch
    tied = DeepIRLSADMMNet.from_algorithm(6, 4.0, rho=0.8, k_max=3, i_max=2, fit_intercept=fit_intercept, tied=True)
    untied = DeepIRLSADMMNet.from_algorithm(6, 4.0, rho=0.8, k_max=3, i_max=2, fit_intercept=fit_intercept)
    with torch.no_grad():
        torch.testing.assert_close(tied((X, y)), untied((X, y)), atol=0, rtol=0)
    assert sum(p.numel() for p in untied.parameters()) == 3 * sum(p.numel() for p in tied.parameters())
    assert tied.F[0].shape == (2, 6) and tied.rho[0].shape == (2,)
    with torch.no_grad():  # a trained-looking state: inner layers differ
        tied.rho.set_value(torch.tensor([0.5, 2.0], dtype=DT))
        for k in range(3):
            for i in range(2):
                untied.rho.set_value(torch.tensor([0.5, 2.0][i], dtype=DT), k * 2 + i)
        torch.testing.assert_close(tied((X, y)), untied((X, y)), atol=1e-13, rtol=0)
        sub_t, sub_u = tied.restricted([1, 4]), untied.restricted([1, 4])
        torch.testing.assert_close(sub_t((X[:, :, [1, 4]], y)), sub_u((X[:, :, [1, 4]], y)), atol=1e-13, rtol=0)
    save_model(tied, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.config()["tied"] is True
    with torch.no_grad():
        assert torch.equal(loaded((X, y)), tied((X, y)))


def test_old_state_dict_keys_still_load(batch):
    """Untied storage is one scalar rho and one (p,) F per inner layer, as before the port."""
    net = DeepIRLSADMMNet(6, k_max=2, i_max=3)
    keys = set(net.state_dict())
    assert keys == {f"rho.raw.{j}" for j in range(6)} | {f"F.raw.{j}" for j in range(6)} | {"t.raw.0", "t.raw.1",
                                                                                              "penalty_mask"}


def test_relative_change_criterion(batch):
    X, y, _ = batch
    from unrolled.classification.solvers import classic_setup
    from unrolled.core.solve import solve

    it, data, params, _ = classic_setup(X, y, 10.0, rho=1.0, inner_max_iter=4, inner_tol=0.0, inexact=False,
                                        line_search=False, warm_start=False, stop="change")
    est = []
    res = solve(it, data, params, max_iter=200, tol=1e-6, callback=lambda k, b: est.append(b.clone()))
    assert res.converged.all()
    for i, t in enumerate(res.n_iter.tolist()):
        prev, cur = est[t - 2][i], est[t - 1][i]
        assert float((cur - prev).norm() / prev.norm()) < 1e-6
        if t > 2:
            assert float((prev - est[t - 3][i]).norm() / est[t - 3][i].norm()) >= 1e-6
    with pytest.raises(ValueError, match="stop"):
        IRLSADMMIteration(4, stop="nope")


def test_registered_net_equals_its_solver_and_names_its_input():
    spec = NETS["deep-irls-admm"]
    prob = spec.problem(seed=0, small=True)
    inputs, targets = prob.sample(4, torch.Generator().manual_seed(1))
    net = spec.from_algorithm(prob, 3, False, dict(spec.options))
    with torch.no_grad():
        layers = net(inputs, return_layers=True)
    seen = []
    spec.solver(prob, inputs, 3, 0.0, lambda k, e: seen.append(e.clone()), dict(spec.options))
    for a, b in zip(layers, seen, strict=True):
        torch.testing.assert_close(a, b, atol=spec.equivalence_atol, rtol=0)
    loss = spec.loss(net(inputs), targets)
    assert loss.dim() == 0 and 0 <= float(loss.detach()) <= 2
    X, y = inputs
    for bad in ((X[:0], y[:0]), (X.to(torch.complex128), y), (X, y * 2), (X[None], y)):
        with pytest.raises(ValueError, match=r"\(X, y\)"):
            net(bad)
