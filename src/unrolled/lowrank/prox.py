r"""The two proximal operators of problem (16): singular value thresholding and row-wise l1,2 shrinkage.

* :func:`svt` is :math:`\mathcal T_\tau`, the proximal operator of :math:`\tau\|\cdot\|_*`:
  :math:`\mathcal T_\tau(X) = U\,\mathrm{diag}(\max(\sigma - \tau, 0))\,V^H` for :math:`X = U\Sigma V^H`.
* :func:`row_soft_threshold` is :math:`\mathcal S^{1,2}_\tau`, the proximal operator of
  :math:`\tau\|\cdot\|_{1,2} = \tau\sum_i \|x_i\|_2` (rows :math:`x_i`):
  :math:`x_i \max(1 - \tau/\|x_i\|_2, 0)`.

Both take real or complex matrices ``(..., m, n)`` (batched over the leading dimensions) and a threshold that
is a number, a scalar tensor or one value per matrix ``(...)``.

Stable gradients through the SVD
--------------------------------
Autograd through :func:`torch.linalg.svd` divides by :math:`\sigma_i^2 - \sigma_j^2`; with repeated singular
values (a rank-deficient movie has many zero ones, a tissue of equal-energy components has equal ones) that is
``inf``/``NaN``, although the SVT itself is smooth there. :func:`svt` therefore has its own backward pass: the
exact derivative of the spectral function :math:`f(\sigma) = \max(\sigma - \tau, 0)`. With
:math:`\Gamma = U^H G V` (``G`` the incoming gradient),

.. math::
    \nabla_X = U\big[\mathrm{He}(D_1\circ\Gamma) + \mathrm{Sk}(D_2\circ\Gamma)\big]V^H
               + (I - UU^H)\,G\,V\,\mathrm{diag}(f(\sigma)/\sigma)\,V^H,\qquad
    \nabla_\tau = -\sum_i \mathbb 1[\sigma_i > \tau]\,\mathrm{Re}\,\Gamma_{ii},

where :math:`\mathrm{He}(A) = (A + A^H)/2`, :math:`\mathrm{Sk}(A) = (A - A^H)/2`, and the *divided differences*
:math:`(D_1)_{ij} = (f_i - f_j)/(\sigma_i - \sigma_j)` (:math:`= f'(\sigma_i)` when :math:`\sigma_i = \sigma_j`),
:math:`(D_2)_{ij} = (f_i + f_j)/(\sigma_i + \sigma_j)` (0 when both are 0). Since :math:`f` is non-decreasing and
1-Lipschitz with :math:`f(0) = 0`, all three weights lie in :math:`[0, 1]` (they are clamped there against
rounding), so the backward pass is bounded for any spectrum: degenerate singular values give the limit value
:math:`f'` instead of 0/0, and the result does not depend on the (non-unique) singular vectors of a repeated
singular value. The formula is the real-inner-product adjoint of the SVT's differential, so it is PyTorch's
gradient convention for complex inputs too; it is checked against finite differences (``gradcheck``) on
matrices with repeated and zero singular values, and against plain autograd on generic ones.

The l1,2 shrinkage needs little care: the squared row norm is clamped away from 0 before its square root, so an
all-zero row has gradient 0 (not 0 * inf).
"""

from __future__ import annotations

import numbers

import torch
from torch import Tensor

__all__ = ["svt", "row_soft_threshold", "nuclear_norm", "l12_norm", "abs2"]


def _threshold(tau, X: Tensor, name: str = "tau") -> Tensor:
    """``tau`` as a real tensor of ``X``'s precision and device, shape ``()`` or ``X.shape[:-2]``."""
    real = X.real.dtype if X.is_complex() else X.dtype
    if isinstance(tau, numbers.Real):
        if not tau >= 0 or tau == float("inf"):
            raise ValueError(f"{name} must be a finite number >= 0, got {tau!r}")
        return torch.tensor(float(tau), dtype=real, device=X.device)
    if not isinstance(tau, Tensor):
        raise ValueError(f"{name} must be a number or a tensor, got {type(tau).__name__}")
    if tau.is_complex():
        raise ValueError(f"{name} must be real, got dtype {tau.dtype}")
    if tau.dim() and tuple(tau.shape) != tuple(X.shape[: tau.dim()]):
        raise ValueError(f"{name} must be a scalar or one value per matrix {tuple(X.shape[:-2])}, "
                         f"got shape {tuple(tau.shape)}")
    return tau.to(real)


def abs2(x: Tensor) -> Tensor:
    """:math:`|x|^2` entrywise, real (cheaper than ``x.abs() ** 2`` for complex tensors)."""
    if x.is_complex():
        return x.real.square() + x.imag.square()
    return x.square()


def _hermitian_part(A: Tensor) -> Tensor:
    return 0.5 * (A + A.mH)


def _skew_part(A: Tensor) -> Tensor:
    return 0.5 * (A - A.mH)


