"""The LPALM reproductions and demo part, run in their --quick / tiny forms."""

from __future__ import annotations

import json

import pytest

from unrolled.core.io import load_model
from unrolled.experiments import lpalm_demo
from unrolled.experiments.lpalm_ablation import PAPER_TABLE3, PAPER_TABLE4, reproduce_fig10, reproduce_table3, reproduce_table4
from unrolled.experiments.lpalm_common import median, synthetic_data
from unrolled.experiments.lpalm_registry import EXPERIMENTS
from unrolled.experiments.lpalm_table1 import QUICK as T1_QUICK
from unrolled.experiments.lpalm_table1 import reproduce_table1
from unrolled.experiments.lpalm_table2 import reproduce_table2
from unrolled.separation.training import evaluate


@pytest.fixture(scope="module")
def table1(tmp_path_factory):
    out = tmp_path_factory.mktemp("lpalm-table1")
    return out, reproduce_table1(out, quick=True, progress=False)


def test_table1_outputs_and_consistency(table1):
    out, payload = table1
    for name in ("results.json", "results.md", "fig2.png"):
        assert (out / name).is_file(), name
    data = json.loads((out / "results.json").read_text())
    ours, paper = data["ours"], data["paper_values"]
    assert paper["palm_median_nmse_s"] == 0.0176 and paper["lpalm_median_nmse_s"] == 0.00085
    grid = data["lambda_grid"]
    assert [g["lam"] for g in grid] == list(T1_QUICK.lambdas)
    assert ours["palm_best_lambda"] == min(grid, key=lambda g: g["median_nmse_s"])["lam"]
    assert ours["palm_seconds"] > 0 and ours["lpalm_seconds"] > 0
    assert ours["wallclock_ratio_palm_over_lpalm"] == pytest.approx(ours["palm_seconds"] / ours["lpalm_seconds"])
    assert len(data["lpalm_per_layer"]["test"]["S"]) == T1_QUICK.train.n_layers
    md = (out / "results.md").read_text()
    assert "paper" in md and "0.0176" in md and "2011" in md
    # the saved model reproduces the reported LPALM number on the regenerated test set
    _, _, test = synthetic_data(T1_QUICK.syn, T1_QUICK.n_val, 0)
    net = load_model(out / "lpalm" / "model")
    assert median(evaluate(net, test)["S"]) == pytest.approx(ours["lpalm_median_nmse_s"], rel=1e-6)


def test_table1_rerun_reuses_the_trained_model(table1):
    out, payload = table1
    again = reproduce_table1(out, quick=True, progress=False, lambdas=(1e-2,))
    assert again["train"] == payload["train"]
    assert again["ours"]["lpalm_median_nmse_s"] == pytest.approx(payload["ours"]["lpalm_median_nmse_s"])


def test_ablations_quick(tmp_path):
    t3 = reproduce_table3(tmp_path / "t3", quick=True, progress=False)
    assert [(r["s_update"], r["a_update"]) for r in t3["rows"]] == list(PAPER_TABLE3)
    t4 = reproduce_table4(tmp_path / "t4", quick=True, progress=False)
    assert [r["loss"] for r in t4["rows"]] == list(PAPER_TABLE4)
    f10 = reproduce_fig10(tmp_path / "f10", quick=True, progress=False)
    assert [r["n_layers"] for r in f10["rows"]] == [2, 4]
    for name, png in (("t3", "table3.png"), ("t4", "table4.png"), ("f10", "fig10.png")):
        for f in ("results.json", "results.md", png):
            assert (tmp_path / name / f).is_file(), (name, f)
    for r in t3["rows"] + t4["rows"] + f10["rows"]:
        assert r["median_nmse_sum"] == pytest.approx(r["median_nmse_s"] + r["median_nmse_a"], rel=0.5)
        assert 0 < r["median_nmse_s"] < 10
    # the same training settings give the same model: Table 4's S+A row is Table 3's LPALM row
    assert t4["rows"][-1]["median_nmse_s"] == pytest.approx(t3["rows"][0]["median_nmse_s"], rel=1e-9)
    md = (tmp_path / "t3" / "results.md").read_text()
    assert "0.00085" in md and "0.795" in md


def test_table2_quick(tmp_path):
    payload = reproduce_table2(tmp_path, quick=True, progress=False)
    for f in ("results.json", "results.md", "fig3.png"):
        assert (tmp_path / f).is_file()
    methods = [r["method"] for r in payload["rows"]]
    assert methods == ["LPALM", "LISTA"]
    for r in payload["rows"]:
        assert 0 < r["example_nmse_a"] < 2 and 0 < r["generalisation_median_nmse_a"] < 2
    md = (tmp_path / "results.md").read_text()
    assert "0.0002" in md and "0.0088" in md and "not run" in md


def test_registry_entries():
    assert set(EXPERIMENTS) == {"lpalm-table1", "lpalm-table2", "lpalm-table3", "lpalm-table4", "lpalm-fig10"}
    for name, exp in EXPERIMENTS.items():
        assert exp.name == name and callable(exp.run) and "LPALM" in exp.paper


def test_demo_part_uses_the_pretrained_lpalm(tmp_path, capsys):
    payload = lpalm_demo.run_separation_demo(tmp_path, progress=False, n_mixtures=3, palm_max_iter=200)
    out = capsys.readouterr().out
    assert "PALM" in out and "pretrained" in out and "NMSE(S)" in out and payload["verdict"] in out
    assert len(payload["rows"]) == 2 and payload["rows"][0]["iterations"] == 25
    assert "3 of 3 PALM runs stopped at the 200-iteration cap" in out or payload["palm_capped"] < 3
    for name in ("results.json", "results.md", "nmse_per_mixture.png"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "nmse_per_mixture.png").stat().st_size < 300_000
