"""The corona reproduction (quick), its review-table2 row, and the registrations."""

from __future__ import annotations

import json
import math

from unrolled.core.registry import DEMO_PARTS, EXPERIMENTS, NETS
from unrolled.experiments.review_table2 import TABLE2_ROWS, _check_row


def test_quick_reproduction_and_table2_row(tmp_path):
    assert "corona" in EXPERIMENTS and "corona" in DEMO_PARTS and "corona" in NETS
    row = TABLE2_ROWS["CORONA"].measure(tmp_path, quick=True, seed=0, progress=False)
    _check_row("CORONA", row)
    assert row["unrolled"]["params"] < row["generic"]["params"] and row["iterative"]["params"] is None
    payload = json.loads((tmp_path / "results.json").read_text())
    for name in ("results.md", "mip.png", "training.png"):
        assert (tmp_path / name).stat().st_size > 0
    rows = payload["rows"]
    assert len(rows) == 4
    for r in rows.values():
        assert math.isfinite(r["S_db"]) and math.isfinite(r["L_db"]) and r["time_s"] > 0
    ista, corona = list(rows.values())[1:3]
    assert corona["S_db"] < ista["S_db"]  # even a few training steps improve on the ISTA it starts from
    md = (tmp_path / "results.md").read_text()
    assert payload["threads"] >= 1 and "15.33" in md
    assert f"unrolled reproduce corona --quick --threads {payload['threads']}`" in md  # the command that made it
    claims = md.split("## The review's statements beside ours")[1].split("![MIP]")[0]
    assert claims.count("\n| ") == 7  # header + 6 statements, each with a verdict
    speed = payload["speedup_fista_over_corona"]
    assert f"{speed:.1f}x | {'yes' if speed > 50 else 'no'} |" in claims


def test_demo_part_runs_and_training_beats_its_ista_start(tmp_path, capsys):
    part = DEMO_PARTS["corona"]
    assert part.family == "lowrank"
    payload = part.run(tmp_path, seed=0, device="cpu", progress=False)
    assert (tmp_path / "mip.png").stat().st_size > 1000 and (tmp_path / "results.md").is_file()
    rows = payload["rows"]
    trained, untrained = rows["CORONA, trained"], rows["CORONA, untrained (5 ISTA iterations)"]
    assert trained["S_db"] < untrained["S_db"] and trained["L_db"] < untrained["L_db"]
    assert all(math.isfinite(r["S_db"]) and math.isfinite(r["L_db"]) for r in rows.values())
    assert "CORONA" in capsys.readouterr().out
