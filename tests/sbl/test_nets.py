"""Tests of the SBL family's networks: algorithm invariants, structure, training, save/load."""

from __future__ import annotations

import pytest
import torch

from unrolled.core.io import load_model, save_model
from unrolled.core.stages import end_to_end
from unrolled.core.train import Trainer
from unrolled.sbl.data import CorrelatedSparseProblem, DOAProblem
from unrolled.sbl.metrics import strict_accuracy, support_loss
from unrolled.sbl.nets import IHTNet, SBLNet
from unrolled.sbl.recurrent import GatedFeedbackNet, MaxSparseNet, hidden_size
from unrolled.sbl.solvers import sbl
from unrolled.sparse_coding.solvers import iht

DT = torch.float64
K = 6


@pytest.fixture(scope="module")
def real_problem():
    prob = CorrelatedSparseProblem(n=20, m=100, d=5, noise_std=1e-3, seed=1)
    y, x = prob.sample(12, torch.Generator().manual_seed(2))
    return prob.Phi, y, x


@pytest.mark.parametrize("tied", [False, True])
def test_sblnet_untrained_equals_sbl_lstm_iterations(real_problem, tied):
    Phi, y, _ = real_problem
    lam = 1e-4
    net = SBLNet.from_algorithm(Phi, lam, K, tied=tied)
    with torch.no_grad():
        x_net, g_net = net(y, return_gamma=True)
        layers = net(y, return_layers=True)
    ref = sbl(y, Phi, lam, update="lstm", max_iter=K, tol=0.0)
    torch.testing.assert_close(g_net, ref.gamma, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(x_net, ref.x, rtol=1e-10, atol=1e-12)
    for k in (1, 3):
        ref_k = sbl(y, Phi, lam, update="lstm", max_iter=k, tol=0.0)
        torch.testing.assert_close(layers[k - 1], ref_k.x, rtol=1e-10, atol=1e-12)


def test_sblnet_complex_untrained_equals_sbl():
    prob = DOAProblem(n_sensors=10, resolution=4.0, snr_db=20.0)
    y, _ = prob.sample(6, torch.Generator().manual_seed(3))
    net = SBLNet.from_algorithm(prob.Phi, 0.05, K)
    with torch.no_grad():
        x_net, g_net = net(y, return_gamma=True)
    ref = sbl(y, prob.Phi, 0.05, update="lstm", max_iter=K, tol=0.0)
    torch.testing.assert_close(g_net, ref.gamma, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(x_net, ref.x, rtol=1e-10, atol=1e-12)


def test_iht_net_untrained_equals_iht(real_problem):
    Phi, y, _ = real_problem
    net = IHTNet.from_algorithm(Phi, 5, K)
    with torch.no_grad():
        layers = net(y, return_layers=True)
    for k in (1, K):
        ref = iht(y, Phi, 5, max_iter=k, tol=0.0)
        torch.testing.assert_close(layers[k - 1], ref.x, rtol=1e-10, atol=1e-12)
    assert ((layers[-1] != 0).sum(-1) == 5).all()


def test_sblnet_trains_and_params_stay_positive():
    prob = CorrelatedSparseProblem(n=10, m=30, d=3, noise_std=1e-3, seed=0)
    val = prob.sample(64, torch.Generator().manual_seed(1))
    net = SBLNet.from_algorithm(prob.Phi, 1e-3, 3)
    nmse = lambda a, b: ((a - b) ** 2).sum() / (b**2).sum()
    res = Trainer(net, nmse, prob.sample, val, stages=end_to_end(2e-2, 40), batch_size=32, val_every=10,
                  progress=False).fit()
    with torch.no_grad():
        first = float(nmse(SBLNet.from_algorithm(prob.Phi, 1e-3, 3)(val[0]), val[1]))
        assert res.best_val < 0.95 * first
        assert abs(float(nmse(net(val[0]), val[1])) - res.best_val) < 1e-9
    for lp in (net.lam, net.mu, net.alpha):
        assert all(float(v.detach()) > 0 for v in lp.values())


def test_gated_feedback_reduces_to_stacked_when_gates_open():
    """GF with every global reset gate forced to 1 and cross-layer feedback weights zero is the plain stack."""
    torch.manual_seed(0)
    plain = GatedFeedbackNet(20, 100, hidden=16, n_steps=4, cell="lstm", gated_feedback=False, dtype="float64")
    gf = GatedFeedbackNet(20, 100, hidden=16, n_steps=4, cell="lstm", gated_feedback=True, dtype="float64")
    with torch.no_grad():
        for lp, lg in zip(plain.layers, gf.layers):
            for name in ("gates_in", "gates_rec", "cand_in"):
                getattr(lg, name).load_state_dict(getattr(lp, name).state_dict())
        for j, lg in enumerate(gf.layers):
            for i, rec in enumerate(lg.cand_rec):
                rec.weight.copy_(plain.layers[j].cand_rec[0].weight if i == j else torch.zeros_like(rec.weight))
            lg.fb_in.weight.zero_(); lg.fb_in.bias.fill_(1e3); lg.fb_rec.weight.zero_()
        gf.readout.load_state_dict(plain.readout.state_dict())
    y = torch.randn(5, 20, dtype=DT)
    torch.testing.assert_close(gf(y), plain(y))
    # and with the gates half closed, it differs
    with torch.no_grad():
        for lg in gf.layers:
            lg.fb_in.bias.fill_(0.0)
    assert (gf(y) - plain(y)).abs().max() > 1e-6


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recurrent_shapes_and_sizes(cell):
    small = GatedFeedbackNet(20, 100, hidden=hidden_size(cell, "small", 32), cell=cell)
    large = GatedFeedbackNet(20, 100, hidden=hidden_size(cell, "large", 32), cell=cell)
    count = lambda net: sum(p.numel() for p in net.parameters())
    assert 3.0 < count(large) / count(small) < 4.5
    lstm = GatedFeedbackNet(20, 100, hidden=hidden_size("lstm", "small", 32))
    assert 0.8 < count(small) / count(lstm) < 1.25  # LSTM and GRU of one size: similar parameter counts
    y = torch.randn(7, 20)
    assert small(y).shape == (7, 100)
    assert small(y[0]).shape == (100,)
    cplx = GatedFeedbackNet(10, 90, hidden=16, cell=cell, complex_input=True)
    assert cplx(torch.randn(3, 10, dtype=torch.complex64)).shape == (3, 90)
    small.active_layers = 2  # fewer time steps runs
    assert small(y).shape == (7, 100)


@pytest.mark.parametrize("make", [
    lambda: GatedFeedbackNet(20, 100, hidden=8),
    lambda: MaxSparseNet(20, 100, n_layers=2, width=16),
])
def test_recurrent_bad_input(make):
    net = make()
    with pytest.raises(ValueError, match="y must be"):
        net(torch.randn(3, 19))
    with pytest.raises(ValueError, match="NaN or inf"):
        net(torch.full((3, 20), float("nan")))
    with pytest.raises(ValueError, match="complex"):
        net(torch.randn(3, 20, dtype=torch.complex64))


def test_sblnet_bad_input(real_problem):
    Phi, y, _ = real_problem
    net = SBLNet.from_algorithm(Phi, 1e-3, 2)
    with pytest.raises(ValueError, match="last dimension"):
        net(y[:, :5])
    with pytest.raises(ValueError, match="dtype"):
        net(y.float())
    bad = Phi.clone(); bad[:, 0] = 0
    with pytest.raises(ValueError, match="all-zero columns"):
        SBLNet.from_algorithm(bad, 1e-3, 2)


def test_gf_lstm_learns_support():
    """A small GF-LSTM trained online with the support loss beats its untrained self and chance."""
    torch.manual_seed(0)
    prob = CorrelatedSparseProblem(n=10, m=20, d=2, noise_std=1e-3, correlated=False, seed=0, dtype=torch.float32)
    val = prob.sample(256, torch.Generator().manual_seed(1))
    net = GatedFeedbackNet(10, 20, hidden=32, n_steps=3)
    with torch.no_grad():
        before = float(support_loss(net(val[0]), val[1]))
    res = Trainer(net, support_loss, prob.sample, val, stages=end_to_end(1e-2, 150), batch_size=64,
                  val_every=50, progress=False).fit()
    assert res.best_val < before - 0.3
    with torch.no_grad():
        acc = float(strict_accuracy(net(val[0]), val[1]))
    assert acc > 0.2  # chance of guessing a 2-subset of 20 is 1/190


@pytest.mark.parametrize("make, inputs", [
    (lambda: GatedFeedbackNet(20, 100, hidden=8, cell="gru", n_steps=3), lambda: torch.randn(4, 20)),
    (lambda: GatedFeedbackNet(10, 90, hidden=8, complex_input=True), lambda: torch.randn(4, 10, dtype=torch.complex64)),
    (lambda: MaxSparseNet(20, 100, n_layers=3, width=16), lambda: torch.randn(4, 20)),
    (lambda: IHTNet.from_algorithm(CorrelatedSparseProblem(seed=0).Phi, 4, 3), lambda: torch.randn(4, 20, dtype=DT)),
    (lambda: SBLNet.from_algorithm(DOAProblem(resolution=6.0).Phi, 0.1, 3), lambda: torch.randn(4, 10, dtype=torch.complex128)),
])
def test_save_load_round_trip(tmp_path, make, inputs):
    torch.manual_seed(0)
    net = make().eval()
    y = inputs()
    save_model(net, tmp_path / "m", metadata={"note": "test"})
    back = load_model(tmp_path / "m").eval()
    assert type(back) is type(net) and back.config() == net.config()
    with torch.no_grad():
        torch.testing.assert_close(back(y), net(y), rtol=0, atol=0)


@pytest.mark.parametrize("cell, gated, complex_input", [("lstm", True, False), ("gru", True, False),
                                                        ("lstm", False, False), ("lstm", True, True)])
def test_widened_net_computes_the_same_scores(cell, gated, complex_input):
    """Net2WiderNet: copied units carry their original's trajectories and outgoing weights are shared among the
    copies, so a wider net starts from the narrow one's function; noise then separates the copies."""
    torch.manual_seed(0)
    net = GatedFeedbackNet(6, 15, hidden=8, n_steps=4, cell=cell, gated_feedback=gated, complex_input=complex_input)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))  # away from the default init, so every weight matters
    y = torch.randn(20, 6, dtype=torch.complex64) if complex_input else torch.randn(20, 6)
    wide = net.widened(19, generator=torch.Generator().manual_seed(1))
    assert wide.hidden == 19 and wide.config() == {**net.config(), "hidden": 19}
    with torch.no_grad():
        torch.testing.assert_close(wide(y), net(y), rtol=0, atol=2e-5)
        noisy = net.widened(19, noise=0.05, generator=torch.Generator().manual_seed(1))
        change = (noisy(y) - net(y)).abs().max()
    assert 0 < change < 0.5
    first = noisy.layers[0].cand_in.weight
    assert not torch.equal(first[8:], first[: 19 - 8])  # the copies no longer coincide with their originals
    with pytest.raises(ValueError, match="hidden"):
        net.widened(4)


