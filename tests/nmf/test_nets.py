"""DeepNMF: untrained = K iterations of sparse NMF separation, layer structure, positivity, training; the BLSTM baseline."""

from __future__ import annotations

import pytest
import torch

from unrolled.core.io import load_model, save_model
from unrolled.core.testing import assert_untrained_equals_solver
from unrolled.nmf.baselines import MaskBLSTM
from unrolled.nmf.metrics import spectral_snr_db, spectral_snr_loss
from unrolled.nmf.nets import DeepNMF
from unrolled.nmf.solvers import separate

F, T, LS, LN = 10, 15, 3, 2


def _problem(seed=0, B=4):
    g = torch.Generator().manual_seed(seed)
    Ws = torch.rand(F, LS, generator=g, dtype=torch.float64) + 0.05
    Wn = torch.rand(F, LN, generator=g, dtype=torch.float64) + 0.05
    S = Ws @ torch.rand(B, LS, T, generator=g, dtype=torch.float64)
    N = Wn @ torch.rand(B, LN, T, generator=g, dtype=torch.float64)
    return Ws, Wn, S + N, S


@pytest.mark.parametrize("beta, mu", [(1.0, 0.1), (2.0, 0.0), (0.0, 0.05), (1.5, 0.2)])
@pytest.mark.parametrize("tied", [False, True])
def test_untrained_equals_separate_iterations(beta, mu, tied):
    Ws, Wn, M, _ = _problem()
    net = DeepNMF.from_algorithm(Ws, Wn, 6, beta=beta, mu=mu, tied=tied)
    run = lambda max_iter, tol, callback: separate(M, Ws, Wn, beta=beta, mu=mu, max_iter=max_iter,  # noqa: E731
                                                   tol=tol, callback=callback)
    gaps = assert_untrained_equals_solver(net, M, run, atol=1e-11)
    assert len(gaps) == 6


def test_equivalence_fails_with_other_settings():
    """The check can fail: the same bases with another mu, or speech and noise bases swapped."""
    Ws, Wn, M, _ = _problem()
    with torch.no_grad():
        out = DeepNMF.from_algorithm(Ws, Wn, 4, beta=1.0, mu=0.1)(M)
    assert (out - separate(M, Ws, Wn, beta=1.0, mu=0.2, max_iter=4, tol=0.0).x).abs().max() > 1e-6
    swapped = DeepNMF.from_algorithm(Wn, Ws, 4, beta=1.0, mu=0.1)
    with torch.no_grad():
        assert (swapped(M) + out - M).abs().max() < 1e-10  # masks of the two sources sum to one
        assert (swapped(M) - out).abs().max() > 1e-3


def test_untied_layers_use_their_own_dictionary():
    Ws, Wn, M, _ = _problem()
    net = DeepNMF.from_algorithm(Ws, Wn, 3)
    with torch.no_grad():
        before = net(M, return_layers=True)
        net.W.raw[1].add_(0.5 * torch.randn_like(net.W.raw[1]))
        after = net(M, return_layers=True)
    assert torch.equal(before[0], after[0])
    assert (before[1] - after[1]).abs().max() > 1e-3
    assert sum(p.numel() for p in net.parameters()) == 3 * F * (LS + LN)


def test_dictionary_stays_positive_and_output_masks_input():
    Ws, Wn, M, S = _problem()
    net = DeepNMF.from_algorithm(Ws, Wn, 5, dtype="float32")
    opt = torch.optim.SGD(net.parameters(), lr=3.0)  # large steps: the reparametrisation must hold
    for _ in range(3):
        loss = spectral_snr_loss(net(M.float()), S.float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(bool((w > 0).all() and torch.isfinite(w).all()) for w in net.W.values())
    with torch.no_grad():
        out = net(M.float())
    assert bool(torch.isfinite(out).all()) and bool((out >= 0).all()) and bool((out <= M.float() * (1 + 1e-5)).all())


def test_training_improves_on_sparse_nmf():
    """A few Adam steps on the layers' dictionaries beat the algorithm they started from (same bases)."""
    Ws, Wn, M, S = _problem(1, B=8)
    Ws_bad, Wn_bad = Ws + 0.3, Wn + 0.3  # blurred bases: room for learning
    net = DeepNMF.from_algorithm(Ws_bad, Wn_bad, 8, beta=1.0, mu=0.0)
    start = float(spectral_snr_db(separate(M, Ws_bad, Wn_bad, beta=1.0, max_iter=8, tol=0.0).x, S).mean())
    opt = torch.optim.Adam(net.parameters(), lr=3e-2)
    for _ in range(40):
        loss = spectral_snr_loss(net(M), S)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert float(spectral_snr_db(net(M), S).mean()) > start + 1.0


def test_from_algorithm_refuses_zero_bases():
    Ws, Wn, _, _ = _problem()
    Ws[0, 0] = 0.0
    with pytest.raises(ValueError, match="W_speech"):
        DeepNMF.from_algorithm(Ws, Wn, 3)


def test_blstm_baseline(tmp_path):
    _, _, M, S = _problem(2)
    lstm = MaskBLSTM(F, hidden=8, n_lstm=1, dtype="float64").fit_normalisation(M)
    out = lstm(M)
    assert out.shape == M.shape and bool((out <= M).all()) and bool((out >= 0).all())
    assert lstm(M[0]).shape == M[0].shape
    spectral_snr_loss(out, S).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in lstm.parameters())
    save_model(lstm, tmp_path / "lstm")
    with torch.no_grad():
        torch.testing.assert_close(load_model(tmp_path / "lstm")(M), lstm(M))
    with pytest.raises(ValueError, match=r"\bM\b"):
        lstm(-M)
    # the reproduction's sizes: the baseline has more parameters than the deepest deep NMF
    big = sum(p.numel() for p in MaskBLSTM(129, 96, 2).parameters())
    assert big > sum(p.numel() for p in DeepNMF(129, 40, 24, n_layers=25).parameters())


@pytest.mark.parametrize("bad, what", [
    (lambda M: -M, "negative"), (lambda M: M[:, :-1], "frequencies"), (lambda M: M.float(), "dtype"),
    (lambda M: M[:0], "empty"), (lambda M: M[..., :0], "frames"), (lambda M: M.to(torch.complex128), "real"),
])
def test_bad_input_names_M(bad, what):
    Ws, Wn, M, _ = _problem()
    net = DeepNMF.from_algorithm(Ws, Wn, 2)
    with pytest.raises(ValueError, match=rf"\bM\b.*{what}|{what}.*\bM\b"):
        net(bad(M))
