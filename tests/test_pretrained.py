"""Every pretrained model loads from the package (safetensors + JSON, no network) and reproduces its card.

Each model is re-scored on freshly simulated problems (the card's generator seeds, which no training or results run
used; 1000 per setting for the SBL nets, fewer for the slower-to-simulate ones, see ``N_TEST``) and must match its
card's metric within ``unrolled.pretrained.tolerance``: four standard errors of the difference between the card's
estimate and this smaller one, plus a small floor. Cards with an ``exact_check`` (the imaging, lowrank, nmf and
segmentation models) also record the metrics on the test's own problems, which must come out the same (1e-3).
"""

from __future__ import annotations

import json
import socket

import pytest
import torch

from unrolled.pretrained import (card, evaluate, list_pretrained, load_pretrained, model_card, model_dir, support_f1,
                                 tolerance)

N_TEST = 1000
#: fewer test problems where one is large (P = 400 graph signals, 65 x 500 mixtures): seconds per model
N_TEST_OF = {"slognet-er20": 100, "lpalm-xray": 150, "deep-irls-admm-sim": 60, "admm-csnet-mri20": 32,
             "dublid-deblur": 16, "corona-ultrasound": 16, "deepnmf-speech": 8, "crf-rnn-shapes": 64,
             "lista-cpss-16": 1000, "alista-16": 1000}
#: one model per family at least
FAMILY_MODELS = {"sbl-gf-lstm-large-mf", "sbl-gf-lstm", "sbl-doa-gf-lstm", "slognet-er20", "lpalm-xray",
                 "deep-irls-admm-sim", "admm-csnet-mri20", "dublid-deblur", "corona-ultrasound", "deepnmf-speech",
                 "crf-rnn-shapes", "lista-cpss-16", "alista-16"}
#: the kinds whose tolerance comes from the card's per-problem (or bootstrap) standard deviations
STD_KINDS = ("slognet-er20", "lpalm-xray", "deep-irls-admm-sim", "admm-csnet-mri20", "dublid-deblur",
             "corona-ultrasound", "deepnmf-speech", "crf-rnn-shapes", "lista-cpss-16", "alista-16")


def test_list_pretrained_names_every_family_model_shipped():
    names = list_pretrained()
    assert FAMILY_MODELS <= set(names)
    for name in names:
        d = model_dir(name)
        assert (d / "model.safetensors").is_file() and (d / "config.json").is_file()
        assert not list(d.glob("*.pt")) and not list(d.glob("*.pkl"))  # loading never unpickles
        c = card(name)
        for key in ("title", "solves", "data_model", "net", "training", "command", "evaluation"):
            assert c[key], key
        assert c["evaluation"]["metrics"]
        assert name in model_card(name)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="sbl-gf-lstm"):
        load_pretrained("no-such-net")


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a pretrained model tried to open a network connection")
    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("name", list_pretrained())
def test_pretrained_model_reproduces_its_card(name, no_network):
    net = load_pretrained(name)
    assert not net.training
    # stored in float32 (where it was trained in float32)
    saved = json.loads((model_dir(name) / "config.json").read_text())
    dtypes = {p.dtype for p in net.parameters()}
    if saved["config"].get("dtype") == "float32":
        assert dtypes == {torch.float32}
    n_test = N_TEST_OF.get(name, N_TEST)
    result = evaluate(name, n_test=n_test)
    for key, tol in result["tolerance"].items():
        assert result["metrics"][key] == pytest.approx(result["card"][key], abs=tol), (key, result["metrics"][key])
    check = card(name)["evaluation"].get("exact_check")
    if check is not None:  # the same problems as when the card was written: the same numbers
        assert check["n_test"] == n_test
        for key, value in check["metrics"].items():
            assert result["metrics"][key] == pytest.approx(value, abs=check["abs_tol"], rel=check["rel_tol"]), key


def test_tolerance_of_the_new_kinds_is_from_the_cards_std():
    for name in STD_KINDS:
        ev = card(name)["evaluation"]
        tol = tolerance(ev, N_TEST_OF[name])
        assert set(tol) == {k for k in ev["metrics"] if not k.endswith("_std")}
        for key, value in tol.items():
            std = ev["metrics"][f"{key}_std"]
            n0, n = ev["n_test"], N_TEST_OF[name]
            assert value == pytest.approx(4 * std * (1 / n0 + 1 / n) ** 0.5 + ev["abs_floor"])


def test_support_f1_matches_sklearn_and_zeros_score_zero():
    from sklearn.metrics import f1_score

    g = torch.Generator().manual_seed(0)
    X = torch.randn(5, 20, 30, generator=g, dtype=torch.float64) * (torch.rand(5, 20, 30, generator=g) < 0.15)
    E = X + 0.3 * torch.randn(5, 20, 30, generator=g, dtype=torch.float64)
    f1 = support_f1(E, X)
    for b in range(5):
        ref = f1_score((X[b].abs() >= 0.1).flatten().numpy(), (E[b].abs() >= 0.1).flatten().numpy())
        assert float(f1[b]) == pytest.approx(ref)
    assert torch.all(support_f1(torch.zeros_like(X), X) == 0)


