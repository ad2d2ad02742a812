"""LPALM: the untrained net equals PALM, the paper's initialisation, training, save/load, bad input.

PALM is written out here again (independently of the package's solver) as the reference.
"""

from __future__ import annotations

import pytest
import torch

from unrolled.core.io import load_model, save_model
from unrolled.core.train import TrainResult
from unrolled.separation.data import gennorm_sources, mix, mixing_matrices
from unrolled.separation.nets import A_UPDATES, LPALM, S_UPDATES
from unrolled.separation.solvers import palm
from unrolled.separation.training import evaluate, loss_s_and_a, train_lpalm

DT = torch.float64
LAM = 0.01
K = 6
VARIANTS = [("lista-cp", "ista-ll"), ("lista-cp", "explicit"), ("ista-llt", "ista-ll"), ("ista-llt", "explicit")]


@pytest.fixture(scope="module")
def data():
    A = mixing_matrices(40)[:, ::4]  # 17 channels
    A = A / torch.linalg.vector_norm(A, dim=1, keepdim=True)
    S = gennorm_sources(40, 4, 40, seed=5)
    return mix(A, S, 30.0, seed=6)


def ref_palm(X, A, lam, n_iter):
    """PALM (Eq. 6) written out: eigenvalues via numpy-free torch.linalg.svdvals, steps 1/(1.01 L)."""
    S = torch.zeros(A.shape[1], X.shape[1], dtype=X.dtype)
    out = []
    for _ in range(n_iter):
        L_s = float(torch.linalg.svdvals(A)[0] ** 2) * 1.01
        v = S - A.T @ (A @ S - X) / L_s
        S = torch.sign(v) * torch.clamp(v.abs() - lam / L_s, min=0)
        L_a = float(torch.linalg.svdvals(S)[0] ** 2) * 1.01
        W = A - (A @ S - X) @ S.T / L_a
        A = W / torch.clamp(W.norm(dim=0, keepdim=True), min=1.0)
        out.append((A, S))
    return out


@pytest.mark.parametrize("s_update,a_update", VARIANTS)
def test_from_algorithm_equals_palm_every_layer(data, s_update, a_update):
    X, A0 = data.X[0], data.A[1]
    net = LPALM.from_algorithm(X, LAM, K, A0=A0, s_update=s_update, a_update=a_update)
    assert net.dtype == DT
    ref = ref_palm(X, A0, LAM, K)
    layers = net(X, return_layers=True)
    assert len(layers) == K
    for (A_net, S_net), (A_ref, S_ref) in zip(layers, ref):
        assert torch.allclose(S_net, S_ref, atol=1e-12, rtol=0)
        assert torch.allclose(A_net, A_ref, atol=1e-12, rtol=0)
    # and the package's PALM agrees too
    res = palm(X, A0, None, LAM, max_iter=K, tol=0.0)
    assert torch.allclose(layers[-1][0], res.A[0], atol=1e-12) and torch.allclose(layers[-1][1], res.S[0], atol=1e-12)
    # not a trivial agreement: PALM moved far from its start
    assert (ref[-1][0] - A0).norm() > 1e-3 and ref[-1][1].norm() > 1e-2


def test_lista_variant_reproduces_palm_sources(data):
    """LISTA has no A-update; read off PALM's trajectory it reproduces PALM's sources."""
    X, A0 = data.X[0], data.A[1]
    net = LPALM.from_algorithm(X, LAM, K, A0=A0, s_update="lista", a_update="none")
    ref = ref_palm(X, A0, LAM, K)
    for (A_net, S_net), (_, S_ref) in zip(net(X, return_layers=True), ref):
        assert torch.allclose(S_net, S_ref, atol=1e-12, rtol=0)
        assert torch.equal(A_net, A0)


def test_from_algorithm_default_start_is_lpalm_start(data):
    net = LPALM.from_algorithm(data.X[0], LAM, 3, n_sources=4)
    m = data.X.shape[1]
    assert torch.allclose(net.A_init, torch.full((m, 4), m**-0.5, dtype=DT))
    res = palm(data.X[0], None, None, LAM, n_sources=4, max_iter=3, tol=0.0)
    A, S = net(data.X[0])
    assert torch.allclose(A, res.A[0], atol=1e-12) and torch.allclose(S, res.S[0], atol=1e-12)