def _perturbed_gf_lstm(n=6, m=15, hidden=8, **kw) -> GatedFeedbackNet:
    net = GatedFeedbackNet(n, m, hidden=hidden, n_steps=4, dtype="float64", **kw)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))  # away from the default init, so every weight matters
    return net


@pytest.mark.parametrize("cell, gated", [("lstm", True), ("gru", True), ("lstm", False)])
def test_model_feedback_net_starts_as_the_plain_net(cell, gated):
    """``with_model_feedback``: zero weights on the E-step inputs, so the scores are the plain net's exactly;
    once those weights move, the E-step changes the scores (the path is live)."""
    torch.manual_seed(0)
    prob = CorrelatedSparseProblem(n=6, m=15, d=2, noise_std=1e-3, seed=3)
    net = _perturbed_gf_lstm(cell=cell, gated_feedback=gated)
    y, _ = prob.sample(20, torch.Generator().manual_seed(1))
    fb = net.with_model_feedback(prob.Phi)
    assert fb.model_feedback and fb.config() == {**net.config(), "model_feedback": True}
    assert fb.layers[0].cand_in.weight.shape[1] == 6 + fb.n_feedback
    with torch.no_grad():
        # equal up to rounding only: the first layer's matmul has more (zero-weighted) columns, and BLAS may
        # sum a longer inner dimension in another order (seen: 3e-16 apart on one CPU, bitwise equal on another)
        torch.testing.assert_close(fb(y), net(y), rtol=0, atol=1e-12)
        fb.layers[0].cand_in.weight[:, 6:].normal_(0, 0.3)
        assert (fb(y) - net(y)).abs().max() > 1e-3
    with pytest.raises(ValueError, match="already has model_feedback"):
        fb.with_model_feedback(prob.Phi)