def test_a_damaged_net_fails_its_card():
    """The card check can fail: the LPALM with every parameter perturbed by 20 % (random) leaves the tolerance."""
    from unrolled.pretrained import _KINDS

    name = "lpalm-xray"
    ev = card(name)["evaluation"]
    net = load_pretrained(name)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(1.0 + 0.2 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1), dtype=p.dtype))
        metrics, _ = _KINDS[ev["kind"]](net, ev, N_TEST_OF[name], ev["seed"], False)
    key = "median_nmse_s_db"
    assert abs(metrics[key] - ev["metrics"][key]) > tolerance(ev, N_TEST_OF[name])[key]


@pytest.mark.parametrize("name, key", [("corona-ultrasound", "nmse_s_db"), ("crf-rnn-shapes", "mean_iou")])
def test_a_damaged_net_of_a_newer_family_fails_its_card(name, key):
    """The same for a pooled metric (bootstrap tolerance): every weight perturbed by 30 % leaves the tolerance."""
    from unrolled.pretrained import _KINDS

    ev = card(name)["evaluation"]
    net = load_pretrained(name)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(1.0 + 0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(2), dtype=p.dtype))
        metrics, _ = _KINDS[ev["kind"]](net, {**ev, "model_dir": str(model_dir(name))}, N_TEST_OF[name], ev["seed"],
                                        False)
    assert abs(metrics[key] - ev["metrics"][key]) > tolerance(ev, N_TEST_OF[name])[key]


def test_pooled_std_is_the_bootstrap_standard_error_times_sqrt_n():
    """A pooled mean of per-problem values: its bootstrap std x sqrt(n) is close to the plain per-problem std."""
    from unrolled.pretrained._common import pooled

    v = torch.randn(400, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 2.0 + 1.0
    out = {}
    pooled(out, "m", lambda i: v[i].mean(), 400, n_boot=400, seed=0)
    assert out["m"] == pytest.approx(float(v.mean()))
    assert out["m_std"] == pytest.approx(float(v.std()), rel=0.15)


def test_crf_rnn_wrapper_round_trips_and_checks_its_arguments(tmp_path):
    from unrolled.core.io import load_model, save_model
    from unrolled.pretrained.nets import FCNCRFRNN

    net = load_pretrained("crf-rnn-shapes")
    assert isinstance(net, FCNCRFRNN)
    save_model(net, tmp_path / "m")
    again = load_model(tmp_path / "m")
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(net(x), again(x))
    with pytest.raises(ValueError, match="unary and crf"):
        FCNCRFRNN([], {})


def test_csmri_card_refuses_a_mask_it_was_not_trained_on():
    from unrolled.pretrained import _KINDS

    ev = card("admm-csnet-mri20")["evaluation"]
    net = load_pretrained("admm-csnet-mri20")
    bad = {**ev, "problem": {**ev["problem"], "mask_seed": ev["problem"]["mask_seed"] + 1}}
    with pytest.raises(ValueError, match="mask"):
        _KINDS["csmri"](net, bad, 2, ev["seed"], False)


def test_training_module_names_its_models_and_refuses_others(tmp_path):
    from unrolled.pretrained.training import TRAINERS, train_pretrained

    assert set(TRAINERS) <= set(list_pretrained())
    for name in TRAINERS:
        assert "unrolled.pretrained.training " + name in card(name)["command"]
    with pytest.raises(ValueError, match="name must be one of"):
        train_pretrained("no-such-net", tmp_path)


@pytest.mark.parametrize("name", ["lista-cpss-16", "alista-16"])
def test_lista_models_hold_the_dictionary_of_their_card(name):
    """The card's problem rebuilds the dictionary the net was trained on (drawn in float32 from seed 0); the
    same seed drawn in float64 is a different matrix, on which the net would be meaningless."""
    from unrolled.sparse_coding import SparseCodingProblem

    cfg = dict(card(name)["evaluation"]["problem"], dtype=torch.float32)
    net = load_pretrained(name)
    assert torch.equal(net.A, SparseCodingProblem(**cfg).A)
    assert not torch.allclose(net.A.double(), SparseCodingProblem(**{**cfg, "dtype": torch.float64}).A, atol=1e-3)


def test_a_damaged_lista_fails_its_card():
    """Thresholds of the LISTA-CPSS halved: the NMSE leaves the card's tolerance."""
    from unrolled.pretrained import _KINDS

    name = "lista-cpss-16"
    ev = card(name)["evaluation"]
    net = load_pretrained(name)
    with torch.no_grad():
        for n, p in net.named_parameters():
            if "theta" in n:
                p.sub_(0.7)  # raw (log-scale) thresholds: x0.5
        metrics, _ = _KINDS[ev["kind"]](net, ev, 1000, ev["seed"], False)
    key = "nmse_db_layer16"
    assert abs(metrics[key] - ev["metrics"][key]) > tolerance(ev, 1000)[key]
