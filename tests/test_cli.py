"""The `unrolled` command line: every subcommand runs, writes its files and fails clearly."""

import json
import subprocess
import sys

import pytest

from unrolled.cli import build_parser, main

SUBCOMMANDS = ["list", "demo", "train", "evaluate", "benchmark", "reproduce"]


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    assert "usage: unrolled" in capsys.readouterr().out


def test_common_options_everywhere():
    parser = build_parser()
    for cmd in ["demo", "train", "evaluate", "benchmark", "reproduce"]:
        sub = parser._subparsers._group_actions[0].choices[cmd]
        opts = {o for a in sub._actions for o in a.option_strings}
        assert {"--device", "--seed", "--out"} <= opts, cmd


def test_console_script_list():
    out = subprocess.run([sys.executable, "-m", "unrolled.cli", "list"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for word in ("sparse_coding", "LISTACPSS", "lista", "fista-vs-sklearn"):
        assert word in out.stdout


def test_train_then_evaluate(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "alista", "--m", "30", "--n", "60", "--layers", "3", "--steps", "10",
            "--val-every", "5", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    assert (out / "model" / "model.safetensors").is_file()
    assert (out / "model" / "config.json").is_file()
    hist = json.loads((out / "history.json").read_text())
    assert len(hist["stages"]) == 9  # layer-wise: 3 stages per layer
    capsys.readouterr()
    assert main(["evaluate", str(out / "model"), "--n-test", "64", "--out", str(tmp_path / "ev")]) == 0
    printed = capsys.readouterr().out
    assert "ALISTA" in printed and "FISTA" in printed
    ev = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert len(ev["curves"]["ALISTA"]) == 3


def test_bad_input_is_an_error_not_a_traceback(tmp_path, capsys):
    assert main(["train", "--m", "0", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "m must be" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
    assert "config.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["reproduce", "no-such-experiment"])
    with pytest.raises(SystemExit, match="CUDA"):
        if __import__("torch").cuda.is_available():
            raise SystemExit("CUDA present: nothing to check")
        main(["demo", "--device", "cuda"])


def test_demo_rejects_unknown_parts(tmp_path):
    from unrolled.experiments.demo import PARTS, run_demo

    with pytest.raises(SystemExit):
        main(["demo", "--part", "nope", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="demo parts"):
        run_demo(tmp_path, parts=("lista", "nope"))
    with pytest.raises(ValueError, match="demo parts"):
        run_demo(tmp_path, parts=())
    assert list(PARTS) == ["lista", "slognet", "lpalm", "sbl", "irls", "crf-rnn"]


def test_evaluate_rejects_models_of_other_families(tmp_path):
    """A model with no registered net spec (no algorithm to compare with) is refused, naming its class."""
    from unrolled.core.io import save_model
    from unrolled.sbl import MaxSparseNet

    save_model(MaxSparseNet(20, 100, n_layers=2, width=16), tmp_path / "m", metadata={"problem": {"n": 20}})
    with pytest.raises(SystemExit, match="MaxSparseNet"):
        main(["evaluate", str(tmp_path / "m"), "--out", str(tmp_path / "ev")])


def test_set_overrides_are_parsed_as_python_literals():
    from unrolled.cli import parse_overrides

    got = parse_overrides(["steps=100000", "lr=1e-2", "compile=True", "methods=('sbl', 'gf-lstm')", "name=abc"])
    assert got == {"steps": 100000, "lr": 0.01, "compile": True, "methods": ("sbl", "gf-lstm"), "name": "abc"}
    assert parse_overrides(None) == {}
    for bad in ("steps", "=3", "not a name=3"):
        with pytest.raises(SystemExit, match="KEY=VALUE"):
            parse_overrides([bad])


def test_reproduce_set_reaches_the_experiment_config(tmp_path):
    assert main(["reproduce", "sbl-timing", "--quick", "--no-progress", "--out", str(tmp_path),
                 "--set", "timing_trials=8", "--set", "timing_updates=('mackay',)"]) == 0
    cfg = json.loads((tmp_path / "sbl-timing" / "results.json").read_text())["config"]
    assert cfg["timing_trials"] == 8 and cfg["timing_updates"] == ["mackay"]
    with pytest.raises(SystemExit, match="no setting among"):
        main(["reproduce", "sbl-timing", "--quick", "--out", str(tmp_path), "--set", "no_such_setting=1"])


def test_threads_option_sets_torch_threads(tmp_path, capsys):
    import torch

    before = torch.get_num_threads()
    try:
        assert main(["train", "--model", "lista-cp", "--small", "--layers", "1", "--steps", "1", "--n-val", "4",
                     "--batch-size", "2", "--schedule", "end-to-end", "--threads", "2", "--no-progress",
                     "--out", str(tmp_path / "t")]) == 0
        assert torch.get_num_threads() == 2
        assert main(["train", "--threads", "0", "--out", str(tmp_path / "u")]) == 2
        assert "--threads must be >= 1" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)
