"""DUBLID (review, DUBLID box): untrained = L HQS iterations (fixed and continuation weights), learned filters
reach the output, training lowers the translation-invariant loss, save/load, and its bad-input errors."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from unrolled.core.io import load_model, save_model
from unrolled.core.testing import assert_untrained_equals_solver
from unrolled.core.train import Trainer
from unrolled.imaging.deblur import BlindDeblurProblem
from unrolled.imaging.deblur_cnn import DeblurCNN
from unrolled.imaging.deblur_metrics import deblur_loss
from unrolled.imaging.dublid import DUBLID, embed_filters
from unrolled.imaging.hqs import derivative_filters, hqs_blind_deblur


@pytest.fixture(scope="module")
def data():
    prob = BlindDeblurProblem(16, ("gaussian", "motion"), kernel_size=5, noise_std=0.01, source="phantoms", seed=0)
    return prob, prob.sample(4, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("solve", ["support", "fourier"])
def test_untrained_equals_hqs_with_continuation_schedule(data, solve):
    _, (y, _) = data
    settings = dict(lam=0.01, zeta=3.0, eta=0.05, eps=1.0, kernel_size=5, lam_start=0.05, decay=0.8,
                    kernel_solve=solve)
    net = DUBLID.from_algorithm(6, **settings)
    run = partial(hqs_blind_deblur, y, **settings)
    gaps = assert_untrained_equals_solver(net, y, run, atol=1e-12)
    assert len(gaps) == 6
    # the schedule is really per layer: a net holding the final lambda everywhere differs
    flat = DUBLID.from_algorithm(6, **{**settings, "lam_start": None})
    with torch.no_grad():
        assert not torch.allclose(flat(y)[0], net(y)[0], atol=1e-6)


def test_larger_filters_are_zero_padded_copies(data):
    _, (y, _) = data
    small = DUBLID.from_algorithm(3, kernel_size=5)
    large = DUBLID.from_algorithm(3, kernel_size=5, filter_size=5)
    assert large.filters[0].shape == (2, 5, 5)
    torch.testing.assert_close(embed_filters(derivative_filters(), 5)[:, 1:-1, 1:-1], derivative_filters())
    with torch.no_grad():
        for a, b in zip(small(y), large(y)):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_learned_filters_and_eta_reach_the_output(data):
    _, (y, target) = data
    net = DUBLID.from_algorithm(3, kernel_size=5)
    loss = deblur_loss(net(y), target)
    loss.backward()
    last = net.n_layers - 1
    for name in ("filters", "lam", "zeta", "eta"):
        grad = getattr(net, name).raw[last].grad
        assert grad is not None and float(grad.abs().max()) > 0, name
    # eta of an earlier layer only matters for that layer's own retrieval, not for the output
    assert net.eta.raw[0].grad is None or float(net.eta.raw[0].grad.abs().max()) == 0


def test_training_lowers_the_translation_invariant_loss(data):
    prob, _ = data
    val = prob.sample(8, torch.Generator().manual_seed(5))
    net = DUBLID.from_algorithm(4, kernel_size=5, lam_start=0.05, decay=0.6)
    with torch.no_grad():
        before = float(deblur_loss(net(val[0]), val[1]))
    Trainer(net, deblur_loss, prob.sample, val, lr=1e-2, max_steps=12, batch_size=4, val_every=6,
            progress=False, seed=0).fit()
    with torch.no_grad():
        after = float(deblur_loss(net(val[0]), val[1]))
    assert after < 0.9 * before
    assert all(bool((net.lam[k] > 0).all()) and bool((net.zeta[k] > 0).all()) for k in range(4))


def test_save_load_and_config(data, tmp_path):
    _, (y, _) = data
    net = DUBLID.from_algorithm(3, kernel_size=5, filter_size=5, lam_start=0.05, kernel_solve="fourier")
    save_model(net, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.config() == net.config() and loaded.config()["kernel_solve"] == "fourier"
    with torch.no_grad():
        for a, b in zip(net(y), loaded(y)):
            assert torch.equal(a, b)
    cnn = DeblurCNN(3, 8, dtype="float64")
    save_model(cnn, tmp_path / "c")
    with torch.no_grad():
        assert torch.equal(load_model(tmp_path / "c")(y), cnn(y))


def test_cnn_starts_at_the_identity_and_has_many_more_parameters(data):
    _, (y, _) = data
    cnn = DeblurCNN(dtype="float64")
    with torch.no_grad():
        assert torch.equal(cnn(y), y) and cnn(y[0]).shape == y[0].shape
    assert cnn.n_parameters() > 100 * DUBLID.from_algorithm(10, kernel_size=15, filter_size=5).n_parameters()


@pytest.mark.parametrize("bad, match", [
    (torch.rand(2, 4, 4, dtype=torch.float64), "kernel"), (torch.rand(2, 16, 16, dtype=torch.float32), "dtype"),
    (torch.rand(3, 2, 16, 16, dtype=torch.float64), "dimensions"),
])
def test_net_refuses_bad_images_naming_y(bad, match):
    net = DUBLID.from_algorithm(2, kernel_size=5)
    with pytest.raises(ValueError, match=match) as info:
        net(bad)
    assert "y" in str(info.value).split()[0] or " y " in f" {info.value} "


@pytest.mark.parametrize("kwargs", [dict(kernel_size=4), dict(filter_size=4), dict(n_filters=0), dict(eps=-1.0),
                                    dict(kernel_solve="dense")])
def test_constructor_refuses_bad_settings(kwargs):
    with pytest.raises(ValueError):
        DUBLID(3, **kwargs)


def test_schedule_needs_untied_layers():
    with pytest.raises(ValueError, match="tied"):
        DUBLID.from_algorithm(3, lam_start=0.05, tied=True)
