r"""Classic batched solvers of the sparse-coding family.

* :func:`ista` and :func:`fista` solve the Lasso

  .. math:: \min_x \tfrac12 \|y - A x\|_2^2 + \lambda \|x\|_1 ,

* :func:`iht` attacks the sparsity-constrained least-squares problem

  .. math:: \min_x \tfrac12 \|y - A x\|_2^2 \quad \text{s.t.} \quad \|x\|_0 \le k .

All three work on a batch of problems that share the dictionary ``A``: ``y`` is
``(B, m)`` (or a single ``(m,)`` vector) and every product is batch-first
(``x @ A.T``, ``r @ A``), with no Python loop over the batch. Each problem
stops on its own optimality criterion: once it is met, that problem is frozen
(its iterate is no longer updated and is removed from the working set), so the
returned ``x`` of a converged problem is exactly the iterate that met the
criterion. The loop ends when every problem has converged or after
``max_iter`` iterations.

One iteration costs one product with ``A`` and one with ``A^T`` per active
problem; the gradient it computes at the new iterate serves both the stopping
test and the next step (FISTA obtains the gradient at its extrapolated point
as the same linear combination of the gradients at the last two iterates).

The solvers are not differentiable: they run under :func:`torch.no_grad` and
return detached tensors.
"""

from __future__ import annotations

import numbers
from typing import Callable

import torch
from torch import Tensor

from unrolled.core.result import SolverResult
from unrolled.core.solve import solve
from unrolled.core.validation import (
    as_batch,
    check_int,
    check_positive,
    check_same_dtype_device,
    check_tensor,
)
from unrolled.sparse_coding.data import lipschitz_constant
from unrolled.sparse_coding.iteration import ShrinkageIteration

__all__ = ["ista", "fista", "iht", "lasso_objective", "lasso_kkt_violation"]

# --------------------------------------------------------------------------- #
# Diagnostics (public: handy in tests and notebooks)
# --------------------------------------------------------------------------- #
def lasso_objective(y: Tensor, A: Tensor, x: Tensor, lam: float) -> Tensor:
    r"""Per-problem Lasso objective :math:`\tfrac12\|y - Ax\|_2^2 + \lambda\|x\|_1`.

    Parameters
    ----------
    y : Tensor
        ``(..., m)`` measurements.
    A : Tensor
        ``(m, n)`` dictionary.
    x : Tensor
        ``(..., n)`` codes.
    lam : float
        Regularisation weight.

    Returns
    -------
    Tensor
        ``(...)`` objective values.
    """
    r = x @ A.T - y
    return 0.5 * r.pow(2).sum(-1) + lam * x.abs().sum(-1)


def lasso_kkt_violation(x: Tensor, neg_grad: Tensor, lam: float) -> Tensor:
    r"""Normalised violation of the Lasso optimality (KKT) conditions.

    With :math:`g = A^T(y - Ax)` (``neg_grad``), the conditions are
    :math:`g_i = \lambda\,\mathrm{sign}(x_i)` where :math:`x_i \ne 0` and
    :math:`|g_i| \le \lambda` where :math:`x_i = 0`. The violation is the
    largest deviation over the coordinates, divided by :math:`\lambda`.

    Parameters
    ----------
    x : Tensor
        ``(..., n)`` codes.
    neg_grad : Tensor
        ``(..., n)`` :math:`A^T(y - Ax)`.
    lam : float
        Regularisation weight (``> 0``).

    Returns
    -------
    Tensor
        ``(...)`` non-negative violations (``0`` exactly at a solution).
    """
    on_support = (neg_grad - lam * torch.sign(x)).abs()
    off_support = torch.relu(neg_grad.abs() - lam)
    viol = torch.where(x != 0, on_support, off_support)
    return viol.amax(dim=-1) / lam


