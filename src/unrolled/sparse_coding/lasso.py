r"""A fast batched Lasso solver: working sets with compiled coordinate descent (CPU) or a restricted FISTA (torch).

:func:`lasso` solves, for every row :math:`y_b` of a batch sharing one dictionary ``A``,

.. math::
    :label: lasso

    \min_x F_b(x) = \tfrac12 \|y_b - A x\|_2^2 + \lambda \|x\|_1 .

It is the reference solver of the sparse-coding family (reference solutions, "iterations of
the classic solver to reach the net's accuracy"); :func:`~unrolled.sparse_coding.solvers.ista`
and :func:`~unrolled.sparse_coding.solvers.fista` stay the plain algorithms that the nets unroll.

Optimality (KKT)
----------------
With :math:`c = A^T y`, the Gram matrix :math:`G = A^T A` and the negative gradient
:math:`g = c - G x`, a point is a solution of :eq:`lasso` if and only if

.. math::
    :label: kkt

    g_i = \lambda\,\mathrm{sign}(x_i) \;(x_i \ne 0), \qquad |g_i| \le \lambda \;(x_i = 0),

and the stopping criterion is the normalised violation of :eq:`kkt`
(:func:`~unrolled.sparse_coding.solvers.lasso_kkt_violation`), evaluated on all ``n``
coordinates. In particular :math:`x = 0` is the solution iff
:math:`\lambda \ge \lambda_{\max} = \|A^T y\|_\infty`.

Methods
-------
Both methods use only :math:`G` and :math:`c`, computed once by two torch products (the data
never enters again), and the same stopping criterion on all ``n`` coordinates.

* ``method='numba'`` (the default for CPU tensors): one compiled task per problem
  (:mod:`unrolled.sparse_coding.lasso_cd`, ``numba.prange`` over chunks of problems): coordinate
  descent on a working set that only grows (support plus the worst violators of :eq:`kkt`),
  with :math:`G_{WW}` gathered once per coordinate that enters it, inner epochs until the
  restricted violation is below ``0.03`` of the full one (or ``tol / 2``; directly ``tol / 2``
  once no coordinate outside the working set violates :eq:`kkt`), then the full check
  with :math:`g` recomputed from scratch. The exact sign-pattern polish below (with a
  feature-sign line search) runs by default only when coordinate descent stalls, every 50
  epochs short of the inner tolerance (coherent dictionaries, where CD crawls); ``polish=True``
  polishes every working set (measured slower on well-conditioned problems, see below).
* ``method='torch'`` (the default for CUDA tensors; any device): the batched steps 1-4 below,
  all problems advanced together with batched tensor products.

Algorithm of ``method='torch'``
-------------------------------
Every product uses :math:`G` and :math:`c`, so the cost of the full KKT check is one
``(B, n) @ (n, n)`` product. Per outer iteration ``t``:

1. **Working set.** Each live problem keeps its current support and adds the coordinates of
   largest :math:`|g_i| - \lambda` (its worst violators of :eq:`kkt`), up to
   :math:`k_t = \min(n, \max(k_{t-1}, 2\,|\mathrm{supp}\,x|))` coordinates, with
   :math:`k_0` = ``ws_size`` (the doubling rule of celer / skglm), rounded up to a multiple of
   ``bucket`` and grouped by size (a problem that needs fewer coordinates gets a few extra ones,
   which is harmless: the restricted problem over any superset of the support has the same
   solution).
2. **Restricted solve.** On the gathered block :math:`G_{WW}` ``(B, k, k)`` and :math:`c_W`, a
   batched FISTA with gradient-based adaptive restart (O'Donoghue & Candès, 2015), step
   :math:`1/L_W` from a power-iteration estimate of :math:`\|G_{WW}\|_2` (times 1.15),
   warm-started, run until the restricted violation of :eq:`kkt` is below
   ``0.1`` of the problem's full violation (or ``tol``), at most ``inner_max_iter`` iterations.
3. **Polish.** With :math:`S` the support and :math:`s` the signs of the restricted iterate, the
   solution with that sign pattern solves the linear system
   :math:`G_{SS} x_S = c_S - \lambda s` (from :eq:`kkt`). It is solved by a batched Cholesky
   factorisation and accepted, per problem, only when the factorisation succeeds, the signs of
   :math:`x_S` are :math:`s` and the restricted violation does not grow — then it is exact to
   rounding, which is why few outer iterations suffice. (Duplicated or collinear columns make
   :math:`G_{SS}` singular; those problems keep the FISTA iterate.)
4. **Full check.** :math:`g = c - G x` and :eq:`kkt` on all coordinates; problems below ``tol``
   are frozen and leave the batch.

What chose the design
---------------------
Issue 30 asks for 20x the scikit-learn loop on the benchmark problem (1000 problems, ``A``
250 x 500, :math:`\lambda = 0.1`, SNR 40 dB, 61 non-zeros per solution on average; ``unrolled
benchmark lasso-vs-sklearn``). Measured on 2 shared CPU cores under load average 5-7 (so all
absolute times are inflated and noisy; ratios were measured side by side in one process):

* the batched torch solver (``method='torch'``) tops out at 0.8-1.9x the sklearn loop: its
  time goes to memory-bound batched products over ``(B, k, k)`` Gram blocks (2-5 ms each),
  batched Cholesky factorisations (23 ms), working sets padded to the batch's largest support,
  and Python work per outer iteration (earlier profile: restricted FISTA 1.5 s, polish 1.5 s,
  power iterations 0.7 s of a 4.8 s solve); coordinate descent batched in torch costs one
  Python step per coordinate (11-20 s). So the CPU path is a compiled per-problem kernel;
* numba kernel, first version (top-k by ``argsort`` and :math:`G_{WW}` re-gathered every outer
  iteration, polish with a scalar Cholesky): 1.15-1.4 s for the 1000 problems (~5x). Micro
  timings: gathering a 100 x 100 block 15 us, ``argsort`` of 250 scores 15 us, one epoch's 61
  updates of length 100 1 us per problem, i.e. bookkeeping, not arithmetic, dominated;
* hence the working set only grows (each column of :math:`G_{WW}` gathered once), violators
  are selected with ``np.partition``, and scratch buffers are allocated once per chunk of
  problems: 0.40-0.47 s (10-13x the sklearn loop side by side, one thread);
* first working-set size 16 / 32 / 48 (inner fraction 0.01): 11.5-13.8x / 10.0-10.7x /
  8.6-9.2x (one pair of runs each, noisy); inner fraction 0.1 / 0.01 / 0 (each working set
  solved to ``tol / 2``) at ``ws_size`` 64, before the growing working set: 8.1 / 5.7 / 3.9
  outer iterations, 0.67 / 0.54 / 0.77 s; 0.001 at ``ws_size`` 32: 0.59-0.60 s against
  0.45-0.47 s for 0.01 (fewer full checks, each :math:`|S|\,n` flops, without over-solving a
  working set that still misses coordinates);
* the polish (right-looking Cholesky on the support, exact KKT 1e-14 instead of 1e-6) cut the
  outer iterations from 5.9 to 3.9 but doubled the time (6.0-6.9x instead of 10-13x), so
  ``'numba'`` polishes only when coordinate descent stalls (see the coherent dictionaries below);
* two numba threads did not beat one on this loaded machine (9.7-9.9x vs 10.0-13.1x);
* tried and dropped (kernel alone, old and new alternately in one process, 1000 problems,
  load average 3): storing :math:`1/G_{ii}` and skipping zero coordinates with
  :math:`|g_i| \le \lambda` (0.128-0.157 s vs 0.137-0.149 s); an inner tolerance relative to
  the violation outside the working set (outer iterations 5.9 -> 4.9, time 0.25-0.29 s vs
  0.23-0.29 s); Anderson extrapolation of the last 6 CD iterates every 5 epochs, kept when the
  restricted objective decreases (as in skglm): epochs 37 -> 30 per problem, time 0.153-0.165 s
  vs 0.153-0.164 s. None moved the time (the sklearn loop took 1.5-1.9 s in those runs, so the
  kernel sits at 10-12x however the iterations are counted); where the rest goes was not
  resolved (symbol-level ``perf`` sees one inlined kernel, and timings on this shared machine
  varied by 1.5x between identical runs).
* kernel alone, 1000 problems, one thread, load average 1.0-1.3 (min of 5 calls; later
  session): time per outer round 15 / 23 / 34 / 30 / 15 / 14 ms (working sets 32, 64, 127, 173,
  ...), and at ``tol`` 1e-2 still 0.092 s of the 0.116 s at 1e-6, so identifying the support,
  not the last digits, is the cost. First working-set size 2 / 4 / 8 / 12 / 32: 0.130 / 0.122 /
  0.113 / 0.111 / 0.123 s (inner fraction 0.003-0.02 within 4% of 0.01). Dropped: glmnet-style
  sweeps over the non-zero coordinates between full sweeps of the working set (0.114-0.122 s
  against 0.109 s, more epochs); float32
  at equal ``tol`` is only 13% faster (0.096 s vs 0.111 s at 1e-4), so memory traffic is not
  what bounds it; polishing only in rounds where the working set stopped growing (no violator
  outside it): epochs 38 -> 20 per problem, but 0.116-0.123 s against 0.108 s (the Cholesky of
  the ~61-atom support costs more than the 18 epochs it saves). Two numba threads on the quiet
  machine: 0.063 s against 0.113 s (1.8x). Kept: once step 1 finds no violator outside the
  working set, that outer iteration solves it to ``tol / 2`` directly (outer iterations 7.15 ->
  6.25, 0.110-0.112 s against 0.117-0.121 s, two of three alternated runs; the third was noise).
* growth of the working set (added per outer iteration: ``max(ws_size, r * |supp x|)``), kernel
  alone, 1000 problems, one thread, load 0.7, min of 5, two alternated passes: r = 1 (celer's
  doubling) with ``ws_size`` 10: 0.090-0.093 s; r = 0.5 with 15 / 20 / 25 / 30 / 40: 0.079 /
  0.079-0.083 / 0.083 / 0.088 / 0.092-0.094 s; r = 0 (a constant 20): 0.078-0.079 s; r = 1.5,
  2: 0.092-0.102 s. Smaller final working sets (83 instead of 90 coordinates on average) make
  every epoch cheaper, and half the support still grows geometrically on large problems, hence
  r = 0.5 and ``ws_size`` 20 for ``'numba'``. Then the inner fraction 0.003 / 0.01 / 0.03 / 0.1:
  0.084-0.086 / 0.080-0.082 / 0.079 / 0.079 s (epochs 42 / 38 / 35 / 32 per problem): 0.03.
* coherent dictionaries (the SBL family's correlated 20 x 100 dictionary, :math:`\lambda` = 1e-3,
  200 problems): coordinate descent crawls, and with 50 outer x 500 epochs only 62% of the
  problems converged (1.2 s); 5000 epochs per outer iteration: 98%. Polishing when an outer
  iteration's epochs stall (every 50 epochs short of the inner tolerance), with a feature-sign
  line search when the solve flips signs: 100% converged in 0.02-0.03 s; it never triggers on
  the benchmark problems. (The torch path diverged there, see
  :func:`~unrolled.sparse_coding.lasso_torch._spectral_bound`.)

* where the kernel's time goes (later session, one thread, 1000 problems, each part measured as
  the extra time when that part runs twice): coordinate-descent sweeps 27 ms (2559 coordinate
  visits per problem, about 10 ns each, half of them in the last, complete working set), the
  scan for violators outside the working set 13 ms (branchy: mispredictions), the full checks
  12 ms (:math:`\sum_t |S_t|\,n` flops), the selection by ``np.partition`` up to 10 ms, the
  restricted violations 4 ms, the gathers of :math:`G_{WW}` 3.5 ms. Kept (0.089 -> 0.069 s):
  no row views in the hot loops (a view is a new reference-counted array object, 8%), a
  branch-free scan (10%), an in-place quickselect (3-5%), ``1 / G_ii`` stored (2%). Dropped:
  blocked updates of 2, 4 or 8 coordinates with one fused update of :math:`g_W` (10-40% slower);
  the next coordinate's gradient carried in a register (no change); sweeps alternating in
  direction (55 instead of 35 epochs); ``fastmath`` contractions (1-5%, not worth giving up
  IEEE semantics); a polish of the complete working set once coordinate descent is within
  0.1 / 0.01 / 0.001 of its start (epochs 35 -> 24-31, but 0.091-0.093 s against 0.072 s: the
  Cholesky of a 60-atom support costs about 20 us, 2000 coordinate visits).

Result (``docs/results/solver-benchmarks/results.md``; ``unrolled benchmark lasso-vs-sklearn
--threads T`` and ``unrolled benchmark all --threads T``, the machine otherwise idle, every solver at
the same objective: max :math:`(F - F^*)/F^*` 1.8e-14 for ``lasso``, 1.7e-11 for the sklearn loop,
2.2e-7 for skglm):

* two threads (numba's default on the 2-CPU benchmark machine): 18.4-29.0x the sklearn loop over
  seven runs (median 23x, five at 20x or more), 31-43x the skglm loop: the issue's 20x is reached
  with both cores at the median;
* one thread: 13.9-16.5x the sklearn loop over five runs, 22-26x the skglm loop; the kernel
  of the previous session's tree, side by side on the same machine, gave 10.5x.

Earlier, on the shared machine under load average 4.5-6.1, one thread gave 10.7-16.3x and two
threads only 5.2-8.9x (the second thread oversubscribed the two CPUs), so the thread setting
matters more than any change above on a busy machine (``--threads``, ``numba.set_num_threads``).

Notes
-----
Runs in the dtype and on the device of the inputs (``'torch'`` under :func:`torch.no_grad`,
with host synchronisations once per outer iteration and once every ``check_every`` inner
iterations, never one per problem; ``'numba'`` on CPU with ``numba.get_num_threads()``
threads — set them with ``numba.set_num_threads`` or ``NUMBA_NUM_THREADS``). The first call of
``'numba'`` for a dtype compiles the kernel (20-60 s on the loaded benchmark machine) and
stores it in numba's cache (``__pycache__`` beside the module, else the user cache directory);
later processes load it (about 1-1.5 s for the first call). Where no cache directory is
writable numba compiles in memory in every process, silently (checked with a read-only source
tree and home directory). float32 inputs are solved in float32: the attainable
normalised violation is then about ``1e-4`` (the rounding of :math:`c - Gx` relative to
:math:`\lambda`), so use ``tol >= 1e-4`` there or pass float64.
"""

