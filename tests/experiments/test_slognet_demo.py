"""The graph part of ``unrolled demo``: the pretrained SLoG-Net beside ADMM on fresh problems (no training)."""

from __future__ import annotations

import pytest

from unrolled.experiments.slognet_demo import run_slognet_demo


def test_demo_scores_the_pretrained_net_beside_admm(tmp_path, capsys):
    payload = run_slognet_demo(tmp_path, progress=False, n_problems=3, admm_max_iter=300)
    out = capsys.readouterr().out
    assert "pretrained" in out and "ADMM" in out and "F1" in out and payload["verdict"] in out
    r = {row["key"]: row for row in payload["rows"]}
    assert set(r) == {"net", "untrained", "admm_prior", "admm_oracle", "zeros"}
    # zeros score ACC = 1 - (support share) and F1 = 0; the trained net is far better than its start on RE and F1
    assert r["zeros"]["f1"] == 0 and r["zeros"]["mre_x"] == pytest.approx(1.0) and r["zeros"]["acc"] > 0.8
    assert r["net"]["mre_x"] < 0.5 < r["untrained"]["mre_x"] and r["net"]["f1"] > 0.5
    # the oracle scale is the least-squares scale: never a larger error than the prior scale
    assert r["admm_oracle"]["mre_x"] <= r["admm_prior"]["mre_x"] + 1e-12
    for name in ("results.json", "results.md", "scores.png"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "scores.png").stat().st_size < 300_000
