"""``unrolled reproduce deepnmf --quick`` and the ``deepnmf`` demo part run and write what they promise."""

from __future__ import annotations

import json
import math

import soundfile as sf

from unrolled.core.registry import DEMO_PARTS, EXPERIMENTS


def test_quick_reproduction_writes_tables_figures_and_audio(tmp_path):
    out = EXPERIMENTS["deepnmf"].run(tmp_path, quick=True, seed=0)
    payload = json.loads((tmp_path / "results.json").read_text())
    summary = payload["summary"]
    assert set(summary) >= {"noisy input", "BLSTM mask", "deep NMF K=10"}
    assert abs(summary["noisy input"]["sdr_improvement_db"]) < 1e-6
    for name, row in summary.items():
        assert all(math.isfinite(row[k]) for k in ("sdr_improvement_db", "si_sdr_improvement_db", "stoi"))
        assert row["ms_per_utterance"] >= 0
    assert summary["BLSTM mask"]["parameters"] > summary["deep NMF K=10"]["parameters"]
    assert len(payload["claims"]) == 6 and out["summary"] == summary
    for name in ("spectrograms.png", "sdr_vs_layers.png", "training.png", "results.md"):
        assert (tmp_path / name).stat().st_size > 1000
    x, fs = sf.read(tmp_path / "audio" / "example_deep_nmf.wav")
    assert fs == 8000 and len(x) == 8000
    assert "review" in (tmp_path / "results.md").read_text()


def test_demo_part_is_registered():
    part = DEMO_PARTS["deepnmf"]
    assert part.family == "nmf" and part.order == 75