def test_paper_initialisation(data):
    """Appendix A: theta = lam / L_S, W = A / L_S, 1 / L_A, the same in every layer; A0 = ones / sqrt(m), S0 = 0."""
    A, S = data.A[0], data.S[0]
    net = LPALM.from_training_pair(A, S, 5, lam=1e-5, dtype="float64")
    L_S = float(torch.linalg.svdvals(A)[0] ** 2)
    L_A = float(torch.linalg.svdvals(S)[0] ** 2)
    for k in range(5):
        assert float(net.theta[k].detach()) == pytest.approx(1e-5 / L_S, rel=1e-12)
        assert torch.allclose(net.W[k], A / L_S, atol=1e-14)
        assert float(net.gamma_a[k].detach()) == pytest.approx(1 / L_A, rel=1e-12)
    m = A.shape[0]
    assert torch.allclose(net.A_init, torch.full_like(A, m**-0.5))
    A1, S1 = net(data.X[:2], return_layers=True)[0]
    # first layer from S0 = 0: S1 = ST(W^T X), A1 = Pi(A0 - gamma (A0 S1 - X) S1^T)
    v = (A / L_S).T @ data.X[:2]
    S_ref = torch.sign(v) * torch.clamp(v.abs() - 1e-5 / L_S, min=0)
    assert torch.allclose(S1, S_ref, atol=1e-13)
    W = net.A_init - ((net.A_init @ S_ref - data.X[:2]) @ S_ref.transpose(1, 2)) / L_A
    assert torch.allclose(A1, W / torch.clamp(W.norm(dim=1, keepdim=True), min=1), atol=1e-12)


def test_parameter_count_and_layer_ownership(data):
    m, n = data.A.shape[1:]
    net = LPALM.from_training_pair(data.A[0], data.S[0], 7, dtype="float64")
    n_params = sum(p.numel() for p in net.parameters())
    assert n_params == 7 * (m * n + 2)  # K (m n + 2), Sec. 2.2
    for s_up, a_up in VARIANTS + [("lista", "none")]:
        net = LPALM(m, n, 3, s_up, a_up)
        owned = [id(p) for k in range(3) for p in net.layer_parameters(k)]
        assert sorted(owned) == sorted(id(p) for p in net.parameters())


def test_training_through_trainer_improves_and_keeps_constraints(data):
    torch.manual_seed(0)
    train, val = data.subset(slice(0, 32)), data.subset(slice(32, 40))
    net = LPALM.from_training_pair(train.A[0], train.S[0], 4, dtype="float64")
    with torch.no_grad():
        before = float(loss_s_and_a(net(val.X), (val.A, val.S, val.X)))
    res = train_lpalm(net, train, val, lr=3e-3, max_steps=60, batch_size=4, val_every=20, progress=False)
    assert isinstance(res, TrainResult) and res.n_steps == 60
    with torch.no_grad():
        A, S = net(val.X)
        after = float(loss_s_and_a((A, S), (val.A, val.S, val.X)))
    assert after < 0.8 * before
    assert after == pytest.approx(res.best_val, rel=1e-9)
    assert (torch.linalg.vector_norm(A, dim=1) <= 1 + 1e-12).all()
    assert all(float(t.detach()) > 0 for t in net.theta.values()) and all(float(g.detach()) > 0 for g in net.gamma_a.values())


@pytest.mark.parametrize("s_update,a_update", VARIANTS + [("lista", "none")])
def test_save_load_round_trip(tmp_path, data, s_update, a_update):
    net = LPALM.from_training_pair(data.A[0], data.S[0], 3, s_update=s_update, a_update=a_update, dtype="float64")
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01 * torch.randn_like(p))
    save_model(net, tmp_path / "m", metadata={"note": "test"})
    back = load_model(tmp_path / "m")
    assert isinstance(back, LPALM) and back.config() == net.config()
    with torch.no_grad():
        A1, S1 = net(data.X[:3])
        A2, S2 = back(data.X[:3])
    assert torch.equal(A1, A2) and torch.equal(S1, S2)
    e1, e2 = evaluate(net, data.subset(slice(0, 3))), evaluate(back, data.subset(slice(0, 3)))
    assert torch.equal(e1["A"], e2["A"]) and torch.equal(e1["S"], e2["S"])