# --------------------------------------------------------------------------- #
# Validation
# --------------------------------------------------------------------------- #
def check_measurements(y: Tensor, A: Tensor, x0: Tensor | None = None) -> tuple[Tensor, bool]:
    """Validate a dictionary ``A (m, n)`` and measurements ``y (m,)`` or ``(B, m)``; returns ``(y_batch, unbatched)``.

    Types and ranks first, then dtype/device agreement (with ``x0`` when given), then the (costlier) finiteness.
    """
    check_tensor("A", A, ndim=2, finite=False)
    check_tensor("y", y, ndim=(1, 2), finite=False)
    if x0 is not None:
        check_tensor("x0", x0, ndim=(1, 2), finite=False)
        check_same_dtype_device(y=y, A=A, x0=x0)
    else:
        check_same_dtype_device(y=y, A=A)
    for name, t in (("A", A), ("y", y)):
        if t.is_complex():
            raise ValueError(f"{name} must be real, got dtype {t.dtype}")
    m, n = A.shape
    if m == 0 or n == 0:
        raise ValueError(f"A must have non-zero dimensions, got shape {tuple(A.shape)}")
    check_tensor("A", A)
    return as_batch("y", y, m)


def _check_inputs(
    y: Tensor,
    A: Tensor,
    x0: Tensor | None,
    max_iter: int,
    tol: float,
    step: float | None,
) -> tuple[Tensor, Tensor, Tensor, bool, int, float, float]:
    """Validate the arguments shared by all solvers.

    Returns ``(y_batch, A, x0_batch, unbatched, max_iter, tol, step)`` with
    ``step`` resolved to ``1 / ||A||_2^2`` when ``None``.
    """
    yb, unbatched = check_measurements(y, A, x0)
    n = A.shape[1]
    if x0 is None:
        xb = torch.zeros(yb.shape[0], n, dtype=y.dtype, device=y.device)
    else:
        expected = (n,) if unbatched else (yb.shape[0], n)
        if tuple(x0.shape) != expected:
            raise ValueError(f"x0 must have shape {expected} (like y, with n={n} columns), got {tuple(x0.shape)}")
        check_tensor("x0", x0)
        xb = x0.reshape(yb.shape[0], n).clone()
    max_iter = check_int("max_iter", max_iter, minimum=1)
    tol = check_positive("tol", tol, allow_zero=True)
    if step is None:
        L = lipschitz_constant(A)
        if not L > 0:
            raise ValueError("A must not be all zeros (its Lipschitz constant ||A||_2^2 is 0)")
        step = 1.0 / L
    else:
        step = check_positive("step", step)
    return yb, A, xb, unbatched, max_iter, tol, step


def _run(iteration: ShrinkageIteration, yb: Tensor, A: Tensor, xb: Tensor, params: dict, max_iter: int, tol: float,
         callback, unbatched: bool, track: bool | None = None, chunk_size: int | None = None,
         progress: bool = False) -> SolverResult:
    """Run ``iteration`` with :func:`unrolled.core.solve.solve`; squeeze back an unbatched problem."""
    A = A.detach()
    data = {"y": yb.detach(), "A": A, "At": A.T.contiguous(), "x0": xb.detach()}
    res = solve(iteration, data, params, max_iter=max_iter, tol=tol, callback=callback, track=track,
                chunk_size=chunk_size, progress=progress)
    if unbatched:
        return SolverResult(x=res.x[0], n_iter=res.n_iter[0], converged=res.converged[0], history=res.history)
    return SolverResult(x=res.x, n_iter=res.n_iter, converged=res.converged, history=res.history)


def _lasso(
    y: Tensor,
    A: Tensor,
    lam: float,
    max_iter: int,
    tol: float,
    x0: Tensor | None,
    step: float | None,
    momentum: bool,
    callback: Callable[[int, Tensor], None] | None = None,
    track: bool | None = None,
    chunk_size: int | None = None,
    progress: bool = False,
) -> SolverResult:
    yb, A, xb, unbatched, max_iter, tol, step = _check_inputs(y, A, x0, max_iter, tol, step)
    lam = check_positive("lam", lam)
    params = {"W": None, "gamma": step, "theta": step * lam}
    return _run(ShrinkageIteration(lam, momentum=momentum), yb, A, xb, params, max_iter, tol, callback, unbatched,
                track, chunk_size, progress)


