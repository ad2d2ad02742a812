"""Evaluation metrics shared by the families.

All metrics take batch-first tensors ``(B, ...)`` and return either a per-sample
tensor of shape ``(B,)`` (``reduction='none'``) or its mean.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _flatten(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1) if x.dim() > 1 else x.reshape(1, -1)


def nmse(estimate: Tensor, target: Tensor, reduction: str = "ratio_of_means") -> Tensor:
    r"""Normalised mean squared error.

    Parameters
    ----------
    estimate, target : Tensor
        Same shape, batch-first ``(B, ...)`` (a single unbatched vector is
        treated as a batch of one).
    reduction : {'ratio_of_means', 'mean', 'none'}
        ``'ratio_of_means'`` (default) returns
        :math:`\sum_b \|\hat x_b - x_b\|^2 / \sum_b \|x_b\|^2`, the convention of
        the LISTA papers (it is well defined when some targets are zero);
        ``'mean'`` averages the per-sample ratios
        :math:`\|\hat x_b - x_b\|^2 / \|x_b\|^2`; ``'none'`` returns them.

    Returns
    -------
    Tensor
        Scalar, or shape ``(B,)`` for ``reduction='none'``.
    """
    if estimate.shape != target.shape:
        raise ValueError(f"estimate shape {tuple(estimate.shape)} != target shape {tuple(target.shape)}")
    e, t = _flatten(estimate), _flatten(target)
    err = (e - t).pow(2).sum(-1)
    ref = t.pow(2).sum(-1)
    if reduction == "ratio_of_means":
        return err.sum() / ref.sum()
    per_sample = err / ref
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "none":
        return per_sample
    raise ValueError(f"unknown reduction {reduction!r}")


def nmse_db(estimate: Tensor, target: Tensor, reduction: str = "ratio_of_means") -> Tensor:
    """:func:`nmse` in decibels, ``10 log10(nmse)``.

    With ``reduction='mean'`` the per-sample ratios are averaged *before* the
    logarithm. See :func:`nmse` for the arguments.
    """
    return 10.0 * torch.log10(nmse(estimate, target, reduction))


def support_recovery(
    estimate: Tensor, target: Tensor, *, tol: float = 0.0
) -> dict[str, Tensor]:
    """Support-recovery statistics of sparse estimates.

    An entry is in the support when its magnitude exceeds ``tol``.

    Parameters
    ----------
    estimate, target : Tensor
        Same shape ``(B, n)``.
    tol : float, default 0
        Magnitude threshold defining the support.

    Returns
    -------
    dict
        ``precision``, ``recall`` (true positives over estimated / true
        support sizes, pooled over the batch), ``exact`` (fraction of samples
        whose support is recovered exactly) and ``accuracy`` (fraction of
        entries classified correctly as zero / non-zero).
    """
    if estimate.shape != target.shape:
        raise ValueError(f"estimate shape {tuple(estimate.shape)} != target shape {tuple(target.shape)}")
    e, t = _flatten(estimate).abs() > tol, _flatten(target).abs() > tol
    tp = (e & t).sum()
    precision = tp / e.sum().clamp(min=1)
    recall = tp / t.sum().clamp(min=1)
    exact = (e == t).all(-1).to(torch.float64).mean()
    accuracy = (e == t).to(torch.float64).mean()
    return {
        "precision": precision.to(torch.float64),
        "recall": recall.to(torch.float64),
        "exact": exact,
        "accuracy": accuracy,
    }