def test_bad_input(data):
    m, n = data.A.shape[1:]
    net = LPALM.from_training_pair(data.A[0], data.S[0], 2, dtype="float64")
    with pytest.raises(ValueError, match="m=17"):
        net(data.X[:, :-1])
    with pytest.raises(ValueError, match="dtype"):
        net(data.X.float())
    with pytest.raises(ValueError, match="NaN or inf"):
        net(data.X * torch.nan)
    with pytest.raises(ValueError, match="s_update"):
        LPALM(m, n, 2, s_update="ista")
    with pytest.raises(ValueError, match="a_update"):
        LPALM(m, n, 2, a_update="lstsq")
    with pytest.raises(ValueError, match="LISTA"):
        LPALM(m, n, 2, s_update="lista", a_update="ista-ll")
    with pytest.raises(ValueError, match="LISTA"):
        LPALM(m, n, 2, s_update="lista-cp", a_update="none")
    with pytest.raises(ValueError, match="lam"):
        LPALM.from_training_pair(data.A[0], data.S[0], 2, lam=-1.0)
    with pytest.raises(ValueError, match="do not match"):
        LPALM.from_training_pair(data.A[0], data.S[0][:3], 2)
    with pytest.raises(ValueError, match="untied"):
        LPALM.from_algorithm(data.X[0], LAM, 2, A0=data.A[0], tied=True)
    with pytest.raises(ValueError, match="n_layers"):
        LPALM(m, n, 0)
    assert set(S_UPDATES) == {"lista-cp", "ista-llt", "lista"} and set(A_UPDATES) == {"ista-ll", "explicit", "none"}


def test_ista_llt_from_the_constant_start_cannot_break_the_symmetry(data):
    """With A^0 = ones/sqrt(m) and S^0 = 0, the ISTA-LLT S-update (no per-source weights) keeps all sources equal
    and the A-updates keep all columns equal, whatever the learned scalars: the reason behind the 0.79 NMSE of
    Table 3's ISTA-LLT columns. LISTA-CP's W_k breaks the symmetry."""
    for a_up in ("ista-ll", "explicit"):
        net = LPALM.from_training_pair(data.A[0], data.S[0], 4, s_update="ista-llt", a_update=a_up, dtype="float64")
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.3 * torch.randn_like(p))
            A, S = net(data.X[:3])
        assert torch.allclose(S, S[:, :1].expand_as(S), atol=1e-12) and S.abs().max() > 0
        assert torch.allclose(A, A[:, :, :1].expand_as(A), atol=1e-12)
    net = LPALM.from_training_pair(data.A[0], data.S[0], 4, dtype="float64")
    with torch.no_grad():
        _, S = net(data.X[:3])
    assert not torch.allclose(S, S[:, :1].expand_as(S), atol=1e-6)


def test_a_step_scale_makes_the_net_invariant_to_repeating_the_samples(data):
    """The A-gradient sums over samples: on [X, X] with the learned A-steps halved, the net gives the same A
    and the sources repeated (the S-update acts sample by sample)."""
    net = LPALM.from_training_pair(data.A[0], data.S[0], 5, lam=1e-3, dtype="float64")
    with torch.no_grad():
        A1, S1 = net(data.X[:2])
        A2, S2 = net(torch.cat([data.X[:2], data.X[:2]], dim=-1), a_step_scale=0.5)
        A3, _ = net(torch.cat([data.X[:2], data.X[:2]], dim=-1))
    assert torch.allclose(A2, A1, atol=1e-12) and torch.allclose(S2, torch.cat([S1, S1], dim=-1), atol=1e-12)
    assert not torch.allclose(A3, A1, atol=1e-6)
    with pytest.raises(ValueError, match="a_step_scale"):
        net(data.X[:2], a_step_scale=0.0)
