"""The published GF-LSTM weights (docs/results) score what their results.json reports, on regenerated data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from unrolled.core.io import load_model
from unrolled.experiments.sbl_common import scores
from unrolled.sbl.data import CorrelatedSparseProblem
from unrolled.sbl.metrics import loose_accuracy, strict_accuracy

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "results" / "sbl-fig3ab" / "budget-130000-steps"


@pytest.mark.skipif(not (PUBLISHED / "models" / "gf-lstm").is_dir(), reason="published weights not in this checkout")
@pytest.mark.parametrize("d", [4, 7])
def test_published_gf_lstm_reproduces_its_table(d):
    payload = json.loads((PUBLISHED / "results.json").read_text())
    cfg, seed = payload["config"], payload["seed"]
    net = load_model(PUBLISHED / "models" / "gf-lstm").eval()
    # the test set of reproduce_fig3ab: the run's dictionary, generator seed + 1000 + d
    problem = CorrelatedSparseProblem(n=cfg["n"], m=cfg["m"], d=d, noise_std=cfg["noise_std"], seed=seed)
    y, x = problem.sample(cfg["n_trials"], torch.Generator().manual_seed(seed + 1000 + d))
    s, _ = scores("gf-lstm", y, problem.Phi, d, net=net)
    row = next(r for r in payload["rows"] if r["method"] == "gf-lstm" and r["d"] == d)
    assert float(strict_accuracy(s, x)) == pytest.approx(row["strict"], abs=2e-3)
    assert float(loose_accuracy(s, x, cfg["n"])) == pytest.approx(row["loose"], abs=2e-3)
