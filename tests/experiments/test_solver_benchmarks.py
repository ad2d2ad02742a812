"""The SBL / IRLS benchmarks score both sides on the same model, and `benchmark all` collects every ratio row."""

import json

import numpy as np
import pytest
import torch

from unrolled.cli import main
from unrolled.core.registry import BENCHMARKS, Benchmark, load_families
from unrolled.experiments.bench_cli import ratio_row
from unrolled.experiments.bench_irls_sklearn import logistic_l1_objective, measure as irls_measure
from unrolled.experiments.bench_sbl_ard import measure as sbl_measure


def test_sbl_and_ard_reach_the_same_posterior_mean():
    """ARDRegression with the noise precision pinned at 1/lam and no pruning is SBL with the MacKay update."""
    r = sbl_measure((4,), n=10, m=20, d=2, noise_std=1e-2, tol=1e-7, ard_tol=1e-8, max_iter=3000, em=False)
    no_pruning = [w for w in r["rows"] if w["reference"].endswith("no pruning")][0]
    median, _ = no_pruning["agreement"]
    assert median < 1e-3
    assert no_pruning["acc_ours"] == no_pruning["acc_ref"] == 1.0
    assert {row["reference"] for row in r["ratios"]} == {"ARDRegression, default pruning loop",
                                                          "ARDRegression, no pruning loop"}
    assert r["machine"]["torch_threads"] == torch.get_num_threads()


def test_logistic_objective_matches_sklearn_scaling():
    rng = np.random.default_rng(0)
    X, y, beta = rng.normal(size=(2, 7, 3)), np.sign(rng.normal(size=(2, 7))), rng.normal(size=(2, 3))
    lam = 0.7
    expected = [np.log1p(np.exp(-y[b] * (X[b] @ beta[b]))).sum() + lam * np.abs(beta[b]).sum() for b in range(2)]
    assert np.allclose(logistic_l1_objective(X, y, beta, lam), expected, rtol=1e-12)


def test_irls_and_liblinear_reach_the_same_objective():
    r = irls_measure(((2, 60, 6),), lam=1.0)
    for row in r["rows"]:
        assert row["gap_ours_max"] < 1e-6 and row["gap_ref_max"] < 1e-4
    assert [w["reference"] for w in r["ratios"]] == ["LogisticRegression(l1, liblinear) loop",
                                                      "LogisticRegression(l1, saga) loop"]


def test_benchmark_all_runs_the_included_benchmarks_and_writes_one_table(tmp_path, monkeypatch, capsys):
    ran = []

    def fake(name, ours_s):
        def run(out_dir, quick, seed, device):
            ran.append((name, quick))
            return {"ratios": [ratio_row(f"case {name}", "ours", "ref", ours_s, 2.0, "same objective")]}
        return run

    items = {"a": Benchmark("a", "", fake("a", 0.5)), "b": Benchmark("b", "", fake("b", 4.0)),
             "skipped": Benchmark("skipped", "", fake("skipped", 1.0), in_all=False)}
    load_families()  # the real ones register now, not into the stand-in mapping
    monkeypatch.setattr(BENCHMARKS, "_items", items)
    assert main(["benchmark", "all", "--quick", "--out", str(tmp_path)]) == 0
    assert ran == [("a", True), ("b", True)]
    table = json.loads((tmp_path / "all.json").read_text())["rows"]
    assert [(r["benchmark"], r["ratio"]) for r in table] == [("a", 4.0), ("b", 0.5)]
    md = (tmp_path / "all.md").read_text()
    assert "| case a | ours | ref | 0.500 | 2.000 | 4.0x |" in md and "torch threads" in md
    with pytest.raises(SystemExit, match="choose from all, a, b, skipped"):
        main(["benchmark", "nope", "--out", str(tmp_path)])
