"""Support decoding, amplitude recovery, the support loss and the accuracy metrics of He et al. (2017).

* strict accuracy: fraction of trials whose top-``d`` support equals the true support exactly;
* loose accuracy: true positives among the top-``n`` guesses (``n`` = number of measurements),
  divided by ``d``, averaged over trials (Sec. 4.1);
* Chamfer distance between true and estimated source angles for DOA (Sec. 4.2).
"""

from __future__ import annotations

import torch
from torch import Tensor

from unrolled.core.validation import check_int, check_tensor

__all__ = ["support_size", "top_d_support", "strict_accuracy", "loose_accuracy", "least_squares_on_support",
           "support_loss", "pairwise_support_loss", "SUPPORT_LOSSES", "peak_indices", "chamfer_distance"]


def support_size(x: Tensor) -> Tensor:
    """``(B,)`` number of non-zeros of each row of ``x``."""
    return (x != 0).sum(dim=-1)


def top_d_support(scores: Tensor, d: int | Tensor) -> Tensor:
    """Boolean ``(B, m)`` mask of the ``d`` largest ``scores`` of each row (``d`` an int or ``(B,)``).

    Ties are broken by index order of :func:`torch.sort` (stable), so the mask always has exactly ``d`` entries.
    """
    check_tensor("scores", scores, ndim=2, finite=False)
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN")
    B, m = scores.shape
    d = torch.as_tensor(d, device=scores.device).expand(B)
    if bool(((d < 1) | (d > m)).any()):
        raise ValueError(f"d must be in [1, m={m}]")
    order = torch.sort(scores, dim=-1, descending=True, stable=True).indices
    rank = torch.empty_like(order)
    rank.scatter_(-1, order, torch.arange(m, device=scores.device).expand(B, m))
    return rank < d.unsqueeze(-1)


def strict_accuracy(scores: Tensor, x_true: Tensor, *, per_sample: bool = False) -> Tensor:
    """Fraction of rows whose top-``d`` scores (``d = |supp x_true|``) are exactly the true support."""
    if scores.shape != x_true.shape:
        raise ValueError(f"scores shape {tuple(scores.shape)} != x_true shape {tuple(x_true.shape)}")
    hit = (top_d_support(scores, support_size(x_true)) == (x_true != 0)).all(-1)
    return hit if per_sample else hit.to(torch.float64).mean()


def loose_accuracy(scores: Tensor, x_true: Tensor, n_guesses: int, *, per_sample: bool = False) -> Tensor:
    """True positives among the ``n_guesses`` largest scores, over ``|supp x_true|``, averaged over rows."""
    if scores.shape != x_true.shape:
        raise ValueError(f"scores shape {tuple(scores.shape)} != x_true shape {tuple(x_true.shape)}")
    check_int("n_guesses", n_guesses, minimum=1)
    truth = x_true != 0
    tp = (top_d_support(scores, min(n_guesses, scores.shape[-1])) & truth).sum(-1)
    frac = tp.to(torch.float64) / truth.sum(-1).clamp_min(1)
    return frac if per_sample else frac.mean()


def least_squares_on_support(y: Tensor, Phi: Tensor, support: Tensor) -> Tensor:
    """Amplitudes by least squares on a given support: ``x_S = argmin ||y - Phi_S x_S||``, zero elsewhere.

    Supports may differ in size across rows: with ``D = diag(support)`` it solves
    ``(D Phi^H Phi D + I - D) x = D Phi^H y`` (the off-support block is the identity).
    """
    check_tensor("y", y, ndim=2)
    check_tensor("Phi", Phi, ndim=2)
    if support.shape != (y.shape[0], Phi.shape[1]) or support.dtype != torch.bool:
        raise ValueError(f"support must be a bool tensor of shape {(y.shape[0], Phi.shape[1])}")
    mask = support.to(Phi.dtype)
    gram = Phi.mH @ Phi
    system = mask.unsqueeze(-1) * gram * mask.unsqueeze(-2) + torch.diag_embed(1 - mask)
    rhs = mask * (y @ Phi.conj())
    return torch.linalg.solve(system, rhs)


