"""Fingerprints of a training run: what a checkpoint must match to be resumed (:class:`~unrolled.core.train.Trainer`).

A fingerprint is plain JSON: names of the model, loss and data sampler
(:func:`qualname`), digests of tensors (:func:`tensor_digest`: the initial
weights, the validation set, a fixed training set) and the settings of the run.
:func:`fingerprint_differences` says, field by field, how two differ.
"""

from __future__ import annotations

import hashlib
import json

import torch
from torch import Tensor


def to_json(value):
    """``value`` as plain JSON data (tuples become lists; unknown objects their ``str``)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def qualname(obj) -> str:
    """``module.Class`` (or ``module.Class.method`` for a bound method) naming ``obj`` stably across runs."""
    if hasattr(obj, "__self__") and hasattr(obj, "__func__"):  # a bound method: name its class too
        return f"{type(obj.__self__).__module__}.{type(obj.__self__).__qualname__}.{obj.__func__.__name__}"
    cls = obj if isinstance(obj, type) else (obj if hasattr(obj, "__qualname__") else type(obj))
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', repr(cls))}"


def tensor_digest(*parts) -> str:
    """SHA-256 of the dtypes, shapes and bytes of tensors (nested in tuples, lists and dicts)."""
    h = hashlib.sha256()

    def feed(x):
        if isinstance(x, Tensor):
            t = x.detach().cpu().contiguous().reshape(-1)
            h.update(f"{t.dtype}{tuple(x.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(x, dict):
            for k in sorted(x):
                h.update(str(k).encode())
                feed(x[k])
        elif isinstance(x, (tuple, list)):
            h.update(b"(")
            for v in x:
                feed(v)
            h.update(b")")
        else:
            h.update(repr(x).encode())

    for p in parts:
        feed(p)
    return h.hexdigest()[:16]


def fingerprint_differences(saved: dict | None, now: dict) -> list[str]:
    """``'field: saved -> now'`` for every field that differs (one entry when ``saved`` is ``None``)."""
    if saved is None:
        return ["fingerprint: none recorded (a checkpoint of an older version)"]

    def short(v) -> str:
        text = json.dumps(v, sort_keys=True)
        return text if len(text) <= 80 else text[:77] + "..."

    out = []
    for key in sorted(set(saved) | set(now)):
        a, b = saved.get(key, "<absent>"), now.get(key, "<absent>")
        if a != b:
            out.append(f"{key}: {short(a)} -> {short(b)}")
    return out
