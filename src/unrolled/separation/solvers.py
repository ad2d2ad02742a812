r"""PALM for sparse blind source separation (LPALM paper, Eq. 2 and Eq. 6).

Problem (2), for every mixture of a batch:

.. math:: \min_{A, S} \tfrac12 \|X - A S\|_F^2 + \lambda \|S\|_1
          \quad\text{s.t.}\quad \|A^i\|_2 \le 1 \ \forall i .

One PALM iteration (Eq. 6) is a proximal-gradient step on ``S`` followed by a
projected-gradient step on ``A``, with steps ``1 / (1.01 L)`` from the current
Lipschitz constants ``L_S = ||A^T A||_2`` and ``L_A = ||S S^T||_2``.

Everything is batched: ``X`` is ``(B, m, t)``, each problem keeps its own
Lipschitz constants, stops on its own criterion (``||dS||_F < tol`` and
``||dA||_F < tol``) and is then frozen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from unrolled.core.prox import project_columns_unit_ball, soft_threshold
from unrolled.core.validation import check_int, check_positive, check_same_dtype_device, check_tensor

#: PALM's step is ``1 / (STEP_FACTOR * L)`` (the issue's 1/(1.01 L)).
STEP_FACTOR = 1.01


@dataclass
class PALMResult:
    """Output of :func:`palm`.

    Attributes
    ----------
    A : Tensor
        ``(B, m, n)`` mixing-matrix estimates.
    S : Tensor
        ``(B, n, t)`` source estimates.
    n_iter : Tensor
        ``(B,)`` iterations run per problem.
    converged : Tensor
        ``(B,)`` whether the stopping criterion was met.
    history : dict
        ``'objective'``: ``(n_iterations + 1, B)`` objective of (2) from the
        start point on (when ``track_objective``); ``'iterates'``: list of
        ``(A, S)`` after each iteration (when ``keep_iterates``);
        ``'steps'``: list of ``(L_S, L_A)`` per iteration (when ``keep_iterates``).
    """

    A: Tensor
    S: Tensor
    n_iter: Tensor
    converged: Tensor
    history: dict = field(default_factory=dict)


def lipschitz_s(A: Tensor) -> Tensor:
    """``L_S = ||A^T A||_2`` per problem, ``(B,)`` (largest eigenvalue of the ``n x n`` Gram matrix)."""
    return torch.linalg.eigvalsh(A.transpose(-2, -1) @ A)[..., -1]


def lipschitz_a(S: Tensor) -> Tensor:
    """``L_A = ||S S^T||_2`` per problem, ``(B,)``."""
    return torch.linalg.eigvalsh(S @ S.transpose(-2, -1))[..., -1]


def bss_objective(X: Tensor, A: Tensor, S: Tensor, lam: float) -> Tensor:
    r"""Per-problem objective of (2) without the constraint: :math:`\tfrac12\|X-AS\|_F^2+\lambda\|S\|_1`, ``(B,)``."""
    r = X - A @ S
    return 0.5 * r.pow(2).sum((-2, -1)) + lam * S.abs().sum((-2, -1))


def s_step(X: Tensor, A: Tensor, S: Tensor, lam: float, L_S: Tensor) -> Tensor:
    """PALM's S-update (first line of Eq. 6) with step ``1 / (1.01 L_S)`` per problem."""
    step = 1.0 / (STEP_FACTOR * L_S)[:, None, None]
    grad = A.transpose(-2, -1) @ (A @ S - X)
    return soft_threshold(S - step * grad, lam * step)


def a_step(X: Tensor, A: Tensor, S: Tensor, L_A: Tensor) -> Tensor:
    """PALM's A-update (second line of Eq. 6): projected gradient, step ``1 / (1.01 L_A)``."""
    step = 1.0 / (STEP_FACTOR * L_A.clamp_min(torch.finfo(A.dtype).tiny))[:, None, None]
    grad = (A @ S - X) @ S.transpose(-2, -1)
    return project_columns_unit_ball(A - step * grad)


