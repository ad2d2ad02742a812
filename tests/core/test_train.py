"""Tests of the shared Trainer: training, best-model selection, layer-wise
schedules, exact resumption, the divergence guard, learning-rate scales, the
data sources, argument checks and data-parallel (DDP) training.

Every problem is tiny (m=10, n=20, a few layers, float64) so the file runs in
well under a minute on two busy cores.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from unrolled.core.data_sources import FixedData, OnlineData, as_data_source
from unrolled.core.metrics import nmse
from unrolled.core.params import LayerParameter
from unrolled.core.stages import Stage, end_to_end, layerwise
from unrolled.core.train import CHECKPOINT_FILE, Trainer, TrainingDivergedError
from unrolled.sparse_coding.data import SparseCodingProblem
from unrolled.sparse_coding.nets import LISTACP

WORKER = Path(__file__).with_name("ddp_worker.py")


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def make_problem() -> SparseCodingProblem:
    return SparseCodingProblem(m=10, n=20, p=0.2, snr_db=None, seed=0, dtype=torch.float64)


def make_model(prob: SparseCodingProblem, n_layers: int = 3) -> LISTACP:
    return LISTACP.from_algorithm(prob.A, lam=0.1, n_layers=n_layers)


def val_set(prob: SparseCodingProblem, n: int = 200):
    return prob.sample(n, torch.Generator().manual_seed(123))


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def states_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def layer_keys(model: nn.Module, k: int) -> set[str]:
    """state_dict names of the parameters owned by layer ``k`` (0-based)."""
    ids = {id(p) for p in model.layer_parameters(k)}
    return {name for name, p in model.named_parameters() if id(p) in ids}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Interrupt(Exception):
    """Raised by a callback to simulate a crash in the middle of training."""


def interrupt_at(global_step: int):
    def cb(trainer, record):
        if record["global_step"] == global_step:
            raise Interrupt(global_step)

    return cb


# --------------------------------------------------------------------------
# 1. training reduces the loss; TrainResult is consistent
# --------------------------------------------------------------------------


def test_training_reduces_validation_loss_and_result_is_consistent():
    torch.manual_seed(0)
    prob = make_problem()
    model = make_model(prob)
    stages = [Stage("a", 5e-3, 20), Stage("b", 1e-3, 10)]
    trainer = Trainer(model, nmse, prob.sample, val_set(prob), stages=stages, batch_size=32,
                      val_every=4, progress=False, seed=0)
    untrained = trainer.validate()
    res = trainer.fit()

    assert math.isfinite(res.best_val)
    assert res.best_val < 0.9 * untrained
    # steps
    assert res.n_steps == 30 == sum(s["steps"] for s in res.stages)
    assert [s["stage"] for s in res.stages] == ["a", "b"]
    assert [s["steps"] for s in res.stages] == [20, 10]
    assert not any(s["stopped_early"] for s in res.stages)
    # one record every val_every steps, plus one at the end of each stage
    expected = [("a", s) for s in (4, 8, 12, 16, 20)] + [("b", s) for s in (4, 8, 10)]
    assert [(h["stage"], h["step"]) for h in res.history] == expected
    assert [h["global_step"] for h in res.history] == [4, 8, 12, 16, 20, 24, 28, 30]
    assert [h["lr"] for h in res.history] == [5e-3] * 5 + [1e-3] * 3
    assert all(math.isfinite(h["train_loss"]) and math.isfinite(h["val_loss"]) for h in res.history)
    # best validation losses: the minimum over the stage's start and its validations
    vals_a = [h["val_loss"] for h in res.history if h["stage"] == "a"]
    vals_b = [h["val_loss"] for h in res.history if h["stage"] == "b"]
    assert res.stages[0]["best_val"] == min([untrained] + vals_a)
    assert res.stages[1]["best_val"] == min([res.stages[0]["best_val"]] + vals_b)
    assert res.best_val == res.stages[1]["best_val"]
    # ... and it is the loss of the weights the model holds
    assert res.best_val == trainer.validate()
    assert res.seconds > 0


def test_fit_accepts_default_end_to_end_schedule():
    prob = make_problem()
    model = make_model(prob, 2)
    trainer = Trainer(model, nmse, prob.sample, val_set(prob), lr=5e-3, max_steps=6,
                      batch_size=16, val_every=3, progress=False)
    assert trainer.stages == end_to_end(5e-3, 6)
    res = trainer.fit()
    assert res.n_steps == 6
    assert [(h["stage"], h["step"]) for h in res.history] == [("end-to-end", 3), ("end-to-end", 6)]


# --------------------------------------------------------------------------
# 2. best-model selection
# --------------------------------------------------------------------------


def test_model_holds_best_validation_weights_of_last_stage():
    prob = make_problem()
    model = make_model(prob)
    points = []  # (val_loss, snapshot) at each validation of the last stage

    def record(trainer, rec):
        assert trainer.best_val <= rec["val_loss"]
        if rec["stage"] == "last":
            points.append((rec["val_loss"], snapshot(trainer.model)))
            assert trainer.best_val <= min(v for v, _ in points)

    # A large learning rate makes the validation loss go up and down, so the
    # best point is neither the first nor the last.
    stages = [Stage("warm", 5e-3, 8), Stage("last", 3e-2, 24)]
    trainer = Trainer(model, nmse, prob.sample, val_set(prob), stages=stages, batch_size=16,
                      val_every=2, progress=False, seed=3, callbacks=[record])
    res = trainer.fit()

    vals = [v for v, _ in points]
    assert len(points) == 12
    best = min(range(len(vals)), key=vals.__getitem__)
    assert 0 < best < len(vals) - 1, "the test needs a non-monotone validation curve"
    assert res.best_val == vals[best] < res.stages[0]["best_val"]
    final = snapshot(model)
    assert states_equal(final, points[best][1])
    assert not states_equal(final, points[-1][1])
    assert trainer.validate() == res.best_val


def test_stage_keeps_its_start_weights_when_nothing_improves():
    prob = make_problem()
    model = make_model(prob, 2)
    # first stage trains; second stage uses a destructive learning rate
    stages = [Stage("good", 5e-3, 10), Stage("bad", 5.0, 4)]
    seen = {"bad": []}

    def cb(trainer, rec):
        if rec["stage"] == "bad":
            seen["bad"].append(rec["val_loss"])

    trainer = Trainer(model, nmse, prob.sample, val_set(prob), stages=stages, batch_size=16,
                      val_every=2, progress=False, callbacks=[cb], divergence_factor=1e30)
    orig_run_stage = trainer._run_stage
    starts = []

    def run_stage(stage, opt_state):
        starts.append(snapshot(trainer.model))
        return orig_run_stage(stage, opt_state)

    trainer._run_stage = run_stage
    res = trainer.fit()
    assert all(v > res.stages[0]["best_val"] for v in seen["bad"])
    assert res.best_val == res.stages[0]["best_val"]
    assert states_equal(snapshot(model), starts[1])


# --------------------------------------------------------------------------
# 3. layer-wise schedule
# --------------------------------------------------------------------------


def test_layerwise_builds_the_paper_schedule():
    stages = layerwise(3, 1e-3, 7)
    assert len(stages) == 9
    assert [s.name for s in stages] == [
        "layer1", "layer1-x0.2", "layer1-x0.02",
        "layer2", "layer2-x0.2", "layer2-x0.02",
        "layer3", "layer3-x0.2", "layer3-x0.02",
    ]
    assert [s.active_layers for s in stages] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert [s.params for s in stages] == ["new", "all", "all"] * 3
    assert [s.lr for s in stages] == pytest.approx([1e-3, 2e-4, 2e-5] * 3, rel=1e-12)
    assert all(s.max_steps == 7 and s.patience is None for s in stages)

    later = layerwise(4, 1e-3, 5, first_layer=3, patience=2)
    assert [(s.name, s.active_layers) for s in later] == [
        ("layer3", 3), ("layer3-x0.2", 3), ("layer3-x0.02", 3),
        ("layer4", 4), ("layer4-x0.2", 4), ("layer4-x0.02", 4),
    ]
    assert all(s.patience == 2 for s in later)
    assert [s.name for s in layerwise(2, 1e-3, 5, decays=())] == ["layer1", "layer2"]


def test_stage_rejects_bad_values():
    with pytest.raises(ValueError, match="lr"):
        Stage("s", 0.0, 5)
    with pytest.raises(ValueError, match="max_steps"):
        Stage("s", 1e-3, 0)
    with pytest.raises(ValueError, match="params"):
        Stage("s", 1e-3, 5, 1, "some")
    with pytest.raises(ValueError, match="active_layers"):
        Stage("s", 1e-3, 5, None, "new")


def test_layerwise_training_only_touches_the_right_layers():
    prob = make_problem()
    model = make_model(prob, 3)
    # layer-wise on the first two layers of a 3-layer net, then end-to-end
    stages = layerwise(2, 5e-3, 4) + end_to_end(2e-3, 4)
    keys = [layer_keys(model, k) for k in range(3)]
    assert all(keys) and not (keys[0] & keys[1]) and not (keys[1] & keys[2])
    all_keys = set(model.state_dict())
    assert "A" in all_keys and "A" not in set().union(*keys)

    starts: list[dict] = []
    ends: list[dict] = []
    at_validation: list[tuple[int, dict]] = []

    def cb(trainer, rec):
        stage = trainer.stages[trainer.stage_index]
        expected_depth = stage.active_layers or 3
        assert trainer.model.active_layers == expected_depth
        at_validation.append((trainer.stage_index, snapshot(trainer.model)))

    trainer = Trainer(model, nmse, prob.sample, val_set(prob), stages=stages, batch_size=16,
                      val_every=2, progress=False, callbacks=[cb])
    orig_run_stage = trainer._run_stage

    def run_stage(stage, opt_state):
        starts.append(snapshot(trainer.model))
        out = orig_run_stage(stage, opt_state)
        ends.append(snapshot(trainer.model))
        return out

    trainer._run_stage = run_stage
    trainer.fit()
    assert len(starts) == len(ends) == 7

    def changed(a, b):
        return {k for k in a if not torch.equal(a[k], b[k])}

    for i, stage in enumerate(stages):
        mids = [s for j, s in at_validation if j == i]
        assert len(mids) == 2
        if stage.params == "new":
            allowed = keys[stage.active_layers - 1]
        elif stage.active_layers is not None:
            allowed = set().union(*keys[: stage.active_layers])
        else:
            allowed = set().union(*keys)
        for state in mids + [ends[i]]:
            diff = changed(starts[i], state)
            assert diff <= allowed, (stage.name, diff - allowed)
        # the stage did train what it was allowed to train
        assert changed(starts[i], mids[0]) == allowed, stage.name

    # layer 3 was untouched by the layer-wise stages, trained by the last one
    assert not changed(starts[0], starts[6]) & keys[2]
    assert changed(starts[6], ends[6]) & keys[2]
    assert model.active_layers == model.n_layers == 3
    # parameters are trainable again after fit's last (all-parameter) stage
    assert all(p.requires_grad for p in model.parameters())


def test_layerwise_stages_leave_active_layers_at_last_stage_depth():
    prob = make_problem()
    model = make_model(prob, 3)
    trainer = Trainer(model, nmse, prob.sample, val_set(prob), stages=layerwise(2, 5e-3, 2, decays=()),
                      batch_size=16, val_every=2, progress=False)
    trainer.fit()
    assert model.active_layers == 2


# --------------------------------------------------------------------------
# 4. exact resumption
# --------------------------------------------------------------------------


def _resume_setup(data_kind: str):
    prob = make_problem()
    val = val_set(prob, 100)
    if data_kind == "online":
        train = prob.sample
    else:
        # 40 samples, batches of 16: a new epoch (reshuffle) every 2 batches
        train = FixedData(*prob.sample(40, torch.Generator().manual_seed(5)))
    return prob, train, val


def _run(data_kind: str, ckpt: Path, callbacks=(), stages=None, **kwargs):
    prob, train, val = _resume_setup(data_kind)
    model = make_model(prob, 2)
    if stages is None:
        stages = layerwise(2, 5e-3, 6)
    trainer = Trainer(model, nmse, train, val, stages=stages, batch_size=16, val_every=3,
                      progress=False, seed=11, checkpoint_dir=ckpt, callbacks=list(callbacks), **kwargs)
    return model, trainer


@pytest.mark.parametrize("data_kind", ["online", "fixed"])
@pytest.mark.parametrize(
    "interrupts",
    [(9,), (12,), (3, 21)],  # mid-stage; at the end of a stage; twice (incl. first validation)
    ids=["mid-stage", "end-of-stage", "twice"],
)
def test_resume_is_exact(tmp_path, data_kind, interrupts):
    # run A: uninterrupted
    model_a, trainer_a = _run(data_kind, tmp_path / "a")
    res_a = trainer_a.fit()
    assert res_a.n_steps == 36
    final_a = snapshot(model_a)

    # run B: interrupted, then resumed by brand-new objects
    ckpt = tmp_path / "b"
    for g in interrupts:
        _, trainer = _run(data_kind, ckpt, callbacks=[interrupt_at(g)])
        with pytest.raises(Interrupt):
            trainer.fit()
        assert trainer.global_step == g
        assert (ckpt / CHECKPOINT_FILE).is_file()
    model_b, trainer_b = _run(data_kind, ckpt)
    res_b = trainer_b.fit()

    assert states_equal(snapshot(model_b), final_a)
    assert res_b.history == res_a.history
    assert res_b.stages == res_a.stages
    assert res_b.n_steps == res_a.n_steps
    assert res_b.best_val == res_a.best_val
    assert model_b.active_layers == model_a.active_layers
    # the resumed run really started from the checkpoint (did not redo the work)
    assert len(res_b.history) == len(res_a.history) == 12
    # both checkpoints end in the same state
    ca = torch.load(tmp_path / "a" / CHECKPOINT_FILE, weights_only=True)
    cb = torch.load(ckpt / CHECKPOINT_FILE, weights_only=True)
    assert ca["stage_index"] == cb["stage_index"] == 6
    assert states_equal(ca["model"], cb["model"])


def test_resume_of_a_finished_run_changes_nothing(tmp_path):
    model_a, trainer_a = _run("online", tmp_path)
    res_a = trainer_a.fit()
    model_b, trainer_b = _run("online", tmp_path)
    res_b = trainer_b.fit()
    assert states_equal(snapshot(model_b), snapshot(model_a))
    assert res_b.history == res_a.history and res_b.n_steps == res_a.n_steps
    assert res_b.best_val == res_a.best_val


def test_resume_right_after_early_stopping_is_exact(tmp_path):
    # a destructive stage with patience stops early; interrupt exactly at the
    # validation that triggers the stop
    stages = [Stage("s1", 5e-3, 6), Stage("s2", 0.3, 12, patience=2), Stage("s3", 1e-3, 6)]
    model_a, trainer_a = _run("online", tmp_path / "a", stages=stages, divergence_factor=1e30)
    res_a = trainer_a.fit()
    assert res_a.stages[1]["stopped_early"], "the test needs an early stop"
    stop_step = [h["global_step"] for h in res_a.history if h["stage"] == "s2"][-1]
    assert stop_step < 18

    _, trainer = _run("online", tmp_path / "b", stages=stages, divergence_factor=1e30,
                      callbacks=[interrupt_at(stop_step)])
    with pytest.raises(Interrupt):
        trainer.fit()
    model_b, trainer_b = _run("online", tmp_path / "b", stages=stages, divergence_factor=1e30)
    res_b = trainer_b.fit()
    assert res_b.history == res_a.history
    assert res_b.stages == res_a.stages
    assert states_equal(snapshot(model_b), snapshot(model_a))


def test_checkpoint_of_another_schedule_is_rejected(tmp_path):
    _, trainer = _run("online", tmp_path, callbacks=[interrupt_at(3)])
    with pytest.raises(Interrupt):
        trainer.fit()
    _, other = _run("online", tmp_path, stages=end_to_end(1e-3, 5))
    with pytest.raises(ValueError, match="stages"):
        other.fit()


# --------------------------------------------------------------------------
# 5. divergence guard
# --------------------------------------------------------------------------


def test_nan_loss_raises_and_keeps_best_weights(tmp_path):
    prob = make_problem()
    model = make_model(prob, 2)
    calls = {"train": 0}

    def loss_fn(est, target):
        loss = nmse(est, target)
        if torch.is_grad_enabled():  # training calls only (validation runs under no_grad)
            calls["train"] += 1
            if calls["train"] > 15:
                return loss * float("nan")
        return loss

    points = []

    def cb(trainer, rec):
        points.append((rec["val_loss"], snapshot(trainer.model)))

    start = snapshot(model)
    trainer = Trainer(model, loss_fn, prob.sample, val_set(prob), stages=[Stage("only", 5e-3, 40)],
                      batch_size=16, val_every=4, progress=False, checkpoint_dir=tmp_path, callbacks=[cb])
    untrained = trainer.validate()
    with pytest.raises(TrainingDivergedError) as info:
        trainer.fit()
    msg = str(info.value)
    assert "'only'" in msg and "step 16" in msg and "nan" in msg.lower()
    assert str(tmp_path / CHECKPOINT_FILE) in msg
    assert trainer.global_step == 15 and len(points) == 3

    vals = [untrained] + [v for v, _ in points]
    snaps = [start] + [s for _, s in points]
    best = min(range(len(vals)), key=vals.__getitem__)
    assert best > 0
    final = snapshot(model)
    assert all(torch.isfinite(v).all() for v in final.values())
    assert states_equal(final, snaps[best])
    assert trainer.validate() == vals[best]

    ckpt = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)
    assert ckpt["global_step"] == 12
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())
    assert states_equal(ckpt["model"], points[-1][1])
    assert all(torch.isfinite(v).all() for v in ckpt["best_state"].values())


def test_huge_learning_rate_raises_divergence():
    prob = make_problem()
    model = make_model(prob, 2)
    start = snapshot(model)
    trainer = Trainer(model, nmse, prob.sample, val_set(prob), stages=[Stage("wild", 1e3, 30)],
                      batch_size=16, val_every=50, progress=False, divergence_factor=100.0)
    with pytest.raises(TrainingDivergedError, match=r"stage 'wild', step \d+"):
        trainer.fit()
    # no validation happened: the model is back to its initial weights
    assert states_equal(snapshot(model), start)


def test_non_finite_initial_validation_loss_is_reported():
    prob = make_problem()
    model = make_model(prob, 2)
    y, x = val_set(prob, 20)
    x = x.clone()
    x[0, 0] = float("nan")  # (the net itself rejects non-finite inputs)
    trainer = Trainer(model, nmse, prob.sample, (y, x), stages=end_to_end(1e-3, 2),
                      batch_size=4, val_every=1, progress=False)
    with pytest.raises(TrainingDivergedError, match="initial validation loss"):
        trainer.fit()


# --------------------------------------------------------------------------
# 6. learning-rate scales
# --------------------------------------------------------------------------


class _Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2, dtype=torch.float64)
        self.gain = LayerParameter(torch.ones((), dtype=torch.float64), 1, constraint="positive", lr_scale=0.5)
        self.bias = LayerParameter(torch.zeros(2, dtype=torch.float64), 1, lr_scale=7.0)

    def forward(self, x):
        return self.gain[0] * self.lin(x) + self.bias[0]


def test_lr_scale_sets_param_group_learning_rates():
    torch.manual_seed(0)
    model = _Scaled()
    w = torch.randn(3, 2, dtype=torch.float64)

    def sample(n, g):
        x = torch.randn(n, 3, generator=g, dtype=torch.float64)
        return x, x @ w

    val = sample(32, torch.Generator().manual_seed(9))
    seen = []

    def cb(trainer, rec):
        groups = {g["lr_scale"]: g for g in trainer.optimizer.param_groups}
        assert set(groups) == {0.5, 1.0, 7.0}
        for s, g in groups.items():
            assert g["lr"] == pytest.approx(rec["lr"] * s, rel=1e-12)
        assert {id(p) for p in groups[0.5]["params"]} == {id(model.gain.raw[0])}
        assert {id(p) for p in groups[7.0]["params"]} == {id(model.bias.raw[0])}
        assert {id(p) for p in groups[1.0]["params"]} == {id(model.lin.weight), id(model.lin.bias)}
        seen.append((rec["step"], rec["lr"]))

    stage = Stage("s", 0.01, 8)
    trainer = Trainer(model, nmse, sample, val, stages=[stage], batch_size=8, val_every=2,
                      schedule="cosine", progress=False, callbacks=[cb])
    trainer.fit()
    # cosine schedule: the lr of the last step before each validation
    assert [s for s, _ in seen] == [2, 4, 6, 8]
    for step, lr in seen:
        assert lr == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi * (step - 1) / 8)), rel=1e-12)


def test_lr_scale_of_lista_thresholds():
    prob = make_problem()
    model = make_model(prob, 2)
    theta_ids = {id(p) for p in model.theta.parameters()}
    w_ids = {id(p) for p in model.W.parameters()}

    def cb(trainer, rec):
        groups = trainer.optimizer.param_groups
        stage = trainer.stages[trainer.stage_index]
        expected_ids = {id(p) for p in model.layer_parameters(stage.active_layers - 1)} if stage.params == "new" \
            else theta_ids | w_ids
        assert {id(p) for g in groups for p in g["params"]} == expected_ids
        for g in groups:
            ids = {id(p) for p in g["params"]}
            scale = model.theta.raw[0].lr_scale if ids <= theta_ids else 1.0
            assert ids <= theta_ids or ids <= w_ids
            assert g["lr"] == pytest.approx(stage.lr * scale, rel=1e-12)
        assert model.theta.raw[0].lr_scale > 1

    trainer = Trainer(model, nmse, prob.sample, val_set(prob, 50), stages=layerwise(2, 1e-3, 2, decays=(0.2,)),
                      batch_size=8, val_every=2, progress=False, callbacks=[cb])
    trainer.fit()


# --------------------------------------------------------------------------
# 7. data sources
# --------------------------------------------------------------------------


def _index_set(n: int):
    idx = torch.arange(n, dtype=torch.float64)
    return idx[:, None], -idx[:, None]


def test_fixed_data_epochs_cover_every_sample_once():
    inputs, targets = _index_set(12)
    data = FixedData(inputs, targets)
    assert len(data) == 12
    g = torch.Generator().manual_seed(0)
    epochs = []
    for _ in range(4):
        seen = []
        for _ in range(3):
            xb, tb = data.next_batch(4, g)
            assert torch.equal(tb, -xb)
            seen += xb[:, 0].long().tolist()
        epochs.append(seen)
        assert sorted(seen) == list(range(12))
    assert data.epoch == 4
    assert len({tuple(e) for e in epochs}) > 1  # reshuffled


def test_fixed_data_with_ragged_last_batch_never_repeats_within_an_epoch():
    data = FixedData(*_index_set(10))
    g = torch.Generator().manual_seed(1)
    per_epoch: dict[int, list[int]] = {}
    for _ in range(9):
        xb, _ = data.next_batch(4, g)
        assert xb.shape[0] == 4
        per_epoch.setdefault(data.epoch, []).extend(xb[:, 0].long().tolist())
    assert sorted(per_epoch) == [1, 2, 3, 4, 5]
    for epoch in (1, 2, 3, 4):
        assert len(per_epoch[epoch]) == 8 == len(set(per_epoch[epoch]))


def test_fixed_data_ranks_split_the_global_batch():
    n, world = 12, 2
    sources = [FixedData(*_index_set(n)) for _ in range(world + 1)]
    gens = [torch.Generator().manual_seed(4) for _ in range(world + 1)]
    for _ in range(7):
        full, _ = sources[0].next_batch(6, gens[0])
        parts = [sources[1 + r].next_batch(6, gens[1 + r], r, world)[0] for r in range(world)]
        assert all(p.shape[0] == 3 for p in parts)
        assert torch.equal(torch.cat(parts), full)


def test_fixed_data_state_dict_resumes_the_epoch():
    a = FixedData(*_index_set(10))
    g = torch.Generator().manual_seed(2)
    for _ in range(3):
        a.next_batch(3, g)
    state, gstate = a.state_dict(), g.get_state()
    expected = [a.next_batch(3, g)[0] for _ in range(5)]
    b = FixedData(*_index_set(10))
    b.load_state_dict(state)
    g2 = torch.Generator()
    g2.set_state(gstate)
    got = [b.next_batch(3, g2)[0] for _ in range(5)]
    assert all(torch.equal(x, y) for x, y in zip(expected, got))
    assert b.epoch == a.epoch


def test_fixed_data_rejects_bad_input():
    with pytest.raises(ValueError, match="same number of samples"):
        FixedData(torch.zeros(5, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="empty"):
        FixedData(torch.zeros(0, 2), torch.zeros(0, 2))
    data = FixedData(*_index_set(5))
    with pytest.raises(ValueError, match="exceeds"):
        data.next_batch(6, torch.Generator())
    data.next_batch(5, torch.Generator())  # exactly the set size is fine


def test_online_data_and_as_data_source():
    prob = make_problem()
    src = OnlineData(prob.sample)
    y, x = src.next_batch(8, torch.Generator().manual_seed(0), rank=1, world=2)
    assert y.shape == (4, 10) and x.shape == (4, 20)
    assert src.state_dict() == {}
    with pytest.raises(ValueError, match="callable"):
        OnlineData(3)
    assert as_data_source(src) is src
    assert isinstance(as_data_source(prob.sample), OnlineData)
    pair = _index_set(4)
    assert isinstance(as_data_source(pair), FixedData)
    assert isinstance(as_data_source(list(pair)), FixedData)
    with pytest.raises(ValueError, match="train_data"):
        as_data_source(5)
    with pytest.raises(ValueError, match="train_data"):
        as_data_source((torch.zeros(2), torch.zeros(2), torch.zeros(2)))


class _Recorder(nn.Module):
    """``out = w * x``; remembers the (index-valued) inputs of training batches."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones((), dtype=torch.float64))
        self.seen: list[list[int]] = []

    def forward(self, x):
        if self.training and torch.is_grad_enabled():
            self.seen.append(x[:, 0].long().tolist())
        return self.w * x


