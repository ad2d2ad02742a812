"""The SLoG-Net reproductions (Tables I and II), run in their --quick form."""

from __future__ import annotations

import json
import math
import statistics

import pytest
import torch

from unrolled.cli import main
from unrolled.experiments.slognet import PAPER_TABLE2, QUICK_TABLE2, reproduce_table2
from unrolled.experiments.slognet_scoring import _scores, oracle_scale, prior_scale
from unrolled.experiments.slognet_timing import PAPER_TABLE1, QUICK_TABLE1, reproduce_table1
from unrolled.graph.data import GraphDiffusionProblem, exact_recovery_target


@pytest.fixture(scope="module")
def table2(tmp_path_factory):
    out = tmp_path_factory.mktemp("slognet-table2")
    return out, reproduce_table2(out, quick=True, progress=False)


@pytest.fixture(scope="module")
def table1(tmp_path_factory):
    out = tmp_path_factory.mktemp("slognet-table1")
    return out, reproduce_table1(out, quick=True, progress=False)


def _finite_numbers(obj, where="row"):
    """Every number in a nested dict/list is finite (None allowed only where the paper has no value)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            _finite_numbers(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _finite_numbers(v, f"{where}[{i}]")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        assert math.isfinite(obj), where


# --------------------------------------------------------------------------- #
# Table II
# --------------------------------------------------------------------------- #
def test_table2_outputs_written_and_rows_complete(table2):
    out, payload = table2
    for name in ("results.json", "results.md", "table2.png", "validation_curves.png"):
        assert (out / name).is_file(), name
    data = json.loads((out / "results.json").read_text())
    assert [r["graph"] for r in data["rows"]] == list(QUICK_TABLE2.graphs)
    for r in data["rows"]:
        assert (out / r["graph"] / "model" / "model.safetensors").is_file()
        assert (out / r["graph"] / "checkpoints" / "checkpoint.pt").is_file()
        for part in ("slognet", "slognet_untrained", "admm"):
            assert part in r
        for key in ("mre_x", "median_re_x", "mre_g", "acc", "f1"):
            assert key in r["slognet"] and key in r["slognet_untrained"]
            for variant in ("raw", "prior_scale", "oracle_scale"):
                assert key in r["admm"][variant]
        assert r["paper"] == PAPER_TABLE2[r["graph"]]
        assert r["train"]["steps"] == QUICK_TABLE2.max_steps
        _finite_numbers(r, r["graph"])
        for acc in (r["slognet"]["acc"], r["admm"]["raw"]["acc"], r["admm"]["oracle_scale"]["acc"]):
            assert 0.0 <= acc <= 1.0
        for f1 in (r["slognet"]["f1"], r["slognet_untrained"]["f1"], r["admm"]["raw"]["f1"],
                   r["admm"]["prior_scale"]["f1"], r["admm"]["oracle_scale"]["f1"]):
            assert 0.0 <= f1 <= 1.0
        # the oracle scale rescales ADMM's c = 1 output (about 1/sum(1/h~) of X) onto X: more of the support
        # clears kappa than in the raw output
        assert r["admm"]["oracle_scale"]["f1"] > r["admm"]["raw"]["f1"]
    md = (out / "results.md").read_text()
    for text in ("0.149", "0.953", "0.454", "0.958", "not reported", "oracle scale", "prior scale", "F1 = 0",
                 "F1 oracle scale", "unrolled reproduce slognet-table2 --quick"):
        assert text in md, text


def test_table2_training_beats_its_initialisation(table2):
    _, payload = table2
    for r in payload["rows"]:
        assert r["train"]["val_best"] < 0.9 * r["train"]["val_untrained"], r["graph"]
        assert r["slognet"]["mre_x"] < r["slognet_untrained"]["mre_x"], r["graph"]


def test_table2_admm_scales(table2):
    """Raw c=1 output is far off in scale; the oracle scale is the best rescaling of all."""
    _, payload = table2
    for r in payload["rows"]:
        a = r["admm"]
        assert a["raw"]["mre_x"] > 0.9  # X scaled by 1/sum(1/h~): RE close to 1
        assert a["oracle_scale"]["mre_x"] <= a["raw"]["mre_x"] + 1e-12
        assert a["oracle_scale"]["mre_x"] <= a["prior_scale"]["mre_x"] + 1e-12
        assert 0.0 <= a["converged_fraction"] <= 1.0


def test_table2_rerun_resumes(table2):
    """A second run in the same folder trains nothing and reuses the cached ADMM evaluation."""
    out, payload = table2
    ckpt = out / "er" / "checkpoints" / "checkpoint.pt"
    cache = out / "er" / "admm_eval.json"
    stamps = (ckpt.stat().st_mtime_ns, cache.stat().st_mtime_ns)
    again = reproduce_table2(out, quick=True, progress=False, graphs=("er",))
    assert (ckpt.stat().st_mtime_ns, cache.stat().st_mtime_ns) == stamps
    before, after = payload["rows"][0], again["rows"][0]
    assert after["slognet"]["mre_x"] == pytest.approx(before["slognet"]["mre_x"], rel=1e-9)
    assert after["admm"] == before["admm"]
    assert after["train"]["steps"] == before["train"]["steps"]


def test_table2_other_configuration_in_same_folder_is_refused(table2):
    out, _ = table2
    with pytest.raises(ValueError, match="another configuration"):
        reproduce_table2(out, quick=True, progress=False, graphs=("er",), lr=1e-3)


def test_table2_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown graphs"):
        reproduce_table2(tmp_path, quick=True, graphs=("grid",))
    with pytest.raises(ValueError, match="init"):
        reproduce_table2(tmp_path, quick=True, graphs=("er",), init="zeros")


# --------------------------------------------------------------------------- #
# Scales
# --------------------------------------------------------------------------- #
def test_prior_and_oracle_scales_on_an_exact_solution():
    """The exact solution of (8) is X scaled by c/sum(1/h~): the oracle scale undoes it exactly, the
    prior scale (mean squared entry theta) up to the sampling error of the energy."""
    prob = GraphDiffusionProblem("er", n_signals=400, graph_seed=2)
    batch = prob.sample_batch(5, torch.Generator().manual_seed(0))
    x, _ = exact_recovery_target(batch.X, batch.h_freq, c=1.0)
    beta = oracle_scale(x, batch.X)
    assert torch.allclose(x * beta[:, None, None], batch.X, atol=1e-10)
    alpha = prior_scale(x, prob.theta)
    scaled = x * alpha[:, None, None]
    assert torch.allclose(scaled.pow(2).mean(dim=(1, 2)), torch.full((5,), prob.theta, dtype=x.dtype))
    assert (alpha / beta.abs() - 1).abs().max() < 0.1  # energy of 8000 Bernoulli(0.15)-Gaussian entries
    assert prior_scale(torch.zeros_like(x), 0.15).eq(0).all()


def test_scores_f1_against_sklearn_and_the_all_zero_output():
    """F1 of _scores: the mean over problems of sklearn's f1_score of the supports |.| >= 0.1; zeros score 0."""
    metrics = pytest.importorskip("sklearn.metrics")
    gen = torch.Generator().manual_seed(5)
    X = torch.randn(4, 12, 30, generator=gen, dtype=torch.float64) * (torch.rand(4, 12, 30, generator=gen) < 0.15)
    X_hat = X + 0.2 * torch.randn(X.shape, generator=gen, dtype=torch.float64)
    g = torch.randn(4, 12, generator=gen, dtype=torch.float64)
    s = _scores(X_hat, g, X, g)
    ref = [metrics.f1_score((X[b].abs() >= 0.1).flatten().numpy(), (X_hat[b].abs() >= 0.1).flatten().numpy())
           for b in range(4)]
    assert 0.2 < s["f1"] < 0.95
    assert s["f1"] == pytest.approx(statistics.fmean(ref), abs=1e-12)
    zero = _scores(torch.zeros_like(X), g, X, g)
    assert zero["f1"] == 0.0
    assert zero["acc"] == pytest.approx(float((X.abs() < 0.1).double().mean()), abs=1e-12)  # ACC is not 0
    assert _scores(X, g, X, g)["f1"] == 1.0


