"""The published GF-LSTM weights score what their docs/results results.json reports, on regenerated data.

The weights ship once, as ``unrolled.pretrained`` models (the results folders keep no copy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from unrolled.core.io import load_model
from unrolled.pretrained import model_dir
from unrolled.experiments.sbl_common import scores
from unrolled.sbl.data import CorrelatedSparseProblem
from unrolled.sbl.metrics import loose_accuracy, strict_accuracy

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results" / "sbl-fig3ab"
# The final model of each net (superseded runs: NOTES.md, "Archive"): the paper-sized GF-LSTM (130,000 steps from
# scratch) and the published 4x GF-LSTM with E-step feedback (25 time steps).
PUBLISHED = [(RESULTS / "gf-lstm", "gf-lstm", "sbl-gf-lstm"),
             (RESULTS / "gf-lstm-large-mf", "gf-lstm-large-mf", "sbl-gf-lstm-large-mf")]


@pytest.mark.parametrize("folder, method, pretrained", PUBLISHED, ids=[f.name for f, _, _ in PUBLISHED])
@pytest.mark.parametrize("which", [0, -1])  # the run's smallest and largest d
def test_published_gf_lstm_reproduces_its_table(folder, method, pretrained, which):
    payload = json.loads((folder / "results.json").read_text())
    cfg, seed = payload["config"], payload["seed"]
    d = cfg["d_values"][which]
    net = load_model(model_dir(pretrained)).eval()
    # the test set of reproduce_fig3ab: the run's dictionary, generator seed + 1000 + d
    problem = CorrelatedSparseProblem(n=cfg["n"], m=cfg["m"], d=d, noise_std=cfg["noise_std"], seed=seed)
    y, x = problem.sample(cfg["n_trials"], torch.Generator().manual_seed(seed + 1000 + d))
    s, _ = scores(method, y, problem.Phi, d, net=net)
    row = next(r for r in payload["rows"] if r["method"] == method and r["d"] == d)
    assert float(strict_accuracy(s, x)) == pytest.approx(row["strict"], abs=2e-3)
    assert float(loose_accuracy(s, x, cfg["n"])) == pytest.approx(row["loose"], abs=2e-3)
