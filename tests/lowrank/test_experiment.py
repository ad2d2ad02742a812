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
    assert payload["threads"] >= 1 and "15.33" in (tmp_path / "results.md").read_text()
