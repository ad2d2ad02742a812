"""Metrics of the lowrank family: MSE in dB of complex movies and maximum-intensity projections (Fig. 11)."""

from __future__ import annotations

import torch
from torch import Tensor

from unrolled.lowrank.prox import abs2

__all__ = ["nmse_db", "mip_db"]


def nmse_db(estimate: Tensor, target: Tensor) -> float:
    r"""Normalised MSE in dB over a batch: :math:`10\log_{10}(\sum\|\hat X - X\|_F^2 / \sum\|X\|_F^2)`.

    Complex entries count with :math:`|\cdot|^2`. 0 dB is the error of the estimate 0.
    """
    if estimate.shape != target.shape:
        raise ValueError(f"estimate shape {tuple(estimate.shape)} != target shape {tuple(target.shape)}")
    err = abs2(estimate - target).sum()
    ref = abs2(target).sum().clamp_min(torch.finfo(err.dtype).tiny)
    return float(10 * torch.log10(err / ref))


def mip_db(movie: Tensor, reference: float | None = None, floor_db: float = -40.0) -> Tensor:
    """Maximum-intensity projection of a movie ``(T, H, W)`` over the frames, in dB of ``reference``.

    ``reference`` defaults to the MIP's own maximum; values are clipped at ``floor_db`` (the colour bar of Fig. 11).
    """
    mip = movie.abs().amax(0)
    ref = float(mip.max()) if reference is None else float(reference)
    return (20 * torch.log10(mip.clamp_min(1e-30) / max(ref, 1e-30))).clamp_min(floor_db)
