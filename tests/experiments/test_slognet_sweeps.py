"""The SLoG-Net sweeps (Figs. 3, 5 (the paper's noise Fig. 4), 6), run in their --quick form."""

from __future__ import annotations

import json
import math

import pytest

from unrolled.experiments.registry import EXPERIMENTS
from unrolled.experiments.slognet_sweeps import METHODS, QUICK_SWEEPS, SWEPT, reproduce_sweep

FIGS = ("fig3", "fig5", "fig6")


@pytest.fixture(scope="module", params=FIGS)
def sweep(request, tmp_path_factory):
    fig = request.param
    out = tmp_path_factory.mktemp(f"slognet-{fig}")
    return fig, out, reproduce_sweep(fig, out, quick=True, progress=False)


def test_registered():
    for fig in FIGS:
        assert f"slognet-{fig}" in EXPERIMENTS


def test_files_written(sweep):
    fig, out, payload = sweep
    assert (out / "results.json").is_file()
    assert (out / f"{fig}.png").stat().st_size > 1000
    md = (out / "results.md").read_text()
    assert "What the paper" in md and "| " in md
    assert json.loads((out / "results.json").read_text())["rows"] == payload["rows"]


def test_rows(sweep):
    fig, _, payload = sweep
    rows, values = payload["rows"], QUICK_SWEEPS[fig].values
    key = SWEPT[fig][0]
    assert len(values) == 2
    assert len(rows) == len(values) * len(METHODS)
    pairs = {(r["value"], r["method"]) for r in rows}
    assert len(pairs) == len(rows)
    assert {r["method"] for r in rows} == set(METHODS)
    for r in rows:
        assert r["sweep"] == key and r[key] == r["value"]
        assert math.isfinite(r["mre"]) and r["mre"] >= 0
        assert math.isfinite(r["acc"]) and 0 <= r["acc"] <= 1
    recorded = sorted({r["value"] for r in rows})
    if fig == "fig3":  # training signals seen = steps * batch * P
        base = QUICK_SWEEPS[fig].base
        assert recorded == sorted(s * base.batch_size * base.n_signals for s in values)
    else:
        assert recorded == sorted(values)


def test_noise_does_not_help_admm(sweep):
    fig, _, payload = sweep
    if fig != "fig5":
        pytest.skip("noise sweep only")
    oracle = {r["value"]: r["mre"] for r in payload["rows"] if r["method"] == "admm_oracle_scale"}
    assert min(oracle) == 0.0
    assert oracle[max(oracle)] >= oracle[0.0]


def test_rerun_resumes_with_same_numbers(sweep):
    fig, out, payload = sweep
    if fig != "fig5":
        pytest.skip("checked once, on the cheapest sweep")
    again = reproduce_sweep(fig, out, quick=True, progress=False)
    assert [(r["value"], r["method"], r["mre"], r["acc"]) for r in again["rows"]] == [
        (r["value"], r["method"], r["mre"], r["acc"]) for r in payload["rows"]]


def test_unknown_figure(tmp_path):
    with pytest.raises(ValueError, match="figure"):
        reproduce_sweep("fig4", tmp_path, quick=True, progress=False)