def test_oracle_scale_hand_computed():
    e = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]], dtype=torch.float64)
    t = torch.tensor([[[2.0, 1.0], [0.0, 3.0]]], dtype=torch.float64)
    assert oracle_scale(e, t).item() == pytest.approx((2.0 + 6.0) / 5.0)


# --------------------------------------------------------------------------- #
# Table I
# --------------------------------------------------------------------------- #
def test_table1_outputs_and_ratios(table1):
    out, payload = table1
    for name in ("results.json", "results.md", "table1.png"):
        assert (out / name).is_file(), name
    data = json.loads((out / "results.json").read_text())
    rows = data["rows"]
    assert [r["N"] for r in rows] == list(QUICK_TABLE1.sizes)
    for r in rows:
        _finite_numbers(r, f"N={r['N']}")
        assert len(r["slognet_per_repeat"]) == len(r["admm_per_repeat"]) == QUICK_TABLE1.repeats
        assert r["slognet_seconds"] > 0 and r["admm_seconds"] > 0
        assert r["slognet_seconds"] == pytest.approx(statistics.median(r["slognet_per_repeat"]))
        assert r["admm_seconds"] == pytest.approx(statistics.median(r["admm_per_repeat"]))
        assert r["ratio"] == pytest.approx(r["admm_seconds"] / r["slognet_seconds"])
        assert r["ratio_mean"] == pytest.approx(r["admm_seconds_mean"] / r["slognet_seconds_mean"])
        paper = PAPER_TABLE1.get(r["N"])
        if paper is None:
            assert r["paper_ratio"] is None
        else:
            assert (r["paper_slognet_seconds"], r["paper_admm_seconds"]) == paper
            assert r["paper_ratio"] == pytest.approx(paper[1] / paper[0])
    md = (out / "results.md").read_text()
    assert "0.0095" in md and "2.04" in md and "untrained" in md


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #
def test_cli_lists_the_graph_family(capsys):
    assert main(["list"]) == 0
    printed = capsys.readouterr().out
    for word in ("graph", "admm", "SLoGNet", "slognet-table1", "slognet-table2", "dolphins"):
        assert word in printed, word
