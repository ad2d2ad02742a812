"""Tests of SLoG-Net (unrolled ADMM for blind graph deconvolution) and the graph metrics."""

from __future__ import annotations

import json
import math

import pytest
import torch

from unrolled.core.io import load_model, save_model
from unrolled.core.train import Trainer
from unrolled.graph import SLoGNet, relative_error, relative_error_loss, support_accuracy
from unrolled.graph.data import GraphDiffusionProblem
from unrolled.graph.solvers import admm, sources_from_filter

DT = torch.float64
K = 5
RHO_L, RHO_MU = 300.0, 2000.0  # fixed penalties for the ADMM comparisons


@pytest.fixture(scope="module")
def problem() -> GraphDiffusionProblem:
    return GraphDiffusionProblem("er", n_signals=40, graph_seed=1)


@pytest.fixture(scope="module")
def data(problem) -> tuple[torch.Tensor, torch.Tensor]:
    return problem.sample(3, torch.Generator().manual_seed(7))


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Max-abs difference relative to the max-abs entry of ``b``."""
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def admm_k(Y, S, V, k, **kw):
    res = admm(Y, S, V=V, max_iter=k, tol=0.0, **kw)
    assert (res.n_iter == k).all() and not res.converged.any(), "tol=0 must run exactly max_iter iterations"
    return res


# --------------------------------------------------------------------------- #
# The from_algorithm invariant
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("scaled_dual", [True, False])
@pytest.mark.parametrize("output", ["filter", "sources"])
def test_from_algorithm_is_admm_at_every_layer(problem, data, scaled_dual, output):
    Y, _ = data
    net = SLoGNet.from_algorithm(problem, K, rho_l=RHO_L, rho_mu=RHO_MU, scaled_dual=scaled_dual, output=output)
    with torch.no_grad():
        states = net.layer_states(Y)
        outs = net(Y, return_layers=True)
        final = net(Y)
    assert len(states) == len(outs) == K
    s = 1.0 / RHO_L if scaled_dual else 1.0  # the network's multipliers are s times ADMM's
    lam, mu = torch.zeros_like(Y), torch.zeros(Y.shape[0], 1, dtype=DT)
    for k in range(1, K + 1):
        res = admm_k(Y, problem.S, problem.V, k, rho_l=RHO_L, rho_mu=RHO_MU)
        st = states[k - 1]
        assert rel_diff(st.g, res.g) < 1e-10, k
        assert rel_diff(st.x, res.x) < 1e-10, k
        Zg = sources_from_filter(Y, problem.V, res.g)
        expected = Zg if output == "filter" else res.x
        assert rel_diff(outs[k - 1], expected) < 1e-10, k
        # multipliers (13)-(14) from ADMM's iterates
        lam = lam + s * RHO_L * (Zg - res.x)
        mu = mu + s * RHO_MU * (res.g.sum(-1, keepdim=True) - 1.0)
        assert rel_diff(st.lam, lam) < 1e-10, k
        # mu accumulates the small violations 1^T g - 1: compare on the scale of the terms summed
        mu_scale = s * RHO_MU * float(res.g.abs().sum(-1).max())
        assert float((st.mu - mu).abs().max()) < 1e-10 * mu_scale, k
    assert torch.equal(final, outs[-1])


def test_from_algorithm_with_bare_shift_extra_columns_and_tied(problem, data):
    """From S alone (admm computes the same basis), d=2 (zero extra column), tied layers."""
    Y, _ = data
    net = SLoGNet.from_algorithm(problem.S, K, rho_l=RHO_L, rho_mu=RHO_MU, c=-2.5, d=2, tied=True)
    assert net.M[0].shape == (problem.N, 2) and len(list(net.parameters())) == 12
    res = admm(Y, problem.S, c=-2.5, rho_l=RHO_L, rho_mu=RHO_MU, max_iter=K, tol=0.0)
    X, g = net.forward_with_filter(Y)
    assert rel_diff(g, res.g) < 1e-10
    assert rel_diff(X, sources_from_filter(Y, net.V, res.g)) < 1e-10
    # fewer active layers = fewer ADMM iterations
    net.active_layers = 2
    res2 = admm(Y, problem.S, c=-2.5, rho_l=RHO_L, rho_mu=RHO_MU, max_iter=2, tol=0.0)
    assert rel_diff(net.forward_with_filter(Y)[1], res2.g) < 1e-10


def test_from_algorithm_calibrated_penalties(problem, data):
    """Without rho's the medians of default_penalties are used; unbatched input works."""
    Y, _ = data
    net = SLoGNet.from_algorithm(problem, 3, output="sources")
    rho_l = 1.0 / net.tau[0].item()
    rho_mu = net.rho2[0].item() * rho_l
    res = admm_k(Y[1], problem.S, problem.V, 3, rho_l=rho_l, rho_mu=rho_mu)
    out = net(Y[1])
    assert out.shape == Y[1].shape
    assert rel_diff(out, res.x) < 1e-10


