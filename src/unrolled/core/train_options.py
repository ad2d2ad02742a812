"""Argument checks of :class:`~unrolled.core.train.Trainer`: every bad option fails, naming itself, before any work.

The option names (:data:`SCHEDULES`, :data:`ON_MISMATCH`, :data:`OPTIMIZERS`) are re-exported by
:mod:`unrolled.core.train`.
"""

from __future__ import annotations

import math
import numbers

import torch

from unrolled.core.data_sources import is_part
from unrolled.core.ekf import EKF

SCHEDULES = ("constant", "cosine", "linear")
ON_MISMATCH = ("error", "restart", "resume")
#: ``optimizer=`` names; EKF steps on the outputs and targets, not on gradients (see :class:`~unrolled.core.train.Trainer`).
OPTIMIZERS = ("adam", "sgd", "ekf")


def optimizer_class(name: str) -> type:
    """Looked up at call time (so a patched ``torch.optim.Adam`` is the one used)."""
    return {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "ekf": EKF}[name]


def check_trainer_options(*, loss_fn, val_data, schedule, batch_size, val_every, val_batch_size, checkpoint_every,
                          grad_clip, time_limit, divergence_factor, on_mismatch, optimizer, optimizer_options,
                          fingerprint) -> dict:
    """Check the options of ``Trainer(...)`` that need neither the model nor the stages; returns the optimizer options.

    Raises
    ------
    ValueError
        On the first bad option; the message names it.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    for name, value in (("batch_size", batch_size), ("val_every", val_every), ("val_batch_size", val_batch_size),
                        ("checkpoint_every", checkpoint_every)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if grad_clip is not None and not (isinstance(grad_clip, numbers.Real) and math.isfinite(grad_clip)
                                      and grad_clip > 0):
        raise ValueError(f"grad_clip must be None or a finite number > 0, got {grad_clip!r}")
    if time_limit is not None and (isinstance(time_limit, bool) or not isinstance(time_limit, numbers.Real)
                                   or not time_limit > 0):
        raise ValueError(f"time_limit must be None or a number of seconds > 0, got {time_limit!r}")
    if not (isinstance(divergence_factor, numbers.Real) and divergence_factor > 1):
        raise ValueError(f"divergence_factor must be a number > 1 (a multiple of the first validation loss), "
                         f"got {divergence_factor!r}")
    if on_mismatch not in ON_MISMATCH:
        raise ValueError(f"on_mismatch must be one of {ON_MISMATCH}, got {on_mismatch!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    options = dict(optimizer_options or {})
    try:  # bad options fail here, before any work
        optimizer_class(optimizer)([torch.zeros(1, requires_grad=True)], lr=1.0, **options)
    except TypeError as err:
        raise ValueError(f"optimizer_options {options} do not fit optimizer={optimizer!r}: {err}") from None
    if optimizer == "ekf" and grad_clip is not None:
        raise ValueError("grad_clip does not apply to optimizer='ekf' (it uses no gradient of the loss)")
    if fingerprint is not None and not isinstance(fingerprint, dict):
        raise ValueError(f"fingerprint must be a dict of JSON-serialisable settings, got {type(fingerprint).__name__}")
    if not callable(loss_fn):
        raise ValueError(f"loss_fn must be callable as loss_fn(prediction, target), got {loss_fn!r}")
    if not (isinstance(val_data, (tuple, list)) and len(val_data) == 2 and all(is_part(t) for t in val_data)):
        raise ValueError("val_data must be an (inputs, targets) pair of tensors (or of tuples of tensors)")
    return options


def check_stage_time_weights(stage_time_weights, time_limit, n_stages: int) -> list[float] | None:
    """``stage_time_weights`` as floats (one finite positive weight per stage, with a ``time_limit``) or ``None``."""
    if stage_time_weights is not None:
        weights = list(stage_time_weights)
        if time_limit is None:
            raise ValueError("stage_time_weights shares time_limit among the stages: set time_limit too")
        if len(weights) != n_stages or not all(
                isinstance(w, numbers.Real) and not isinstance(w, bool) and math.isfinite(w) and w > 0
                for w in weights):
            raise ValueError(f"stage_time_weights must be {n_stages} finite numbers > 0 (one per "
                             f"stage), got {stage_time_weights!r}")
        stage_time_weights = [float(w) for w in weights]
    return stage_time_weights
