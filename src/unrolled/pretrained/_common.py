"""Helpers shared by the evaluation kinds of :mod:`unrolled.pretrained`."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def per_problem(out: dict, key: str, values: torch.Tensor) -> None:
    """Mean of per-problem ``values`` as ``key`` and their standard deviation as ``key_std``."""
    v = values.to(torch.float64)
    out[key] = float(v.mean())
    out[f"{key}_std"] = float(v.std()) if v.numel() > 1 else 0.0


def without_std(metrics: dict) -> dict:
    """``metrics`` less their ``*_std`` spreads (a baseline is reported as its values only)."""
    return {k: v for k, v in metrics.items() if not k.endswith("_std")}


def pooled(out: dict, key: str, statistic: Callable[[torch.Tensor], float], n: int, *, n_boot: int = 200,
           seed: int = 0) -> None:
    """A set-level ``statistic(indices)`` (pooled over the ``n`` problems, e.g. one confusion matrix or one NMSE
    ratio) as ``key``, and as ``key_std`` its bootstrap standard error times ``sqrt(n)``: the per-problem
    standard deviation that :func:`unrolled.pretrained.tolerance` turns back into a standard error at any size."""
    out[key] = float(statistic(torch.arange(n)))
    g = torch.Generator().manual_seed(seed)
    boot = torch.tensor([float(statistic(torch.randint(n, (n,), generator=g))) for _ in range(n_boot)],
                        dtype=torch.float64)
    out[f"{key}_std"] = float(boot.std()) * math.sqrt(n)
