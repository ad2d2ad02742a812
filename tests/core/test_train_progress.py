"""The Trainer's progress bars: one per stage, and one over all stages whose count ends at the schedule's total
(a stage that stops early hands its unused steps to the overall bar, so its ETA is an upper bound)."""

from __future__ import annotations

import torch

import unrolled.core.train as train_module
from unrolled.core.metrics import nmse
from unrolled.core.stages import Stage
from unrolled.core.train import Trainer
from unrolled.sparse_coding.data import SparseCodingProblem
from unrolled.sparse_coding.nets import LISTACP


class RecordingBar:
    bars: list["RecordingBar"] = []

    def __init__(self, total=None, initial=0, desc="", disable=False, **kwargs):
        self.total, self.n, self.desc, self.disable, self.closed = total, initial, desc, disable, False
        RecordingBar.bars.append(self)

    def update(self, k=1):
        self.n += k

    def set_postfix(self, **kwargs):
        pass

    def close(self):
        self.closed = True


def _fit(monkeypatch, stages, progress=True):
    RecordingBar.bars = []
    monkeypatch.setattr(train_module, "tqdm", RecordingBar)
    prob = SparseCodingProblem(m=10, n=20, p=0.2, snr_db=None, seed=0, dtype=torch.float64)
    net = LISTACP.from_algorithm(prob.A, lam=0.1, n_layers=2)
    val = prob.sample(100, torch.Generator().manual_seed(1))
    result = Trainer(net, nmse, prob.sample, val, stages=stages, batch_size=8, val_every=2, progress=progress,
                     seed=0).fit()
    return RecordingBar.bars, result


def test_overall_bar_counts_every_stage_and_the_steps_an_early_stop_skipped(monkeypatch):
    # stage "stuck" cannot move the weights (an lr far below float64 resolution) and stops on patience
    stages = [Stage("a", 5e-3, 6), Stage("stuck", 1e-300, 40, patience=2), Stage("c", 1e-3, 4)]
    bars, result = _fit(monkeypatch, stages)
    overall, per_stage = bars[0], bars[1:]
    steps = [s["steps"] for s in result.stages]
    assert steps[0] == 6 and steps[1] < 40 and result.stages[1]["stopped_early"] and steps[2] == 4
    assert overall.total == 50 and overall.n == 50 and overall.closed and not overall.disable
    assert [b.total for b in per_stage] == [6, 40, 4]
    assert [b.n for b in per_stage] == steps  # the per-stage bars show the steps actually taken
    assert all(b.closed for b in bars)


def test_no_progress_disables_every_bar(monkeypatch):
    bars, _ = _fit(monkeypatch, [Stage("a", 5e-3, 4), Stage("b", 1e-3, 4)], progress=False)
    assert bars and all(b.disable for b in bars)


def test_a_single_stage_has_no_overall_bar(monkeypatch):
    bars, _ = _fit(monkeypatch, [Stage("only", 5e-3, 4)])
    assert bars[0].disable and not bars[1].disable
