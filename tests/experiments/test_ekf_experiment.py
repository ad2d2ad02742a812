"""``unrolled reproduce ekf-training --quick``: outputs, the target table, its registration and bad settings."""

import json

import pytest

from unrolled.core.registry import EXPERIMENTS
from unrolled.experiments.ekf_training import QUICK, first_reach, reproduce_ekf_training


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ekf-quick")
    return out, EXPERIMENTS["ekf-training"].run(out, quick=True, progress=False)


def test_outputs_and_tables(quick_run):
    out, payload = quick_run
    for name in ("results.json", "results.md", "loss_vs_epoch.png", "loss_vs_time.png"):
        assert (out / name).is_file(), name
    data = json.loads((out / "results.json").read_text())
    assert data["torch_threads"] >= 1 and data["quick"] is True
    assert set(data["runs"]) == set(QUICK.tasks)
    for task, runs in data["runs"].items():
        assert sorted(r["optimizer"] for r in runs) == ["adam", "ekf", "sgd"]
        for r in runs:
            n = QUICK.epochs_ekf if r["optimizer"] == "ekf" else QUICK.epochs_bp
            assert r["epoch"] == list(range(n + 1))  # epoch 0 (initial model) .. n
            assert r["seconds"] == sorted(r["seconds"]) and r["seconds"][0] == 0.0
            assert len({r["train_loss"][0] for r in runs}) == 1  # every method starts from the same weights
        # the EKF trains: its training loss falls below the initial one
        ekf = next(r for r in runs if r["optimizer"] == "ekf")
        assert ekf["train_loss"][-1] < 0.8 * ekf["train_loss"][0]
    assert len(data["targets"]) == 3 * len(QUICK.tasks)
    for row in data["targets"]:
        source = "adam" if row["target"].startswith("Adam") else "ekf"
        assert row[f"{source}_epochs"] is not None  # each target is a loss its method reached
        for opt in ("ekf", "sgd", "adam"):
            run = next(r for r in data["runs"][row["task"]] if r["optimizer"] == opt)
            if row[f"{opt}_epochs"] is None:
                assert min(run["train_loss"]) > row["target_loss"]
            else:  # the first epoch at or below the target
                assert run["train_loss"][row[f"{opt}_epochs"]] <= row["target_loss"]
                assert all(loss > row["target_loss"] for loss in run["train_loss"][: row[f"{opt}_epochs"]])
                assert row[f"{opt}_cpu_seconds"] <= run["cpu_seconds"][-1]
        if row["ekf_epochs"] is not None and row["adam_epochs"] is not None:
            assert row["adam_over_ekf_epochs"] == pytest.approx(row["adam_epochs"] / row["ekf_epochs"])
    md = (out / "results.md").read_text()
    assert "orders of magnitude lower number of epochs" in md and "Adam/EKF CPU" in md


def test_first_reach():
    curve = {"epoch": [0, 1, 2, 3], "train_loss": [1.0, 0.5, 0.2, 0.1], "seconds": [0.0, 1.0, 2.0, 3.0],
             "cpu_seconds": [0.0, 0.5, 1.0, 1.5]}
    assert first_reach(curve, 0.2) == (2, 2.0, 1.0)
    assert first_reach(curve, 0.05) == (None, None, None)


@pytest.mark.parametrize("settings,match", [
    ({"tasks": ("mnist",)}, "tasks"), ({"epochs_ekf": 0}, "epochs_ekf"), ({"sgd_lrs": ()}, "sgd_lrs"),
    ({"ekf": {}}, "ekf"),
])
def test_bad_settings(tmp_path, settings, match):
    with pytest.raises(ValueError, match=match):
        reproduce_ekf_training(tmp_path, quick=True, **settings)
