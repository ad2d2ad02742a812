"""Model folders from untrusted sources (issue 29, item 7 of the issue / item 5 of the reliability work).

Crafted folders must be refused with a ValueError before anything big is allocated; saving is atomic.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from unrolled.core import io
from unrolled.core.io import CONFIG_FILE, WEIGHTS_FILE, load_model, read_config, save_model
from unrolled.core.registry import NETS


def small_net():
    spec = NETS["lista-cp"]
    return spec.from_algorithm(spec.problem(seed=0, small=True), 3, False, dict(spec.options))


@pytest.fixture
def folder(tmp_path):
    save_model(small_net(), tmp_path / "m")
    return tmp_path / "m"


def _edit_config(folder, **changes):
    payload = json.loads((folder / CONFIG_FILE).read_text())
    for key, value in changes.items():
        if key.startswith("config."):
            payload["config"][key[7:]] = value
        elif value is None:
            payload.pop(key, None)
        else:
            payload[key] = value
    (folder / CONFIG_FILE).write_text(json.dumps(payload))


def test_round_trip(folder):
    net = small_net()
    loaded = load_model(folder)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), loaded.state_dict().values()))


def test_huge_config_with_tiny_weights_is_refused_before_allocating(folder):
    # 10 layers of 10^6 x 10^6 float64 matrices: 8e13 bytes each. Allocating would fail with a
    # RuntimeError (out of memory); the header check refuses it first, with a ValueError.
    _edit_config(folder, **{"config.m": 10**6, "config.n": 10**6, "config.n_layers": 10,
                            "config.ss_fractions": [0.0] * 10})
    with pytest.raises(ValueError, match="weights do not match|has shape"):
        load_model(folder)


def test_a_config_of_millions_of_layers_is_refused_before_building(folder, monkeypatch):
    # 10^6 layers of a 10 x 20 LISTA-CP: building even on the meta device would take minutes and gigabytes of
    # Python objects before the weights could be compared
    _edit_config(folder, **{"config.n_layers": 10**6, "config.ss_fractions": [0.0] * 10**6})
    built = []
    monkeypatch.setattr(io, "_build", lambda *a, **k: built.append(a))
    with pytest.raises(ValueError, match=r"n_layers=1000000 exceeds max_layers=10000"):
        load_model(folder)
    assert not built


def test_max_layers_is_the_users_to_raise(folder):
    _edit_config(folder, **{"config.n_layers": 5, "config.ss_fractions": [0.0] * 5})
    with pytest.raises(ValueError, match="exceeds max_layers=4"):
        load_model(folder, max_layers=4)
    with pytest.raises(ValueError, match="weights do not match"):  # allowed depth: refused by the header check
        load_model(folder, max_layers=5)


def test_shape_mismatch_is_refused_naming_the_tensor(folder):
    _edit_config(folder, **{"config.n": 21})
    with pytest.raises(ValueError, match=r"'A' has shape \(10, 20\)"):
        load_model(folder)


@pytest.mark.parametrize("version", [2, 0, "1", None, True])
def test_unsupported_format_version_is_refused(folder, version):
    _edit_config(folder, format_version=version)
    with pytest.raises(ValueError, match="format_version"):
        load_model(folder)
    with pytest.raises(ValueError, match="format_version"):
        read_config(folder)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(folder, bad):
    state = load_file(str(folder / WEIGHTS_FILE))
    state["W.raw.1"][2, 3] = bad
    save_file(state, str(folder / WEIGHTS_FILE))
    with pytest.raises(ValueError, match=r"non-finite .*W\.raw\.1"):
        load_model(folder)


def test_float16_and_integer_weights_are_refused(folder):
    state = load_file(str(folder / WEIGHTS_FILE))
    save_file({**state, "A": state["A"].half()}, str(folder / WEIGHTS_FILE))
    with pytest.raises(ValueError, match="'A' has dtype F16"):
        load_model(folder)
    save_file({**state, "A": state["A"].long()}, str(folder / WEIGHTS_FILE))
    with pytest.raises(ValueError, match="'A' has dtype I64"):
        load_model(folder)


def test_missing_and_extra_tensors_are_refused(folder):
    state = load_file(str(folder / WEIGHTS_FILE))
    del state["theta.raw.2"]
    state["evil"] = torch.zeros(1)
    save_file(state, str(folder / WEIGHTS_FILE))
    with pytest.raises(ValueError, match=r"missing \['theta.raw.2'\], unexpected \['evil'\]"):
        load_model(folder)


def test_garbage_files_are_value_errors(folder):
    (folder / WEIGHTS_FILE).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{bad json")
    with pytest.raises(ValueError, match="not a valid safetensors"):
        load_model(folder)
    (folder / CONFIG_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_model(folder)
    (folder / CONFIG_FILE).write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        load_model(folder)


def test_config_that_does_not_build_the_class_is_a_value_error(folder):
    _edit_config(folder, **{"config.no_such_argument": 1})
    with pytest.raises(ValueError, match="does not build a LISTACP"):
        load_model(folder)


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "m"
    save_model(small_net(), target)
    before = {f: (target / f).read_bytes() for f in (WEIGHTS_FILE, CONFIG_FILE)}

    def broken(state, path):
        with open(path, "wb") as fh:
            fh.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(io, "save_file", broken)
    net = small_net()
    with torch.no_grad():
        net.A.mul_(2.0)
    with pytest.raises(OSError, match="disk full"):
        save_model(net, target)
    assert {f: (target / f).read_bytes() for f in (WEIGHTS_FILE, CONFIG_FILE)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary folder left behind
    with pytest.raises(OSError):
        save_model(net, tmp_path / "new")
    assert not (tmp_path / "new").exists()  # a failed first save leaves no half folder


def test_save_over_a_folder_keeps_other_files(tmp_path):
    target = tmp_path / "m"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    save_model(small_net(), target)
    save_model(small_net(), target)
    assert (target / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in target.iterdir()) == sorted(["notes.txt", WEIGHTS_FILE, CONFIG_FILE])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    load_model(target)