def test_trainer_on_fixed_pair_goes_through_whole_epochs():
    inputs, _ = _index_set(12)
    targets = 0.5 * inputs
    model = _Recorder()
    trainer = Trainer(model, nmse, (inputs, targets), (inputs, targets), stages=[Stage("s", 1e-2, 9)],
                      batch_size=4, val_every=3, progress=False)
    assert isinstance(trainer.data, FixedData)
    trainer.fit()
    assert len(model.seen) == 9 and all(len(b) == 4 for b in model.seen)
    for e in range(3):
        epoch = sum(model.seen[3 * e : 3 * e + 3], [])
        assert sorted(epoch) == list(range(12))
    assert model.w.item() < 1.0  # it learned towards 0.5


# --------------------------------------------------------------------------
# 8. argument checks
# --------------------------------------------------------------------------


def test_trainer_rejects_bad_arguments():
    prob = make_problem()
    model = make_model(prob, 2)
    val = val_set(prob, 10)
    ok = dict(stages=end_to_end(1e-3, 2), progress=False)
    with pytest.raises(ValueError, match="schedule"):
        Trainer(model, nmse, prob.sample, val, schedule="exponential", **ok)
    with pytest.raises(ValueError, match="empty"):
        Trainer(model, nmse, prob.sample, val, stages=[], progress=False)
    with pytest.raises(ValueError, match="val_data"):
        Trainer(model, nmse, prob.sample, val[0], **ok)
    with pytest.raises(ValueError, match="val_data"):
        Trainer(model, nmse, prob.sample, (val[0], val[1], val[1]), **ok)
    with pytest.raises(ValueError, match="batch_size"):
        Trainer(model, nmse, prob.sample, val, batch_size=0, **ok)
    with pytest.raises(ValueError, match="val_every"):
        Trainer(model, nmse, prob.sample, val, val_every=0, **ok)
    with pytest.raises(ValueError, match="train_data"):
        Trainer(model, nmse, 42, val, **ok)
    plain = nn.Linear(10, 20, dtype=torch.float64)
    with pytest.raises(ValueError, match="UnrolledNet"):
        Trainer(plain, nmse, prob.sample, val, stages=layerwise(2, 1e-3, 2), progress=False)
    # a plain module is fine with all-layer stages
    Trainer(plain, nmse, prob.sample, val, **ok)


