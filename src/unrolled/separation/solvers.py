r"""PALM for sparse blind source separation (LPALM paper, Eq. 2 and Eq. 6).

Problem (2), for every mixture of a batch:

.. math:: \min_{A, S} \tfrac12 \|X - A S\|_F^2 + \lambda \|S\|_1
          \quad\text{s.t.}\quad \|A^i\|_2 \le 1 \ \forall i .

One PALM iteration (Eq. 6) is a proximal-gradient step on ``S`` followed by a
projected-gradient step on ``A``, with steps ``1 / (1.01 L)`` from the current
Lipschitz constants ``L_S = ||A^T A||_2`` and ``L_A = ||S S^T||_2``. The step
is defined once, in :class:`~unrolled.separation.iteration.PALMIteration`
(which LPALM runs too); :func:`palm` and :func:`estimate_mixing` run it with
:func:`unrolled.core.solve.solve`.

Everything is batched: ``X`` is ``(B, m, t)``, each problem keeps its own
Lipschitz constants, stops on its own criterion (``||dS||_F < tol`` and
``||dA||_F < tol``) and is then frozen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from unrolled.core.prox import project_columns_unit_ball
from unrolled.core.result import SolverResult
from unrolled.core.solve import solve
from unrolled.core.validation import check_int, check_positive, check_same_dtype_device, check_tensor
from unrolled.separation.iteration import (
    STEP_FACTOR,
    PALMIteration,
    a_step,
    bss_objective,
    lipschitz_a,
    lipschitz_s,
    palm_step_size,
    s_step,
    unpack,
)

__all__ = ["palm", "PALMResult", "estimate_mixing", "pinv_init", "constant_mixing", "check_mixtures", "s_step",
           "a_step", "lipschitz_s", "lipschitz_a", "bss_objective", "STEP_FACTOR"]


@dataclass
class PALMResult(SolverResult):
    """Output of :func:`palm` (a :class:`~unrolled.core.result.SolverResult`).

    Attributes
    ----------
    A : Tensor
        ``(B, m, n)`` mixing-matrix estimates.
    S : Tensor
        ``(B, n, t)`` source estimates.
    x : Tensor
        ``(B, m n + n t)``: ``A`` and ``S`` packed side by side
        (:func:`~unrolled.separation.iteration.pack`), the one tensor per
        problem that :func:`~unrolled.core.solve.solve` freezes; read ``A``
        and ``S`` instead.
    n_iter, converged : Tensor
        ``(B,)`` iterations run and whether the stopping criterion was met.
    history : dict
        ``'criterion'``: per iteration, the batch maximum of
        ``max(||dS||_F, ||dA||_F)``; ``'objective'`` (when ``track_objective``):
        the batch mean of the objective of (2) after each iteration.
    iterates : list of (Tensor, Tensor), optional
        ``(A, S)`` after each iteration, converged problems at their frozen
        value (when ``keep_iterates``).
    steps : list of (Tensor, Tensor), optional
        ``(L_S, L_A)`` ``(B,)`` each, the Lipschitz constants of iteration
        ``k`` (at ``A^{k-1}`` and ``S^k``; for a frozen problem, at its frozen
        iterate), when ``keep_iterates``.
    """

    A: Tensor | None = None
    S: Tensor | None = None
    iterates: list | None = field(default=None, repr=False)
    steps: list | None = field(default=None, repr=False)


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


def run_iteration(iteration: PALMIteration, X: Tensor, A0: Tensor, S0: Tensor | None, params, *, max_iter: int,
                  tol: float, callback: Callable[[int, tuple[Tensor, Tensor]], None] | None = None,
                  keep_iterates: bool = False) -> PALMResult:
    """Run a :class:`~unrolled.separation.iteration.PALMIteration` on validated batches through :func:`~unrolled.core.solve.solve`.

    ``callback(k, (A, S))`` sees each iterate as views of the whole batch (the
    form of LPALM's layer outputs); it must not modify them.
    """
    m, n = A0.shape[-2:]
    iterates = [] if keep_iterates else None

    def record(k: int, x: Tensor) -> None:
        A, S = unpack(x, m, n)
        if iterates is not None:
            iterates.append((A.clone(), S.clone()))
        if callback is not None:
            callback(k, (A, S))

    data = {"X": X, "A0": A0, "S0": S0}
    res = solve(iteration, data, params, max_iter=max_iter, tol=tol,
                callback=record if (callback is not None or keep_iterates) else None)
    A, S = res.state["A"], res.state["S"]
    if not (torch.isfinite(A).all() and torch.isfinite(S).all()):
        raise FloatingPointError("PALM produced NaN/inf: check the scale of X and lam")
    steps = None
    if keep_iterates:
        steps = [(lipschitz_s(A_prev), lipschitz_a(S_k))
                 for A_prev, (_, S_k) in zip([A0] + [a for a, _ in iterates[:-1]], iterates)]
    return PALMResult(x=res.x, n_iter=res.n_iter, converged=res.converged, history=res.history, state=res.state,
                      A=A, S=S, iterates=iterates, steps=steps)


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
    callback: Callable[[int, tuple[Tensor, Tensor]], None] | None = None,
    gram: bool | None = None,
) -> PALMResult:
    r"""Batched PALM for sparse BSS (Eq. 6): :class:`~unrolled.separation.iteration.PALMIteration`
    with both updates ``'explicit'``, run by :func:`~unrolled.core.solve.solve`.

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
        and ``||A_new - A||_F < tol`` (``tol=0``: exactly ``max_iter`` iterations)
        and is then frozen.
    track_objective : bool
        Record the batch-mean objective of (2) per iteration (``history['objective']``).
    keep_iterates : bool
        Keep every iterate and Lipschitz constants (:attr:`PALMResult.iterates`, ``steps``).
    callback : callable, optional
        ``callback(k, (A, S))`` after every iteration ``k`` (1-based) with the
        ``(B, m, n)`` and ``(B, n, t)`` iterates, converged problems at their
        frozen value (the form of LPALM's layer outputs). It must not modify them.
    gram : bool, optional
        Compute the gradients from the ``n x n`` Gram matrices, :math:`A^\top(AS - X) = (A^\top A)S -
        A^\top X` and :math:`(AS - X)S^\top = A(SS^\top) - XS^\top` (``True``), or from the residual
        :math:`AS - X` (``False``, the form the LPALM nets unroll); the iterates agree up to rounding
        (float64: ~1e-13 over hundreds of iterations). ``None`` (default): the Gram form when ``n < 2m``,
        where it does fewer flops per iteration (:math:`2mnt + 2n^2t` against :math:`4mnt + n^2t`,
        the Grams being needed for the Lipschitz constants anyway; see
        :class:`~unrolled.separation.iteration.PALMIteration`).

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
    S = None if S0 is None else _check_start("S0", S0, (B, n, t), X)
    if gram is None:
        gram = n < 2 * m
    elif not isinstance(gram, bool):
        raise ValueError(f"gram must be True, False or None, got {gram!r}")
    iteration = PALMIteration("explicit", "explicit", track_objective=track_objective, gram=gram)
    return run_iteration(iteration, X.detach(), A.detach(), None if S is None else S.detach(), {"lam": lam},
                         max_iter=max_iter, tol=tol, callback=callback, keep_iterates=keep_iterates)


def estimate_mixing(X: Tensor, S: Tensor, *, max_iter: int = 5000, tol: float = 1e-9, A0: Tensor | None = None) -> Tensor:
    r"""``argmin_A 0.5 ||X - A S||_F^2`` s.t. unit-ball columns, by projected gradient (PALM's A-step to convergence).

    Used to get a mixing matrix from networks that only estimate sources
    (LISTA baseline of Table 2, footnote 5). Batched
    (:class:`~unrolled.separation.iteration.PALMIteration` with ``S`` kept and
    the A-step ``1 / (1.01 ||S S^T||_2)`` of each problem); stops when
    ``||dA||_F < tol``. ``A0`` defaults to ``X S^+`` projected.
    """
    X = check_mixtures(X)
    check_tensor("S", S, ndim=3)
    if S.shape[0] != X.shape[0] or S.shape[2] != X.shape[2]:
        raise ValueError(f"S must have shape (B, n, t={X.shape[2]}), got {tuple(S.shape)}")
    with torch.no_grad():
        A = project_columns_unit_ball(X @ torch.linalg.pinv(S)) if A0 is None else A0
        params = {"gamma_a": palm_step_size(lipschitz_a(S))}
        res = solve(PALMIteration("none", "ista-ll"), {"X": X, "A0": A, "S0": S}, params, max_iter=max_iter, tol=tol)
    return res.state["A"]
