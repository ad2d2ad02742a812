"""Save and load models as safetensors weights plus a JSON config (no pickle).

A model class takes part by being decorated with :func:`register_model` and by
implementing ``config() -> dict``, the JSON-serialisable keyword arguments of
its constructor. :func:`load_model` rebuilds the model with ``cls(**config)``
and loads the weights into it, so a saved model can be evaluated by a process
that knows nothing but the folder.

A model folder may come from anywhere, so loading it trusts nothing: no code
runs (JSON and safetensors only), ``format_version`` must be one this version
reads, the weights file's header (names, shapes, dtypes) must match what the
config's model would allocate, checked on the ``meta`` device *before* any
real allocation (a huge config next to a tiny weights file is refused, not
allocated), and non-finite weights are refused. Saving is atomic: both files
are written to a temporary folder that then replaces the target.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import torch
from safetensors import safe_open
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
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    payload = {
        "format_version": FORMAT_VERSION,
        "class": name,
        "config": model.config(),
        "metadata": metadata or {},
    }
    text = json.dumps(payload, indent=2, sort_keys=True)  # fails (before anything is written) if not JSON
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        save_file(state, str(tmp / WEIGHTS_FILE))
        (tmp / CONFIG_FILE).write_text(text)
        for f in (tmp / WEIGHTS_FILE, tmp / CONFIG_FILE):
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        others = [p for p in directory.iterdir() if p.name not in (WEIGHTS_FILE, CONFIG_FILE)] \
            if directory.is_dir() else []
        if not directory.exists():
            os.replace(tmp, directory)  # one rename: the folder appears whole
        elif not others:
            old = directory.with_name(f".{directory.name}.{uuid.uuid4().hex[:8]}.old")
            os.replace(directory, old)  # swap the folders (a crash in between leaves the old one beside)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:  # the folder holds other files too: replace ours one by one (each atomically), config last
            os.replace(tmp / WEIGHTS_FILE, directory / WEIGHTS_FILE)
            os.replace(tmp / CONFIG_FILE, directory / CONFIG_FILE)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return directory


def read_config(directory: str | Path) -> dict:
    """The parsed ``config.json`` of a saved model."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {CONFIG_FILE} in {directory}: not a saved unrolled model")
    try:
        payload = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(payload, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(payload).__name__}")
    version = payload.get("format_version")
    if isinstance(version, bool) or version != FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {version!r} is not supported (this version of unrolled reads "
                         f"format_version {FORMAT_VERSION})")
    if not isinstance(payload.get("class"), str):
        raise ValueError(f"{path}: 'class' must name a model class, got {payload.get('class')!r}")
    if not isinstance(payload.get("config"), dict):
        raise ValueError(f"{path}: 'config' must be a JSON object of constructor arguments")
    if payload.get("metadata") is not None and not isinstance(payload["metadata"], dict):
        raise ValueError(f"{path}: 'metadata' must be a JSON object")
    return payload


_FLOAT_CODES = {"F32": torch.float32, "F64": torch.float64, "C64": torch.complex64, "C128": torch.complex128}
_OTHER_CODES = {"I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
                "BOOL": torch.bool}


