"""The benchmarks run end to end on reduced sizes and report consistent numbers."""

import json

from unrolled.experiments.bench_fista_sklearn import main as fista_sklearn_main
from unrolled.experiments.bench_lista_fista import fista_iterations_to_reach, run as lista_fista_run
from unrolled.core.metrics import nmse_db
from unrolled.sparse_coding.data import SparseCodingProblem
from unrolled.sparse_coding.solvers import fista

import pytest
import torch

from unrolled.core.io import save_model
from unrolled.core.metrics import nmse
from unrolled.core.train import Trainer
from unrolled.sparse_coding.nets import LISTACPSS


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


def test_lista_cpss_vs_fista_on_a_saved_model(tmp_path, capsys):
    """The benchmark loads a saved LISTA-CPSS, finds the FISTA iterations that match it and times both."""
    prob = SparseCodingProblem(m=30, n=60, p=0.1, seed=0, dtype=torch.float32)
    net = LISTACPSS.from_algorithm(prob.A, 0.1, 4)
    val = prob.sample(64, torch.Generator().manual_seed(1))
    Trainer(net, nmse, prob.sample, val, lr=1e-3, max_steps=40, val_every=20, progress=False).fit()
    save_model(net, tmp_path / "model", metadata={"problem": prob.config()})
    payload = lista_fista_run(out_dir=tmp_path, model_dir=str(tmp_path / "model"), n_test=64, lams=(0.01,),
                              repeats=2, max_iter=2000)
    assert (tmp_path / "lista_cpss_vs_fista.json").is_file()
    row = payload["rows"][0]
    assert row["fista_iterations"] is not None and row["fista_iterations"] > net.n_layers
    assert row["fista_nmse_db"] <= payload["net_nmse_db"]
    assert row["time_ratio_fista_over_net"] == pytest.approx(row["fista_ms"] / row["net_ms"])
    assert "FISTA iterations to match" in capsys.readouterr().out
