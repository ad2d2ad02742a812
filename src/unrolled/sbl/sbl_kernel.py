r"""Compiled CPU kernel of :func:`~unrolled.sbl.solvers.sbl`: the EM / MacKay iteration, one problem at a time.

One call runs SBL on ``B`` problems ``y_b`` sharing ``Phi`` ``(n, m)``, split into ``n_chunks`` contiguous chunks,
one parallel task (``numba.prange``) per chunk with its scratch buffers allocated once. Per problem it runs exactly
the iteration of :class:`~unrolled.sbl.iteration.SBLIteration` with ``reuse_posterior=True`` (the torch path of
:func:`~unrolled.sbl.solvers.sbl`): the posterior (mean :math:`\hat x`, ``q``, type-II cost (5)) at the current
``gamma``, then

* ``'em'``:     :math:`\gamma \leftarrow |\hat x|^2 + (\gamma - \gamma^2 q)_+`;
* ``'mackay'``: :math:`\gamma \leftarrow |\hat x|^2 / (\gamma q)` (zero where :math:`\gamma q` underflows);

then, with pruning, hyperparameters below ``prune`` set to zero; the relative change
``max_i |gamma_new - gamma|_i / max_i gamma_i`` against ``tol``; the posterior at the new ``gamma``. The posterior is
computed on the atoms with ``gamma_i > 0`` (``S``, ``|S| = k``) in the form the torch path picks for the problem:

* **dense form** (no pruning, or a pruned problem whose active-set bucket ``4 ceil(k/4)`` exceeds ``n``):
  :math:`\Sigma_y = \lambda I + \Phi_S\Gamma_S\Phi_S^T = U^TU` (upper Cholesky factor), :math:`W = U^{-T}\Phi_S`,
  :math:`v = U^{-T}y`, :math:`\hat x_S = \Gamma_S W^Tv`, :math:`q_S = \mathrm{diag}(W^TW)`,
  :math:`\mathcal L = \|v\|^2 + 2\sum_i\log U_{ii}` (eqs. 4-5); atoms at ``gamma = 0`` add nothing to
  :math:`\Sigma_y`, so this is :func:`~unrolled.sbl.iteration.posterior` on all columns;
* **(k, k) form** (pruned, bucket at most ``n``; :func:`~unrolled.sbl.iteration.posterior_active`):
  :math:`M = I + DG_SD/\lambda = U^TU` with :math:`D = \Gamma_S^{1/2}`, :math:`Z = U^{-T}`,
  :math:`M^{-1} = Z^TZ`, :math:`\hat x_S = DM^{-1}D\Phi_S^Ty/\lambda`, :math:`\gamma_iq_i = 1 - (M^{-1})_{ii}`,
  :math:`\mathcal L = (\|y\|^2 - (\Phi_S^Ty)^T\hat x_S)/\lambda + n\log\lambda + \log|M|`.

The upper triangle of :math:`\Phi_S\Gamma_S\Phi_S^T` is ``k`` axpys over a table of the products
:math:`\Phi_{il}\Phi_{jl}` (``i <= j``) of each atom, made once per call by :func:`~unrolled.sbl.solvers.sbl`
(rank-one row updates of the full square when that table would exceed
:data:`~unrolled.sbl.solvers.PACKED_MAX_BYTES`). Every triangular loop is a contiguous row update (axpy; no
floating-point reductions in the long loops, which ``fastmath=False`` cannot vectorise). Float64 only.
``cache=True`` stores the compiled code beside this file (else in numba's user cache directory); the first call in a
fresh environment compiles it (6-12 s here), later processes load it.

Per-problem statuses: ``0`` fine, ``1`` non-finite hyperparameters, ``2`` non-finite cost or criterion, ``3`` a
non-positive Cholesky pivot, with ``n_iter[b]`` the iteration at which it happened (``0``: at the start).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

#: Width of the active-set-size groups of the torch path (a copy of ``unrolled.sbl.iteration._GROUP``: a global of
#: another module would not invalidate numba's cache; a test checks they agree).
GROUP = 4


@njit(cache=True, fastmath=False, nogil=True)
def _cholesky_upper(U, k):
    """In place on ``U[:k, :k]`` (upper triangle read and written): ``S = U^T U``; False on a non-positive pivot."""
    for j in range(k):
        d = U[j, j]
        if not d > 0.0:
            return False
        d = math.sqrt(d)
        U[j, j] = d
        inv = 1.0 / d
        for b in range(j + 1, k):
            U[j, b] *= inv
        for i in range(j + 1, k):
            u = U[j, i]
            for b in range(i, k):
                U[i, b] -= u * U[j, b]
    return True


@njit(cache=True, fastmath=False, nogil=True)
def _forward_rows(U, k, R, ncol):
    """In place: ``R[:k, :ncol] <- U^{-T} R`` (forward substitution with ``L = U^T``, one row update per pair)."""
    for i in range(k):
        inv = 1.0 / U[i, i]
        for a in range(ncol):
            R[i, a] *= inv
        for r in range(i + 1, k):
            u = U[i, r]
            for a in range(ncol):
                R[r, a] -= u * R[i, a]


@njit(cache=True, fastmath=False, nogil=True)
def _dense_factor(Phi, PhiT, P, tri, gamma, lam, act, k, U, W, s):
    """Dense form, the part shared by every ``y``: ``U`` (upper, ``Sigma_y = U^T U``), ``W = U^{-T} Phi_S`` and
    ``s = diag(W^T W)`` on the ``k`` active atoms ``act[:k]``; False on a non-positive pivot.

    ``P`` ``(m, n(n+1)/2)``: the products ``Phi_il Phi_jl`` (``i <= j``, row by row) of each atom, so that the upper
    triangle of ``Phi_S Gamma_S Phi_S^T`` is ``k`` axpys of length ``n(n+1)/2`` into the scratch ``tri`` (measured
    4.4-4.8 us -> 2.5 us at n = 25, m = 60); an empty ``P`` (too large to keep) builds the full square by rank-one
    row updates instead.
    """
    n = Phi.shape[0]
    if P.shape[0] > 0:
        npair = P.shape[1]
        for e in range(npair):
            tri[e] = 0.0
        for a in range(k):
            l = act[a]
            g = gamma[l]
            p = P[l]
            for e in range(npair):
                tri[e] += g * p[e]
        e = 0
        for i in range(n):
            for j in range(i, n):
                U[i, j] = tri[e]
                e += 1
    else:
        for i in range(n):
            row = U[i]
            for j in range(n):
                row[j] = 0.0
        for a in range(k):  # Phi_S Gamma_S Phi_S^T, one rank-one update per atom (the full square: longer rows
            l = act[a]      # than the triangle's, measured 2.4x faster at n = 25)
            g = gamma[l]
            p = PhiT[l]
            for i in range(n):
                c = g * p[i]
                row = U[i]
                for j in range(n):  # no test of c = 0 here: a branch in this loop nest made it 7x slower
                    row[j] += c * p[j]
    for i in range(n):
        U[i, i] += lam
    if not _cholesky_upper(U, n):
        return False
    for i in range(n):
        row = Phi[i]
        for a in range(k):
            W[i, a] = row[act[a]]
    _forward_rows(U, n, W, k)
    for a in range(k):
        s[a] = 0.0
    for i in range(n):
        for a in range(k):
            w = W[i, a]
            s[a] += w * w
    return True


@njit(cache=True, fastmath=False, nogil=True)
def _dense_solve(y, gamma, act, k, U, W, s, v, t, mean, q):
    """Dense form, the part of one ``y`` (after :func:`_dense_factor`): writes ``mean``, ``q``; returns the cost."""
    n = y.shape[0]
    for i in range(n):
        v[i] = y[i]
    for i in range(n):  # v = U^{-T} y
        v[i] /= U[i, i]
        vi = v[i]
        for r in range(i + 1, n):
            v[r] -= U[i, r] * vi
    for a in range(k):
        t[a] = 0.0
    cost = 0.0
    for i in range(n):  # t = W^T v, accumulated row by row
        vi = v[i]
        cost += vi * vi + 2.0 * math.log(U[i, i])
        for a in range(k):
            t[a] += vi * W[i, a]
    for l in range(mean.shape[0]):
        mean[l] = 0.0
        q[l] = 0.0
    for a in range(k):
        l = act[a]
        mean[l] = gamma[l] * t[a]
        q[l] = s[a]
    return cost


@njit(cache=True, fastmath=False, nogil=True)
def _posterior_small(G, c, energy, n, gamma, lam, act, k, U, Z, d, t, s, mean, q):
    """(k, k) form on the ``k`` active atoms (``G = Phi^T Phi``, ``c = Phi^T y``); returns (cost, ok)."""
    for l in range(mean.shape[0]):
        mean[l] = 0.0
        q[l] = 0.0
    if k == 0:  # every atom pruned: x = 0, Sigma_y = lam I
        return energy / lam + n * math.log(lam), True
    for a in range(k):
        d[a] = math.sqrt(gamma[act[a]])
    for a in range(k):
        row = G[act[a]]
        for b in range(a, k):
            U[a, b] = d[a] * row[act[b]] * d[b] / lam
        U[a, a] += 1.0
    if not _cholesky_upper(U, k):
        return 0.0, False
    for i in range(k):
        for j in range(k):
            Z[i, j] = 0.0
        Z[i, i] = 1.0
    _forward_rows(U, k, Z, k)  # Z = U^{-T} (lower triangular), M^{-1} = Z^T Z
    for a in range(k):
        t[a] = d[a] * c[act[a]]  # D Phi_S^T y
        s[a] = 0.0
    logdet = 0.0
    for i in range(k):
        logdet += 2.0 * math.log(U[i, i])
    # M^{-1} r = Z^T (Z r) accumulated into mean[S]; diag(M^{-1}) = the squared column norms of Z, into s
    for i in range(k):
        zr = 0.0
        for j in range(i + 1):
            zr += Z[i, j] * t[j]
        for j in range(i + 1):
            z = Z[i, j]
            s[j] += z * z
            mean[act[j]] += z * zr
    fit = 0.0
    for a in range(k):
        l = act[a]
        mean[l] = d[a] * mean[l] / lam
        fit += c[l] * mean[l]
        q[l] = (1.0 - s[a]) / gamma[l]
    return (energy - fit) / lam + n * math.log(lam) + logdet, True


@njit(cache=True, fastmath=False, nogil=True)
def _posterior(Phi, PhiT, P, tri, G, y, c, energy, gamma, lam, pruned, act, U, W, Z, v, d, t, s, mean, q):
    """Posterior at ``gamma`` in the form the torch path uses for it; returns (cost, ok)."""
    n, m = Phi.shape
    k = 0
    for l in range(m):
        if gamma[l] > 0.0:
            act[k] = l
            k += 1
    bucket = min(((k + GROUP - 1) // GROUP) * GROUP, m)
    if pruned and bucket <= n:
        return _posterior_small(G, c, energy, n, gamma, lam, act, k, U, Z, d, t, s, mean, q)
    if not _dense_factor(Phi, PhiT, P, tri, gamma, lam, act, k, U, W, s):
        return 0.0, False
    return _dense_solve(y, gamma, act, k, U, W, s, v, t, mean, q), True


@njit(cache=True, fastmath=False, nogil=True)
def _solve_one(Phi, PhiT, P, tri, G, y, c, gamma, lam, mackay, prune, max_iter, tol, x, obj_live, obj_tail, crit_live,
               crit_tail, act, U, W, Z, v, d, t, s, mean, q, gnew, shared, act0, k0, U0, W0, s0):
    """SBL for one problem; ``gamma`` (the start on entry) and ``x`` are written in place (``c``: scratch).

    ``shared``: the start's posterior is in the dense form with the factorisation ``act0[:k0], U0, W0, s0`` of
    :func:`_dense_factor`, computed once for the problems that share the start (the default ``gamma = 1``).

    Returns ``(iterations, converged, status)`` (with a non-zero status: the iteration where it stopped). The cost
    and criterion after iteration ``it`` are added to ``obj_live[it - 1]`` and max-ed into ``crit_live[it - 1]``, the
    final ones into ``obj_tail[T]``, ``crit_tail[T]`` (``T`` the iterations run: they stand for every later iteration
    of the batch's history).
    """
    m = gamma.shape[0]
    tiny = np.finfo(np.float64).tiny
    pruned = prune > 0.0
    energy = 0.0
    for l in range(m):
        c[l] = 0.0
    for i in range(y.shape[0]):  # c = Phi^T y here, per problem (a batched product would round differently)
        yi = y[i]
        energy += yi * yi
        row = Phi[i]
        for l in range(m):
            c[l] += yi * row[l]
    if shared:
        cost, ok = _dense_solve(y, gamma, act0, k0, U0, W0, s0, v, t, mean, q), True
    else:
        cost, ok = _posterior(Phi, PhiT, P, tri, G, y, c, energy, gamma, lam, pruned, act, U, W, Z, v, d, t, s, mean,
                              q)
    if not ok:
        return 0, False, 3
    crit = 0.0
    it = 0
    converged = False
    status = 0
    while it < max_iter:
        it += 1
        finite = True
        num = 0.0
        den = 0.0
        for l in range(m):
            g = gamma[l]
            if mackay:
                denom = g * q[l]
                new = mean[l] * mean[l] / denom if denom > tiny else 0.0
            else:
                r = g - g * g * q[l]
                if r < 0.0:
                    r = 0.0
                new = mean[l] * mean[l] + r
            if pruned and new < prune:
                new = 0.0
            if not np.isfinite(new):
                finite = False
            gnew[l] = new
            e = abs(new - g)
            if e > num or e != e:
                num = e
            if g > den:
                den = g
        if not finite:
            status = 1
            break
        crit = num / max(den, tiny)
        for l in range(m):
            gamma[l] = gnew[l]
        cost, ok = _posterior(Phi, PhiT, P, tri, G, y, c, energy, gamma, lam, pruned, act, U, W, Z, v, d, t, s, mean,
                              q)
        if not ok:
            status = 3
            break
        if not (np.isfinite(cost) and crit == crit):
            status = 2
            break
        obj_live[it - 1] += cost
        if crit > crit_live[it - 1]:
            crit_live[it - 1] = crit
        if crit < tol:
            converged = True
            break
    for l in range(m):
        x[l] = mean[l]
    if status == 0:
        obj_tail[it] += cost
        if crit > crit_tail[it]:
            crit_tail[it] = crit
    return it, converged, status


@njit(parallel=True, cache=True, fastmath=False, nogil=True)
def sbl_batch(Phi, P, G, Y, Gamma, lam, mackay, prune, max_iter, tol, n_chunks, X, n_iter, converged, status,
              obj_live, obj_tail, crit_live, crit_tail):
    """SBL on every row of ``Y`` ``(B, n)`` (``G = Phi^T Phi``, ``P`` as in :func:`_dense_factor`); outputs in place.

    ``Gamma`` ``(B, m)``: the starts on entry, the final hyperparameters on exit; ``X`` ``(B, m)`` the posterior
    means; ``n_iter``, ``converged``, ``status`` ``(B,)``; ``obj_live``, ``obj_tail``, ``crit_live``,
    ``crit_tail`` ``(n_chunks, max_iter + 1)`` zeros on entry: per chunk, the sums (costs) and maxima (criteria) of
    :func:`_solve_one` from which the batch history is assembled. ``prune <= 0``: no pruning.
    """
    B, n = Y.shape
    m = Phi.shape[1]
    PhiT = np.ascontiguousarray(Phi.T)
    # one start for every problem whose posterior is in the dense form: factorised once per chunk
    shared = B > 1
    for b in range(1, B):
        for l in range(m):
            if Gamma[b, l] != Gamma[0, l]:
                shared = False
                break
        if not shared:
            break
    k0 = 0
    act0 = np.empty(m, dtype=np.int64)
    for l in range(m):
        if B and Gamma[0, l] > 0.0:
            act0[k0] = l
            k0 += 1
    if prune > 0.0 and min(((k0 + GROUP - 1) // GROUP) * GROUP, m) <= n:
        shared = False
    for ch in prange(n_chunks):
        act = np.empty(m, dtype=np.int64)
        U = np.empty((n, n))
        W = np.empty((n, m))
        Z = np.empty((n, n))
        v = np.empty(n)
        d = np.empty(m)
        t = np.empty(m)
        s = np.empty(m)
        mean = np.empty(m)
        q = np.empty(m)
        gnew = np.empty(m)
        c = np.empty(m)
        tri = np.empty(P.shape[1])
        U0 = np.empty((n, n))
        W0 = np.empty((n, m))
        s0 = np.empty(m)
        lo, hi = ch * B // n_chunks, (ch + 1) * B // n_chunks
        use0 = shared and hi > lo and _dense_factor(Phi, PhiT, P, tri, Gamma[lo], lam, act0, k0, U0, W0, s0)
        for b in range(lo, hi):
            it, conv, st = _solve_one(Phi, PhiT, P, tri, G, Y[b], c, Gamma[b], lam, mackay, prune, max_iter, tol,
                                      X[b], obj_live[ch], obj_tail[ch], crit_live[ch], crit_tail[ch], act, U, W,
                                      Z, v, d, t, s, mean, q, gnew, use0, act0, k0, U0, W0, s0)
            n_iter[b] = it
            converged[b] = conv
            status[b] = st
