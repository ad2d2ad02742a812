"""The speech utterances shipped with the package (``unrolled/nmf/speech/``, see its README for provenance)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files

import numpy as np
import torch
from torch import Tensor

SPLITS = ("train", "val", "test")


def _folder():
    return files("unrolled.nmf").joinpath("speech")


@lru_cache(maxsize=1)
def manifest() -> dict:
    """``{'fs': 8000, 'utterances': [{'file', 'split', 'text', 'voice', 'rate', 'pitch', 'seconds'}, ...]}``."""
    return json.loads(_folder().joinpath("manifest.json").read_text())


@lru_cache(maxsize=4)
def _load(split: str) -> tuple[np.ndarray, ...]:
    import soundfile as sf

    out = []
    for entry in manifest()["utterances"]:
        if entry["split"] == split:
            with _folder().joinpath(entry["file"]).open("rb") as fh:
                x, fs = sf.read(fh, dtype="float64")
            if fs != manifest()["fs"]:
                raise RuntimeError(f"{entry['file']} has sampling rate {fs}, expected {manifest()['fs']}")
            out.append(x)
    return tuple(out)


def utterances(split: str) -> list[Tensor]:
    """The float64 waveforms (peak 0.7, 8 kHz) of one split: ``'train'`` (25), ``'val'`` (6) or ``'test'`` (8)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return [torch.from_numpy(x.copy()) for x in _load(split)]


def voices(split: str) -> list[str]:
    """The eSpeak NG voice of each utterance of ``split`` (same order as :func:`utterances`)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return [e["voice"] for e in manifest()["utterances"] if e["split"] == split]


SAMPLE_RATE = 8000
