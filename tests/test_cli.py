"""The `unrolled` command line: every subcommand runs, writes its files and fails clearly."""

import argparse
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


def test_a_closed_output_pipe_ends_quietly():
    # `unrolled list | head -1`: the reader goes away before the output is written
    proc = subprocess.Popen([sys.executable, "-m", "unrolled.cli", "list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


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
    from unrolled.core.registry import demo_parts

    assert list(PARTS) == [d.name for d in demo_parts()]  # in increasing order
    orders = [d.order for d in demo_parts()]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    assert list(PARTS)[:5] == ["lista", "slognet", "lpalm", "sbl", "irls"]
    assert {"corona", "deepnmf", "crf-rnn"} <= set(PARTS)


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
    with pytest.raises(SystemExit, match="no setting no_such_setting; valid --set keys: .*timing_trials"):
        main(["reproduce", "sbl-timing", "--quick", "--out", str(tmp_path), "--set", "no_such_setting=1"])
    assert not (tmp_path / "sbl-timing" / "no_such_setting").exists()


def test_every_option_has_help_and_shows_its_default(capsys):
    parser = build_parser()
    for cmd, sub in parser._subparsers._group_actions[0].choices.items():
        assert sub.description, f"`unrolled {cmd} --help` says nothing about what {cmd} does"
        for action in sub._actions:
            if not action.option_strings:
                continue
            assert action.help, f"{cmd} {action.option_strings} has no help text"
            if action.default not in (None, False, argparse.SUPPRESS):
                sub.print_help()
                flag = action.option_strings[-1]
                text = " ".join(capsys.readouterr().out.split())
                tail = text.split(flag, 2)[-1]
                assert "default" in tail[:400], f"{cmd} {flag} does not show its default"


@pytest.mark.parametrize("name", ["lista", "sbl-fig3ab", "slognet-fig5", "lpalm-table3", "irls-real"])
def test_reproduce_name_help_lists_the_set_keys_with_defaults(name, capsys):
    from dataclasses import fields

    from unrolled.experiments import EXPERIMENTS

    with pytest.raises(SystemExit) as e:
        main(["reproduce", name, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"--set keys of {name}" in out
    settings = EXPERIMENTS[name].settings()
    assert settings
    for key, (_, default) in settings.items():
        assert f"  {key} " in out and repr(default)[:20] in out, key
    if name == "sbl-fig3ab":  # the nested net spec's fields are keys too (sbl_common.with_overrides)
        from unrolled.experiments.sbl_common import NetSpec

        assert {f.name for f in fields(NetSpec)} <= set(settings)
        assert "net" not in settings


def test_every_declared_experiment_config_resolves_to_a_dataclass():
    from unrolled.experiments import EXPERIMENTS

    declared = [name for name, exp in EXPERIMENTS.items() if exp.config]
    assert len(declared) >= 20
    for name in declared:
        assert EXPERIMENTS[name].settings(), name


def test_threads_option_sets_torch_and_numba_threads(tmp_path, capsys):
    import numba
    import torch

    before, numba_before = torch.get_num_threads(), numba.get_num_threads()
    try:
        assert main(["train", "--model", "lista-cp", "--small", "--layers", "1", "--steps", "1", "--n-val", "4",
                     "--batch-size", "2", "--schedule", "end-to-end", "--threads", "1", "--no-progress",
                     "--out", str(tmp_path / "s")]) == 0
        assert torch.get_num_threads() == 1
        assert numba.get_num_threads() == 1  # the Lasso kernel's prange is bounded too
        assert main(["train", "--model", "lista-cp", "--small", "--layers", "1", "--steps", "1", "--n-val", "4",
                     "--batch-size", "2", "--schedule", "end-to-end", "--threads", "2", "--no-progress",
                     "--out", str(tmp_path / "t")]) == 0
        assert torch.get_num_threads() == 2
        assert numba.get_num_threads() == min(2, numba.config.NUMBA_NUM_THREADS)
        assert main(["train", "--threads", "0", "--out", str(tmp_path / "u")]) == 2
        assert "--threads must be >= 1" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)
        numba.set_num_threads(numba_before)


def test_train_with_the_ekf_optimizer(tmp_path):
    out = tmp_path / "ekf"
    argv = ["train", "--model", "lista-cp", "--small", "--layers", "2", "--steps", "6", "--val-every", "3",
            "--n-val", "16", "--batch-size", "8", "--schedule", "end-to-end", "--optimizer", "ekf",
            "--optimizer-option", "decoupling='parameter'", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    hist = json.loads((out / "history.json").read_text())
    losses = [h["train_loss"] for h in hist["history"]]
    assert losses[-1] < losses[0]
    assert (out / "model" / "model.safetensors").is_file()
    assert main(argv[:-2] + ["--optimizer-option", "no_such=1", "--out", str(tmp_path / "bad")]) == 2


def test_benchmark_all_runs_the_chosen_subset(tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["benchmark", "all", "--quick", "--only", "palm-per-iteration", "--out", str(out)]) == 0
    payload = json.loads((out / "all.json").read_text())
    assert payload["benchmarks"] == ["palm-per-iteration"] and set(payload["wall_s"]) == {"palm-per-iteration"}
    assert {r["benchmark"] for r in payload["rows"]} == {"palm-per-iteration"}
    assert main(["benchmark", "all", "--only", "no-such-bench", "--out", str(out)]) == 2
    assert "no-such-bench" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="only"):
        main(["benchmark", "palm-per-iteration", "--skip", "x", "--out", str(out)])
