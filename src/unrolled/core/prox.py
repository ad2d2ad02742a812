"""Proximal operators and projections used by the unrolled layers.

All functions are differentiable almost everywhere with respect to both the
input and the threshold, and broadcast the threshold against the input, so a
scalar, a per-coordinate vector or a per-sample column can be passed.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor


def soft_threshold(x: Tensor, theta: Tensor | float) -> Tensor:
    r"""Soft thresholding, the proximal operator of :math:`\theta\|\cdot\|_1`.

    Parameters
    ----------
    x : Tensor
        Input of any shape.
    theta : Tensor or float
        Non-negative threshold, broadcastable against ``x``. A negative (or
        NaN) number raises :class:`ValueError`; a tensor is not inspected (that
        would synchronise with the device at every layer; learned thresholds
        are kept non-negative by their constraint).

    Returns
    -------
    Tensor
        :math:`\operatorname{sign}(x)\max(|x| - \theta, 0)`, same shape as ``x``.
    """
    if isinstance(theta, numbers.Real) and not theta >= 0:
        raise ValueError(f"theta must be >= 0 (a negative threshold enlarges the entries), got {theta!r}")
    return torch.sign(x) * torch.relu(x.abs() - theta)


def hard_threshold(x: Tensor, k: int) -> Tensor:
    """Keep the ``k`` largest-magnitude entries of each row, zero the rest.

    This is the projection onto the set of ``k``-sparse vectors (ties broken
    by :func:`torch.topk`), used by iterative hard thresholding.

    Parameters
    ----------
    x : Tensor
        Input of shape ``(..., n)``.
    k : int
        Number of entries kept per row, ``0 <= k <= n``.

    Returns
    -------
    Tensor
        Same shape as ``x``.
    """
    n = x.shape[-1]
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, {n}], got {k}")
    if k == n:
        return x.clone()
    mask = torch.zeros_like(x, dtype=torch.bool)
    if k > 0:
        idx = x.abs().topk(k, dim=-1).indices
        mask.scatter_(-1, idx, True)
    return torch.where(mask, x, torch.zeros_like(x))


def support_selection_threshold(x: Tensor, theta: Tensor | float, fraction: float) -> Tensor:
    r"""Soft thresholding with support selection (LISTA-CPSS, Chen et al. 2018).

    In each row, the ``ceil(fraction * n)`` largest-magnitude entries are
    trusted to lie in the support: where they exceed the threshold they pass
    through unshrunk. All other entries are soft-thresholded, and every entry
    with :math:`|x_i| \le \theta` is zeroed, as in the paper's operator
    :math:`\eta^{p}_{ss}`.

    Parameters
    ----------
    x : Tensor
        Input of shape ``(..., n)``.
    theta : Tensor or float
        Non-negative threshold, broadcastable against ``x``.
    fraction : float
        Fraction of entries per row that bypass the shrinkage, in ``[0, 1]``.
        ``0`` reduces to :func:`soft_threshold`.

    Returns
    -------
    Tensor
        Same shape as ``x``.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    n = x.shape[-1]
    # round in float64 with a little slack so that e.g. 0.012 * 500 gives 6, not 7
    k = min(n, math.ceil(fraction * n - 1e-9))
    shrunk = soft_threshold(x, theta)
    if k == 0:
        return shrunk
    idx = x.abs().topk(k, dim=-1).indices
    mask = torch.zeros_like(x, dtype=torch.bool).scatter_(-1, idx, True)
    return torch.where(mask & (x.abs() > theta), x, shrunk)


def project_columns_unit_ball(a: Tensor) -> Tensor:
    r"""Project every column of ``a`` (shape ``(..., m, n)``) onto the l2 unit ball.

    Columns with norm at most one are left unchanged; longer ones are rescaled
    to unit norm: :math:`a_j / \max(1, \|a_j\|_2)`.
    """
    norms = torch.linalg.vector_norm(a, dim=-2, keepdim=True)
    return a / torch.clamp(norms, min=1.0)


def project_columns_unit_sphere(a: Tensor, eps: float = 1e-12) -> Tensor:
    """Normalise every column of ``a`` (shape ``(..., m, n)``) to unit l2 norm.

    ``eps`` guards against division by zero for an all-zero column.
    """
    norms = torch.linalg.vector_norm(a, dim=-2, keepdim=True)
    return a / torch.clamp(norms, min=eps)