from __future__ import annotations

import torch
from torch import Tensor

import numpy as np

from unrolled.core.result import SolverResult
from unrolled.core.validation import check_int, check_positive, from_numpy
from unrolled.sparse_coding.lasso_torch import lasso_torch
from unrolled.sparse_coding.solvers import check_measurements

__all__ = ["lasso"]

METHODS = ("auto", "numba", "torch")


def _lasso_numba(y: Tensor, A: Tensor, lam: float, max_iter: int, tol: float, ws_size: int, max_epochs: int,
                 polish: int, inner_frac: float = 0.03) -> SolverResult:
    """CPU path: the compiled per-problem kernel of :mod:`unrolled.sparse_coding.lasso_cd` (batched over problems).

    ``polish``: 0 never, 1 when coordinate descent stalls, 2 after every restricted solve.
    """
    import numba

    from unrolled.sparse_coding.lasso_cd import lasso_cd_batch

    B, n = y.shape[0], A.shape[1]
    G = (A.T @ A).contiguous().numpy()          # (n, n), once
    C = (y @ A).contiguous().numpy()            # (B, n), c_b = A^T y_b
    yy = (0.5 * (y.double() * y.double()).sum(1)).numpy()
    X = np.zeros((B, n), dtype=C.dtype)
    n_iter = np.zeros(B, dtype=np.int64)
    viol = np.zeros(B)
    h_obj = np.zeros((B, max_iter))
    h_crit = np.zeros((B, max_iter))
    h_ws = np.zeros((B, max_iter), dtype=np.int64)
    h_ep = np.zeros((B, max_iter), dtype=np.int64)
    h_pol = np.zeros((B, max_iter), dtype=np.bool_)
    pivot_tol = 1e-10 if C.dtype == np.float64 else 1e-5
    lasso_cd_batch(G, C, yy, float(lam), float(tol), max_iter, ws_size, max_epochs, inner_frac, polish, pivot_tol,
                   8 * numba.get_num_threads(), X, n_iter, viol, h_obj, h_crit, h_ws, h_ep, h_pol)
    if not np.isfinite(viol).all():
        raise FloatingPointError("lasso diverged: non-finite KKT violation (data of a dtype too narrow for it?)")
    # history in the format of the torch path: per outer iteration t, problems done before t at their final values
    T = int(n_iter.max()) if B else 0
    history: dict[str, list] = {"objective": [], "criterion": [], "ws_size": [], "inner_iter": [], "polished": []}
    if T:
        t = np.arange(T)
        last = np.clip(np.minimum(t[None, :], n_iter[:, None] - 1), 0, None)
        rows = np.arange(B)[:, None]
        done0 = (n_iter == 0)[:, None]
        obj = np.where(done0, yy[:, None], h_obj[rows, last])
        crit = np.where(done0, viol[:, None], h_crit[rows, last])
        live = t[None, :] < n_iter[:, None]
        history["objective"] = obj.mean(0).tolist()
        history["criterion"] = crit.max(0).tolist()
        history["ws_size"] = np.where(live, h_ws[:, :T], 0).max(0).tolist()
        history["inner_iter"] = np.where(live, h_ep[:, :T], 0).max(0).tolist()
        history["polished"] = (live & h_pol[:, :T]).sum(0).tolist()
    return SolverResult(x=torch.from_numpy(X), n_iter=torch.from_numpy(n_iter), converged=torch.from_numpy(viol < tol),
                        history=history)