# --------------------------------------------------------------------------- #
# Parametrisation, gradients, save/load, batching
# --------------------------------------------------------------------------- #
def test_random_init_follows_the_paper(problem):
    net = SLoGNet.random_init(problem, K, seed=3)
    assert net.config() == {"n_nodes": 20, "n_layers": K, "d": 2, "output": "filter", "tied": False, "dtype": "float64"}
    for name in ("rho1", "rho2", "tau"):
        vals = torch.stack(getattr(net, name).values())
        assert ((vals > 0) & (vals <= 1)).all()
    assert len({net.alpha1[k].item() for k in range(K)}) == K  # untied draws
    again = SLoGNet.random_init(problem, K, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))


def test_positivity_survives_adversarial_gradient_steps(problem, data):
    Y, X = data
    net = SLoGNet.random_init(problem, K, seed=0)
    positive = [getattr(net, n) for n in ("rho1", "rho2", "tau")]
    for step in range(4):
        net.zero_grad()
        # a loss that wants every positive parameter below zero, and huge steps
        loss = relative_error_loss(net(Y), X) + 1e6 * sum(v.sum() for p in positive for v in p.values())
        loss.backward()
        with torch.no_grad():
            for p in net.parameters():
                if p.grad is not None:
                    p -= 10.0 ** (step + 1) * p.grad.sign()
        for p in positive:
            assert (torch.stack(p.values()) > 0).all()
    with torch.no_grad():
        assert torch.isfinite(net(Y)).all()


def _nonzero_grad(p):
    return p.grad is not None and bool(p.grad.abs().max() > 0)


@pytest.mark.parametrize("init", ["random", "admm"])
@pytest.mark.parametrize("output", ["filter", "sources"])
def test_gradients_reach_every_parameter_that_can_matter(problem, data, init, output):
    Y, X = data
    if init == "random":
        # small thresholds: with the paper's U(0, 1] every x is 0 at this data scale (see random_init)
        net = SLoGNet.random_init(problem, K, output=output, seed=1, tau_scale=0.01)
    else:
        net = SLoGNet.from_algorithm(problem, K, output=output)
    relative_error_loss(net(Y), X).backward()
    # Documented exceptions: the first layer's weights of the (zero) initial
    # multipliers; the last layer's multipliers sub-layer, and with the paper's
    # read-out Z g^(K) its sources sub-layer too.
    dead = {0: {"rho1", "alpha2", "beta1", "gamma1"}, K - 1: {"beta1", "beta2", "beta3", "gamma1", "gamma2"}}
    if output == "filter":
        dead[K - 1] |= {"alpha1", "alpha2", "tau"}
    for name in ("rho1", "rho2", "tau", "alpha1", "alpha2", "beta1", "beta2", "beta3", "gamma1", "gamma2", "M", "m"):
        raw = getattr(net, name).raw
        for k in range(K):
            if name in dead.get(k, ()):
                assert not _nonzero_grad(raw[k]), (name, k)
            else:
                assert _nonzero_grad(raw[k]), (name, k)
    # layer_parameters partitions the parameters
    ids = [id(p) for k in range(K) for p in net.layer_parameters(k)]
    assert sorted(ids) == sorted(id(p) for p in net.parameters()) and len(set(ids)) == len(ids)


def test_save_load_round_trip(problem, data, tmp_path):
    Y, _ = data
    net = SLoGNet.random_init(problem, K, seed=4, output="sources")
    save_model(net, tmp_path / "slog", metadata={"graph": problem.config()})
    cfg = json.loads((tmp_path / "slog" / "config.json").read_text())
    assert cfg["class"] == "SLoGNet" and cfg["config"] == net.config()
    loaded = load_model(tmp_path / "slog")
    assert isinstance(loaded, SLoGNet)
    assert torch.equal(loaded.V, problem.V) and torch.equal(loaded.S, problem.S)
    with torch.no_grad():
        assert torch.equal(loaded(Y), net(Y))
        assert all(torch.equal(a, b) for a, b in zip(loaded.forward_with_filter(Y), net.forward_with_filter(Y)))