# --------------------------------------------------------------------------
# 9. data-parallel training (DDP, 2 CPU processes, gloo)
# --------------------------------------------------------------------------


def test_ddp_two_processes_match_single_process(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    single, ddp = tmp_path / "single.safetensors", tmp_path / "ddp.safetensors"
    cmds = [
        [sys.executable, str(WORKER), str(single)],
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         "--master_port", str(free_port()), str(WORKER), str(ddp)],
    ]
    # both launched at once to save wall-clock time
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              cwd=tmp_path) for c in cmds]
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=180)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]

    from safetensors.torch import load_file

    a, b = load_file(single), load_file(ddp)
    r0, r1 = load_file(f"{ddp}.rank0"), load_file(f"{ddp}.rank1")
    assert a.keys() == b.keys() and a
    assert states_equal(r0, r1), "the two ranks ended with different weights"
    assert states_equal(r0, b)
    for k in a:
        assert a[k].dtype == torch.float64
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-10)
    # training did change the weights
    prob = make_problem()
    init = make_model(prob, 3).state_dict()
    assert not states_equal({k: v for k, v in init.items()}, a)

    info_a = json.loads(Path(f"{single}.json").read_text())
    info_b = json.loads(Path(f"{ddp}.json").read_text())
    assert (info_a["world"], info_b["world"]) == (1, 2)
    assert info_a["n_steps"] == info_b["n_steps"] > 0
    assert [(h["stage"], h["step"]) for h in info_a["history"]] == [(h["stage"], h["step"]) for h in info_b["history"]]
    for ha, hb in zip(info_a["history"], info_b["history"]):
        assert hb["val_loss"] == pytest.approx(ha["val_loss"], rel=1e-10)
    assert info_b["best_val"] == pytest.approx(info_a["best_val"], rel=1e-10)


