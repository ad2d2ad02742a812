"""The deep IRLS-ADMM net: equal to IRLS-ADMM when untrained, autograd against finite differences, training."""

from __future__ import annotations

import pytest
import torch

from unrolled.classification.data import CorrelatedFeaturesProblem
from unrolled.classification.nets import DeepIRLSADMMNet
from unrolled.classification.solvers import irls_admm
from unrolled.classification.training import SubsetSampler, logistic_loss, train_deep_irls
from unrolled.core.io import load_model, save_model

DT = torch.float64


@pytest.fixture(scope="module")
def data():
    (X, y), _ = CorrelatedFeaturesProblem(n_samples=150, n_features=16, n_true=3, noise_std=0.5).sample(
        1, torch.Generator().manual_seed(1))
    return X[0], y[0]


def classic(X, y, w, k, i, **kw):
    r = irls_admm(X, y, w, rho=kw.pop("rho", 1.0), max_iter=k, inner_max_iter=i, tol=0, inner_tol=0,
                  line_search=False, warm_start=False, **kw)
    if kw.get("fit_intercept"):
        return torch.cat([r.beta, r.intercept.unsqueeze(-1)], -1)
    return r.beta


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("sparse_direction", [False, True])
def test_untrained_net_equals_irls_admm(data, fit_intercept, sparse_direction):
    X, y = data
    p = X.shape[1]
    w = torch.linspace(2.0, 12.0, p, dtype=DT)
    net = DeepIRLSADMMNet.from_algorithm(p, w, rho=0.7, k_max=3, i_max=4, fit_intercept=fit_intercept,
                                         sparse_direction=sparse_direction)
    with torch.no_grad():
        layers = net((X, y), return_layers=True)
    for k, out in enumerate(layers, start=1):
        ref = classic(X, y, w, k, 4, rho=0.7, fit_intercept=fit_intercept, sparse_direction=sparse_direction)
        torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)
    # batched input: several data sets at once
    Xb, yb = torch.stack([X, X[:, torch.randperm(p, generator=torch.Generator().manual_seed(0))]]), torch.stack([y, y])
    with torch.no_grad():
        out = net((Xb, yb))
    torch.testing.assert_close(out, classic(Xb, yb, w, 3, 4, rho=0.7, fit_intercept=fit_intercept,
                                             sparse_direction=sparse_direction), atol=1e-12, rtol=1e-12)


def test_default_init_is_the_papers(data):
    X, y = data
    net = DeepIRLSADMMNet(X.shape[1])
    assert all(float(v.detach()) == pytest.approx(1.0) for v in net.rho.values() + net.t.values())
    assert all(torch.allclose(v, torch.full_like(v, 10.0)) for v in net.F.values())
    with torch.no_grad():
        out = net((X, y))
    torch.testing.assert_close(out, classic(X, y, 10.0, 3, 4, sparse_direction=False), atol=1e-12, rtol=1e-12)


def test_autograd_matches_finite_differences():
    (X, y), _ = CorrelatedFeaturesProblem(n_samples=12, n_features=4, n_true=1, noise_std=0.5).sample(
        1, torch.Generator().manual_seed(5))
    X, y = X[0], y[0]
    net = DeepIRLSADMMNet.from_algorithm(4, torch.tensor([0.3, 0.8, 1.5, 0.5], dtype=DT), rho=1.3, k_max=2,
                                         i_max=3, fit_intercept=True)
    params = list(net.parameters())
    # gradcheck needs the loss as a function of the raw parameters: route them through a functional call
    names = [n for n, _ in net.named_parameters()]

    def fn(*raw):
        out = torch.func.functional_call(net, dict(zip(names, raw)), ((X, y),))
        return logistic_loss(out, (X, y))

    raw = tuple(p.detach().clone().requires_grad_(True) for p in params)
    assert torch.autograd.gradcheck(fn, raw, eps=1e-6, atol=1e-6, rtol=1e-4)
    # and the gradient is not trivially zero for any kind of parameter
    grads = torch.autograd.grad(fn(*raw), raw)
    assert all(torch.isfinite(g).all() for g in grads)
    nonzero = {n.split(".")[0] for n, g in zip(names, grads) if float(g.abs().sum()) > 0}
    assert nonzero == {"rho", "F", "t"}


def test_parameters_stay_positive_and_layer_ownership(data):
    X, _ = data
    net = DeepIRLSADMMNet(X.shape[1], k_max=3, i_max=4)
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(-800.0)
    assert all((v > 0).all() for v in net.F.values() + net.rho.values() + net.t.values())
    owned = [id(p) for k in range(3) for p in net.layer_parameters(k)]
    assert sorted(owned) == sorted(id(p) for p in net.parameters()) and len(set(owned)) == len(owned)
    assert len(net.layer_parameters(0)) == 1 + 2 * 4


def test_training_lowers_the_loss_and_round_trips(data, tmp_path):
    X, y = data
    net = DeepIRLSADMMNet.from_algorithm(X.shape[1], 10.0, fit_intercept=True)
    sampler = SubsetSampler(X, y, subsample=0.6, holdout=0.3)
    val = sampler.sample(6, torch.Generator().manual_seed(9))
    with torch.no_grad():
        before = float(logistic_loss(net(val[0]), val[1]))
    res = train_deep_irls(net, X, y, max_steps=30, lr=0.1, subsample=0.6, holdout=0.3, n_val=6, val_every=10,
                          seed=8)
    with torch.no_grad():
        after = float(logistic_loss(net(val[0]), val[1]))
    assert res.n_steps == 30 and after < before - 1e-3
    save_model(net, tmp_path / "m", metadata={"test": True})
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is DeepIRLSADMMNet and loaded.config() == net.config()
    with torch.no_grad():
        torch.testing.assert_close(loaded((X, y)), net((X, y)), atol=0, rtol=0)


def test_sampler_is_stratified_and_disjoint(data):
    X, y = data
    s = SubsetSampler(X, y, subsample=0.5, holdout=0.25)
    (Xf, yf), (Xe, ye) = s.sample(3, torch.Generator().manual_seed(0))
    assert Xf.shape[0] == 3 and (yf == 1).sum(-1).unique().numel() == 1
    for b in range(3):
        fit_rows = {tuple(r.tolist()) for r in Xf[b]}
        assert not fit_rows & {tuple(r.tolist()) for r in Xe[b]}
    with pytest.raises(ValueError, match="subsample"):
        SubsetSampler(X, y, subsample=0.0)


def test_bad_input(data):
    X, y = data
    net = DeepIRLSADMMNet(X.shape[1])
    with pytest.raises(ValueError, match="features"):
        net((X[:, :3], y))
    with pytest.raises(ValueError, match="labels in"):
        net((X, (y + 1) / 2))
    with pytest.raises(ValueError, match="dtype"):
        net((X.float(), y.float()))
    with pytest.raises(ValueError, match="positive"):
        DeepIRLSADMMNet.from_algorithm(X.shape[1], 0.0)
    with pytest.raises(ValueError, match="pair"):
        net(X)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(data):
    X, y = data
    net = DeepIRLSADMMNet.from_algorithm(X.shape[1], 5.0, fit_intercept=True)
    with torch.no_grad():
        cpu = net((X, y))
        gpu = net.to("cuda")((X.cuda(), y.cuda()))
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-10, rtol=1e-10)
    res = irls_admm(X.cuda(), y.cuda(), 5.0, fit_intercept=True)
    assert res.beta.device.type == "cuda" and bool(res.converged)
    torch.testing.assert_close(res.beta.cpu(), irls_admm(X, y, 5.0, fit_intercept=True).beta, atol=1e-6, rtol=0)
