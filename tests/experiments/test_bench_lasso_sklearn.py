"""`unrolled benchmark lasso-vs-sklearn` scores every solver on one objective and states its thread settings."""

import json

import numba
import numpy as np
import pytest
import torch

from unrolled.experiments.bench_cli import lasso_objective
from unrolled.experiments.bench_lasso_sklearn import main, markdown_table


@pytest.fixture
def restore_threads():
    saved = torch.get_num_threads(), numba.get_num_threads()
    yield
    torch.set_num_threads(saved[0])
    numba.set_num_threads(saved[1])


def test_small_run_scores_all_solvers_on_the_same_objective(tmp_path, restore_threads):
    out = tmp_path / "r.json"
    r = main(["--n-problems", "12", "--m", "30", "--n", "60", "--lam", "0.05", "--threads", "1", "--tol", "1e-9",
              "--sklearn-tol", "1e-10", "--no-skglm", "--out", str(out)])
    rows = r["solvers"]
    assert {"lasso", "lasso_torch", "fista", "sklearn"} <= set(rows) and rows["skglm"]["skipped"] == "--no-skglm"
    assert "numba" in rows["lasso"]["label"] and rows["lasso"]["converged"] == 12
    # every solver near the best objective found; ours at least as good as the loop's, to rounding
    for name in ("lasso", "lasso_torch", "sklearn"):
        assert rows[name]["max_rel_gap"] < 1e-8, name
    assert rows["lasso"]["max_rel_gap"] <= rows["sklearn"]["max_rel_gap"] + 1e-12
    # ratios are reference time / ours time and are consistent with the timed seconds
    by_ref = {(w["ours"], w["reference"]): w for w in r["ratios"]}
    w = by_ref[(rows["lasso"]["label"], rows["sklearn"]["label"])]
    assert np.isclose(w["ratio"], rows["sklearn"]["seconds"] / rows["lasso"]["seconds"])
    # the reported time is the best of --repeat timed runs (default 3), for ours and the loop alike
    for name in ("lasso", "sklearn"):
        assert len(rows[name]["seconds_all"]) == 3 and rows[name]["seconds"] == min(rows[name]["seconds_all"])
    mach = r["machine"]
    assert mach["torch_threads"] == 1 and mach["numba_threads"] == 1 and mach["jit_first_call_s"] > 0
    table = markdown_table(r)
    assert "numba 1" in table and "coordinate-descent epochs" in table
    saved = json.loads(out.read_text())
    assert saved["solvers"]["lasso"]["seconds"] == rows["lasso"]["seconds"]


def test_objective_helper_is_the_lasso_objective():
    rng = np.random.default_rng(0)
    A, Y, X = rng.normal(size=(5, 8)), rng.normal(size=(3, 5)), rng.normal(size=(3, 8))
    expected = [0.5 * np.sum((Y[b] - A @ X[b]) ** 2) + 0.3 * np.abs(X[b]).sum() for b in range(3)]
    assert np.allclose(lasso_objective(Y, A, X, 0.3), expected, rtol=1e-13)