def test_model_feedback_e_step_is_the_sbl_posterior():
    """The E-step features are SBL's posterior mean (eq. 4, checked against the solver's Cholesky-based
    ``posterior``) at ``gamma = c softmax(s)``, and the residual ``y - Phi mean`` as a unit direction + log-norm."""
    from unrolled.sbl.solvers import posterior
    torch.manual_seed(0)
    prob = CorrelatedSparseProblem(n=20, m=100, d=6, noise_std=1e-4, seed=2)
    net = GatedFeedbackNet(20, 100, hidden=8, dtype="float64", model_feedback=True)
    net.set_dictionary(prob.Phi)
    with torch.no_grad():
        net.mf_log_scale.fill_(0.7)
        net.mf_log_lam.fill_(-5.0)
    y, _ = prob.sample(16, torch.Generator().manual_seed(4))
    y_unit = y / torch.linalg.vector_norm(y, dim=-1, keepdim=True)
    s = torch.randn(16, 100, dtype=DT)
    with torch.no_grad():
        feats = net._e_step(y_unit, s)
    gamma = torch.exp(torch.tensor(0.7, dtype=DT)) * torch.softmax(s, -1)
    mean, _, _ = posterior(y_unit, prob.Phi, gamma, float(torch.exp(torch.tensor(-5.0, dtype=DT))) + 1e-9)
    resid = y_unit - mean @ prob.Phi.T
    torch.testing.assert_close(feats[:, :100], mean, rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(feats[:, 100:120] * 10 ** feats[:, 120:], resid, rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(torch.linalg.vector_norm(feats[:, 100:120], dim=-1), torch.ones(16, dtype=DT))


def test_model_feedback_widens_saves_and_trains(tmp_path):
    torch.manual_seed(0)
    prob = CorrelatedSparseProblem(n=6, m=15, d=2, noise_std=1e-3, seed=3)
    net = _perturbed_gf_lstm(model_feedback=True)
    net.set_dictionary(prob.Phi)
    y, x = prob.sample(20, torch.Generator().manual_seed(1))
    wide = net.widened(13, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(wide(y), net(y), rtol=0, atol=1e-9)
    save_model(net, tmp_path / "mf")
    back = load_model(tmp_path / "mf")
    assert back.config() == net.config()
    with torch.no_grad():
        torch.testing.assert_close(back(y), net(y), rtol=0, atol=0)
    # the positive scales are exp-parametrised: gradient steps keep them positive and the scores finite
    opt = torch.optim.SGD(net.parameters(), lr=50.0)
    for _ in range(3):
        opt.zero_grad(); support_loss(net(y), x).backward(); opt.step()
    with torch.no_grad():
        assert torch.isfinite(net(y)).all() and float(net.mf_log_lam.exp()) > 0


def test_model_feedback_bad_input():
    prob = CorrelatedSparseProblem(n=6, m=15, d=2, seed=3)
    with pytest.raises(ValueError, match="real data only"):
        GatedFeedbackNet(6, 15, hidden=8, complex_input=True, model_feedback=True)
    net = GatedFeedbackNet(6, 15, hidden=8, model_feedback=True)
    with pytest.raises(RuntimeError, match="set_dictionary"):
        net(torch.randn(3, 6))
    with pytest.raises(ValueError, match=r"real \(6, 15\)"):
        net.set_dictionary(prob.Phi[:, :10])
    bad = prob.Phi.clone(); bad[:, 2] = 0
    with pytest.raises(ValueError, match="all-zero columns"):
        net.set_dictionary(bad)
    with pytest.raises(ValueError, match="model_feedback=False"):
        GatedFeedbackNet(6, 15, hidden=8).set_dictionary(prob.Phi)


def test_sblnet_return_gamma_with_layers(real_problem):
    Phi, y, _ = real_problem
    net = SBLNet.from_algorithm(Phi, 1e-4, 3)
    with torch.no_grad():
        layers, gamma = net(y, return_layers=True, return_gamma=True)
        x1, g1 = net(y[1], return_gamma=True)
    ref = sbl(y, Phi, 1e-4, update="lstm", max_iter=3, tol=0.0)
    assert len(layers) == 3
    torch.testing.assert_close(layers[-1], ref.x, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gamma, ref.gamma, rtol=1e-10, atol=1e-12)
    assert x1.shape == g1.shape == (100,)
    torch.testing.assert_close(g1, ref.gamma[1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["sbl-net", "iht-net"])
def test_registered_nets_equal_their_solver_callbacks(name):
    """The NetSpec's solver (through solve()) hands its callback the net's layer outputs, iteration by iteration."""
    from unrolled.core.registry import NETS
    spec = NETS[name]
    prob = spec.problem(seed=1, small=True)
    y, _ = prob.sample(7, torch.Generator().manual_seed(0))
    net = spec.from_algorithm(prob, 5, False, spec.options)
    with torch.no_grad():
        layers = net(y, return_layers=True)
    seen = []
    res = spec.solver(prob, y, 5, 0.0, lambda k, e: seen.append(e.clone()), spec.options)
    assert len(seen) == 5 and (res.n_iter == 5).all()
    for a, b in zip(layers, seen):
        torch.testing.assert_close(a, b, rtol=0, atol=spec.equivalence_atol)


@pytest.mark.parametrize("update", ["em", "mackay"])
def test_sbl_baselines_callback_sees_posterior_means(update):
    from unrolled.core.registry import NETS
    spec = NETS["sbl-net"]
    prob = spec.problem(seed=2, small=True)
    y, _ = prob.sample(6, torch.Generator().manual_seed(1))
    seen = []
    spec.baselines[f"SBL ({'EM' if update == 'em' else 'MacKay'})"](prob, y, 4, 0.0, lambda k, e: seen.append(e.clone()),
                                                                    spec.options)
    for k in (1, 4):
        # the baselines run SBLIteration through run_sbl: compare with sbl's torch path, bit for bit
        ref = sbl(y, prob.Phi, spec.options["lam"], update=update, max_iter=k, tol=0.0, method="torch")
        torch.testing.assert_close(seen[k - 1], ref.x, rtol=0, atol=0)
