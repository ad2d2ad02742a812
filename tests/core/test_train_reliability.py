"""Trainer reliability: no stale resume, the checkpoint is always the last good state,
NaN batches stop training cleanly, bad settings are refused (issue 29, items 1-4).

Tiny problems (m=10, n=20, 2 layers, float64): the module runs in a few seconds.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from unrolled.core.metrics import nmse
from unrolled.core.prox import soft_threshold
from unrolled.core.stages import Stage, end_to_end, layerwise
from unrolled.core.train import CHECKPOINT_FILE, CheckpointMismatchError, Trainer, TrainingDivergedError
from unrolled.sparse_coding.data import SparseCodingProblem
from unrolled.sparse_coding.nets import LISTACP


def make_problem(seed: int = 0) -> SparseCodingProblem:
    return SparseCodingProblem(m=10, n=20, p=0.2, snr_db=None, seed=seed, dtype=torch.float64)


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def states_equal(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class Interrupt(Exception):
    pass


def interrupt_at(global_step: int):
    def cb(trainer, record):
        if trainer.global_step == global_step:
            raise Interrupt

    return cb


def make_trainer(ckpt: Path | None, *, problem_seed=0, val_seed=123, stages=None, callbacks=(), loss=nmse,
                 **kwargs) -> Trainer:
    prob = make_problem(problem_seed)
    model = LISTACP.from_algorithm(prob.A, lam=0.1, n_layers=2)
    val = prob.sample(50, torch.Generator().manual_seed(val_seed))
    kwargs = {"batch_size": 16, "val_every": 3, "seed": 11, "progress": False, **kwargs}
    return Trainer(model, loss, prob.sample, val, stages=stages or end_to_end(5e-3, 9),
                   checkpoint_dir=ckpt, callbacks=list(callbacks), **kwargs)


def _interrupted_checkpoint(ckpt: Path) -> None:
    trainer = make_trainer(ckpt, callbacks=[interrupt_at(3)])
    with pytest.raises(Interrupt):
        trainer.fit()
    assert (ckpt / CHECKPOINT_FILE).is_file()


def _other_loss(pred, target):
    return nmse(pred, target)


# ---------------------------------------------------------------- 1. stale resume
CHANGES = {
    "seed": ({"seed": 12}, "seed"),
    "lr": ({"stages": end_to_end(1e-3, 9)}, "stages"),
    "batch_size": ({"batch_size": 8}, "batch_size"),
    "val_every": ({"val_every": 2}, "val_every"),
    "grad_clip": ({"grad_clip": 1.0}, "grad_clip"),
    "schedule": ({"schedule": "cosine"}, "schedule"),
    "loss": ({"loss": _other_loss}, "loss"),
    "validation set": ({"val_seed": 7}, "val_data"),
    "dictionary (data-model seed)": ({"problem_seed": 1}, "model_init"),
    "user field": ({"fingerprint": {"snr_db": 30}}, "user.snr_db"),
}


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
def test_resume_with_other_settings_is_refused_naming_the_fields(tmp_path, change):
    _interrupted_checkpoint(tmp_path)
    kwargs, field = CHANGES[change]
    before = (tmp_path / CHECKPOINT_FILE).read_bytes()
    trainer = make_trainer(tmp_path, **kwargs)
    with pytest.raises(CheckpointMismatchError) as info:
        trainer.fit()
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    listed = re.findall(r"^  ([\w.]+): ", msg, flags=re.MULTILINE)
    assert field in listed, msg
    assert "seed" not in listed or field == "seed"  # only what really differs is listed
    assert "on_mismatch='restart'" in msg and "--fresh" in msg
    assert (tmp_path / CHECKPOINT_FILE).read_bytes() == before  # the refusal touched nothing


def test_resume_with_the_same_settings_is_allowed_and_exact(tmp_path):
    ref = make_trainer(tmp_path / "ref")
    ref.fit()
    _interrupted_checkpoint(tmp_path / "b")
    resumed = make_trainer(tmp_path / "b")
    res = resumed.fit()
    assert res.n_steps == 9 and states_equal(snapshot(resumed.model), snapshot(ref.model))


def test_restart_on_mismatch_starts_over(tmp_path):
    _interrupted_checkpoint(tmp_path / "a")
    restarted = make_trainer(tmp_path / "a", seed=12, on_mismatch="restart")
    res = restarted.fit()
    fresh = make_trainer(tmp_path / "fresh", seed=12)
    res_fresh = fresh.fit()
    assert res.history == res_fresh.history and res.n_steps == 9
    assert states_equal(snapshot(restarted.model), snapshot(fresh.model))
    # the new checkpoint carries the new fingerprint: resuming with the new settings is fine
    make_trainer(tmp_path / "a", seed=12).fit()
    with pytest.raises(CheckpointMismatchError, match="seed"):
        make_trainer(tmp_path / "a").fit()


def test_checkpoint_without_fingerprint_is_refused(tmp_path):
    _interrupted_checkpoint(tmp_path)
    state = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)
    del state["fingerprint"]
    torch.save(state, tmp_path / CHECKPOINT_FILE)
    with pytest.raises(CheckpointMismatchError, match="older version"):
        make_trainer(tmp_path).fit()


def test_trainer_rejects_bad_mismatch_options():
    with pytest.raises(ValueError, match="on_mismatch"):
        make_trainer(None, on_mismatch="ignore")
    with pytest.raises(ValueError, match="fingerprint"):
        make_trainer(None, fingerprint=["snr"])


def test_cli_train_refuses_a_stale_checkpoint_and_fresh_starts_over(tmp_path, capsys):
    from unrolled.cli import main

    args = ["train", "--model", "lista-cp", "--m", "10", "--n", "20", "--layers", "2", "--steps", "4",
            "--val-every", "2", "--schedule", "end-to-end", "--n-val", "20", "--batch-size", "8",
            "--out", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args + ["--seed", "1"]) == 2
    err = capsys.readouterr().err
    assert "seed" in err and "model_init" in err and "user.problem" in err and "--fresh" in err
    assert main(args + ["--seed", "1", "--fresh"]) == 0
    assert main(args + ["--seed", "1"]) == 0  # the checkpoint now is the seed-1 run's


def test_cli_reproduce_fresh_removes_checkpoints(tmp_path, monkeypatch):
    from dataclasses import replace

    from unrolled.cli import build_parser, cmd_reproduce
    from unrolled.experiments import EXPERIMENTS

    stale = tmp_path / "sbl-timing" / "checkpoints" / "x" / CHECKPOINT_FILE
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"stale")
    argv = ["reproduce", "sbl-timing", "--quick", "--no-progress", "--fresh", "--out", str(tmp_path)]
    with pytest.raises(SystemExit, match="no setting no_such_setting"):  # a typo is refused before anything is deleted
        cmd_reproduce(build_parser().parse_args(argv + ["--set", "no_such_setting=1"]))
    assert stale.exists()
    seen = []
    monkeypatch.setitem(EXPERIMENTS._items, "sbl-timing",
                        replace(EXPERIMENTS["sbl-timing"], run=lambda out, **kw: seen.append(stale.exists()) or {}))
    assert cmd_reproduce(build_parser().parse_args(argv)) == 0
    assert seen == [False] and not stale.exists()  # deleted before the experiment started


# ---------------------------------------------------------------- 2. the checkpoint is the last good state
def _paths_in(msg: str) -> list[Path]:
    return [Path(p) for p in re.findall(r"checkpoint (\S+\.pt)", msg)]


def test_huge_lr_leaves_the_last_good_checkpoint_and_a_sane_lr_resumes_from_it(tmp_path):
    trainer = make_trainer(tmp_path, stages=[Stage("wild", 1e3, 20)], val_every=1, divergence_factor=100.0)
    start = snapshot(trainer.model)
    with pytest.raises(TrainingDivergedError) as info:
        trainer.fit()
    paths = _paths_in(str(info.value))
    assert paths == [tmp_path / CHECKPOINT_FILE] and paths[0].is_file()
    ckpt = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)
    # nothing improved: the last good state is the stage's start, never the weights after the blow-up
    assert states_equal(ckpt["model"], start) and ckpt["step"] == 0
    assert states_equal(snapshot(trainer.model), start)
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())

    sane = make_trainer(tmp_path, stages=[Stage("wild", 1e-4, 20)], val_every=1, divergence_factor=100.0,
                        on_mismatch="resume")
    first_val = []
    sane.callbacks.append(lambda t, rec: first_val.append(rec["val_loss"]) if not first_val else None)
    res = sane.fit()  # does not diverge
    assert res.n_steps == 20
    assert first_val[0] < 1.01 * res.history[0]["val_loss"] and first_val[0] <= 1.01 * trainer.reference_loss


def test_resume_other_settings_needs_the_same_number_of_stages(tmp_path):
    _interrupted_checkpoint(tmp_path)
    with pytest.raises(CheckpointMismatchError, match="stages"):
        make_trainer(tmp_path, stages=layerwise(2, 1e-3, 3), on_mismatch="resume").fit()


def test_nan_validation_loss_is_a_divergence_and_is_never_saved(tmp_path):
    calls = {"val": 0}

    def loss_fn(pred, target):
        if not torch.is_grad_enabled():
            calls["val"] += 1
            if calls["val"] >= 4:  # reference, stage start, step 3, then NaN at step 6
                return nmse(pred, target) * float("nan")
        return nmse(pred, target)

    points = []
    trainer = make_trainer(tmp_path, loss=loss_fn, callbacks=[lambda t, r: points.append(snapshot(t.model))])
    with pytest.raises(TrainingDivergedError, match=r"step 6 .*validation loss nan"):
        trainer.fit()
    ckpt = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)
    assert ckpt["global_step"] in (0, 3)
    assert all(r["val_loss"] == r["val_loss"] for r in ckpt["history"])  # no NaN validation was recorded
    assert states_equal(snapshot(trainer.model), ckpt["best_state"])


def test_divergence_without_checkpoint_dir_names_no_file():
    trainer = make_trainer(None, stages=[Stage("wild", 1e3, 20)], val_every=1, divergence_factor=100.0)
    with pytest.raises(TrainingDivergedError) as info:
        trainer.fit()
    assert ".pt" not in str(info.value) and "checkpoint" not in str(info.value)


# ---------------------------------------------------------------- 3. NaN in a training batch
@pytest.mark.parametrize("where", ["inputs", "targets"])
def test_nan_in_a_batch_stops_with_the_step_and_the_best_weights(tmp_path, where):
    prob = make_problem()
    calls = {"n": 0}

    def sample(n, generator):
        y, x = prob.sample(n, generator)
        calls["n"] += 1
        if calls["n"] == 8:  # the 8th training batch
            (y if where == "inputs" else x)[3, 1] = float("nan")
        return y, x

    model = LISTACP.from_algorithm(prob.A, lam=0.1, n_layers=2)
    val = prob.sample(50, torch.Generator().manual_seed(123))
    points = []
    trainer = Trainer(model, nmse, sample, val, stages=end_to_end(5e-3, 20), batch_size=16, val_every=3,
                      progress=False, checkpoint_dir=tmp_path,
                      callbacks=[lambda t, r: points.append((r["val_loss"], snapshot(t.model)))])
    start = snapshot(model)
    reference = trainer.validate()
    with pytest.raises(TrainingDivergedError) as info:
        trainer.fit()
    msg = str(info.value)
    assert "step 8 " in msg and where in msg and "NaN" in msg
    assert trainer.global_step == 7 and len(points) == 2
    vals = [reference] + [v for v, _ in points]
    snaps = [start] + [s for _, s in points]
    best = min(range(3), key=vals.__getitem__)
    assert states_equal(snapshot(model), snaps[best])
    ckpt = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)
    assert states_equal(ckpt["model"], snaps[best])


# ---------------------------------------------------------------- 4. bad settings
BAD_TRAINER = {
    "grad_clip=0": ({"grad_clip": 0.0}, "grad_clip"),
    "grad_clip=-1": ({"grad_clip": -1.0}, "grad_clip"),
    "grad_clip=nan": ({"grad_clip": float("nan")}, "grad_clip"),
    "divergence_factor=-1": ({"divergence_factor": -1.0}, "divergence_factor"),
    "divergence_factor=1": ({"divergence_factor": 1.0}, "divergence_factor"),
    "val_batch_size=0": ({"val_batch_size": 0}, "val_batch_size"),
    "val_batch_size=2.5": ({"val_batch_size": 2.5}, "val_batch_size"),
    "batch_size=2.5": ({"batch_size": 2.5}, "batch_size"),
}


@pytest.mark.parametrize("bad", list(BAD_TRAINER), ids=list(BAD_TRAINER))
def test_trainer_refuses_bad_settings(bad):
    kwargs, name = BAD_TRAINER[bad]
    with pytest.raises(ValueError, match=re.escape(name)):
        make_trainer(None, **kwargs)


def test_trainer_refuses_patience_zero_and_empty_validation():
    prob = make_problem()
    model = LISTACP.from_algorithm(prob.A, lam=0.1, n_layers=2)
    val = prob.sample(10, torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match="patience"):
        Trainer(model, nmse, prob.sample, val, max_steps=5, patience=0, progress=False)
    with pytest.raises(ValueError, match="val_data has 0 samples"):
        Trainer(model, nmse, prob.sample, (val[0][:0], val[1][:0]), max_steps=5, progress=False)


def test_non_scalar_loss_is_refused():
    def per_sample(pred, target):
        return ((pred - target) ** 2).sum(-1)

    with pytest.raises(ValueError, match="loss_fn must return a scalar"):
        make_trainer(None, loss=per_sample).fit()
    with pytest.raises(ValueError, match="loss_fn"):
        make_trainer(None, loss="mse")


@pytest.mark.parametrize("kwargs, name", [
    ({"patience": 0}, "patience"), ({"patience": 1.5}, "patience"), ({"active_layers": 2.5}, "active_layers"),
    ({"active_layers": 0}, "active_layers"), ({"max_steps": 2.5}, "max_steps"), ({"lr": float("inf")}, "lr"),
    ({"lr": -1.0}, "lr"),
])
def test_stage_refuses_bad_values(kwargs, name):
    base = {"name": "s", "lr": 1e-3, "max_steps": 5}
    with pytest.raises(ValueError, match=name):
        Stage(**{**base, **kwargs})


@pytest.mark.parametrize("args, kwargs, name", [
    ((0, 1e-3, 5), {}, "n_layers"), ((2.5, 1e-3, 5), {}, "n_layers"), ((2, 1e-3, 5), {"first_layer": 3}, "first_layer"),
    ((2, 1e-3, 5), {"first_layer": 0}, "first_layer"), ((2, 1e-3, 5), {"decays": (0.2, -1.0)}, "decays"),
    ((2, 1e-3, 5), {"patience": 0}, "patience"),
])
def test_layerwise_refuses_bad_values(args, kwargs, name):
    with pytest.raises(ValueError, match=name):
        layerwise(*args, **kwargs)


@pytest.mark.parametrize("theta", [-1.0, -1e-12, float("nan"), -2])
def test_soft_threshold_refuses_a_negative_threshold(theta):
    with pytest.raises(ValueError, match="theta"):
        soft_threshold(torch.ones(3), theta)
    assert torch.equal(soft_threshold(torch.tensor([2.0, -0.5]), 1.0), torch.tensor([1.0, 0.0]))


# ---------------------------------------------------------------- the math of the schedule (issue 29, item 9)
@pytest.mark.parametrize("patience", [1, 2, 3])
def test_a_stage_that_never_improves_stops_after_exactly_patience_validations(patience):
    calls = {"val": 0}

    def worsening(pred, target):  # every validation after the stage's start is worse than the one before
        if not torch.is_grad_enabled():
            calls["val"] += 1
            return nmse(pred, target) * 0 + calls["val"]
        return nmse(pred, target)

    trainer = make_trainer(None, loss=worsening, stages=[Stage("flat", 1e-4, 100, patience=patience)], val_every=2,
                           divergence_factor=1e9)
    res = trainer.fit()
    assert len(res.history) == patience
    assert res.stages[0]["stopped_early"] and res.stages[0]["steps"] == 2 * patience


@pytest.mark.parametrize("schedule, expected", [
    ("constant", lambda s, n: 0.1),
    ("cosine", lambda s, n: 0.05 * (1 + __import__("math").cos(__import__("math").pi * s / n))),
    ("linear", lambda s, n: 0.1 * (1 - s / n)),
])
def test_learning_rate_at_each_step_of_each_schedule(schedule, expected):
    seen = []

    class Spy(torch.optim.Adam):
        def step(self, closure=None):
            seen.append(self.param_groups[0]["lr"])
            return super().step(closure)

    trainer = make_trainer(None, stages=[Stage("s", 0.1, 8)], schedule=schedule, divergence_factor=1e9)
    original = torch.optim.Adam
    torch.optim.Adam = Spy
    try:
        trainer.fit()
    finally:
        torch.optim.Adam = original
    assert seen == pytest.approx([expected(s, 8) for s in range(8)], rel=1e-12, abs=1e-15)
    if schedule != "constant":
        assert seen[0] == pytest.approx(0.1) and seen[-1] < seen[0]
