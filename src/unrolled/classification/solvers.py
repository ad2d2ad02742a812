r"""Classic solver of the classification family: IRLS-ADMM for weighted l1 logistic regression.

Problem (4) of the paper, for labels :math:`y_n \in \{-1, +1\}`:

.. math::
    \min_\beta \; \sum_n \log\big(1 + e^{-y_n \beta^\top\phi(x_n)}\big) + \sum_i w_i |\beta_i| .

Algorithm 1: each outer (IRLS / Newton) step builds the weighted least-squares
system (16)-(19) at :math:`\beta^k`, solves the l1-penalised problem (17)/(20)

.. math:: \min_\Omega \tfrac12\|A\Omega - b\|^2 + \|F\Omega\|_1,\qquad F = \mathrm{diag}(w),

with ADMM (21) on the split :math:`F\Omega = z` (the paper's :math:`\lambda = 1`
convention: the weights live in ``F``), and moves
:math:`\beta^{k+1} = (1 - t)\beta^k + t\Omega` with ``t`` from a backtracking
line search on the objective (4) (Armijo condition of proximal Newton methods,
:math:`\Delta = \nabla L^\top(\Omega - \beta) + \|F\Omega\|_1 - \|F\beta\|_1`).

Intercept: ``fit_intercept=True`` appends a column of ones with weight 0 (an
unpenalised coordinate: its ``F`` entry is zero, so its ``z`` and ``u`` stay 0
and it is free in the Omega update); it is returned as ``result.intercept``.

Stopping: the KKT violation of (4), relative to
:math:`\lambda_{max} = \|\nabla L(0)\|_\infty`, below ``tol`` (see
:func:`kkt_violation`); the inner ADMM stops on Boyd's relative primal/dual
residuals below ``inner_tol``. Batched: ``B`` problems (data sets, or one data
set with ``B`` weight vectors / lambdas) run together, each frozen once converged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from unrolled.classification.layers import (
    beta_update,
    logistic_gradient,
    logistic_loss_sum,
    omega_update,
    system_cholesky,
    u_update,
    weighted_system,
    z_update,
)
from unrolled.core.result import SolverResult
from unrolled.core.validation import check_int, check_positive, check_tensor

__all__ = ["IRLSADMMResult", "irls_admm", "prepare_problem", "objective", "kkt_violation", "lambda_max"]

ARMIJO = 1e-4
MAX_HALVINGS = 40


@dataclass
class IRLSADMMResult(SolverResult):
    """:class:`~unrolled.core.result.SolverResult` of :func:`irls_admm`.

    Attributes
    ----------
    x : Tensor
        ``(B, p)`` coefficients (no intercept); also available as :attr:`beta`.
    intercept : Tensor
        ``(B,)`` intercepts (zeros unless ``fit_intercept``).
    objective : Tensor
        ``(B,)`` value of (4) at the solution.
    kkt : Tensor
        ``(B,)`` relative KKT violation at the solution.
    inner_iter : Tensor
        ``(B,)`` ADMM iterations run in total.
    n_iter, converged, history
        As in :class:`SolverResult`; ``history`` has ``'objective'`` (batch
        mean) and ``'criterion'`` (batch maximum of the KKT violation).
    """

    intercept: Tensor | None = None
    objective: Tensor | None = None
    kkt: Tensor | None = None
    inner_iter: Tensor | None = None

    @property
    def beta(self) -> Tensor:
        """The coefficients, ``(B, p)``."""
        return self.x


def prepare_problem(X: Tensor, y: Tensor, w, fit_intercept: bool) -> tuple[Tensor, Tensor, bool]:
    """Validate and batch ``(X, y, w)``; returns ``Xt = diag(y) [X, 1]`` ``(B, N, P)``, weights ``(B, P)``, single.

    ``X`` is ``(N, p)`` or ``(B, N, p)``; ``y`` is ``(N,)`` or ``(B, N)`` in
    {-1, +1}; ``w`` is a number, ``(p,)`` or ``(B, p)``, non-negative. The
    batch size is the largest of those given; size-1 batches broadcast.
    """
    check_tensor("X", X, ndim=(2, 3))
    if not isinstance(y, Tensor):
        raise ValueError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if y.dim() not in (1, 2):
        raise ValueError(f"y must have 1 or 2 dimensions, got shape {tuple(y.shape)}")
    y = y.to(X.dtype)
    if not bool(((y == 1) | (y == -1)).all()):
        raise ValueError("y must hold labels in {-1, +1}")
    N, p = X.shape[-2], X.shape[-1]
    if y.shape[-1] != N:
        raise ValueError(f"X has {N} samples but y has {y.shape[-1]}")
    if isinstance(w, Tensor):
        check_tensor("w", w, ndim=(0, 1, 2))
        w = w.to(dtype=X.dtype, device=X.device)
    else:
        w = torch.tensor(check_positive("w", w, allow_zero=True), dtype=X.dtype, device=X.device)
    if w.dim() >= 1 and w.shape[-1] != p:
        raise ValueError(f"w must have {p} entries (one per feature), got shape {tuple(w.shape)}")
    if bool((w < 0).any()):
        raise ValueError("the l1 weights w (lambda) must be non-negative")
    sizes = {t.shape[0] for t, nd in ((X, 3), (y, 2), (w, 2)) if t.dim() == nd}
    B = max(sizes | {1})
    if any(s not in (1, B) for s in sizes):
        raise ValueError(f"batch sizes of X, y and w do not match: {sorted(sizes)}")
    single = X.dim() == 2 and y.dim() == 1 and w.dim() < 2
    Xb = X.expand(B, N, p) if X.dim() == 3 else X.unsqueeze(0).expand(B, N, p)
    yb = y.expand(B, N) if y.dim() == 2 else y.unsqueeze(0).expand(B, N)
    wb = w.expand(B, p)
    if fit_intercept:
        Xb = torch.cat([Xb, Xb.new_ones(B, N, 1)], dim=-1)
        wb = torch.cat([wb, wb.new_zeros(B, 1)], dim=-1)
    return yb.unsqueeze(-1) * Xb, wb.contiguous(), single


def objective(Xt: Tensor, beta: Tensor, w: Tensor) -> Tensor:
    """Objective (4) per problem, ``(B,)``."""
    margin = (Xt @ beta.unsqueeze(-1)).squeeze(-1)
    return logistic_loss_sum(margin) + (w * beta).abs().sum(-1)


def lambda_max(Xt: Tensor) -> Tensor:
    r""":math:`\|\nabla L(0)\|_\infty = \tfrac12\|\tilde\Phi^\top 1\|_\infty` per problem: the smallest
    uniform weight for which :math:`\beta = 0` solves (4) (without intercept)."""
    return 0.5 * Xt.sum(-2).abs().amax(-1)


def kkt_violation(Xt: Tensor, beta: Tensor, w: Tensor) -> Tensor:
    r"""Largest violation of the optimality conditions of (4), relative to :func:`lambda_max`.

    With :math:`g = \nabla L(\beta)`: :math:`|g_i + w_i\,\mathrm{sign}\,\beta_i|` on the support,
    :math:`\max(|g_i| - w_i, 0)` off it (:math:`|g_i|` for unpenalised coordinates).
    """
    margin = (Xt @ beta.unsqueeze(-1)).squeeze(-1)
    g = logistic_gradient(Xt, margin)
    on = (g + w * torch.sign(beta)).abs()
    off = torch.relu(g.abs() - w)
    viol = torch.where(beta != 0, on, off).amax(-1)
    return viol / lambda_max(Xt).clamp_min(torch.finfo(Xt.dtype).tiny)


def _auto_rho(gram: Tensor, w: Tensor) -> Tensor:
    r"""ADMM penalty from the spectrum of the scaled problem, ``(B, 1)``.

    With :math:`\gamma = F\Omega` the inner problem is a Lasso with Hessian
    :math:`F^{-1} S F^{-1}`, :math:`S` the Gram matrix on the penalised
    coordinates after eliminating the unpenalised ones (Schur complement; with
    an intercept, the weighted centred Gram). ``rho`` is the geometric mean of
    its largest and smallest non-zero eigenvalues, the optimal ADMM penalty for
    strongly convex quadratics (Ghadimi et al., 2015).
    """
    pen = w > 0
    unp = (~pen).to(gram.dtype)
    S = gram
    if bool((~pen).any()):
        Guu = gram * unp.unsqueeze(-1) * unp.unsqueeze(-2) + torch.diag_embed(1.0 - unp)
        sol = torch.linalg.solve(Guu, gram * unp.unsqueeze(-1))  # G_UU^{-1} G_U. (zero rows off U)
        S = gram - (gram * unp.unsqueeze(-2)) @ sol
    inv_w = torch.where(pen, 1.0 / torch.where(pen, w, torch.ones_like(w)), torch.zeros_like(w))
    H = inv_w.unsqueeze(-1) * S * inv_w.unsqueeze(-2)
    ev = torch.linalg.eigvalsh(0.5 * (H + H.transpose(-1, -2)))
    top = ev[..., -1:].clamp_min(torch.finfo(w.dtype).tiny)
    low = torch.where(ev > 1e-10 * top, ev, top).amin(-1, keepdim=True)
    rho = torch.sqrt(top * low)
    return torch.where(pen.any(-1, keepdim=True), rho, torch.ones_like(rho))


def _admm(gram, rhs, w, rho, z, u, max_iter: int, tol: float, sparse_direction: bool):
    """Inner ADMM (21) on ``B`` problems from ``(z, u)``; returns ``(Omega, z, u, iterations)``."""
    chol = system_cholesky(gram, rho, w)
    active = torch.ones(gram.shape[0], dtype=torch.bool, device=gram.device)
    its = torch.zeros(gram.shape[0], dtype=torch.int64, device=gram.device)
    omega = torch.zeros_like(rhs)
    for _ in range(max_iter):
        om = omega_update(gram, rhs, rho, w, z, u, chol=chol)
        C = w * om
        zn = z_update(C, u, rho)
        un = u_update(u, C, zn)
        a = active.unsqueeze(-1)
        omega, z_old = torch.where(a, om, omega), z
        z, u = torch.where(a, zn, z), torch.where(a, un, u)
        its += active
        if tol > 0:
            r = (C - zn).norm(dim=-1)
            s = (rho * w * (zn - z_old)).norm(dim=-1)
            scale_p = torch.maximum(C.norm(dim=-1), zn.norm(dim=-1))
            scale_d = (rho * w * un).norm(dim=-1)
            tiny = torch.finfo(rhs.dtype).tiny
            done = (r <= tol * scale_p + tiny) & (s <= tol * scale_d + tiny)
            active = active & ~done
            if not bool(active.any()):
                break
    if sparse_direction:
        # keep the support of the thresholded variable z (unpenalised coordinates always)
        omega = torch.where((z != 0) | (w == 0), omega, torch.zeros_like(omega))
    return omega, z, u, its


def irls_admm(
    X: Tensor,
    y: Tensor,
    w=1.0,
    *,
    fit_intercept: bool = False,
    rho: float | str = "auto",
    max_iter: int = 100,
    inner_max_iter: int = 1000,
    tol: float = 1e-8,
    inner_tol: float = 1e-10,
    line_search: bool = True,
    sparse_direction: bool = True,
    warm_start: bool = True,
) -> IRLSADMMResult:
    r"""IRLS-ADMM (Algorithm 1) for the weighted l1 logistic regression (4), batched.

    Parameters
    ----------
    X : Tensor
        ``(N, p)`` or ``(B, N, p)`` design matrix :math:`\Phi` (floating point, finite).
    y : Tensor
        ``(N,)`` or ``(B, N)`` labels in {-1, +1}.
    w : float or Tensor
        Non-negative l1 weights: a number (``w = lam * 1``), ``(p,)`` or ``(B, p)``
        (e.g. one row per lambda of a path). Zero entries are unpenalised.
    fit_intercept : bool, default False
        Append an unpenalised column of ones (see the module notes).
    rho : float or 'auto'
        ADMM penalty. ``'auto'`` sets it at every outer step from the spectrum of the
        scaled inner problem (see :func:`_auto_rho`).
    max_iter, inner_max_iter : int
        Outer (Newton) and inner (ADMM, per outer step) iteration limits.
    tol : float
        Outer tolerance on :func:`kkt_violation`; ``0`` runs exactly ``max_iter`` steps.
    inner_tol : float
        Smallest inner tolerance on the relative ADMM residuals. While the outer
        KKT violation is large the inner solves are inexact (tolerance
        ``min(1e-3, 0.1 * violation)``, an inexact Newton method); ``tol = 0``
        uses ``inner_tol`` throughout, and ``inner_tol = 0`` runs exactly
        ``inner_max_iter`` iterations.
    line_search : bool, default True
        Backtracking on (4) for ``t``; ``False`` takes full steps ``t = 1``.
    sparse_direction : bool, default True
        Use Omega restricted to the support of the thresholded ``z`` (exact zeros, same
        limit as Omega). ``False``: Algorithm 1 as printed (the last Omega iterate).
    warm_start : bool, default True
        Start each inner ADMM from the previous ``(z, u)``. ``False``: reset them to
        zero at every outer step, as Algorithm 1 does.

    Returns
    -------
    IRLSADMMResult
        ``beta`` ``(B, p)`` (``(p,)`` for a single problem), ``intercept``, ``n_iter``,
        ``converged``, ``objective``, ``kkt``. Runs under ``no_grad``.
    """
    max_iter = check_int("max_iter", max_iter, minimum=1)
    inner_max_iter = check_int("inner_max_iter", inner_max_iter, minimum=1)
    tol = check_positive("tol", tol, allow_zero=True)
    inner_tol = check_positive("inner_tol", inner_tol, allow_zero=True)
    fixed_rho = None if rho == "auto" else check_positive("rho", rho)
    with torch.no_grad():
        Xt, w, single = prepare_problem(X, y, w, fit_intercept)
        B, N, P = Xt.shape
        beta = Xt.new_zeros(B, P)
        z, u = torch.zeros_like(beta), torch.zeros_like(beta)
        n_iter = torch.zeros(B, dtype=torch.int64, device=Xt.device)
        inner = torch.zeros_like(n_iter)
        active = torch.ones(B, dtype=torch.bool, device=Xt.device)
        obj = objective(Xt, beta, w)
        crit = kkt_violation(Xt, beta, w)
        history: dict = {"objective": [], "criterion": []}
        rho_prev = None
        for _ in range(max_iter):
            margin = (Xt @ beta.unsqueeze(-1)).squeeze(-1)
            gram, rhs, _, _ = weighted_system(Xt, margin)
            r = _auto_rho(gram, w) if fixed_rho is None else Xt.new_full((B, 1), fixed_rho)
            if warm_start and rho_prev is not None:
                u = u * rho_prev / r  # u is the scaled dual y / rho
            else:
                z, u = torch.zeros_like(beta), torch.zeros_like(beta)
            rho_prev = r
            # inexact Newton: the inner tolerance follows the outer optimality (never looser than 1e-3)
            itol = max(inner_tol, min(1e-3, 0.1 * float(crit.max()))) if tol > 0 else inner_tol
            omega, z, u, its = _admm(gram, rhs, w, r, z, u, inner_max_iter, itol, sparse_direction)
            t = _line_search(Xt, beta, omega, w, obj, margin) if line_search else Xt.new_ones(B, 1)
            new_beta = beta_update(beta, omega, t)
            a = active.unsqueeze(-1)
            beta = torch.where(a, new_beta, beta)
            obj = torch.where(active, objective(Xt, beta, w), obj)
            n_iter += active
            inner += torch.where(active, its, torch.zeros_like(its))
            crit = kkt_violation(Xt, beta, w)
            history["objective"].append(float(obj.mean()))
            history["criterion"].append(float(crit.max()))
            if tol > 0:
                active = active & ~(crit <= tol)
                if not bool(active.any()):
                    break
        crit = kkt_violation(Xt, beta, w)
        converged = crit <= tol if tol > 0 else torch.ones(B, dtype=torch.bool, device=Xt.device)
        coef, icpt = (beta[:, :-1], beta[:, -1]) if fit_intercept else (beta, beta.new_zeros(B))
        if not bool(torch.isfinite(beta).all()):
            raise FloatingPointError("IRLS-ADMM produced non-finite coefficients")
        if single:
            coef, icpt, obj, crit = coef[0], icpt[0], obj[0], crit[0]
            n_iter, converged, inner = n_iter[0], converged[0], inner[0]
        return IRLSADMMResult(x=coef, n_iter=n_iter, converged=converged, history=history, intercept=icpt,
                              objective=obj, kkt=crit, inner_iter=inner)


def _line_search(Xt, beta, omega, w, obj, margin) -> Tensor:
    """Backtracking ``t`` in (0, 1] per problem (Armijo on (4)); ``t = 0`` when no decrease is found."""
    d = omega - beta
    g = logistic_gradient(Xt, margin)
    delta = (g * d).sum(-1) + (w * omega).abs().sum(-1) - (w * beta).abs().sum(-1)
    B = beta.shape[0]
    t = beta.new_ones(B)
    found = torch.zeros(B, dtype=torch.bool, device=beta.device)
    for _ in range(MAX_HALVINGS):
        cand = objective(Xt, beta + t.unsqueeze(-1) * d, w)
        bound = obj + ARMIJO * t * torch.clamp(delta, max=0.0)
        ok = (cand <= bound) & ~found
        found = found | ok
        if bool(found.all()):
            break
        t = torch.where(found, t, 0.5 * t)
    return torch.where(found, t, torch.zeros_like(t)).unsqueeze(-1)