def test_fit_leaves_every_parameter_trainable():
    """A schedule ending on a 'new'-layer stage froze the others; fit hands them back trainable."""
    prob = make_problem()
    model = make_model(prob, 2)
    val = prob.sample(32, torch.Generator().manual_seed(5))
    stages = layerwise(2, 1e-3, 3, decays=())
    Trainer(model, nmse, prob.sample, val, stages=stages, val_every=3, progress=False).fit()
    assert all(p.requires_grad for p in model.parameters())


class _TwoHeaded(nn.Module):
    """y = (a * u + b * v, a - b) from inputs (u, v): tuple inputs and tuple outputs."""

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.0))
        self.b = nn.Parameter(torch.tensor(0.0))

    def forward(self, inputs):
        u, v = inputs
        return self.a * u + self.b * v, (self.a - self.b).expand(u.shape[0])


def _two_headed_loss(pred, target):
    return ((pred[0] - target[0]) ** 2).mean() + ((pred[1] - target[1]) ** 2).mean()


@pytest.mark.parametrize("online", [True, False])
def test_tuple_inputs_and_targets_train_to_the_true_parameters(online):
    # a = 2, b = -1 fit both heads exactly; the loss is a convex quadratic in (a, b)
    def sample(n, gen):
        u, v = torch.randn(n, 3, generator=gen), torch.randn(n, 3, generator=gen)
        return (u, v), (2.0 * u - v, torch.full((n,), 3.0))

    gen = torch.Generator().manual_seed(0)
    val = sample(64, gen)
    train = sample if online else sample(256, gen)
    model = _TwoHeaded()
    result = Trainer(model, _two_headed_loss, train, val, lr=0.05, max_steps=400, batch_size=32, val_every=50,
                     val_batch_size=20, progress=False).fit()
    assert result.best_val < 1e-4
    assert torch.allclose(torch.stack([model.a, model.b]).detach(), torch.tensor([2.0, -1.0]), atol=1e-2)


