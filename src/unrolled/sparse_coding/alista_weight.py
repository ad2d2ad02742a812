"""The analytic weight of ALISTA (Liu, Chen, Wang & Yin, ICLR 2019).

ALISTA replaces the generalised mutual coherence
:math:`\\mu(W, A) = \\max_{i \\ne j} |w_i^\\top a_j|` (subject to
:math:`w_i^\\top a_i = 1`) by its Frobenius surrogate

.. math:: \\min_W \\|W^\\top A\\|_F^2 \\quad \\text{s.t.} \\quad w_i^\\top a_i = 1 \\ \\forall i,

a convex quadratic program that separates over columns. For column ``i`` the
Lagrange condition :math:`2 A A^\\top w_i = \\nu_i a_i` gives the closed form

.. math:: w_i = \\frac{G^{-1} a_i}{a_i^\\top G^{-1} a_i}, \\qquad G = A A^\\top,

valid whenever ``A`` has full row rank (``m <= n``). We use it instead of the
paper's projected gradient descent: it is the exact minimiser.
"""

from __future__ import annotations

import torch
from torch import Tensor

from unrolled.core.validation import check_tensor


def analytic_weight(A: Tensor) -> Tensor:
    """Minimiser ``W`` (same shape as ``A``) of ``||W^T A||_F^2`` s.t. ``diag(W^T A) = 1``.

    Parameters
    ----------
    A : Tensor
        Dictionary of shape ``(m, n)`` with full row rank.

    Returns
    -------
    Tensor
        ``W`` of shape ``(m, n)`` with ``w_i^T a_i = 1`` for every column.
    """
    check_tensor("A", A, ndim=2)
    m, n = A.shape
    gram = A @ A.T
    rank = torch.linalg.matrix_rank(gram)
    if int(rank) < m:
        raise ValueError(f"A must have full row rank for the analytic ALISTA weight (rank {int(rank)} < m={m})")
    g_inv_a = torch.linalg.solve(gram, A)  # columns G^{-1} a_i
    scale = (A * g_inv_a).sum(dim=0, keepdim=True)  # a_i^T G^{-1} a_i > 0
    return g_inv_a / scale


def generalized_coherence(W: Tensor, A: Tensor) -> float:
    """``max_{i != j} |w_i^T a_j|``, the generalised mutual coherence of ``(W, A)``."""
    c = (W.T @ A).abs()
    c.fill_diagonal_(0.0)
    return float(c.max())