class _SVT(torch.autograd.Function):
    """SVT of tall matrices ``(..., m, n)``, ``m >= n``, with the bounded backward of the module docstring."""

    @staticmethod
    def forward(ctx, X: Tensor, tau: Tensor):
        U, s, Vh = torch.linalg.svd(X, full_matrices=False)
        t = tau.reshape(tau.shape + (1,)) if tau.dim() else tau
        f = torch.relu(s - t)
        Y = (U * f.unsqueeze(-2).to(U.dtype)) @ Vh
        ctx.save_for_backward(U, s, Vh, f, t)
        ctx.tau_shape = tau.shape
        nuc = f.sum(-1)
        ctx.mark_non_differentiable(nuc)
        return Y, nuc

    @staticmethod
    def backward(ctx, G: Tensor, _unused):
        U, s, Vh, f, t = ctx.saved_tensors
        real = s.dtype
        eps = torch.finfo(real).eps
        tiny = torch.finfo(real).tiny
        Gamma = U.mH @ G @ Vh.mH  # (..., n, n)
        active = (s > t).to(real)
        si, sj = s.unsqueeze(-1), s.unsqueeze(-2)
        fi, fj = f.unsqueeze(-1), f.unsqueeze(-2)
        scale = s.amax(-1, keepdim=True).unsqueeze(-1).clamp_min(tiny)
        diff = si - sj
        close = diff.abs() <= 64 * eps * scale
        safe = torch.where(close, torch.ones_like(diff), diff)
        D1 = torch.where(close, 0.5 * (active.unsqueeze(-1) + active.unsqueeze(-2)), (fi - fj) / safe).clamp(0, 1)
        total = si + sj
        D2 = torch.where(total > tiny, (fi + fj) / total.clamp_min(tiny), torch.zeros_like(total)).clamp(0, 1)
        E = torch.where(s > tiny, f / s.clamp_min(tiny), torch.zeros_like(s)).clamp(0, 1)
        Q = _hermitian_part(D1.to(Gamma.dtype) * Gamma) + _skew_part(D2.to(Gamma.dtype) * Gamma)
        GV = G @ Vh.mH
        grad_X = U @ Q @ Vh + ((GV - U @ Gamma) * E.unsqueeze(-2).to(GV.dtype)) @ Vh
        grad_tau = None
        if ctx.needs_input_grad[1]:
            diag = torch.diagonal(Gamma, dim1=-2, dim2=-1).real
            grad_tau = -(active * diag).sum(-1)
            grad_tau = grad_tau.sum_to_size(ctx.tau_shape) if len(ctx.tau_shape) else grad_tau.sum()
        return grad_X, grad_tau


def svt(X: Tensor, tau) -> tuple[Tensor, Tensor]:
    r"""Singular value thresholding :math:`\mathcal T_\tau(X)`, the prox of :math:`\tau\|X\|_*` (review, (17)).

    Parameters
    ----------
    X : Tensor
        ``(..., m, n)`` real or complex matrices.
    tau : float or Tensor
        Threshold ``>= 0``: a number, a scalar tensor or ``(...)`` (one per matrix); differentiable.

    Returns
    -------
    Y : Tensor
        ``(..., m, n)``, the thresholded matrices, with the bounded backward pass of the module docstring.
    nuclear : Tensor
        ``(...)`` real, :math:`\|Y\|_* = \sum_i \max(\sigma_i - \tau, 0)` (free from the SVD; no gradient).
    """
    if not isinstance(X, Tensor) or X.dim() < 2:
        raise ValueError(f"X must be a tensor of matrices (..., m, n), got {getattr(X, 'shape', type(X).__name__)}")
    tau = _threshold(tau, X)
    if X.shape[-2] < X.shape[-1]:  # T(X^H) = T(X)^H: work on the tall side
        Y, nuc = _SVT.apply(X.mH, tau)
        return Y.mH, nuc
    return _SVT.apply(X, tau)


def row_soft_threshold(X: Tensor, tau) -> Tensor:
    r"""Row-wise soft thresholding :math:`\mathcal S^{1,2}_\tau(X)`, the prox of :math:`\tau\|X\|_{1,2}` (review, (18)).

    Parameters
    ----------
    X : Tensor
        ``(..., m, n)`` real or complex; each of the ``m`` rows is shrunk as one group.
    tau : float or Tensor
        Threshold ``>= 0``: a number, a scalar tensor or ``(...)``.

    Returns
    -------
    Tensor
        :math:`x_i\max(1 - \tau/\|x_i\|_2, 0)` row by row, same shape and dtype as ``X``.
    """
    if not isinstance(X, Tensor) or X.dim() < 2:
        raise ValueError(f"X must be a tensor of matrices (..., m, n), got {getattr(X, 'shape', type(X).__name__)}")
    tau = _threshold(tau, X)
    t = tau.reshape(tau.shape + (1, 1)) if tau.dim() else tau
    squares = abs2(X).sum(-1, keepdim=True)
    # clamped before the square root: an all-zero row then has gradient 0, not 0 * inf
    norms = squares.clamp_min(torch.finfo(squares.dtype).tiny).sqrt()
    scale = torch.relu(1.0 - t / norms)
    return X * scale.to(X.dtype)


def nuclear_norm(X: Tensor) -> Tensor:
    """:math:`\\|X\\|_*` of ``(..., m, n)`` matrices, ``(...)``."""
    return torch.linalg.svdvals(X).sum(-1)


def l12_norm(X: Tensor) -> Tensor:
    """:math:`\\|X\\|_{1,2} = \\sum_i \\|x_i\\|_2` (sum of the row norms) of ``(..., m, n)`` matrices, ``(...)``."""
    return abs2(X).sum(-1).sqrt().sum(-1)