def _weights_header(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Names, shapes and dtype codes of the tensors of a safetensors file (reads the header only)."""
    if not path.is_file():
        raise FileNotFoundError(f"no {WEIGHTS_FILE} in {path.parent}: not a saved unrolled model")
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}
    except Exception as e:  # a truncated or forged header
        raise ValueError(f"{path} is not a valid safetensors file: {e}") from None


def _check_header(header: dict, expected: dict[str, torch.Tensor], where: Path) -> None:
    """The weights file must hold exactly the tensors (names, shapes, compatible dtypes) the model allocates."""
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{where}: the weights do not match the config's model: missing {missing[:5]}"
                         f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                         f"{'...' if len(unexpected) > 5 else ''}")
    for key, t in expected.items():
        shape, code = header[key]
        if shape != tuple(t.shape):
            raise ValueError(f"{where}: tensor {key!r} has shape {shape} in the weights file but the config's "
                             f"model allocates {tuple(t.shape)}")
        if t.is_floating_point() or t.is_complex():
            if code not in _FLOAT_CODES or _FLOAT_CODES[code].is_complex != t.is_complex():
                raise ValueError(f"{where}: tensor {key!r} has dtype {code}; expected "
                                 f"{'C64 or C128' if t.is_complex() else 'F32 or F64'}")
        elif _OTHER_CODES.get(code) != t.dtype:
            raise ValueError(f"{where}: tensor {key!r} has dtype {code}; expected {t.dtype}")


def _build(cls, config: dict, where: Path) -> nn.Module:
    try:
        return cls(**config)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: the config does not build a {cls.__name__}: {e}") from None


#: Deepest net :func:`load_model` builds unless told otherwise: a crafted ``config.json`` asking for millions of
#: layers would otherwise spend minutes and gigabytes on Python objects before any weight is compared (one
#: LISTA-CP layer costs about 7 KB and 0.2 ms to build even on the ``meta`` device).
MAX_LAYERS = 10_000


def _check_depth(config: dict, max_layers: int, directory) -> None:
    for key, value in config.items():
        if "layers" in key and isinstance(value, int) and not isinstance(value, bool) and value > max_layers:
            raise ValueError(f"{directory}: config {key}={value} exceeds max_layers={max_layers}; pass "
                             f"load_model(..., max_layers=) to load deeper nets from a folder you trust")


def load_model(directory: str | Path, *, device: str | torch.device = "cpu", max_layers: int = MAX_LAYERS) -> nn.Module:
    """Rebuild a model saved by :func:`save_model`.

    Parameters
    ----------
    directory : str or Path
        Folder holding ``model.safetensors`` and ``config.json``.
    device : str or torch.device, default 'cpu'
        Where to put the model.
    max_layers : int, default :data:`MAX_LAYERS`
        Refuse a config whose ``n_layers`` (or any ``*layers*`` integer) exceeds this, before building anything.

    Raises
    ------
    FileNotFoundError
        A file is missing.
    ValueError
        An unsupported ``format_version``, an unknown class, a config that does
        not build the class, weights whose names, shapes or dtypes differ from
        what the config's model allocates (checked on the ``meta`` device
        before allocating), or non-finite weights.
    """
    payload = read_config(directory)
    name = payload.get("class")
    if name not in MODELS:  # reading the registry loads every family
        raise ValueError(f"unknown model class {name!r} in {directory}; known: {sorted(MODELS)}")
    cls, config = MODELS[name], payload["config"]
    _check_depth(config, max_layers, directory)
    weights = Path(directory) / WEIGHTS_FILE
    header = _weights_header(weights)
    try:  # shapes first, on the meta device: nothing is allocated yet
        with torch.device("meta"):
            skeleton = cls(**config)
    except Exception:  # a constructor that computes on its values: build for real below (checked after)
        skeleton = None
    checked = skeleton is not None
    if checked:
        _check_header(header, skeleton.state_dict(), weights)
        del skeleton
    model = _build(cls, config, weights)
    if not checked:
        _check_header(header, model.state_dict(), weights)
    state = load_file(str(weights))
    bad = [k for k, t in state.items() if (t.is_floating_point() or t.is_complex()) and not torch.isfinite(t).all()]
    if bad:
        raise ValueError(f"{weights}: non-finite (NaN or inf) weights in {bad[:5]}; refusing to load them")
    saved = {t.dtype for t in state.values() if t.is_floating_point()}
    if len(saved) == 1 and saved != {t.dtype for t in model.state_dict().values() if t.is_floating_point()}:
        model = model.to(saved.pop())  # keep the dtype the model was saved in (its config may not name one)
    model.load_state_dict(state, strict=True)
    return model.to(device)