def test_unset_graph_is_reported():
    net = SLoGNet(6, 2)
    with pytest.raises(RuntimeError, match="no graph"):
        net(torch.ones(6, 3, dtype=DT))


def test_batched_equals_per_problem(problem, data):
    Y, _ = data
    net = SLoGNet.random_init(problem, K, seed=2)
    with torch.no_grad():
        X, g = net.forward_with_filter(Y)
        for b in range(Y.shape[0]):
            Xb, gb = net.forward_with_filter(Y[b])
            assert Xb.shape == Y[b].shape and gb.shape == (problem.N,)
            assert rel_diff(Xb, X[b]) < 1e-12 and rel_diff(gb, g[b]) < 1e-12


def test_float32_network(problem, data):
    Y, _ = data
    p32 = GraphDiffusionProblem("er", n_signals=40, graph_seed=1, dtype=torch.float32)
    net = SLoGNet.from_algorithm(p32, 3, rho_l=RHO_L, rho_mu=RHO_MU)
    assert net.dtype == torch.float32 and net.config()["dtype"] == "float32"
    ref = SLoGNet.from_algorithm(problem, 3, rho_l=RHO_L, rho_mu=RHO_MU)
    with torch.no_grad():
        assert rel_diff(net(Y.float()).double(), ref(Y)) < 1e-3


