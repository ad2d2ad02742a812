"""k-space sampling masks for :class:`~unrolled.imaging.operators.SubsampledFourier` (FFT layout, DC at ``[0, 0]``).

* :func:`cartesian_mask`: whole phase-encoding lines (rows of k-space), a fully sampled band of low
  frequencies around DC plus lines drawn uniformly at random among the others;
* :func:`radial_mask`: lines through the centre of k-space at golden-angle increments from a random start,
  added until the sampled fraction reaches the ratio.

Both return a boolean ``(H, W)`` CPU tensor drawn from ``generator``; ``sampling_ratio`` is the target
fraction of k-space, in ``(0, 1]`` (the result's own fraction is ``mask.float().mean()``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["cartesian_mask", "radial_mask", "make_mask", "MASKS", "check_sampling_ratio"]

MASKS = ("cartesian", "radial")


def check_sampling_ratio(sampling_ratio) -> float:
    """``sampling_ratio`` must be a number in ``(0, 1]``."""
    try:
        r = float(sampling_ratio)
    except (TypeError, ValueError):
        raise ValueError(f"sampling_ratio must be a number in (0, 1], got {sampling_ratio!r}") from None
    if isinstance(sampling_ratio, bool) or not 0 < r <= 1:
        raise ValueError(f"sampling_ratio must be in (0, 1], got {sampling_ratio!r}")
    return r


def _check_shape(shape) -> tuple[int, int]:
    if isinstance(shape, int):
        shape = (shape, shape)
    if len(shape) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 2 for s in shape):
        raise ValueError(f"shape must be an int or (H, W) with sides >= 2, got {shape!r}")
    return int(shape[0]), int(shape[1])


def cartesian_mask(shape, sampling_ratio: float, *, center_share: float = 0.3,
                   generator: torch.Generator | None = None) -> Tensor:
    """Random Cartesian lines: ``round(ratio * H)`` rows, of which ``max(1, round(center_share * n))`` are the
    lowest frequencies (a contiguous band around DC) and the rest uniformly random without replacement."""
    H, W = _check_shape(shape)
    ratio = check_sampling_ratio(sampling_ratio)
    if not 0 <= center_share <= 1:
        raise ValueError(f"center_share must be in [0, 1], got {center_share!r}")
    n_lines = max(1, min(H, round(ratio * H)))
    n_center = max(1, round(center_share * n_lines))
    freqs = torch.arange(-(n_center // 2), n_center - n_center // 2) % H  # band around DC, FFT layout
    chosen = torch.zeros(H, dtype=torch.bool)
    chosen[freqs] = True
    others = torch.nonzero(~chosen).squeeze(1)
    pick = others[torch.randperm(others.numel(), generator=generator)[: n_lines - n_center]]
    chosen[pick] = True
    return chosen[:, None].expand(H, W).clone()


def _radial_line(H: int, W: int, angle: float) -> tuple[Tensor, Tensor]:
    radius = math.hypot(H, W) / 2
    t = torch.arange(-radius, radius + 0.25, 0.25, dtype=torch.float64)
    rows = torch.round(t * math.sin(angle)).long()
    cols = torch.round(t * math.cos(angle)).long()
    keep = (rows >= -(H // 2)) & (rows < H - H // 2) & (cols >= -(W // 2)) & (cols < W - W // 2)
    return rows[keep] % H, cols[keep] % W


def radial_mask(shape, sampling_ratio: float, *, generator: torch.Generator | None = None) -> Tensor:
    """Radial lines through DC at golden-angle steps (random start) until ``mean(mask) >= sampling_ratio``."""
    H, W = _check_shape(shape)
    ratio = check_sampling_ratio(sampling_ratio)
    mask = torch.zeros(H, W, dtype=torch.bool)
    if ratio == 1.0:
        return ~mask
    start = float(torch.rand((), generator=generator, dtype=torch.float64)) * math.pi
    golden = math.pi * (math.sqrt(5) - 1) / 2  # 111.25 degrees: the golden angle of radial MRI
    target = math.ceil(ratio * H * W)
    k = 0
    while int(mask.sum()) < target:
        rows, cols = _radial_line(H, W, start + k * golden)
        mask[rows, cols] = True
        k += 1
    return mask


def make_mask(kind: str, shape, sampling_ratio: float, *, generator: torch.Generator | None = None) -> Tensor:
    """``'cartesian'`` or ``'radial'`` mask (see :data:`MASKS`)."""
    if kind == "cartesian":
        return cartesian_mask(shape, sampling_ratio, generator=generator)
    if kind == "radial":
        return radial_mask(shape, sampling_ratio, generator=generator)
    raise ValueError(f"mask must be one of {MASKS}, got {kind!r}")
