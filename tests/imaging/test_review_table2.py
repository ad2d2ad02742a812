"""``review-table2`` (quick, the ADMM-CSNet row only), its settings validation and the family in ``unrolled list``."""

from __future__ import annotations

import json

import pytest

from unrolled.cli import main
from unrolled.core.registry import EXPERIMENTS
from unrolled.experiments.review_table2 import PAPER, TABLE2_ROWS, settings_key


def test_quick_table_of_one_row_with_settings(tmp_path):
    rows = EXPERIMENTS["review-table2"].run(tmp_path, quick=True, progress=False, rows=("ADMM-CSNet",),
                                            admm_csnet={"steps": 2})
    assert list(rows) == ["ADMM-CSNet"] and rows["ADMM-CSNet"]["settings"] == {"steps": 2}
    saved = json.loads((tmp_path / "results.json").read_text())
    ours = saved["rows"]["ADMM-CSNet"]["ours"]
    assert ours["iterative"]["params"] is None and ours["generic"]["params"] > ours["unrolled"]["params"] > 0
    assert all(ours[c]["time_s"] > 0 for c in ("unrolled", "iterative", "generic"))
    # the row's own experiment ran at 20 % only, with the step count passed through
    inner = json.loads((tmp_path / "admm-csnet" / "results.json").read_text())
    assert [r["ratio"] for r in inner["results"]] == [0.2] and inner["settings"]["steps"] == 2
    text = (tmp_path / "results.md").read_text()
    assert "12.59" in text and "4.82" in text  # the paper's BM3D-AMP time and its ratio to ADMM-CSNet's 2.61 s
    assert (tmp_path / "time_ratios.png").stat().st_size > 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(rows=("LISTA",)), "rows"), (dict(rows=()), "rows"), (dict(not_a_row={}), "not_a_row"),
    (dict(dublid=3), "dublid"), (dict(rows=("ADMM-CSNet",), dublid={"steps": 1}), "dublid"),
])
def test_bad_settings_are_refused(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        EXPERIMENTS["review-table2"].run(tmp_path, quick=True, progress=False, **kwargs)
    assert not (tmp_path / "results.json").exists()


def test_rows_and_keys():
    assert {"ADMM-CSNet", "DUBLID"} <= set(TABLE2_ROWS) <= set(PAPER)
    assert settings_key("ADMM-CSNet") == "admm_csnet" and settings_key("DUBLID") == "dublid"


def test_unrolled_list_shows_the_family(capsys):
    main(["list"])
    out = capsys.readouterr().out
    for word in ("imaging", "admm_cs", "hqs_blind_deblur", "admm-csnet (ADMMCSNet)", "dublid (DUBLID)",
                 "imaging-csmri", "imaging-deblur", "review-table2", "csmri", "deblur"):
        assert word in out, word