def lasso(
    y: Tensor | np.ndarray,
    A: Tensor | np.ndarray,
    lam: float,
    *,
    max_iter: int = 50,
    tol: float = 1e-6,
    ws_size: int | None = None,
    inner_max_iter: int = 500,
    check_every: int = 10,
    polish: bool | None = None,
    bucket: int = 16,
    method: str = "auto",
) -> SolverResult:
    r"""Solve a batch of Lasso problems :eq:`lasso` by working sets (see the module docstring).

    Parameters
    ----------
    y : Tensor or numpy.ndarray
        ``(B, m)`` measurements, or a single ``(m,)`` vector (numpy arrays are converted).
    A : Tensor or numpy.ndarray
        ``(m, n)`` dictionary, same dtype and device as ``y``.
    lam : float
        Regularisation weight :math:`\lambda > 0` in the scaling of :eq:`lasso`
        (scikit-learn's ``Lasso(alpha)`` minimises :math:`F / m`, i.e. ``alpha = lam / m``).
    max_iter : int, optional
        Cap on outer (working-set) iterations, ``>= 1``.
    tol : float, optional
        Tolerance ``>= 0`` on the normalised violation of :eq:`kkt` over all coordinates
        (the criterion of :func:`~unrolled.sparse_coding.solvers.fista`); a problem is done at
        the first outer iteration where it is strictly below ``tol``.
    ws_size : int or None, optional
        First working-set size :math:`k_0 \ge 1` (then grown with the support). ``None``: 20 for
        ``'numba'``, 32 for ``'torch'`` (measured, see the module docstring).
    inner_max_iter : int, optional
        Cap per outer iteration on the restricted FISTA iterations (``'torch'``) or the
        coordinate-descent epochs (``'numba'``), ``>= 1``.
    check_every : int, optional
        Inner iterations between two restricted KKT checks (host synchronisations) of the
        ``'torch'`` method, ``>= 1``.
    polish : bool or None, optional
        Try the exact sign-pattern solve (step 3) after the restricted solves. ``None``: on for
        ``'torch'``; for ``'numba'`` only when coordinate descent stalls (every 50 epochs short of
        the inner tolerance), since polishing every working set was measured slower there;
        ``False``: never.
    bucket : int, optional
        ``'torch'`` only: working-set sizes are rounded up to a multiple of it, ``>= 1``.
    method : {'auto', 'numba', 'torch'}, optional
        ``'numba'``: the compiled per-problem coordinate-descent kernel
        (:mod:`unrolled.sparse_coding.lasso_cd`, CPU tensors only, ``numba.get_num_threads()``
        threads); ``'torch'``: the batched torch working-set solver above (any device);
        ``'auto'``: ``'numba'`` for CPU tensors, ``'torch'`` otherwise.

    Returns
    -------
    SolverResult
        ``x`` ``(B, n)`` (or ``(n,)``); ``n_iter`` ``(B,)``: outer iterations each problem used
        (``0`` when ``x = 0`` is already optimal, e.g. :math:`\lambda \ge \lambda_{\max}`);
        ``converged`` ``(B,)``; ``history`` with, per outer iteration, ``'objective'`` (batch
        mean of :eq:`lasso`, frozen problems at their final value), ``'criterion'`` (batch max
        violation of :eq:`kkt`), ``'ws_size'`` (``k_t``), ``'inner_iter'`` and ``'polished'``
        (problems whose polish was accepted).

    Raises
    ------
    ValueError
        On a bad argument; the message names it.

    Examples
    --------
    >>> from unrolled.sparse_coding.data import SparseCodingProblem
    >>> prob = SparseCodingProblem(m=50, n=100, p=0.1, snr_db=40.0, seed=0)
    >>> y, _ = prob.sample(16, torch.Generator().manual_seed(0))
    >>> res = lasso(y, prob.A, 0.05)
    >>> bool(res.converged.all())
    True
    """
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    y, A = from_numpy(y), from_numpy(A)
    yb, unbatched = check_measurements(y, A)
    m, n = A.shape
    lam = check_positive("lam", lam)
    max_iter = check_int("max_iter", max_iter, minimum=1)
    tol = check_positive("tol", tol, allow_zero=True)
    if ws_size is not None:
        ws_size = check_int("ws_size", ws_size, minimum=1)
    inner_max_iter = check_int("inner_max_iter", inner_max_iter, minimum=1)
    check_every = check_int("check_every", check_every, minimum=1)
    bucket = check_int("bucket", bucket, minimum=1)
    if polish is not None and not isinstance(polish, bool):
        raise ValueError(f"polish must be a bool or None, got {polish!r}")
    if method == "auto":
        method = "numba" if yb.device.type == "cpu" else "torch"
    if method == "numba":
        if yb.device.type != "cpu":
            raise ValueError(f"method='numba' needs CPU tensors, got y on {yb.device}; use method='torch'")
        res = _lasso_numba(yb.detach(), A.detach(), lam, max_iter, tol, 20 if ws_size is None else ws_size,
                           inner_max_iter, 1 if polish is None else 2 * int(polish))
    else:
        with torch.no_grad():
            res = lasso_torch(yb.detach(), A.detach(), lam, max_iter, tol, 32 if ws_size is None else ws_size,
                         inner_max_iter, check_every,
                         True if polish is None else polish, bucket)
    if unbatched:
        return SolverResult(x=res.x[0], n_iter=res.n_iter[0], converged=res.converged[0], history=res.history)
    return res