# --------------------------------------------------------------------------- #
# Public solvers
# --------------------------------------------------------------------------- #
def ista(
    y: Tensor,
    A: Tensor,
    lam: float,
    *,
    max_iter: int = 1000,
    tol: float = 1e-6,
    x0: Tensor | None = None,
    step: float | None = None,
    callback: Callable[[int, Tensor], None] | None = None,
    track: bool | None = None,
    chunk_size: int | None = None,
    progress: bool = False,
) -> SolverResult:
    r"""Iterative shrinkage-thresholding (ISTA) for a batch of Lasso problems.

    Iterates :math:`x \leftarrow \mathcal{S}_{\eta\lambda}\big(x - \eta A^T(Ax - y)\big)`
    with :math:`\mathcal{S}` the soft threshold and :math:`\eta` the step.

    Parameters
    ----------
    y : Tensor
        ``(B, m)`` measurements, or a single ``(m,)`` vector.
    A : Tensor
        ``(m, n)`` dictionary, same dtype and device as ``y``.
    lam : float
        Regularisation weight :math:`\lambda > 0`.
    max_iter : int, optional
        Iteration cap (``>= 1``).
    tol : float, optional
        Tolerance (``>= 0``) on the normalised KKT violation
        (:func:`lasso_kkt_violation`); a problem converges at the first
        iteration where it is strictly below ``tol`` and is then frozen.
        ``tol=0`` never stops early, so exactly ``max_iter`` iterations run.
    x0 : Tensor, optional
        Starting point shaped like ``y`` with ``n`` columns; zeros when ``None``.
    step : float, optional
        Step size :math:`\eta > 0`; ``1 / ||A||_2^2`` when ``None``.
    callback : callable, optional
        ``callback(k, x)`` after every iteration ``k`` with the current
        ``(B, n)`` iterate (converged problems at their frozen value), e.g. to
        record the NMSE per iteration. It must not modify ``x``.
    track : bool, optional
        Compute the KKT violation and objective at every iteration for
        ``history`` (and the per-iteration divergence check). Default: only
        when ``tol > 0``; a ``tol=0`` run is then ``max_iter`` bare steps
        (empty ``history``, one finiteness check at the end).
    chunk_size : int, optional
        Solve the batch in consecutive chunks of this many problems (bounds
        memory for very large ``B``; results equal the one-batch run up to rounding; not with
        ``callback``).
    progress : bool, optional
        A progress bar over the chunks.

    Returns
    -------
    SolverResult
        ``x`` ``(B, n)`` (or ``(n,)``), ``n_iter`` and ``converged`` ``(B,)``
        (or 0-dim), and ``history`` with ``'objective'`` (batch mean Lasso
        objective) and ``'criterion'`` (batch max KKT violation) per iteration.

    Raises
    ------
    ValueError
        On a bad argument; the message names it.

    Examples
    --------
    >>> from unrolled.sparse_coding.data import SparseCodingProblem
    >>> prob = SparseCodingProblem(m=20, n=40, p=0.1, seed=0)
    >>> y, _ = prob.sample(8, torch.Generator().manual_seed(0))
    >>> res = ista(y, prob.A, 0.05, tol=1e-4)
    >>> res.x.shape
    torch.Size([8, 40])
    """
    return _lasso(y, A, lam, max_iter, tol, x0, step, momentum=False, callback=callback, track=track,
                  chunk_size=chunk_size, progress=progress)


def fista(
    y: Tensor,
    A: Tensor,
    lam: float,
    *,
    max_iter: int = 1000,
    tol: float = 1e-6,
    x0: Tensor | None = None,
    step: float | None = None,
    callback: Callable[[int, Tensor], None] | None = None,
    track: bool | None = None,
    chunk_size: int | None = None,
    progress: bool = False,
) -> SolverResult:
    r"""FISTA (Beck & Teboulle, 2009) for a batch of Lasso problems.

    Plain FISTA, without restart: with :math:`t_1 = 1` and :math:`z_1 = x_0`,

    .. math::
        x_k = \mathcal{S}_{\eta\lambda}\big(z_k - \eta A^T(Az_k - y)\big),\quad
        t_{k+1} = \tfrac{1 + \sqrt{1 + 4t_k^2}}{2},\quad
        z_{k+1} = x_k + \tfrac{t_k - 1}{t_{k+1}}(x_k - x_{k-1}).

    The stopping criterion is evaluated at :math:`x_k`.

    Parameters
    ----------
    y : Tensor
        ``(B, m)`` measurements, or a single ``(m,)`` vector.
    A : Tensor
        ``(m, n)`` dictionary, same dtype and device as ``y``.
    lam : float
        Regularisation weight :math:`\lambda > 0`.
    max_iter : int, optional
        Iteration cap (``>= 1``).
    tol : float, optional
        Tolerance (``>= 0``) on the normalised KKT violation
        (:func:`lasso_kkt_violation`) at :math:`x_k`; a problem converges at the
        first iteration where it is strictly below ``tol`` and is then frozen.
        ``tol=0`` runs exactly ``max_iter`` iterations.
    x0 : Tensor, optional
        Starting point shaped like ``y`` with ``n`` columns; zeros when ``None``.
    step : float, optional
        Step size :math:`\eta > 0`; ``1 / ||A||_2^2`` when ``None``.
    callback : callable, optional
        ``callback(k, x)`` after every iteration ``k`` with the current
        ``(B, n)`` iterate (converged problems at their frozen value), e.g. to
        record the NMSE per iteration. It must not modify ``x``.
    track : bool, optional
        Compute the KKT violation and objective at every iteration for
        ``history`` (and the per-iteration divergence check). Default: only
        when ``tol > 0``; a ``tol=0`` run is then ``max_iter`` bare steps
        (empty ``history``, one finiteness check at the end).
    chunk_size : int, optional
        Solve the batch in consecutive chunks of this many problems (bounds
        memory for very large ``B``; results equal the one-batch run up to rounding; not with
        ``callback``).
    progress : bool, optional
        A progress bar over the chunks.

    Returns
    -------
    SolverResult
        As for :func:`ista`.

    Raises
    ------
    ValueError
        On a bad argument; the message names it.
    """
    return _lasso(y, A, lam, max_iter, tol, x0, step, momentum=True, callback=callback, track=track,
                  chunk_size=chunk_size, progress=progress)