def constant_mixing(m: int, n: int, *, batch: int = 1, dtype=torch.float64, device=None) -> Tensor:
    """LPALM's start point ``A0 = (1/sqrt(m)) ones(m, n)`` (Sec. 2.2), batched."""
    return torch.full((batch, m, n), 1.0 / m**0.5, dtype=dtype, device=device)


def pinv_init(X: Tensor, A0: Tensor) -> Tensor:
    """Pseudo-inverse initialisation ``S0 = A0^+ X`` of Sec. 3.1.1, batched.

    ``A0^+ X`` is the least-squares source estimate only when ``A0`` has at
    least as many rows (observations) as columns (sources); fewer are refused.
    """
    X = check_mixtures(X)
    check_tensor("A0", A0, ndim=(2, 3))
    if A0.shape[-2] != X.shape[-2]:
        raise ValueError(f"A0 must have m={X.shape[-2]} rows like X, got shape {tuple(A0.shape)}")
    check_mixtures(X, A0.shape[-1], allow_underdetermined=False)
    check_same_dtype_device(X=X, A0=A0)
    return torch.linalg.pinv(A0) @ X


def check_mixtures(X: Tensor, n: int | None = None, *, allow_underdetermined: bool = True) -> Tensor:
    """Validate a batch of mixtures ``(B, m, t)`` (a single ``(m, t)`` is promoted)."""
    check_tensor("X", X, ndim=(2, 3))
    if X.is_complex():
        raise ValueError("X must be real")
    X = X.unsqueeze(0) if X.dim() == 2 else X
    if X.shape[0] == 0 or X.shape[1] == 0 or X.shape[2] == 0:
        raise ValueError(f"X must have non-empty dimensions, got shape {tuple(X.shape)}")
    if n is not None and not allow_underdetermined and X.shape[1] < n:
        raise ValueError(f"fewer observations (m={X.shape[1]}) than sources (n={n}) is not allowed here")
    return X


def _check_start(name: str, T: Tensor, shape: tuple[int, ...], X: Tensor) -> Tensor:
    check_tensor(name, T, ndim=(2, 3))
    T = T.unsqueeze(0) if T.dim() == 2 else T
    if T.shape[0] == 1 and shape[0] > 1:
        T = T.expand(shape[0], -1, -1)
    if tuple(T.shape) != shape:
        raise ValueError(f"{name} must have shape {shape[1:]} or {shape}, got {tuple(T.shape)}")
    check_same_dtype_device(X=X, **{name: T})
    return T.clone()


