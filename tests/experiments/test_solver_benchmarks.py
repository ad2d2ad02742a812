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
    """ARDRegression with the noise precision pinned at 1/lam is SBL with the MacKay update: without pruning
    against ``threshold_lambda = 1e12``, and with ``prune = 1e-4`` against its default ``threshold_lambda = 1e4``."""
    r = sbl_measure((4,), n=10, m=20, d=2, noise_std=1e-2, tol=1e-7, ard_tol=1e-8, max_iter=3000, em_max_batch=0)
    assert len(r["rows"]) == 2
    for row in r["rows"]:
        median, _ = row["agreement"]
        assert median < 1e-3, row["reference"]
        assert row["acc_ours"] == row["acc_ref"] == 1.0
        assert row["acc_em"] is None
        assert "numba" in row["ours"] and row["torch_s"] > 0  # float64 CPU: the kernel, the torch path timed beside it
    pruned = [w for w in r["rows"] if "default pruning" in w["reference"]][0]
    assert "prune 1e-04" in pruned["ours"]
    assert [row["reference"] for row in r["ratios"]] == [
        "ARDRegression, default pruning (threshold_lambda 1e+04) loop",
        "ARDRegression, no pruning (threshold_lambda 1e12) loop"]
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


def test_khatri_rao_matches_the_filtered_signals():
    """Z g = vec(V diag(g) V^T Y), the objective cvxpy minimises is ||V diag(g) V^T Y||_1."""
    from unrolled.experiments.bench_admm_cvxpy import khatri_rao

    rng = np.random.default_rng(0)
    V, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    Y, g = rng.normal(size=(5, 7)), rng.normal(size=5)
    assert np.allclose(khatri_rao(Y, V) @ g, (V @ np.diag(g) @ V.T @ Y).ravel(), atol=1e-12)


def test_admm_and_cvxpy_reach_the_same_lp_optimum(tmp_path):
    from unrolled.experiments.bench_admm_cvxpy import run

    r = run(out_dir=tmp_path, quick=True)
    assert [w["reference"] for w in r["rows"]] == ["cvxpy/HIGHS", "cvxpy/CLARABEL"]
    for w in r["rows"]:
        # both at the LP optimum (ADMM's residual test may still be above tol at max_iter: it is stricter)
        assert w["ours_gap_max"] < 1e-4 and w["ref_gap_max"] < 1e-6
    assert len(r["ratios"]) == 2 and all(row["ratio"] > 0 for row in r["ratios"])
    assert (tmp_path / "admm_vs_cvxpy.json").is_file() and (tmp_path / "admm_vs_cvxpy.md").is_file()


def test_palm_per_iteration_loops_do_the_same_arithmetic(tmp_path):
    from unrolled.experiments.bench_palm_iteration import measure

    r = measure(n_problems=3, t=60, n_iter=20, repeats=1)
    assert r["max_abs_diff"] < 1e-10  # the written-out loop is PALM
    assert r["max_abs_diff_residual"] < 1e-10  # palm's Gram and residual forms
    assert set(r["per_iteration_ms"]) == {"palm", "palm_residual", "products", "gram_products", "arithmetic"}
    assert [w["reference"] for w in r["ratios"]][0] == "4 bare products per iteration"


def test_new_benchmarks_are_registered_for_all():
    load_families()
    for name in ("admm-vs-cvxpy", "palm-per-iteration"):
        assert name in BENCHMARKS and BENCHMARKS[name].in_all


def test_run_all_runs_a_chosen_subset_and_rejects_unknown_names(tmp_path, monkeypatch):
    from unrolled.experiments.benchmarks import plot_ratios, run_all

    ran = []

    def fake(name, ours_s):
        def run(out_dir, quick, seed, device):
            ran.append(name)
            return {"ratios": [ratio_row(f"case {name}", "ours", "ref", ours_s, 3.0, "same objective")]}
        return run

    items = {"a": Benchmark("a", "", fake("a", 1.5)), "b": Benchmark("b", "", fake("b", 6.0)),
             "c": Benchmark("c", "", fake("c", 1.0)), "off": Benchmark("off", "", fake("off", 1.0), in_all=False)}
    load_families()
    monkeypatch.setattr(BENCHMARKS, "_items", items)
    payload = run_all(tmp_path, skip=["b"])
    assert ran == ["a", "c"] and payload["benchmarks"] == ["a", "c"]
    assert [(r["benchmark"], r["ratio"]) for r in payload["rows"]] == [("a", 2.0), ("c", 3.0)]
    assert set(payload["wall_s"]) == {"a", "c"} and "torch_threads" in payload["machine"]
    ran.clear()
    run_all(tmp_path, only=["off", "b"])
    assert ran == ["off", "b"]
    saved = json.loads((tmp_path / "all.json").read_text())
    assert saved["benchmarks"] == ["off", "b"] and "| case b | ours | ref | 6.000 | 3.000 | 0.5x |" in (
        tmp_path / "all.md").read_text()
    with pytest.raises(ValueError, match="skip names unknown benchmarks \\['nope'\\]"):
        run_all(tmp_path, skip=["nope"])
    with pytest.raises(ValueError, match="only names unknown"):
        run_all(tmp_path, only=["a", "zzz"])
    plot_ratios(saved["rows"], tmp_path / "ratios.png")
    assert (tmp_path / "ratios.png").stat().st_size > 1000
