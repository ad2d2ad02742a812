"""``unrolled reproduce crf-rnn --quick`` and the ``crf-rnn`` demo part."""

from __future__ import annotations

import json

import pytest

from unrolled.core.registry import DEMO_PARTS, EXPERIMENTS

METHODS = {"unary FCN", "FCN + mean-field CRF (tuned)", "FCN + CRF-RNN K=5 (end to end)",
           "FCN + CRF-RNN K=10 (end to end)", "deeper plain CNN"}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("crf-rnn-quick")
    return out, EXPERIMENTS["crf-rnn"].run(out, quick=True, progress=False)


def test_quick_reproduction_outputs(quick):
    out, payload = quick
    for name in ("results.json", "results.md", "segmentations.png"):
        assert (out / name).is_file(), name
    data = json.loads((out / "results.json").read_text())
    assert set(data["results"]) == METHODS and data["quick"] and data["threads"] >= 1
    for r in data["results"].values():
        assert 0 < r["mean_iou"] <= 1 and 0 < r["pixel_accuracy"] <= 1 and r["ms_per_image"] > 0
    res = data["results"]
    assert res["deeper plain CNN"]["n_parameters"] > 2 * res["FCN + CRF-RNN K=10 (end to end)"]["n_parameters"]
    # the tuned CRF is the grid's best on validation
    assert data["tuned_crf"]["grid_size"] == 2
    errors = data["filtering_relative_error"]
    assert errors["stride 1"]["bilateral"] < 1e-6 and errors["stride 1"]["spatial"] < 1e-3
    assert 0 < errors["stride 2"]["bilateral"] < errors["stride 3"]["bilateral"]
    md = (out / "results.md").read_text()
    assert "review" in md and "Quick run" in md and "unrolled networks need far fewer parameters" in md


def test_rerun_reuses_the_checkpoints(quick, tmp_path):
    out, payload = quick
    again = EXPERIMENTS["crf-rnn"].run(out, quick=True, progress=False)
    assert again["training"] == payload["training"]
    assert again["results"]["deeper plain CNN"]["mean_iou"] == payload["results"]["deeper plain CNN"]["mean_iou"]


def test_unknown_setting_is_refused(tmp_path):
    with pytest.raises(TypeError, match="unexpected keyword argument 'n_epochs'"):
        EXPERIMENTS["crf-rnn"].run(tmp_path, quick=True, n_epochs=3)


def test_demo_part(tmp_path, capsys):
    part = DEMO_PARTS["crf-rnn"]
    assert part.family == "segmentation" and part.order == 80
    payload = part.run(tmp_path, seed=0, device="cpu", progress=False)
    assert (tmp_path / "crf_rnn_demo.png").is_file()
    rows = {r["method"]: r for r in payload["rows"]}
    assert rows["+ mean-field CRF"]["mean_iou"] > rows["per-pixel unary"]["mean_iou"]
    assert "CRF-RNN" in capsys.readouterr().out