# --------------------------------------------------------------------------- #
# Bad input
# --------------------------------------------------------------------------- #
def test_bad_input_raises_naming_the_argument(problem, data):
    Y, _ = data
    net = SLoGNet.from_algorithm(problem, 2, rho_l=RHO_L, rho_mu=RHO_MU)
    bad_Y = [
        Y[:, :-1],  # wrong N
        Y[0, 0],  # 1-D
        Y.float(),  # dtype
        Y[..., :0],  # no signals
        torch.where(Y > 0.5, torch.nan, Y),  # NaN
        [[0.0]],  # not a tensor (numpy arrays are converted: see below)
    ]
    for bad in bad_Y:
        with pytest.raises(ValueError, match=r"\bY\b"):
            net(bad)
    with pytest.raises(ValueError, match="graph frequency"):  # Z^T Z = 0
        net(torch.zeros(2, problem.N, 5, dtype=DT))
    with torch.no_grad():
        assert torch.equal(net(Y.numpy()), net(Y))

    S = problem.S
    cases = [
        (dict(graph=S[:, :-1]), "S"),
        (dict(graph=S + torch.triu(torch.ones_like(S), 1)), "S"),
        (dict(graph="er"), "graph"),
        (dict(graph=S, rho_l=-1.0, rho_mu=1.0), "rho_l"),
        (dict(graph=S, rho_l=1.0, rho_mu=0.0), "rho_mu"),
        (dict(graph=S), "rho_l"),  # bare S needs penalties
        (dict(graph=S, rho_l=1.0, rho_mu=1.0, c=0.0), r"\bc\b"),
        (dict(graph=S, rho_l=1.0, rho_mu=1.0, n_layers=0), "n_layers"),
        (dict(graph=S, rho_l=1.0, rho_mu=1.0, d=0), r"\bd\b"),
        (dict(graph=S, rho_l=1.0, rho_mu=1.0, d=21), r"\bd\b"),
        (dict(graph=S, rho_l=1.0, rho_mu=1.0, output="x"), "output"),
        (dict(graph=S, rho_l=1.0, rho_mu=1.0, V=torch.eye(20, dtype=DT)), r"\bV\b"),
        (dict(graph=S, rho_l=1.0, rho_mu=1.0, V=2 * problem.V), r"\bV\b"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            SLoGNet.from_algorithm(**kwargs)
    with pytest.raises(ValueError, match="seed"):
        SLoGNet.random_init(problem, seed=-1)
    with pytest.raises(ValueError, match="n_nodes"):
        SLoGNet(0)


# --------------------------------------------------------------------------- #
# Metrics
# --------------------------------------------------------------------------- #
def test_relative_error_hand_computed_and_sign_invariant():
    X = torch.tensor([[[3.0, 0.0], [0.0, 4.0]]], dtype=DT)  # ||X||_F = 5
    E = torch.tensor([[[3.0, 0.0], [0.0, 1.0]]], dtype=DT)  # ||E - X|| = 3, ||E + X|| = sqrt(36+25)
    assert relative_error(E, X).item() == pytest.approx(3 / 5)
    assert relative_error(-E, X).item() == pytest.approx(3 / 5)  # sign flip of the estimate
    assert relative_error(-E, X, sign_invariant=False).item() == pytest.approx(math.sqrt(61) / 5)
    # per problem, then mean; estimate 0 has RE 1
    Xb = torch.cat([X, 2 * X])
    Eb = torch.cat([-E, torch.zeros_like(X)])
    assert torch.allclose(relative_error(Eb, Xb, reduction="none"), torch.tensor([0.6, 1.0], dtype=DT))
    assert relative_error(Eb, Xb).item() == pytest.approx(0.8)
    assert relative_error_loss(Eb, Xb).item() == pytest.approx(0.8)
    # inverse-filter responses (B, N) and a single vector
    g = torch.tensor([[1.0, 2.0, 2.0]], dtype=DT)
    assert relative_error(-1.1 * g, g).item() == pytest.approx(0.1)
    assert relative_error(g[0] * 0.5, g[0]).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="all zero"):
        relative_error(E, torch.zeros_like(X))
    with pytest.raises(ValueError, match="shape"):
        relative_error(E, X[..., :1])
    with pytest.raises(ValueError, match="reduction"):
        relative_error(E, X, reduction="sum")


def test_loss_gradient_follows_the_closer_sign():
    X = torch.tensor([[[1.0, -2.0]]], dtype=DT)
    E = torch.tensor([[[-0.5, 1.0]]], dtype=DT, requires_grad=True)  # closer to -X
    relative_error_loss(E, X).backward()
    expected = (E + X).detach() / torch.linalg.vector_norm(E + X).detach() / torch.linalg.vector_norm(X)
    assert torch.allclose(E.grad, expected)


def test_support_accuracy_hand_computed():
    kappa = 0.1
    X = torch.tensor([[[0.5, 0.0, -0.05, 0.0], [-1.0, 0.0, 0.0, 0.2]]], dtype=DT)
    # true support (|X| >= 0.1): (0,0), (1,0), (1,3); the -0.05 source is below kappa
    E = torch.tensor([[[-0.3, 0.1, 0.0, 0.09], [0.0, 0.0, 0.0, -0.2]]], dtype=DT)
    # estimated support: (0,0), (0,1) [|0.1| >= kappa], (1,3) -> agree on 8 - 2 = 6 of 8 entries
    assert support_accuracy(E, X, kappa=kappa).item() == pytest.approx(6 / 8)
    assert support_accuracy(-E, X).item() == pytest.approx(6 / 8)  # magnitudes on both sides
    assert support_accuracy(E, -X).item() == pytest.approx(6 / 8)
    assert support_accuracy(X, X).item() == 1.0
    assert support_accuracy(torch.zeros_like(X), X).item() == pytest.approx(5 / 8)  # trivial baseline
    both = support_accuracy(torch.cat([E, X]), torch.cat([X, X]), reduction="none")
    assert torch.allclose(both, torch.tensor([0.75, 1.0], dtype=DT))
    assert support_accuracy(E, X, kappa=0.25).item() == pytest.approx(7 / 8)  # only (1,0) missed
    with pytest.raises(ValueError, match="kappa"):
        support_accuracy(E, X, kappa=-1.0)


# --------------------------------------------------------------------------- #
# Training
# --------------------------------------------------------------------------- #
def test_short_training_lowers_validation_loss():
    prob = GraphDiffusionProblem("er", n_nodes=10, n_signals=40, graph_seed=0)
    val = prob.sample(16, torch.Generator().manual_seed(123))
    net = SLoGNet.from_algorithm(prob, K)
    with torch.no_grad():
        untrained = relative_error_loss(net(val[0]), val[1]).item()
    trainer = Trainer(
        net, relative_error_loss, prob.sample, val, lr=3e-2, max_steps=30, batch_size=4, val_every=10,
        progress=False, seed=0,
    )
    result = trainer.fit()
    assert trainer.reference_loss == pytest.approx(untrained)
    assert result.best_val < 0.95 * untrained
    with torch.no_grad():  # the best model is the one the net holds
        assert relative_error_loss(net(val[0]), val[1]).item() == pytest.approx(result.best_val)
    for name in ("rho1", "rho2", "tau"):
        assert (torch.stack(getattr(net, name).values()) > 0).all()