def test_tuple_data_with_mismatched_lengths_is_rejected():
    u = torch.zeros(5, 2)
    with pytest.raises(ValueError, match="same first dimension"):
        FixedData((u, torch.zeros(4, 2)), u)
    with pytest.raises(ValueError, match="same number of samples"):
        Trainer(_TwoHeaded(), _two_headed_loss, (u, u), ((u, u), (u[:3], u[:3])), progress=False)


# --------------------------------------------------------------------------
# torch.compile
# --------------------------------------------------------------------------


def test_compiled_training_matches_eager_training():
    """``compile=True`` changes how the forward runs, not what is learned: same data, same steps, same weights."""
    prob = make_problem()
    results = []
    for compile_ in (False, True):
        torch.manual_seed(0)
        model = make_model(prob, n_layers=2)
        res = Trainer(model, nmse, prob.sample, val_set(prob), lr=5e-3, max_steps=6, batch_size=16, val_every=3,
                      progress=False, seed=0, compile=compile_).fit()
        results.append((snapshot(model), res.best_val, [h["train_loss"] for h in res.history]))
    (eager, val_e, hist_e), (comp, val_c, hist_c) = results
    assert eager.keys() == comp.keys()
    for k in eager:
        torch.testing.assert_close(comp[k], eager[k], rtol=1e-9, atol=1e-10)
    assert val_c == pytest.approx(val_e, rel=1e-9)
    assert hist_c == pytest.approx(hist_e, rel=1e-9)