def iht(
    y: Tensor,
    A: Tensor,
    k: int,
    *,
    max_iter: int = 1000,
    tol: float = 1e-6,
    x0: Tensor | None = None,
    step: float | None = None,
    track: bool | None = None,
    chunk_size: int | None = None,
    progress: bool = False,
) -> SolverResult:
    r"""Iterative hard thresholding (Blumensath & Davies) for a batch of problems.

    Attacks :math:`\min_x \tfrac12\|y - Ax\|_2^2` s.t. :math:`\|x\|_0 \le k` with
    :math:`x \leftarrow H_k\big(x - \eta A^T(Ax - y)\big)`, where :math:`H_k`
    keeps the ``k`` largest-magnitude entries of each row
    (:func:`~unrolled.core.prox.hard_threshold`).

    Parameters
    ----------
    y : Tensor
        ``(B, m)`` measurements, or a single ``(m,)`` vector.
    A : Tensor
        ``(m, n)`` dictionary, same dtype and device as ``y``.
    k : int
        Sparsity level, an int in ``[1, n]``. (It takes the place of ``lam`` in
        the signature shared with :func:`ista` and :func:`fista`.)
    max_iter : int, optional
        Iteration cap (``>= 1``).
    tol : float, optional
        Tolerance (``>= 0``) on the relative change of the iterate,
        :math:`\|x_{new} - x\|_2 / \max(\|x\|_2, \mathrm{tiny})` with ``tiny``
        the smallest positive normal number of the dtype (the problem has no
        cheap optimality certificate; from ``x0 = 0`` the first value is huge
        or ``inf``). A problem converges at the first iteration where it is
        strictly below ``tol`` and is then frozen.
    x0 : Tensor, optional
        Starting point shaped like ``y`` with ``n`` columns; zeros when ``None``.
    step : float, optional
        Step size :math:`\eta > 0`; ``1 / ||A||_2^2`` when ``None``, which makes
        the objective non-increasing from the first iteration on.
    track : bool, optional
        Record ``history`` at every iteration; default only when ``tol > 0``
        (as :func:`ista`).

    Returns
    -------
    SolverResult
        ``x`` with at most ``k`` non-zeros per row; ``history`` holds
        ``'objective'`` (batch mean of :math:`\tfrac12\|y - Ax\|_2^2`) and
        ``'criterion'`` (batch max relative change) per iteration.

    Raises
    ------
    ValueError
        On a bad argument; the message names it.
    """
    yb, A, xb, unbatched, max_iter, tol, step = _check_inputs(y, A, x0, max_iter, tol, step)
    n = A.shape[1]
    if isinstance(k, numbers.Integral) and not isinstance(k, bool):
        k = int(k)
    k = check_int("k", k, minimum=1)
    if k > n:
        raise ValueError(f"k must be in [1, n={n}], got {k}")
    params = {"W": None, "gamma": step}
    return _run(ShrinkageIteration(None, hard=k), yb, A, xb, params, max_iter, tol, None, unbatched, track, chunk_size,
                progress)
