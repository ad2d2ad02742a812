"""Every pretrained model loads from the package (safetensors + JSON, no network) and reproduces its card.

Each model is re-scored on 1000 freshly simulated problems per setting (the card's generator seeds, which no
training or results run used) and must match its card's metric within ``unrolled.pretrained.tolerance``: four
standard errors of the difference between the card's estimate and this smaller one, plus a small floor.
"""

from __future__ import annotations

import json
import socket

import pytest
import torch

from unrolled.pretrained import card, evaluate, list_pretrained, load_pretrained, model_card, model_dir

N_TEST = 1000


def test_list_pretrained_names_every_family_model_shipped():
    names = list_pretrained()
    assert {"sbl-gf-lstm-large-mf", "sbl-gf-lstm", "sbl-doa-gf-lstm"} <= set(names)
    for name in names:
        d = model_dir(name)
        assert (d / "model.safetensors").is_file() and (d / "config.json").is_file()
        assert not list(d.glob("*.pt")) and not list(d.glob("*.pkl"))  # loading never unpickles
        c = card(name)
        for key in ("title", "solves", "data_model", "net", "training", "command", "evaluation"):
            assert c[key], key
        assert c["evaluation"]["metrics"]
        assert name in model_card(name)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="sbl-gf-lstm"):
        load_pretrained("no-such-net")


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a pretrained model tried to open a network connection")
    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("name", list_pretrained())
def test_pretrained_model_reproduces_its_card(name, no_network):
    net = load_pretrained(name)
    assert not net.training
    # stored in float32 (where it was trained in float32)
    saved = json.loads((model_dir(name) / "config.json").read_text())
    dtypes = {p.dtype for p in net.parameters()}
    if saved["config"].get("dtype") == "float32":
        assert dtypes == {torch.float32}
    result = evaluate(name, n_test=N_TEST)
    for key, tol in result["tolerance"].items():
        assert result["metrics"][key] == pytest.approx(result["card"][key], abs=tol), (key, result["metrics"][key])
