"""The benchmarks run end to end on reduced sizes and report consistent numbers."""

import json

from unrolled.experiments.bench_fista_sklearn import main as fista_sklearn_main
from unrolled.experiments.bench_lista_fista import fista_iterations_to_reach, run as lista_fista_run
from unrolled.core.metrics import nmse_db
from unrolled.sparse_coding.data import SparseCodingProblem
from unrolled.sparse_coding.solvers import fista

import torch


def test_fista_vs_sklearn_small(tmp_path, capsys):
    out = tmp_path / "b.json"
    r = fista_sklearn_main(["--n-problems", "8", "--m", "30", "--n", "60", "--out", str(out)])
    assert json.loads(out.read_text())["fista"]["seconds"] > 0
    # both solvers reach the same Lasso objective
    assert r["fista"]["max_rel_gap"] < 1e-5 and r["sklearn"]["max_rel_gap"] < 1e-5
    assert "sklearn_time / fista_time" in capsys.readouterr().out


def test_fista_iterations_to_reach_is_minimal():
    prob = SparseCodingProblem(m=30, n=60, p=0.1, seed=1)
    y, x = prob.sample(32, torch.Generator().manual_seed(0))
    target = float(nmse_db(fista(y, prob.A, 0.01, max_iter=37, tol=0.0).x, x))
    k, reached = fista_iterations_to_reach(y, prob.A, 0.01, x, target, 1000)
    assert reached <= target
    assert float(nmse_db(fista(y, prob.A, 0.01, max_iter=k - 1, tol=0.0).x, x)) > target
    assert k <= 37


def test_lista_cpss_vs_fista_quick(tmp_path, capsys):
    payload = lista_fista_run(out_dir=tmp_path, quick=True, lams=(0.01,), repeats=2)
    assert (tmp_path / "lista_cpss_vs_fista.json").is_file()
    row = payload["rows"][0]
    assert row["fista_iterations"] is None or row["fista_iterations"] >= 1
    assert "FISTA iterations to match" in capsys.readouterr().out
