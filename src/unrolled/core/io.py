"""Save and load models as safetensors weights plus a JSON config (no pickle).

A model class takes part by being decorated with :func:`register_model` and by
implementing ``config() -> dict``, the JSON-serialisable keyword arguments of
its constructor. :func:`load_model` rebuilds the model with ``cls(**config)``
and loads the weights into it, so a saved model can be evaluated by a process
that knows nothing but the folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from unrolled.core.registry import MODELS

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT_VERSION = 1


def register_model(cls: type[nn.Module]) -> type[nn.Module]:
    """Class decorator: make ``cls`` loadable by :func:`load_model` under its class name."""
    MODELS.register(cls.__name__, cls)
    return cls


def registered_models() -> dict[str, type[nn.Module]]:
    """Names and classes of all registered models (of every family)."""
    return dict(MODELS.items())


def save_model(model: nn.Module, directory: str | Path, metadata: dict | None = None) -> Path:
    """Write ``model`` to ``directory`` as ``model.safetensors`` + ``config.json``.

    Parameters
    ----------
    model : nn.Module
        A registered model with a ``config()`` method.
    directory : str or Path
        Created if missing; existing files of the same names are overwritten.
    metadata : dict, optional
        Extra JSON-serialisable information stored in the config (training
        settings, data model, metrics...).

    Returns
    -------
    Path
        The directory.
    """
    name = type(model).__name__
    if name not in MODELS:
        raise ValueError(f"model class {name!r} is not registered; decorate it with @register_model")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_FILE))
    payload = {
        "format_version": FORMAT_VERSION,
        "class": name,
        "config": model.config(),
        "metadata": metadata or {},
    }
    (directory / CONFIG_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True))
    return directory


def read_config(directory: str | Path) -> dict:
    """The parsed ``config.json`` of a saved model."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {CONFIG_FILE} in {directory}: not a saved unrolled model")
    return json.loads(path.read_text())


def load_model(directory: str | Path, *, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model saved by :func:`save_model`.

    Parameters
    ----------
    directory : str or Path
        Folder holding ``model.safetensors`` and ``config.json``.
    device : str or torch.device, default 'cpu'
        Where to put the model.
    """
    payload = read_config(directory)
    name = payload.get("class")
    if name not in MODELS:  # reading the registry loads every family
        raise ValueError(f"unknown model class {name!r} in {directory}; known: {sorted(MODELS)}")
    model = MODELS[name](**payload["config"])
    state = load_file(str(Path(directory) / WEIGHTS_FILE))
    saved = {t.dtype for t in state.values() if t.is_floating_point()}
    if len(saved) == 1 and saved != {t.dtype for t in model.state_dict().values() if t.is_floating_point()}:
        model = model.to(saved.pop())  # keep the dtype the model was saved in (its config may not name one)
    model.load_state_dict(state, strict=True)
    return model.to(device)