# --------------------------------------------------------------------------
# checkpoint cadence, time limit, the one-sync gradient check
# --------------------------------------------------------------------------


@pytest.mark.parametrize("interrupt", [9, 15])
def test_sparser_checkpoints_still_resume_exactly(tmp_path, interrupt):
    """``checkpoint_every=3`` writes every third validation (and every stage end); a crash rewinds to the last
    write and the resumed run ends in the same state as an uninterrupted run with a write at every validation."""
    model_a, trainer_a = _run("online", tmp_path / "a")
    res_a = trainer_a.fit()
    _, trainer = _run("online", tmp_path / "b", callbacks=[interrupt_at(interrupt)], checkpoint_every=3)
    with pytest.raises(Interrupt):
        trainer.fit()
    saved = torch.load(tmp_path / "b" / CHECKPOINT_FILE, weights_only=True)
    assert saved["global_step"] < interrupt  # the crash's validation was not written: the resume rewinds
    model_b, trainer_b = _run("online", tmp_path / "b", checkpoint_every=3)
    res_b = trainer_b.fit()
    assert states_equal(snapshot(model_b), snapshot(model_a))
    assert res_b.history == res_a.history and res_b.stages == res_a.stages and res_b.n_steps == res_a.n_steps


def test_time_limit_ends_the_running_stage_and_skips_the_rest(tmp_path):
    # 1e-9 s: spent by the first validation, which ends stage 1 at its step 3 with its best weights
    model, trainer = _run("online", tmp_path, time_limit=1e-9)
    res = trainer.fit()
    assert res.time_limited and res.n_steps == 3
    assert res.stages[0]["steps"] == 3 and res.stages[0]["time_limited"]
    assert [s["stage"] for s in res.stages] == [s.name for s in trainer.stages]
    assert all(s["skipped"] and s["steps"] == 0 for s in res.stages[1:])
    best = res.stages[0]["best_val"]
    assert trainer.validate() == pytest.approx(best, rel=1e-12)
    # re-running the same command returns what was reached, without training further
    model_b, trainer_b = _run("online", tmp_path, time_limit=1e-9)
    res_b = trainer_b.fit()
    assert res_b.time_limited and res_b.n_steps == 3 and res_b.stages == res.stages
    assert states_equal(snapshot(model_b), snapshot(model))
    with pytest.raises(ValueError, match="time_limit"):
        _run("online", tmp_path / "c", time_limit=0)
    with pytest.raises(ValueError, match="checkpoint_every"):
        _run("online", tmp_path / "c", checkpoint_every=0)


