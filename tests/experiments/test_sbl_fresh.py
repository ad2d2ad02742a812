"""``sbl-fig3ab-fresh``: the shipped nets and SBL (EM, MacKay) re-scored on a stream no other run drew from."""

from __future__ import annotations

import json

import pytest
import torch

from unrolled.experiments.sbl_common import scores
from unrolled.experiments.sbl_fresh import reproduce_fig3ab_fresh
from unrolled.pretrained import card, load_pretrained
from unrolled.sbl.data import CorrelatedSparseProblem
from unrolled.sbl.metrics import strict_accuracy


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("fresh")
    payload = reproduce_fig3ab_fresh(out, quick=True, progress=False, d_values=(4,), n_trials=60)
    return out, payload


def test_writes_tables_and_figure(quick):
    out, payload = quick
    assert json.loads((out / "results.json").read_text())["rows"] == payload["rows"]
    md = (out / "results.md").read_text()
    assert "SBL, EM update" in md and "SBL, MacKay update" in md and "unrolled reproduce sbl-fig3ab-fresh" in md
    assert (out / "accuracy_vs_d.png").stat().st_size > 0


def test_scores_match_an_independent_path_on_the_same_stream(quick):
    _, payload = quick
    cfg = payload["config"]
    p = card("sbl-gf-lstm")["evaluation"]["problem"]
    problem = CorrelatedSparseProblem(n=p["n"], m=p["m"], d=4, noise_std=p["noise_std"], seed=p["seed"])
    y, x = problem.sample(60, torch.Generator().manual_seed(cfg["test_seed"] + 4000))
    s_mackay, _ = scores("sbl", y, problem.Phi, 4, sbl_lam=cfg["sbl_lam"], sbl_max_iter=cfg["sbl_max_iter"],
                         sbl_tol=cfg["sbl_tol"])
    assert payload["rows"]["sbl-mackay"]["strict"]["4"] == pytest.approx(float(strict_accuracy(s_mackay, x)))
    s_net, _ = scores("gf-lstm", y, problem.Phi, 4, net=load_pretrained("sbl-gf-lstm"))
    assert payload["rows"]["sbl-gf-lstm"]["strict"]["4"] == pytest.approx(float(strict_accuracy(s_net, x)))


def test_the_stream_is_not_the_cards_stream():
    from unrolled.experiments.sbl_fresh import FreshConfig

    for name in FreshConfig().nets:
        assert FreshConfig().test_seed != card(name)["evaluation"]["seed"]


def test_bad_trial_count():
    with pytest.raises(ValueError, match="n_trials"):
        reproduce_fig3ab_fresh("/tmp/never", quick=True, n_trials=0)
