r"""Sparse Bayesian learning (Tipping 2001; Wipf & Rao 2004), batched over many ``y`` for one ``Phi``.

Model (eq. 3 of He et al. 2017): ``y = Phi x + eps``, ``eps ~ N(0, lam I)``, ``x ~ N(0, diag(gamma))``.
With :math:`\Sigma_y = \lambda I + \Phi\Gamma\Phi^H`, SBL minimises the type-II cost (eq. 5)

.. math:: \mathcal L(\gamma) = y^H\Sigma_y^{-1}y + \log|\Sigma_y|

and returns the posterior mean :math:`\hat x = \Gamma\Phi^H\Sigma_y^{-1}y` (eq. 4). Three updates of
:math:`\gamma` are offered (``q_i = \phi_i^H\Sigma_y^{-1}\phi_i``, posterior variances
:math:`\Sigma_{x,ii} = \gamma_i - \gamma_i^2 q_i`):

* ``'em'``:     :math:`\gamma_i \leftarrow |\hat x_i|^2 + \Sigma_{x,ii}` (EM; monotone in (5));
* ``'mackay'``: :math:`\gamma_i \leftarrow |\hat x_i|^2 / (\gamma_i q_i)` (MacKay / Tipping fixed point,
  the update scikit-learn's ARDRegression uses; faster, not monotone in general);
* ``'lstm'``:   the revised iterations (8)-(11) with :math:`\alpha = 1, \beta = 0`:
  :math:`w = q^{1/2}`, :math:`\nu = \hat x + \mu\Phi^H(y - \Phi\hat x)`,
  :math:`x^{+} = \mathrm{sign}(\nu)\,[|\nu| - \mu\lambda w]_+`, :math:`\gamma^{+} = |x^{+}|/w`.

About the threshold of ``'lstm'``: the extracted text of eq. (9) reads ``[|nu| - 2 lam w]_+``; we use
``mu lam w``, the threshold that makes (9)-(10) one proximal-gradient step (step ``mu/2``) on the
weighted-l1 majoriser ``||y - Phi x||^2 + 2 lam sum_i w_i |x_i|`` of Definition 2 (eq. 12). The monotone
cell update property (12) then holds for ``mu <= 1/||Phi||_2^2`` (the default); the tests check (12)
and the monotone decrease of (5).

Complex data use conjugate transposes throughout and ``sign(nu) = nu/|nu|``. Every problem stops on
its own criterion, the relative change ``max_i |gamma_new - gamma|_i / max_i gamma_i < tol``, and is
then frozen.

Pruning (``prune=p``, EM and MacKay updates): hyperparameters below ``p`` are set to zero after each update, the
rule of scikit-learn's ``ARDRegression`` with ``threshold_lambda = 1/p``. Pruned atoms leave the model for good, and
once a problem has at most ``n`` atoms left its posterior is computed in the ``(k, k)`` form
(:func:`~unrolled.sbl.iteration.posterior_active`), which made the batched solver 6-12x faster (five runs) at B = 1000 problems
25 x 60 (mean 22 iterations instead of 139; ``unrolled benchmark sbl-vs-ard``). Without pruning (the default) the
off-support hyperparameters only decay towards zero and every iteration costs the full ``(n, n)`` factorisation.

The updates are the steps of :class:`~unrolled.sbl.iteration.SBLIteration` (the one definition, shared with
:class:`~unrolled.sbl.nets.SBLNet`); :func:`sbl` validates its arguments and runs that iteration with
:func:`unrolled.core.solve.solve`, which reuses each step's posterior (one Cholesky factorisation per
iteration).

Methods
-------
* ``method='numba'`` (the default for real float64 CPU tensors with the EM or MacKay update and no callback): the
  compiled kernel :mod:`unrolled.sbl.sbl_kernel`, one task per chunk of problems (``numba.prange``), which runs
  the same iteration per problem (the same updates, pruning, posterior form and stopping rule), so ``gamma`` and
  ``x`` agree with the torch path to rounding (about ``1e-14`` relative) and the iteration counts are the same.
* ``method='torch'`` (CUDA, float32, complex data, the LSTM form, callbacks, inputs that require grad): the batched
  :class:`~unrolled.sbl.iteration.SBLIteration` above.

What chose the design (issue 30: ``sbl`` at least 20x a loop of ``ARDRegression``, matched model, B = 1000 problems
25 x 60, d = 4, noise 0.01; ``unrolled benchmark sbl-vs-ard``; one thread, 2 shared CPUs, load average 1.2-2.3): the
batched torch path took 0.19-0.40 s pruned (mean 22 iterations, max 130; 6.4-15x the loop): every iteration paid
3-4 active-set groups of small batched factorisations (~0.24 ms of launches and Python each), also in the long tail
where a handful of problems are still live; unpruned (mean 139 iterations) it took 2.3-3.0 s (7-9x), spent in the
padded ``(B, n, n)`` products and triangular solves. The kernel advances each problem alone (no padding, no
per-iteration launch, each problem stops when it converges): 0.037-0.052 s pruned (65-103x the loop at B = 1000,
48-64x at B = 40, where the torch path was 3.8-4.5x) and 0.93-1.13 s unpruned (20-24x, 24-29x at B = 40). Its dense
posterior costs 7.2-7.6 us at n = 25, m = 60 (``Sigma_y`` from a table of atom-pair products, 10-11.7 us without;
a branch inside the rank-one update loop of a first version made it 34 us: it stops vectorisation), the ``(k, k)``
one 0.5-3.5 us at k = 4-24.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from unrolled.core.result import SolverResult
from unrolled.core.solve import solve
from unrolled.core.validation import as_batch, check_int, check_positive, check_same_dtype_device, check_tensor
from unrolled.sbl.iteration import UPDATES, SBLIteration, posterior, sigma_y

METHODS = ("auto", "numba", "torch")
#: Largest table of pairwise atom products the numba kernel keeps (bytes); above it, rank-one updates instead.
PACKED_MAX_BYTES = 16 * 2**20

__all__ = ["SBLResult", "sbl", "sbl_objective", "posterior", "sigma_y", "check_dictionary", "UPDATES"]


@dataclass
class SBLResult(SolverResult):
    """:class:`~unrolled.core.result.SolverResult` plus the hyperparameters ``gamma`` ``(B, m)``."""

    gamma: Tensor | None = None


def check_dictionary(Phi: Tensor) -> Tensor:
    """Validate a real or complex ``(n, m)`` dictionary: finite, no all-zero column."""
    check_tensor("Phi", Phi, ndim=2)
    n, m = Phi.shape
    if n == 0 or m == 0:
        raise ValueError(f"Phi must have non-zero dimensions, got shape {tuple(Phi.shape)}")
    zero = (Phi.abs().amax(dim=0) == 0).nonzero().flatten()
    if zero.numel():
        raise ValueError(f"Phi has all-zero columns {zero.tolist()[:10]}: their coefficients are not identifiable")
    return Phi


def _check(y: Tensor, Phi: Tensor, lam) -> tuple[Tensor, bool, float]:
    check_tensor("y", y, ndim=(1, 2), finite=False)
    check_tensor("Phi", Phi, ndim=2, finite=False)
    check_same_dtype_device(y=y, Phi=Phi)
    check_dictionary(Phi)
    yb, single = as_batch("y", y, Phi.shape[0])
    return yb, single, check_positive("lam", lam)


def sbl_objective(y: Tensor, Phi: Tensor, gamma: Tensor, lam: float) -> Tensor:
    r"""Per-problem type-II cost (5), :math:`y^H\Sigma_y^{-1}y + \log|\Sigma_y|`, for ``gamma`` ``(B, m)``."""
    yb, _, lam = _check(y, Phi, lam)
    check_tensor("gamma", gamma, ndim=(1, 2))
    return posterior(yb, Phi, gamma.reshape(yb.shape[0], -1), lam)[2]


def sbl(
    y: Tensor,
    Phi: Tensor,
    lam: float,
    *,
    update: str = "em",
    max_iter: int = 1000,
    tol: float = 1e-6,
    gamma0: Tensor | None = None,
    mu: float | None = None,
    callback: Callable[[int, Tensor], None] | None = None,
    prune: float | None = None,
    method: str = "auto",
) -> SBLResult:
    r"""Sparse Bayesian learning for a batch of problems sharing ``Phi``.

    Parameters
    ----------
    y : Tensor
        ``(B, n)`` measurements (real or complex), or one ``(n,)`` vector.
    Phi : Tensor
        ``(n, m)`` dictionary, same dtype and device as ``y``; no all-zero column.
    lam : float
        Noise variance :math:`\lambda > 0` (eq. 3).
    update : {'em', 'mackay', 'lstm'}
        Hyperparameter update (module docstring).
    max_iter : int
        Iteration cap.
    tol : float
        Tolerance on the relative change of ``gamma`` (``0`` runs exactly ``max_iter`` iterations).
    gamma0 : Tensor, optional
        ``(m,)`` or ``(B, m)`` non-negative initial hyperparameters (default: ones), at least one positive
        per problem. A zero prunes its atom: the EM and MacKay updates keep it at zero, so SBL then runs on
        the remaining columns of ``Phi`` only (see :func:`~unrolled.sbl.screening.screened_sbl`).
    mu : float, optional
        Step of the ``'lstm'`` update, default ``1/||Phi||_2^2``; must be positive.
    callback : callable, optional
        ``callback(k, gamma)`` after iteration ``k`` (1-based) with the ``(B, m)`` hyperparameters,
        converged problems at their frozen values. It must not modify ``gamma``.
    prune : float, optional
        ``'em'`` and ``'mackay'`` only: after each update, hyperparameters below ``prune`` become zero and the
        atom leaves the model for good (scikit-learn's ``ARDRegression`` pruning with ``threshold_lambda =
        1 / prune``). A problem with ``k <= n`` atoms left has its posterior computed on those atoms
        (:func:`~unrolled.sbl.iteration.posterior_active`, problems grouped by ``k``: a ``(k, k)`` Cholesky
        factorisation instead of the ``(n, n)`` one), which is what makes pruned SBL fast. ``None``
        (default): no pruning, every atom kept (off-support ``gamma`` decay towards zero).
    method : {'auto', 'numba', 'torch'}
        ``'numba'``: the compiled per-problem kernel (:mod:`unrolled.sbl.sbl_kernel`; CPU, real float64, the
        ``'em'`` and ``'mackay'`` updates, no ``callback``; ``numba.get_num_threads()`` threads); ``'torch'``: the
        batched :class:`~unrolled.sbl.iteration.SBLIteration` run by :func:`~unrolled.core.solve.solve` (any
        device, dtype and update). ``'auto'`` (default): ``'numba'`` when the kernel supports the call and no
        input requires grad, else ``'torch'``. Both run the same iteration and stopping rule (same ``gamma``
        and ``x`` to rounding, same iteration counts).

    Returns
    -------
    SBLResult
        ``x`` the posterior mean (4) at the final ``gamma``, ``gamma``, ``n_iter``, ``converged``;
        ``history['objective']`` (batch mean of the type-II cost (5) after each update, converged
        problems at their frozen values) and ``history['criterion']`` (batch max relative change).

    Raises
    ------
    ValueError
        On a bad argument (zero columns, wrong length, NaN/inf, ...); the message names it.
    FloatingPointError
        When the hyperparameters become non-finite (``lam`` too small for the dtype).
    """
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    yb, single, lam = _check(y, Phi, lam)
    check_tensor("y", yb)
    if update not in UPDATES:
        raise ValueError(f"update must be one of {UPDATES}, got {update!r}")
    max_iter = check_int("max_iter", max_iter, minimum=1)
    tol = check_positive("tol", tol, allow_zero=True)
    real = Phi.real.dtype if Phi.is_complex() else Phi.dtype
    B, m = yb.shape[0], Phi.shape[1]
    if gamma0 is None:
        gamma = torch.ones(B, m, dtype=real, device=Phi.device)
    else:
        check_tensor("gamma0", gamma0, ndim=(1, 2))
        if gamma0.shape[-1] != m or (gamma0.dim() == 2 and gamma0.shape[0] != B):
            raise ValueError(f"gamma0 must have shape ({m},) or ({B}, {m}), got {tuple(gamma0.shape)}")
        if not bool((gamma0 >= 0).all()) or not bool((gamma0 > 0).any(-1).all()):
            raise ValueError("gamma0 must be non-negative with at least one positive entry per problem")
        gamma = gamma0.detach().to(device=Phi.device, dtype=real).expand(B, m).clone()
    if prune is not None:  # to a float here; SBLIteration refuses it with update='lstm'
        prune = check_positive("prune", prune)
    mu = None if mu is None else check_positive("mu", mu)  # the step of the LSTM form (torch path only)
    unsupported = _kernel_unsupported(yb, Phi, update, callback)
    if method == "numba" and unsupported:
        raise ValueError(f"method='numba' does not support {unsupported}; use method='torch' (or 'auto')")
    if method == "numba" or (method == "auto" and not unsupported and not (y.requires_grad or Phi.requires_grad)):
        x, gamma, n_iter, converged, history = _sbl_numba(yb.detach(), Phi.detach(), lam, update, gamma, max_iter,
                                                          tol, prune)
        if single:
            return SBLResult(x=x[0], n_iter=n_iter[0], converged=converged[0], history=history, gamma=gamma[0])
        return SBLResult(x=x, n_iter=n_iter, converged=converged, history=history, gamma=gamma)
    mu = default_mu(Phi) if mu is None else mu
    res = run_sbl(yb, Phi, lam, update, gamma, mu, max_iter=max_iter, tol=tol, callback=callback, readout="gamma",
                  prune=prune)
    x, gamma = res.state["mean"], res.state["gamma"]
    if single:
        return SBLResult(x=x[0], n_iter=res.n_iter[0], converged=res.converged[0], history=res.history, gamma=gamma[0])
    return SBLResult(x=x, n_iter=res.n_iter, converged=res.converged, history=res.history, gamma=gamma)


def _kernel_unsupported(yb: Tensor, Phi: Tensor, update: str, callback) -> str:
    """What keeps a call off the numba kernel (empty when it supports it)."""
    if Phi.device.type != "cpu":
        return f"tensors on {Phi.device} (CPU only)"
    if Phi.dtype != torch.float64:
        return f"dtype {Phi.dtype} (real float64 only)"
    if update not in ("em", "mackay"):
        return f"update={update!r} (the 'em' and 'mackay' updates only)"
    if callback is not None:
        return "a callback"
    return ""


def _sbl_numba(yb: Tensor, Phi: Tensor, lam: float, update: str, gamma: Tensor, max_iter: int, tol: float,
               prune: float | None) -> tuple[Tensor, Tensor, Tensor, Tensor, dict]:
    """CPU path: the compiled per-problem kernel :func:`unrolled.sbl.sbl_kernel.sbl_batch` on validated input.

    Returns ``x, gamma, n_iter, converged, history`` with the history in the format of the torch path (per
    iteration the batch mean cost and max criterion, problems that stopped earlier at their final values; empty
    lists with ``tol=0``, as :func:`~unrolled.core.solve.solve` keeps none then).
    """
    import numba

    from unrolled.sbl.sbl_kernel import sbl_batch

    B, m = yb.shape[0], Phi.shape[1]
    Phi_np = np.ascontiguousarray(Phi.numpy())  # C-contiguous float64 arrays only: one compiled signature
    Y = np.ascontiguousarray(yb.numpy())
    G = np.ascontiguousarray((Phi.T @ Phi).numpy())
    n = Phi.shape[0]
    if m * n * (n + 1) // 2 * 8 <= PACKED_MAX_BYTES:  # per atom the products Phi_il Phi_jl, i <= j (sbl_kernel)
        iu, ju = np.triu_indices(n)
        P = np.ascontiguousarray(Phi_np.T[:, iu] * Phi_np.T[:, ju])
    else:
        P = np.zeros((0, 0))
    Gamma = np.array(gamma.numpy(), order="C")
    X = np.zeros((B, m))
    n_iter = np.zeros(B, dtype=np.int64)
    converged = np.zeros(B, dtype=np.bool_)
    status = np.zeros(B, dtype=np.int64)
    n_chunks = max(1, min(B, 8 * numba.get_num_threads()))
    acc = [np.zeros((n_chunks, max_iter + 1)) for _ in range(4)]  # obj_live, obj_tail, crit_live, crit_tail
    if B:
        sbl_batch(Phi_np, P, G, Y, Gamma, float(lam), update == "mackay", 0.0 if prune is None else float(prune),
                  max_iter, float(tol), n_chunks, X, n_iter, converged, status, *acc)
    bad = status != 0
    if bad.any():  # the first failure in iteration order, with the torch path's error
        b = int(np.flatnonzero(bad)[np.argmin(n_iter[bad])])
        it = int(n_iter[b])
        if status[b] == 1:
            raise FloatingPointError(f"SBL produced non-finite hyperparameters at iteration {it}; lam={lam} may be "
                                     f"too small for this dtype")
        if status[b] == 2:
            raise FloatingPointError(f"SBLIteration diverged at iteration {it}: non-finite criterion or objective")
        raise torch.linalg.LinAlgError(f"SBL: the Cholesky factorisation of problem {b} failed at iteration {it} (not "
                                       f"positive-definite in floating point); lam={lam} may be too small")
    history: dict[str, list] = {"objective": [], "criterion": []}
    T = int(n_iter.max()) if B else 0
    if tol > 0 and T:
        obj_live, obj_tail = acc[0].sum(0), acc[1].sum(0)
        crit_live, crit_tail = acc[2].max(0), acc[3].max(0)
        history["objective"] = ((obj_live[:T] + np.cumsum(obj_tail)[:T]) / B).tolist()
        history["criterion"] = np.maximum(crit_live[:T], np.maximum.accumulate(crit_tail)[:T]).tolist()
    return (torch.from_numpy(X), torch.from_numpy(Gamma), torch.from_numpy(n_iter), torch.from_numpy(converged),
            history)


def default_mu(Phi: Tensor) -> float:
    """Default step of the LSTM form, ``1 / ||Phi||_2^2`` (the monotone range of eq. 12)."""
    return 1.0 / float(torch.linalg.matrix_norm(Phi.detach(), ord=2) ** 2)


def run_sbl(yb: Tensor, Phi: Tensor, lam: float, update: str, gamma0: Tensor | None, mu: float, *, max_iter: int,
            tol: float, callback: Callable[[int, Tensor], None] | None = None, readout: str = "x",
            prune: float | None = None) -> SolverResult:
    """:class:`~unrolled.sbl.iteration.SBLIteration` run by :func:`~unrolled.core.solve.solve` on validated input.

    ``yb`` ``(B, n)``; ``readout`` is what ``callback`` sees (``'x'``: posterior means, ``'gamma'``); the
    result's ``state`` holds ``gamma`` and the posterior ``mean`` at it. Used by :func:`sbl` and by the
    net registrations (whose callbacks compare posterior means with the nets' layer outputs).
    """
    Phi = Phi.detach()
    data = {"y": yb.detach(), "Phi": Phi, "readout": readout}
    if gamma0 is not None:
        data["gamma0"] = gamma0
    params = {"lam": lam, "mu": mu, "alpha": 1.0, "beta": 0.0}
    return solve(SBLIteration(update, reuse_posterior=True, prune=prune), data, params, max_iter=max_iter, tol=tol,
                 callback=callback)
