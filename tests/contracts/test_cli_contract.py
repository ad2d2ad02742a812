"""`unrolled train --model NAME` and `unrolled evaluate DIR` work for every registered net."""

from __future__ import annotations

import json

import pytest

from unrolled.cli import main
from unrolled.core.io import read_config
from unrolled.core.registry import NETS


@pytest.mark.parametrize("name", sorted(NETS))
def test_train_then_evaluate_every_net(name, tmp_path, capsys):
    spec = NETS[name]
    out = tmp_path / "run"
    assert main(["train", "--model", name, "--small", "--layers", "2", "--steps", "2", "--schedule", "end-to-end",
                 "--val-every", "1", "--n-val", "8", "--batch-size", "4", "--out", str(out), "--no-progress"]) == 0
    meta = read_config(out / "model")["metadata"]
    assert meta["net"] == name and meta["problem"] == json.loads(json.dumps(meta["problem"]))
    capsys.readouterr()
    assert main(["evaluate", str(out / "model"), "--n-test", "6", "--out", str(tmp_path / "ev")]) == 0
    printed = capsys.readouterr().out
    ev = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert ev["net"] == name and ev["metric"] == spec.metric_name
    labels = [spec.cls.__name__, *(spec.baselines or {"solver": None})]
    assert list(ev["curves"]) == labels
    for label in labels:
        assert label in printed
        assert len(ev["curves"][label]) == 2


def test_list_names_every_net_family_and_demo_part(capsys):
    from unrolled.core.registry import FAMILIES, demo_parts

    assert main(["list"]) == 0
    printed = capsys.readouterr().out
    for name in [*NETS, *FAMILIES, *(p.name for p in demo_parts())]:
        assert name in printed, name


def test_train_rejects_unknown_problem_options(tmp_path):
    with pytest.raises(SystemExit, match="no option among"):
        main(["train", "--model", sorted(NETS)[0], "--problem", "no_such_option=1", "--out", str(tmp_path)])