def support_loss(logits: Tensor, x_true: Tensor) -> Tensor:
    """Multi-label support loss (Sec. 3.3): softmax cross-entropy against ``1_{supp x*} / |supp x*|``.

    The network's ``m`` outputs are scores of the atoms; the target spreads unit mass uniformly over the
    true support, so the loss is minimal when the softmax puts equal mass on exactly the support.
    """
    if logits.shape != x_true.shape:
        raise ValueError(f"logits shape {tuple(logits.shape)} != x_true shape {tuple(x_true.shape)}")
    target = (x_true != 0).to(logits.dtype)
    target = target / target.sum(-1, keepdim=True).clamp_min(1)
    return -(target * torch.log_softmax(logits, dim=-1)).sum(-1).mean()


def pairwise_support_loss(logits: Tensor, x_true: Tensor) -> Tensor:
    """Pairwise ranking loss on the support: ``log(1 + sum_{i in S, j not in S} exp(s_j - s_i))``, averaged.

    ``S = supp x*``. A smooth surrogate of *strict* support recovery (this library's addition, not in the
    paper): the top-``|S|`` scores are exactly ``S`` iff every support score exceeds every off-support one,
    and a row with any pair out of order pays at least ``log 2``. Computed stably as
    ``softplus(logsumexp_{j not in S} s_j + logsumexp_{i in S} (-s_i))``. Every row needs ``0 < |S| < m``
    (checked in eager mode; skipped inside ``torch.compile`` so the loss compiles without a graph break).
    """
    if logits.shape != x_true.shape:
        raise ValueError(f"logits shape {tuple(logits.shape)} != x_true shape {tuple(x_true.shape)}")
    on = x_true != 0
    size = on.sum(-1)
    # the check reads data, which would break a torch.compile graph: eager calls only (under compile an
    # empty or full support row contributes softplus(-inf) = 0, never NaN)
    if not torch.compiler.is_compiling() and bool(((size == 0) | (size == on.shape[-1])).any()):
        raise ValueError("pairwise_support_loss needs every row of x_true to have between 1 and m-1 non-zeros")
    neg_inf = torch.tensor(-torch.inf, dtype=logits.dtype, device=logits.device)
    soft_max_off = torch.logsumexp(torch.where(on, neg_inf, logits), dim=-1)
    neg_soft_min_on = torch.logsumexp(torch.where(on, -logits, neg_inf), dim=-1)
    return torch.nn.functional.softplus(soft_max_off + neg_soft_min_on).mean()


def _softmax_plus_pairwise(logits: Tensor, x_true: Tensor) -> Tensor:
    return support_loss(logits, x_true) + pairwise_support_loss(logits, x_true)


SUPPORT_LOSSES = {"softmax": support_loss, "pairwise": pairwise_support_loss,
                  "softmax+pairwise": _softmax_plus_pairwise}
"""Support losses by name (``NetSpec.loss`` of the SBL reproductions)."""


def peak_indices(scores: Tensor, d: int) -> Tensor:
    """``(B, d)`` indices of the ``d`` largest local maxima of each row (plain top-``d`` fills in when a row
    has fewer than ``d`` local maxima). Used to read source angles off a DOA spectrum."""
    check_tensor("scores", scores, ndim=2)
    check_int("d", d, minimum=1)
    pad = torch.full_like(scores[:, :1], -torch.inf)
    left = torch.cat([pad, scores[:, :-1]], dim=1)
    right = torch.cat([scores[:, 1:], pad], dim=1)
    is_peak = (scores >= left) & (scores >= right)
    offset = scores.amax() - scores.amin() + 1.0
    ranked = torch.where(is_peak, scores, scores - offset)  # every non-peak ranks after every peak
    return torch.sort(ranked, dim=-1, descending=True, stable=True).indices[:, :d]


def chamfer_distance(est: Tensor, true: Tensor) -> Tensor:
    """Symmetric Chamfer distance per row between two point sets on the line (e.g. angles in degrees).

    ``0.5 * (mean_a min_b |a - b| + mean_b min_a |a - b|)`` with ``a`` in ``est`` ``(B, k)`` and ``b`` in
    ``true`` ``(B, l)``. Returns ``(B,)``.
    """
    check_tensor("est", est, ndim=2)
    check_tensor("true", true, ndim=2)
    dist = (est.unsqueeze(-1) - true.unsqueeze(-2)).abs()
    return 0.5 * (dist.amin(-1).mean(-1) + dist.amin(-2).mean(-1))
