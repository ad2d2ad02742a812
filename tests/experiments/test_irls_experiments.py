"""The irls-* reproductions and the classification demo, in their quick forms."""

from __future__ import annotations

import json

import pytest

from unrolled.experiments.irls_demo import run_classification_demo
from unrolled.experiments.irls_real import reproduce_real
from unrolled.experiments.irls_registry import EXPERIMENTS
from unrolled.experiments.irls_simulation import PAPER_TABLE1, QUICK


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("irls-sim")
    return out, EXPERIMENTS["irls-simulation"].run(out, quick=True, progress=False)


def test_registry_entries():
    assert set(EXPERIMENTS) == {"irls-simulation", "irls-real"}
    assert all(name.startswith("irls-") and e.name == name for name, e in EXPERIMENTS.items())


def test_simulation_outputs(sim):
    out, payload = sim
    for name in ("results.json", "results.md", "fig3_weights.png", "fig4_scores.png"):
        assert (out / name).is_file(), name
    data = json.loads((out / "results.json").read_text())
    rows = data["table1"]
    assert len(rows) == 3 * len(QUICK.noise_levels)
    for r in rows:
        assert 0.5 <= r["accuracy"] <= 1.0 and 0.0 <= r["fp"] <= 1.0 and 0.0 <= r["fn"] <= 1.0
        expected = PAPER_TABLE1.get((r["method"], r["noise_std"]))
        assert (r["paper"] is None) == (expected is None)
    assert all(v > 0 for v in data["timing_seconds"].values()) and "deep_train_over_admm_solve" in data["timing_ratios"]
    md = (out / "results.md").read_text()
    assert "Table I" in md and "0.97 / 0.02 / 0.00" in md


def test_simulation_admm_and_liblinear_agree(sim):
    """Both baselines solve the same l1-logistic problem, so they select the same features."""
    _, payload = sim
    for d in payload["per_dataset"]:
        assert d["admm"]["selected"] == d["sklearn"]["selected"]
        assert d["admm"]["accuracy"] == pytest.approx(d["sklearn"]["accuracy"], abs=0.02)


def test_real_quick(tmp_path):
    payload = reproduce_real(tmp_path, quick=True, progress=False)
    for name in ("results.json", "results.md", "fig6_gene_like.png"):
        assert (tmp_path / name).is_file(), name
    bc = payload["breast_cancer"]["methods"]
    assert all(r["accuracy_mean"] > 0.85 for r in bc.values())
    assert "substitutes" in (tmp_path / "results.md").read_text()
    gene = payload["gene_like"]["methods"]
    assert gene["deep"]["n_nonzero"] >= 1 and gene["deep"]["train_accuracy"] > 0.5


def test_demo(tmp_path, capsys):
    """The demo scores the pretrained net on fresh data sets beside the untrained net, IRLS-ADMM and liblinear."""
    payload = run_classification_demo(tmp_path, progress=False, n_sets=4)
    text = capsys.readouterr().out
    assert "pretrained" in text and "IRLS-ADMM converged" in text and "held-out" in text
    net, untrained, classic, sk = payload["rows"]
    assert net["cosine"] > untrained["cosine"] and net["cosine"] > classic["cosine"]
    # IRLS-ADMM and liblinear solve the same convex problem: same sparsity, same predictions
    assert classic["n_nonzero"] == pytest.approx(sk["n_nonzero"]) and classic["holdout_accuracy"] == pytest.approx(sk["holdout_accuracy"])
    assert payload["verdict"] in text
    for name in ("results.json", "results.md", "weights.png"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "weights.png").stat().st_size < 300_000
    with pytest.raises(ValueError, match="CPU"):
        run_classification_demo(tmp_path, device="cuda")
