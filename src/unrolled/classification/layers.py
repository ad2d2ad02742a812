r"""The node types of the IRLS-ADMM data-flow graph (paper, Sec. II-B.2, Fig. 2 and Appendix A).

One outer (IRLS / Newton) step ``k`` and its inner ADMM iterations ``i`` are
built from these functions in :class:`~unrolled.classification.iteration.IRLSADMMIteration`,
the step the classic solver (:mod:`unrolled.classification.solvers`) and the
unrolled network (:mod:`unrolled.classification.nets`) share. All are plain PyTorch operations, so
autograd replaces the hand-derived gradients of Appendix A.

Notation (batch-first): ``Xt = diag(y) Phi`` is ``(B, N, p)`` with labels
``y_n in {-1, +1}`` folded into the rows (the paper's :math:`\tilde\Phi`);
``margin = Xt @ beta`` is ``(B, N)``; vectors over features are ``(B, p)``.

=============================  ====================================  ==================
node (Fig. 2)                  function                              equation
=============================  ====================================  ==================
b) weighting matrix Lambda     :func:`irls_weights`                  (10), (23)
c) working response v          :func:`working_response`              (13), (24)
a), d) A and b                 :func:`weighted_system`               (18)-(19), (25)-(26)
e)-j) Omega update             :func:`omega_update`                  (21), (27)
m) C = F Omega                 inline ``F * omega``                  (28)
k), l) z = S_{1/rho}(C + u)    :func:`z_update`                      (22), (29)
q), r), s) u update            :func:`u_update`                      (30)
n), o), p) beta update         :func:`beta_update`                   (7), (31)
=============================  ====================================  ==================
"""

from __future__ import annotations

import torch
import torch.nn.functional as F_
from torch import Tensor

from unrolled.core.prox import soft_threshold


def irls_weights(margin: Tensor) -> Tensor:
    r"""Node b), eq. (23): :math:`\Lambda_{nn} = \varsigma(m_n)(1 - \varsigma(m_n))`, computed in log space."""
    return torch.exp(F_.logsigmoid(margin) + F_.logsigmoid(-margin))


def working_response(margin: Tensor) -> Tensor:
    r"""Node c), eq. (24): :math:`v_n = m_n + 1 + e^{-m_n}` (overflows for margins below about -700)."""
    return margin + 1.0 + torch.exp(-margin)


def weighted_system(Xt: Tensor, margin: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""Nodes a), b), d): the weighted least-squares system (16)-(19) of one IRLS step.

    :math:`A = \Lambda^{1/2}\tilde\Phi` and :math:`b = \Lambda^{1/2} v`. ``b`` is
    formed without ``v``: :math:`\Lambda^{1/2} v = \Lambda^{1/2} m + e^{-m/2}`
    (because :math:`\Lambda^{1/2}/\varsigma(m) = e^{-m/2}`), which stays finite
    when :math:`\Lambda` underflows.

    Returns
    -------
    gram : Tensor
        ``(B, p, p)``, :math:`A^\top A`.
    rhs : Tensor
        ``(B, p)``, :math:`A^\top b`.
    A, b : Tensor
        ``(B, N, p)`` and ``(B, N)``.
    """
    sqrt_lam = torch.exp(0.5 * (F_.logsigmoid(margin) + F_.logsigmoid(-margin)))
    A = sqrt_lam.unsqueeze(-1) * Xt
    b = sqrt_lam * margin + torch.exp(-0.5 * margin)
    gram = A.transpose(-1, -2) @ A
    rhs = (A.transpose(-1, -2) @ b.unsqueeze(-1)).squeeze(-1)
    return gram, rhs, A, b


def omega_update(gram: Tensor, rhs: Tensor, rho: Tensor, F: Tensor, z: Tensor, u: Tensor, *,
                 chol: Tensor | None = None) -> Tensor:
    r"""Nodes e)-j), eq. (27): :math:`\Omega = (A^\top A + \rho F^2)^{-1}(A^\top b + \rho F(z - u))`.

    Parameters
    ----------
    gram, rhs : Tensor
        ``(B, p, p)`` and ``(B, p)`` from :func:`weighted_system`.
    rho : Tensor
        Penalty, a scalar or ``(B, 1)``.
    F : Tensor
        Diagonal of :math:`F` (the l1 weights), ``(p,)`` or ``(B, p)``; zero
        entries are unpenalised coordinates (an intercept).
    z, u : Tensor
        ``(B, p)`` ADMM split variable and scaled dual (zeros at ``i = 1``).
    chol : Tensor, optional
        Cholesky factor of :math:`A^\top A + \rho F^2` when the caller reuses it
        across inner iterations (classic solver, ``rho`` fixed).
    """
    r = rhs + rho * F * (z - u)
    if chol is None:
        chol = system_cholesky(gram, rho, F)
    return torch.cholesky_solve(r.unsqueeze(-1), chol).squeeze(-1)


def system_cholesky(gram: Tensor, rho: Tensor, F: Tensor) -> Tensor:
    r"""Cholesky factor of :math:`A^\top A + \rho\,\mathrm{diag}(F)^2`, with a clear error when singular."""
    diag = (rho * F * F).expand(gram.shape[:-1])
    M = gram + torch.diag_embed(diag)
    L, info = torch.linalg.cholesky_ex(M)
    if bool((info != 0).any()):
        raise ValueError(
            "the IRLS-ADMM system A^T A + rho F^2 is singular: unpenalised columns (intercept, zero weights) "
            "are linearly dependent or the data are perfectly separated along them"
        )
    return L


def z_update(C: Tensor, u: Tensor, rho: Tensor) -> Tensor:
    r"""Nodes k), l), eq. (29): :math:`z = S_{\lambda/\rho}(C + u)` with :math:`\lambda = 1`."""
    return soft_threshold(C + u, 1.0 / rho)


def u_update(u: Tensor, C: Tensor, z: Tensor) -> Tensor:
    """Nodes q), r), s), eq. (30): ``u + C - z``."""
    return u + C - z


def beta_update(beta: Tensor, omega: Tensor, t: Tensor) -> Tensor:
    """Nodes n), o), p), eq. (31): ``(1 - t) beta + t Omega``."""
    return (1.0 - t) * beta + t * omega


def logistic_loss_sum(margin: Tensor) -> Tensor:
    r""":math:`\sum_n \log(1 + e^{-m_n})` per problem, ``(B,)`` (the data term of (4) and the loss (32))."""
    return F_.softplus(-margin).sum(-1)


def logistic_gradient(Xt: Tensor, margin: Tensor) -> Tensor:
    r"""Eq. (8): :math:`g = -\tilde\Phi^\top (1 - \varsigma(m))`, ``(B, p)``."""
    return -(Xt.transpose(-1, -2) @ torch.sigmoid(-margin).unsqueeze(-1)).squeeze(-1)
