"""Evaluation of a separation: permutation/scale correction and the NMSE of Eq. (10).

BSS recovers ``A`` and ``S`` up to a permutation of the sources and a scale
(and sign) per source. :func:`correct_permutation` matches estimated and true
columns of ``A`` by their absolute cosine similarity with the Hungarian method
(:func:`scipy.optimize.linear_sum_assignment`), then rescales each matched
column to unit norm with the sign of the truth and moves the inverse scale to
the corresponding source, so ``A_c S_c = A S`` is unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from unrolled.core.metrics import nmse


def matching_permutations(A_est: Tensor, A_true: Tensor) -> Tensor:
    """``(B, n)`` permutations ``p`` with ``A_est[:, p[j]]`` matched to ``A_true[:, j]`` (max total ``|cosine|``)."""
    if A_est.shape != A_true.shape or A_est.dim() != 3:
        raise ValueError(f"A_est and A_true must both be (B, m, n), got {tuple(A_est.shape)} and {tuple(A_true.shape)}")
    eps = torch.finfo(A_est.dtype).tiny
    ue = A_est / torch.linalg.vector_norm(A_est, dim=-2, keepdim=True).clamp_min(eps)
    ut = A_true / torch.linalg.vector_norm(A_true, dim=-2, keepdim=True).clamp_min(eps)
    cos = (ut.transpose(-2, -1) @ ue).abs().detach().cpu().numpy()  # (B, n_true, n_est)
    perms = np.empty(cos.shape[:2], dtype=np.int64)
    for b in range(cos.shape[0]):
        rows, cols = linear_sum_assignment(cos[b], maximize=True)
        perms[b, rows] = cols
    return torch.from_numpy(perms).to(A_est.device)


def correct_permutation(A_est: Tensor, S_est: Tensor, A_true: Tensor) -> tuple[Tensor, Tensor]:
    """Undo the permutation, scale and sign indeterminacy of ``(A_est, S_est)`` against ``A_true``.

    Parameters
    ----------
    A_est, A_true : Tensor
        ``(B, m, n)``.
    S_est : Tensor
        ``(B, n, t)``.

    Returns
    -------
    (Tensor, Tensor)
        Corrected ``A`` (columns of unit norm, positively correlated with the
        truth) and ``S``, with ``A_c @ S_c == A_est @ S_est``. A zero column
        stays zero (its source is then kept as is).
    """
    perm = matching_permutations(A_est, A_true)
    A_p = torch.gather(A_est, -1, perm[:, None, :].expand_as(A_est))
    S_p = torch.gather(S_est, -2, perm[:, :, None].expand_as(S_est))
    norms = torch.linalg.vector_norm(A_p, dim=-2)  # (B, n)
    sign = torch.sign((A_p * A_true).sum(-2))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    scale = torch.where(norms > 0, norms, torch.ones_like(norms)) * sign
    return A_p / scale[:, None, :], S_p * scale[:, :, None]


def separation_nmse(A_est: Tensor, S_est: Tensor, A_true: Tensor, S_true: Tensor, *, correct: bool = True) -> dict[str, Tensor]:
    """Per-mixture ``NMSE(A)`` and ``NMSE(S)`` of Eq. (10), ``(B,)`` each, after correction when ``correct``."""
    if correct:
        A_est, S_est = correct_permutation(A_est, S_est, A_true)
    return {"A": nmse(A_est, A_true, reduction="none"), "S": nmse(S_est, S_true, reduction="none")}
