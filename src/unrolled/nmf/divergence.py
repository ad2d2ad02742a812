r"""The beta-divergence of (23) and the pieces of its multiplicative updates (24)-(26).

.. math::
    d_\beta(x|y) = \begin{cases}
        \frac{x}{y} - \log\frac{x}{y} - 1 & \beta = 0 \text{ (Itakura-Saito)}\\
        x\log\frac{x}{y} - x + y & \beta = 1 \text{ (Kullback-Leibler)}\\
        \frac{x^\beta + (\beta - 1)y^\beta - \beta x y^{\beta-1}}{\beta(\beta-1)} & \text{otherwise}
        \ (\beta = 2: \tfrac12 (x - y)^2)
    \end{cases}

:math:`D_\beta(M|V) = \sum_{f,t} d_\beta(m_{ft}|v_{ft})`, the loss scikit-learn's ``NMF`` minimises
(``_beta_divergence(..., square_root=False)``).
"""

from __future__ import annotations

import torch
from torch import Tensor


def mm_exponent(beta: float) -> float:
    r"""Exponent :math:`\gamma(\beta)` that makes the multiplicative update a majorisation-minimisation step.

    :math:`1/(2-\beta)` for :math:`\beta < 1`, :math:`1` on :math:`[1, 2]` (the plain updates (24)-(25)),
    :math:`1/(\beta - 1)` for :math:`\beta > 2` (Févotte & Idier, 2011, Table 2); scikit-learn's ``'mu'`` solver
    uses the same.
    """
    if beta < 1:
        return 1.0 / (2.0 - beta)
    if beta > 2:
        return 1.0 / (beta - 1.0)
    return 1.0


def beta_divergence(M: Tensor, V: Tensor, beta: float, *, eps: float = 0.0) -> Tensor:
    r""":math:`D_\beta(M|V)` summed over the last two dimensions: ``(...)`` for ``(..., F, T)`` inputs.

    ``V`` is clamped at ``eps`` (as the updates clamp it). For :math:`\beta \le 0`, ``M`` must be positive.
    """
    if eps > 0:
        V = V.clamp_min(eps)
    if beta == 0:
        r = M / V
        d = r - torch.log(r) - 1.0
    elif beta == 1:
        d = torch.xlogy(M, M) - torch.xlogy(M, V) - M + V
    elif beta == 2:
        d = 0.5 * (M - V) ** 2
    else:
        d = (M ** beta + (beta - 1.0) * V ** beta - beta * M * V ** (beta - 1.0)) / (beta * (beta - 1.0))
    return d.sum(dim=(-2, -1))


def normalise_columns(W: Tensor) -> tuple[Tensor, Tensor]:
    """``(W / ||w_l||_2, ||w_l||_2)``: unit-norm columns (26) and the norms ``(..., 1, L)``."""
    norms = torch.linalg.vector_norm(W, dim=-2, keepdim=True)
    return W / norms.clamp_min(torch.finfo(W.dtype).tiny), norms
