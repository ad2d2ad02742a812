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

:func:`irls_admm` is a thin wrapper: the outer step is
:class:`~unrolled.classification.iteration.IRLSADMMIteration` (shared with the
deep net) and the loop is :func:`unrolled.core.solve.solve`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from unrolled.classification.iteration import IRLSADMMIteration, kkt_violation, lambda_max, objective
from unrolled.core.result import SolverResult
from unrolled.core.solve import solve
from unrolled.core.validation import check_int, check_positive, check_tensor

__all__ = ["IRLSADMMResult", "irls_admm", "prepare_problem", "objective", "kkt_violation", "lambda_max"]


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
    if X.is_complex():
        raise ValueError(f"X must be real, got dtype {X.dtype}")
    if not isinstance(y, Tensor):
        raise ValueError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if y.dim() not in (1, 2):
        raise ValueError(f"y must have 1 or 2 dimensions, got shape {tuple(y.shape)}")
    if y.is_complex():
        raise ValueError(f"y must be real, got dtype {y.dtype}")
    y = y.to(X.dtype)
    if not bool(((y == 1) | (y == -1)).all()):
        raise ValueError("y must hold labels in {-1, +1}")
    N, p = X.shape[-2], X.shape[-1]
    if N == 0:
        raise ValueError(f"X has no samples (shape {tuple(X.shape)}): a problem needs at least one row")
    if p == 0:
        raise ValueError(f"X has no features (shape {tuple(X.shape)}): a problem needs at least one column")
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


def classic_setup(X: Tensor, y: Tensor, w, *, fit_intercept: bool = False, rho: float | str = "auto",
                  inner_max_iter: int = 1000, tol: float = 1e-8, inner_tol: float = 1e-10, line_search: bool = True,
                  sparse_direction: bool = True, warm_start: bool = True, inexact: bool | None = None,
                  stop: str = "kkt"):
    """Validate the arguments of :func:`irls_admm`; returns ``(iteration, data, params, single)`` for ``solve``.

    ``inexact=None`` follows :func:`irls_admm` (inexact inner solves when ``tol > 0``); ``stop`` is
    :class:`~unrolled.classification.iteration.IRLSADMMIteration`'s stopping criterion.
    """
    inner_max_iter = check_int("inner_max_iter", inner_max_iter, minimum=1)
    tol = check_positive("tol", tol, allow_zero=True)
    inner_tol = check_positive("inner_tol", inner_tol, allow_zero=True)
    fixed_rho = None if isinstance(rho, str) and rho == "auto" else check_positive("rho", rho)
    Xt, wb, single = prepare_problem(X, y, w, fit_intercept)
    iteration = IRLSADMMIteration(inner_max_iter, inner_tol=inner_tol, inexact=tol > 0 if inexact is None else inexact,
                                  warm_start=warm_start, sparse_direction=sparse_direction,
                                  fit_intercept=fit_intercept, monitor=True, stop=stop)
    F = wb[:, :-1] if fit_intercept else wb
    params = {"rho": fixed_rho, "F": F, "t": None if line_search else 1.0}
    return iteration, {"Xt": Xt.detach()}, params, single


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
    callback: Callable[[int, Tensor], None] | None = None,
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
        scaled inner problem (see :func:`~unrolled.classification.iteration.auto_rho`).
    max_iter, inner_max_iter : int
        Outer (Newton) and inner (ADMM, per outer step) iteration limits.
    tol : float
        Outer tolerance on :func:`kkt_violation` (a problem converges when it is
        below ``tol``); ``0`` runs exactly ``max_iter`` steps.
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
    callback : callable, optional
        ``callback(k, beta)`` after outer iteration ``k`` (1-based) with the
        ``(B, p)`` coefficients of the whole batch (converged problems at their
        frozen value; no intercept). It must not modify ``beta``.

    Returns
    -------
    IRLSADMMResult
        ``beta`` ``(B, p)`` (``(p,)`` for a single problem), ``intercept``, ``n_iter``,
        ``converged``, ``objective``, ``kkt``, ``inner_iter``, ``history``. Runs under ``no_grad``.
    """
    max_iter = check_int("max_iter", max_iter, minimum=1)
    iteration, data, params, single = classic_setup(
        X, y, w, fit_intercept=fit_intercept, rho=rho, inner_max_iter=inner_max_iter, tol=tol, inner_tol=inner_tol,
        line_search=line_search, sparse_direction=sparse_direction, warm_start=warm_start)
    p = X.shape[-1]
    cb = callback if callback is None or not fit_intercept else (lambda k, b: callback(k, b[:, :p]))
    res = solve(iteration, data, params, max_iter=max_iter, tol=tol, callback=cb)
    beta, st = res.x, res.state
    if not bool(torch.isfinite(beta).all()):
        raise FloatingPointError("IRLS-ADMM produced non-finite coefficients")
    coef, icpt = (beta[:, :-1], beta[:, -1]) if fit_intercept else (beta, beta.new_zeros(beta.shape[0]))
    obj, kkt, inner, n_iter, converged = st["obj"], st["kkt"], st["inner"], res.n_iter, res.converged
    if single:
        coef, icpt, obj, kkt = coef[0], icpt[0], obj[0], kkt[0]
        n_iter, converged, inner = n_iter[0], converged[0], inner[0]
    return IRLSADMMResult(x=coef, n_iter=n_iter, converged=converged, history=res.history, state=st,
                          intercept=icpt, objective=obj, kkt=kkt, inner_iter=inner)