def palm(
    X: Tensor,
    A0: Tensor | None = None,
    S0: Tensor | None = None,
    lam: float = 2e-3,
    *,
    n_sources: int | None = None,
    max_iter: int = 10000,
    tol: float = 1e-7,
    track_objective: bool = False,
    keep_iterates: bool = False,
) -> PALMResult:
    r"""Batched PALM for sparse BSS (Eq. 6).

    Parameters
    ----------
    X : Tensor
        ``(B, m, t)`` mixtures (or one ``(m, t)``).
    A0 : Tensor, optional
        ``(B, m, n)`` or ``(m, n)`` start mixing matrices. ``None``: LPALM's
        constant ``(1/sqrt(m)) ones`` (needs ``n_sources``; note that from a
        constant start all columns stay equal under PALM).
    S0 : Tensor, optional
        ``(B, n, t)`` or ``(n, t)`` start sources; ``None``: zeros (use
        :func:`pinv_init` for the paper's ``A0^+ X``).
    lam : float
        :math:`\lambda \ge 0`.
    n_sources : int, optional
        Number of sources when ``A0`` is ``None``.
    max_iter : int
        Iteration cap.
    tol : float
        A problem stops at the first iteration where ``||S_new - S||_F < tol``
        and ``||A_new - A||_F < tol`` (``tol=0``: exactly ``max_iter`` iterations).
    track_objective, keep_iterates : bool
        Record the objective / every iterate and Lipschitz constants.

    Returns
    -------
    PALMResult
    """
    X = check_mixtures(X)
    B, m, t = X.shape
    lam = check_positive("lam", lam, allow_zero=True)
    max_iter = check_int("max_iter", max_iter, minimum=1)
    tol = check_positive("tol", tol, allow_zero=True)
    if A0 is None:
        if n_sources is None:
            raise ValueError("give A0 or n_sources")
        A = constant_mixing(m, check_int("n_sources", n_sources, minimum=1), batch=B, dtype=X.dtype, device=X.device)
    else:
        if A0.dim() not in (2, 3) or A0.shape[-2] != m:
            raise ValueError(f"A0 must have shape (m={m}, n) or (B, m, n), got {tuple(A0.shape)}")
        A = _check_start("A0", A0, (B, m, A0.shape[-1]), X)
    n = A.shape[-1]
    if not bool((lipschitz_s(A) > 0).all()):
        raise ValueError("A0 must not be zero (its Lipschitz constant ||A0^T A0||_2 is 0)")
    S = torch.zeros(B, n, t, dtype=X.dtype, device=X.device) if S0 is None else _check_start("S0", S0, (B, n, t), X)
    n_iter = torch.zeros(B, dtype=torch.long, device=X.device)
    converged = torch.zeros(B, dtype=torch.bool, device=X.device)
    objective = [bss_objective(X, A, S, lam)] if track_objective else None
    iterates, steps = [], []
    active = torch.arange(B, device=X.device)
    with torch.no_grad():
        for _ in range(max_iter):
            Xa, Aa, Sa = X[active], A[active], S[active]
            L_S = lipschitz_s(Aa)
            S_new = s_step(Xa, Aa, Sa, lam, L_S)
            L_A = lipschitz_a(S_new)
            A_new = a_step(Xa, Aa, S_new, L_A)
            dS = torch.linalg.matrix_norm(S_new - Sa)
            dA = torch.linalg.matrix_norm(A_new - Aa)
            A[active], S[active] = A_new, S_new
            n_iter[active] += 1
            if keep_iterates:
                iterates.append((A.clone(), S.clone()))
                steps.append((L_S.clone(), L_A.clone()))
            if track_objective:
                objective.append(bss_objective(X, A, S, lam))
            done = (dS < tol) & (dA < tol)
            converged[active[done]] = True
            active = active[~done]
            if active.numel() == 0:
                break
    history = {}
    if track_objective:
        history["objective"] = torch.stack(objective)
    if keep_iterates:
        history["iterates"], history["steps"] = iterates, steps
    if not (torch.isfinite(A).all() and torch.isfinite(S).all()):
        raise FloatingPointError("PALM produced NaN/inf: check the scale of X and lam")
    return PALMResult(A=A, S=S, n_iter=n_iter, converged=converged, history=history)


def estimate_mixing(X: Tensor, S: Tensor, *, max_iter: int = 5000, tol: float = 1e-9, A0: Tensor | None = None) -> Tensor:
    r"""``argmin_A 0.5 ||X - A S||_F^2`` s.t. unit-ball columns, by projected gradient (PALM's A-step to convergence).

    Used to get a mixing matrix from networks that only estimate sources
    (LISTA baseline of Table 2, footnote 5). Batched; stops when
    ``||dA||_F < tol``. ``A0`` defaults to ``X S^+`` projected.
    """
    X = check_mixtures(X)
    check_tensor("S", S, ndim=3)
    if S.shape[0] != X.shape[0] or S.shape[2] != X.shape[2]:
        raise ValueError(f"S must have shape (B, n, t={X.shape[2]}), got {tuple(S.shape)}")
    with torch.no_grad():
        A = project_columns_unit_ball(X @ torch.linalg.pinv(S)) if A0 is None else A0.clone()
        L_A = lipschitz_a(S)
        active = torch.arange(X.shape[0], device=X.device)
        for _ in range(max_iter):
            A_new = a_step(X[active], A[active], S[active], L_A[active])
            done = torch.linalg.matrix_norm(A_new - A[active]) < tol
            A[active] = A_new
            active = active[~done]
            if active.numel() == 0:
                break
    return A