def test_a_generous_time_limit_changes_nothing(tmp_path):
    model_a, trainer_a = _run("online", tmp_path / "a")
    res_a = trainer_a.fit()
    model_b, trainer_b = _run("online", tmp_path / "b", time_limit=1e6)
    res_b = trainer_b.fit()
    assert not res_b.time_limited and res_b.history == res_a.history
    assert states_equal(snapshot(model_b), snapshot(model_a))


def test_gradient_guard_tells_overflowing_sums_from_non_finite_entries():
    _, trainer = _run("online", None)
    stage = trainer.stages[0]
    trainer.reference_loss = 1.0
    big = [nn.Parameter(torch.zeros(4, dtype=torch.float64)) for _ in range(2)]
    for p in big:
        p.grad = torch.full((4,), 1e308, dtype=torch.float64)  # finite entries whose sum overflows to inf
    trainer._guard(0.5, big, stage)  # no divergence
    big[1].grad[2] = float("nan")
    with pytest.raises(TrainingDivergedError):
        trainer._guard(0.5, big, stage)


def test_stage_time_weights_share_the_time_limit_among_stages(tmp_path, monkeypatch):
    import unrolled.core.train as train_module

    clock = [0.0]

    def fake_perf_counter():  # every reading of the training clock advances it by one second
        clock[0] += 1.0
        return clock[0]

    monkeypatch.setattr(train_module.time, "perf_counter", fake_perf_counter)
    stages = [Stage(f"s{i}", 5e-3, 30) for i in range(4)]  # 10 validations each without a time share
    model, trainer = _run("online", tmp_path, stages=stages, time_limit=40.0, stage_time_weights=[1, 1, 1, 1])
    res = trainer.fit()
    summaries = res.stages
    assert [s["stage"] for s in summaries] == ["s0", "s1", "s2", "s3"]
    cut = [s for s in summaries if s.get("stage_time_limited")]
    assert len(cut) >= 3 and all(s["steps"] < 30 for s in cut)  # the shares, not the step caps, ended them
    assert not any(s.get("skipped") for s in summaries)  # every stage ran: the limit was shared, not spent
    assert all(s["steps"] >= 3 for s in summaries)
    with pytest.raises(ValueError, match="stage_time_weights"):
        _run("online", tmp_path / "c", stages=stages, time_limit=10.0, stage_time_weights=[1, 1])
    with pytest.raises(ValueError, match="time_limit too"):
        _run("online", tmp_path / "c", stages=stages, stage_time_weights=[1, 1, 1, 1])
