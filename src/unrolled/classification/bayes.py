r"""Reweighting of the l1 weights from the hyper-parameters (the paper's Bayesian formulation, eq. (3)).

With the Gaussian prior (1) :math:`\beta_i \sim \mathcal N(0, \gamma_i)` and the
Laplace approximation of the marginal likelihood at the mode, twice the negative
log joint is (up to constants)

.. math::
    2L(\beta) + \beta^\top\Gamma^{-1}\beta + \log|\Gamma| + \log|\Gamma^{-1} + A^\top A|,
    \qquad A = \Lambda^{1/2}\tilde\Phi,

which is the paper's (3) (we read its :math:`\tfrac12\log|H|` with the Hessian of
the penalised objective, whose :math:`\log|\Gamma|` terms combine). The last two
terms equal :math:`\log|I + A\Gamma A^\top|`, concave in :math:`\gamma`; its
linearisation at the current :math:`\gamma` has slopes

.. math:: z_i = a_i^\top (I + A\Gamma A^\top)^{-1} a_i ,

and minimising over :math:`\gamma` in closed form leaves the weighted l1
problem (4) with :math:`w_i = \sqrt{z_i}` and :math:`\gamma_i = |\beta_i| / w_i`
(the iterative reweighted l1 view of ARD; Wipf and Nagarajan, 2010). An
optional ``scale`` multiplies the weights (``1``: the formulation above).
"""

from __future__ import annotations

import torch
from torch import Tensor

from unrolled.classification.layers import weighted_system
from unrolled.classification.solvers import IRLSADMMResult, irls_admm, prepare_problem
from unrolled.core.validation import check_int, check_positive

__all__ = ["ard_weights", "reweighted_irls_admm"]


def ard_weights(Xt: Tensor, beta: Tensor, w: Tensor, penalised: Tensor) -> Tensor:
    r"""New weights :math:`w_i = \sqrt{z_i}` at ``beta`` with :math:`\gamma_i = |\beta_i|/w_i`.

    Parameters
    ----------
    Xt : Tensor
        ``(B, N, P)`` label-folded design (see :func:`~unrolled.classification.solvers.prepare_problem`).
    beta, w : Tensor
        ``(B, P)`` current solution and the weights it was computed with.
    penalised : Tensor
        ``(B, P)`` bool; unpenalised coordinates keep weight 0.
    """
    margin = (Xt @ beta.unsqueeze(-1)).squeeze(-1)
    _, _, A, _ = weighted_system(Xt, margin)
    gamma = torch.where(penalised & (w > 0), beta.abs() / w.clamp_min(torch.finfo(w.dtype).tiny), 0.0)
    N = A.shape[-2]
    K = torch.eye(N, dtype=A.dtype, device=A.device) + (A * gamma.unsqueeze(-2)) @ A.transpose(-1, -2)
    sol = torch.linalg.solve(K, A)  # (I + A Gamma A^T)^{-1} A
    z = (A * sol).sum(-2).clamp_min(0.0)
    return torch.where(penalised, z.sqrt(), torch.zeros_like(z))


def reweighted_irls_admm(X: Tensor, y: Tensor, lam=1.0, *, n_reweight: int = 5, scale: float = 1.0,
                         fit_intercept: bool = False, **solver_kwargs) -> tuple[IRLSADMMResult, Tensor]:
    """IRLS-ADMM with the weights re-estimated from the hyper-parameters ``n_reweight`` times.

    The first solve uses ``w = lam`` (a number or ``(p,)`` / ``(B, p)``); each
    following one uses ``scale * sqrt(z)`` from :func:`ard_weights`.

    Returns
    -------
    (IRLSADMMResult, Tensor)
        The last solve and the ``(B, p)`` weights it used.
    """
    n_reweight = check_int("n_reweight", n_reweight, minimum=0)
    scale = check_positive("scale", scale)
    res = irls_admm(X, y, lam, fit_intercept=fit_intercept, **solver_kwargs)
    Xt, w, single = prepare_problem(X, y, lam, fit_intercept)
    for _ in range(n_reweight):
        beta = torch.cat([res.beta.reshape(w.shape[0], -1), res.intercept.reshape(-1, 1)], -1) if fit_intercept \
            else res.beta.reshape(w.shape[0], -1)
        penalised = torch.ones_like(w, dtype=torch.bool)
        if fit_intercept:
            penalised[:, -1] = False
        w = scale * ard_weights(Xt, beta, w, penalised)
        w_feat = w[:, :-1] if fit_intercept else w
        res = irls_admm(X, y, w_feat[0] if single else w_feat, fit_intercept=fit_intercept, **solver_kwargs)
    w_feat = w[:, :-1] if fit_intercept else w
    return res, (w_feat[0] if single else w_feat)
