r"""Figures of merit and training loss of the graph-diffusion family (SLoG-Net paper, Sec. V-A).

Conventions
-----------
Every function takes **batch-first** tensors: ``estimate`` and ``target`` of
the same shape ``(B, ...)``, one *problem* per leading index (for sources
``(B, N, P)``, the paper's ``N x P`` matrix :math:`X_b` per problem; for
inverse-filter responses ``(B, N)``). A single ``(N, P)`` problem must be
passed as ``X[None]``: a 2-D input is read as ``B`` problems of vectors, like
:func:`unrolled.core.metrics.nmse`. A 1-D input is one problem.

The blind deconvolution model :math:`Y = HX` cannot tell :math:`(X, H)` from
:math:`(-X, -H)`, so the relative error and the loss compare the estimate with
both :math:`X` and :math:`-X`. The support accuracy uses magnitudes on both
sides and is sign invariant by construction.
"""

from __future__ import annotations

import torch
from torch import Tensor

from unrolled.core.validation import check_positive, check_tensor

__all__ = ["relative_error", "relative_error_loss", "support_accuracy", "SUPPORT_KAPPA"]

#: Threshold :math:`\kappa` of the support of Sec. V-A.
SUPPORT_KAPPA = 0.1

_REDUCTIONS = ("mean", "none")


def _pair(estimate, target) -> tuple[Tensor, Tensor]:
    check_tensor("estimate", estimate, finite=False)
    check_tensor("target", target, finite=False)
    if estimate.shape != target.shape:
        raise ValueError(f"estimate shape {tuple(estimate.shape)} != target shape {tuple(target.shape)}")
    if estimate.dim() == 0:
        raise ValueError("estimate and target must have at least one dimension")
    if estimate.is_complex() or target.is_complex():
        raise ValueError("estimate and target must be real")
    if estimate.dim() == 1:
        return estimate[None], target[None]
    return estimate.reshape(estimate.shape[0], -1), target.reshape(target.shape[0], -1)


def _reduce(values: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _relative_errors(estimate: Tensor, target: Tensor, sign_invariant: bool) -> Tensor:
    e, t = _pair(estimate, target)
    ref = torch.linalg.vector_norm(t, dim=-1)
    if not (ref > 0).all():
        b = int((ref <= 0).nonzero()[0])
        raise ValueError(f"target of problem {b} is all zero: its relative error is undefined")
    err = torch.linalg.vector_norm(e - t, dim=-1)
    if sign_invariant:
        err = torch.minimum(err, torch.linalg.vector_norm(e + t, dim=-1))
    return err / ref


def relative_error(estimate: Tensor, target: Tensor, *, sign_invariant: bool = True, reduction: str = "mean") -> Tensor:
    r"""Relative error RE of each problem, sign invariant by default.

    For problem ``b`` with estimate :math:`\hat X_b` and target :math:`X_b`
    (all entries of the problem, e.g. all ``N x P`` of them, flattened),

    .. math::
        \mathrm{RE}_b = \frac{\min\big(\|\hat X_b - X_b\|_F,\ \|\hat X_b + X_b\|_F\big)}{\|X_b\|_F},

    the paper's RE of Sec. V-A with the sign ambiguity of the bilinear model
    removed (``sign_invariant=False`` keeps only the first term). The mean over
    problems is the paper's MRE. Works for inverse-filter responses
    :math:`\hat{\tilde g}` ``(B, N)`` as well.

    Parameters
    ----------
    estimate, target : Tensor
        Same shape ``(B, ...)`` (see the module's conventions).
    sign_invariant : bool, default True
        Compare with :math:`\pm X_b` and keep the smaller error.
    reduction : {'mean', 'none'}
        The mean over problems (a scalar), or the ``(B,)`` per-problem values.

    Returns
    -------
    Tensor
        Scalar or ``(B,)``; differentiable with respect to ``estimate``.

    Raises
    ------
    ValueError
        On shape mismatch or an all-zero target (undefined ratio).
    """
    return _reduce(_relative_errors(estimate, target, sign_invariant), reduction)


def relative_error_loss(estimate: Tensor, target: Tensor) -> Tensor:
    r"""Training loss of Sec. V-A: the mean over the batch of the sign-invariant relative errors.

    .. math::
        \mathcal L = \frac1B \sum_{b=1}^B \min\left(\frac{\|\Phi(Y_b) - X_b\|_F}{\|X_b\|_F},
        \frac{\|\Phi(Y_b) + X_b\|_F}{\|X_b\|_F}\right).

    The paper sums this over the ``Q`` mini-batches of an epoch, one problem
    (one filter, ``P`` signals) per mini-batch; with ``B`` problems per
    optimisation step the mean keeps the scale of the learning rate
    independent of ``B``. Signature ``loss(prediction, target)`` as the
    :class:`~unrolled.core.train.Trainer` expects. The gradient of the
    minimum is that of the smaller branch.
    """
    return _relative_errors(estimate, target, True).mean()


def support_accuracy(
    estimate: Tensor, target: Tensor, *, kappa: float = SUPPORT_KAPPA, reduction: str = "mean"
) -> Tensor:
    r"""Support accuracy ACC of each problem (Sec. V-A, threshold :math:`\kappa = 0.1`).

    Both supports are taken **on magnitudes, with the same threshold**:
    :math:`\operatorname{supp}_\kappa(A) = \{(i, j) : |A_{ij}| \ge \kappa\}`,
    :math:`\hat I = \operatorname{supp}_\kappa(\hat X_b)` and
    :math:`I = \operatorname{supp}_\kappa(X_b)` (so a true source with
    :math:`|X_{ij}| < \kappa` counts as *not* in the support). **Every entry**
    of the problem counts, support or not: ACC is the fraction of the ``N P``
    entries ``(i, j)`` classified alike,

    .. math::
        \mathrm{ACC}_b = \frac{1}{NP} \sum_{i,j}
        \mathbb 1\big[\,(i,j) \in \hat I \iff (i,j) \in I\,\big]
        = \frac{|\hat I \cap I| + |\hat I^c \cap I^c|}{NP},

    i.e. true positives plus true negatives over all entries. It is invariant
    to the sign of :math:`\hat X_b` but not to its scale. Note the trivial
    baseline: the all-zero estimate scores :math:`1 - |I|/(NP)`, about 0.86
    for Bernoulli(0.15)-Gaussian sources.

    Parameters
    ----------
    estimate, target : Tensor
        Same shape ``(B, ...)`` (see the module's conventions).
    kappa : float, default 0.1
        Magnitude threshold, ``>= 0``.
    reduction : {'mean', 'none'}
        The mean over problems, or the ``(B,)`` per-problem values.

    Returns
    -------
    Tensor
        Scalar or ``(B,)``, in the dtype of ``estimate`` (not differentiable).
    """
    kappa = check_positive("kappa", kappa, allow_zero=True)
    e, t = _pair(estimate, target)
    agree = (e.abs() >= kappa) == (t.abs() >= kappa)
    return _reduce(agree.to(e.dtype).mean(dim=-1), reduction)
