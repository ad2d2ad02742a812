"""``unrolled reproduce imaging-csmri --quick``, the csmri demo part and the ADMM-CSNet Table II row are wired up."""

import json

import pytest

from unrolled.core.registry import DEMO_PARTS, EXPERIMENTS
from unrolled.experiments.review_table2 import TABLE2_ROWS


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("csmri-quick")
    return out, EXPERIMENTS["imaging-csmri"].run(out, quick=True, progress=False)


def test_quick_reproduction_writes_its_report(quick):
    out, payload = quick
    for name in ("results.json", "results.md", "psnr_vs_sampling.png", "examples.png"):
        assert (out / name).stat().st_size > 0, name
    saved = json.loads((out / "results.json").read_text())
    assert saved["quick"] and [r["ratio"] for r in saved["results"]] == [0.2, 0.4]
    for r in saved["results"]:
        for test in ("phantoms", "natural"):
            s = r["scores"][test]
            assert set(s) == {"zero-filling", "ADMM-TV", "ADMM-CSNet", "CNN"}
            assert s["ADMM-TV"]["psnr"] > s["zero-filling"]["psnr"]  # TV helps even on 16 x 16
        assert r["params"]["CNN"] > r["params"]["ADMM-CSNet"] > 0
        assert all(t > 0 for t in r["time_s"].values())
    text = (out / "results.md").read_text()
    assert "about 40x faster" in text and "10 % less sampled data" in text and "3 dB" in text
    # more data helps every converged method
    lo, hi = saved["results"]
    assert hi["scores"]["natural"]["ADMM-TV"]["psnr"] > lo["scores"]["natural"]["ADMM-TV"]["psnr"]


def test_registrations():
    assert "ADMM-CSNet" in TABLE2_ROWS
    part = DEMO_PARTS["csmri"]
    assert part.family == "imaging" and part.order == 60
    with pytest.raises(ValueError, match="unknown settings"):
        EXPERIMENTS["imaging-csmri"].run("/tmp/never-written", quick=True, not_a_setting=1)


def test_demo_part_writes_its_figure(tmp_path):
    out = DEMO_PARTS["csmri"].run(tmp_path, seed=0, device="cpu", progress=False, steps=3)
    assert (tmp_path / "csmri.png").stat().st_size > 0 and (tmp_path / "csmri.json").exists()
    scores = out["psnr_db"]
    assert scores["ADMM-TV"] > scores["zero-filling"]
    # the untrained net is 10 ADMM (DCT) iterations from the zero-filled start: not worse than zero-filling
    assert scores["untrained net (= 10 ADMM iterations)"] > scores["zero-filling"] - 0.5
