r"""Compiled CPU kernel of :func:`~unrolled.sparse_coding.lasso.lasso`: Gram coordinate descent on working sets.

One call solves ``B`` Lasso problems :math:`\min_x \tfrac12 x^TGx - c_b^Tx + \lambda\|x\|_1`
(eq. ``lasso`` of :mod:`unrolled.sparse_coding.lasso`, with :math:`G = A^TA` shared and
:math:`c_b = A^Ty_b`), the problems split into ``n_chunks`` contiguous chunks, one parallel task
(``numba.prange``) per chunk with its scratch buffers allocated once. Per problem, per outer
iteration ``t``:

1. **Working set** :math:`W` (:math:`g = c - Gx`): it only grows, so each row of
   :math:`G_{WW}` is gathered once, when its coordinate enters. It starts empty and each outer
   iteration adds the coordinates outside :math:`W` with :math:`|g_i| > \lambda` (violators of
   eq. ``kkt``), the ``max(ws_size, |supp x| // 2)`` largest :math:`|g_i| - \lambda` of them when
   there are more (selected by an in-place quickselect, :func:`_kth_largest`): half the doubling of celer / skglm
   (measured faster: smaller working sets), without dropping coordinates.
2. **Coordinate descent** on :math:`W` with the block :math:`G_{WW}` in a contiguous buffer:
   :math:`x_i \leftarrow S_{\lambda/G_{ii}}(x_i + g_i/G_{ii})`, and
   :math:`g_W \mathrel{-}= G_{W i}\,\delta` for each coordinate that moved (:math:`|W|` flops),
   until the restricted KKT violation is below ``max(inner_frac * v_t, tol / 2)`` (``v_t``: the
   problem's full violation at the start of the outer iteration), or ``tol / 2`` when step 1
   added nothing (no violator outside :math:`W`), or ``max_epochs`` epochs.
3. **Polish** (``polish`` 2: whenever step 2 reaches its tolerance, and as 1; 1: when coordinate
   descent stalls, every ``STALL_EPOCHS`` epochs that did not reach it, as on coherent
   dictionaries; 0: never): the solution with the sign pattern :math:`s` of the CD iterate on
   its support :math:`S` solves :math:`G_{SS}x_S = c_S - \lambda s` (eq. ``kkt``), by a
   Cholesky factorisation that must be well-posed (pivots above ``pivot_tol`` times the
   diagonal; duplicated or collinear columns fail here). Where signs disagree, a feature-sign
   line search (:func:`_polish`) moves to the first zero crossing, drops that coordinate and
   solves again. The result is kept when the restricted violation does not grow.
4. **Full check**: :math:`g = c - \sum_{j \in S} G_{:j}x_j` recomputed from scratch
   (:math:`|S|\,n` flops) and the normalised violation of eq. ``kkt`` on all ``n``
   coordinates; the problem stops when it is strictly below ``tol``.

Hot loops index the 2-d buffers directly (``Gw[a, b]``, never a row view ``Gw[a]``): in numba a
view is a new array object with its reference count updated, which cost 8% of the kernel's time
per coordinate update (measured against the row-view form); ``1 / G_ii`` is stored per
working-set coordinate.

The arithmetic is that of the input dtype for the stored arrays (``float32`` or ``float64``);
scalars are float64. ``cache=True`` stores the compiled code next to this file (or in numba's
user cache directory when that is not writable; with neither writable it compiles in memory
in every process, silently); the first call of a dtype in a fresh environment compiles it
(20-60 s on a loaded 2-core machine), later processes load it (about 1 s).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: With ``polish=1`` (on stall), the sign-pattern solve is tried every this many CD epochs that did not
#: reach the inner tolerance.
STALL_EPOCHS = 50


@njit(cache=True, fastmath=False, nogil=True)
def _violation(x, g, k, lam):
    """Normalised KKT violation (eq. ``kkt``) of ``x[:k]`` with negative gradient ``g[:k]``."""
    v = 0.0
    for i in range(k):
        if x[i] != 0.0:
            e = abs(g[i] - lam * np.sign(x[i]))
        else:
            e = abs(g[i]) - lam
        if e > v:
            v = e
    return v / lam


@njit(cache=True, fastmath=False, nogil=True)
def _kth_largest(a, nv, kk):
    """The ``kk``-th largest of ``a[:nv]`` (``1 <= kk <= nv``), by quickselect in place (``a[:nv]`` is reordered).

    Hoare partitioning around a median-of-three pivot; replaces ``np.partition``, which allocates
    a copy at every outer iteration of every problem (3-5% of the kernel's time, measured).
    """
    lo = 0
    hi = nv - 1
    target = kk - 1  # position in descending order
    while lo < hi:
        p0 = a[lo]
        p1 = a[(lo + hi) >> 1]
        p2 = a[hi]
        if p0 < p1:
            p0, p1 = p1, p0
        if p1 < p2:
            p1 = p2 if p0 >= p2 else p0
        piv = p1  # the median of the three
        i = lo
        j = hi
        while i <= j:
            while a[i] > piv:
                i += 1
            while a[j] < piv:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        # a[lo..j] >= piv, a[i..hi] <= piv, and a[j+1..i-1] == piv
        if target <= j:
            hi = j
        elif target >= i:
            lo = i
        else:
            return piv
    return a[lo]


@njit(cache=True, fastmath=False, nogil=True)
def _sign_solve(Gw, cw, xt, lam, pivot_tol, S, U, xs):
    """Solve :math:`G_{SS}x_S = c_S - \\lambda\\,\\mathrm{sign}(x_S)` on the support ``S`` of ``xt``.

    Right-looking Cholesky :math:`G_{SS} = U^TU` with ``U`` upper triangular in the rows of the
    buffer ``U``, so that every inner loop is a contiguous axpy (no floating-point reductions,
    which ``fastmath=False`` cannot vectorise). Returns the support size, or ``-1`` when a pivot
    is below ``pivot_tol`` times its diagonal entry (singular or collinear columns).
    """
    k = xt.shape[0]
    s = 0
    for i in range(k):
        if xt[i] != 0.0:
            S[s] = i
            s += 1
    for a in range(s):  # upper triangle of G_SS
        ia = S[a]
        for b in range(a, s):
            U[a, b] = Gw[ia, S[b]]
    for j in range(s):
        d = U[j, j]
        if not d > pivot_tol * Gw[S[j], S[j]]:
            return -1
        d = np.sqrt(d)
        inv = 1.0 / d
        U[j, j] = d
        for b in range(j + 1, s):
            U[j, b] *= inv
        for i in range(j + 1, s):
            u = U[j, i]
            if u != 0.0:
                for b in range(i, s):
                    U[i, b] -= u * U[j, b]
    # U^T z = c_S - lam s (forward, axpy form), then U x = z (backward)
    for i in range(s):
        xs[i] = cw[S[i]] - lam * np.sign(xt[S[i]])
    for i in range(s):
        z = xs[i] / U[i, i]
        xs[i] = z
        for b in range(i + 1, s):
            xs[b] -= z * U[i, b]
    for i in range(s - 1, -1, -1):
        v = xs[i]
        for b in range(i + 1, s):
            v -= U[i, b] * xs[b]
        xs[i] = v / U[i, i]
    return s


@njit(cache=True, fastmath=False, nogil=True)
def _polish(Gw, cw, xw, gw, k, lam, pivot_tol, S, U, xs, gs, xt):
    """Sign-pattern solve with a feature-sign line search (step 3); updates ``xw``, ``gw`` in place when kept.

    The solution :math:`x_p` on the support and signs of the iterate minimises the smooth
    objective of that orthant; where some signs of :math:`x_p` disagree, the iterate moves along
    the segment towards :math:`x_p` to the first coordinate that reaches zero (the objective
    decreases along it, being convex and equal to the orthant's quadratic there), that
    coordinate leaves the support, and the solve is repeated (at most ``k`` times; Lee et al.,
    2007, "feature-sign search"). The result is kept when its restricted violation of eq.
    ``kkt`` is not larger than the iterate's.
    """
    for i in range(k):
        xt[i] = xw[i]
    xt = xt[:k]
    solved = False
    s = 0
    for _ in range(k):
        s = _sign_solve(Gw, cw, xt, lam, pivot_tol, S, U, xs)
        if s <= 0:
            return False
        t = 1.0
        for i in range(s):  # first zero crossing on the segment xt -> xs
            v = xt[S[i]]
            if not np.sign(xs[i]) == np.sign(v):
                ti = v / (v - xs[i])
                if ti < t:
                    t = ti
        if t >= 1.0:
            for i in range(s):
                xt[S[i]] = xs[i]
            solved = True
            break
        for i in range(s):
            v = xt[S[i]]
            nv = v + t * (xs[i] - v)
            if not np.sign(nv) == np.sign(v) or abs(nv) <= 1e-15 * abs(v):
                nv = 0.0
            xt[S[i]] = nv
    if not solved:
        return False
    # negative gradient on W at the polished point: g = c_W - G_WS x_S
    for i in range(k):
        gs[i] = cw[i]
    for p in range(s):
        ip = S[p]
        v = xt[ip]
        for i in range(k):
            gs[i] -= Gw[ip, i] * v
    if not _violation(xt, gs, k, lam) <= _violation(xw, gw, k, lam):
        return False
    for i in range(k):
        xw[i] = xt[i]
        gw[i] = gs[i]
    return True


@njit(cache=True, fastmath=False, nogil=True)
def _solve_one(G, c, yy, lam, tol, max_outer, ws_size, max_epochs, inner_frac, polish, pivot_tol,
               x, hist_obj, hist_crit, hist_ws, hist_ep, hist_pol, Gw, U, W, inW, cand, score, cw, xw, gw, S, xs,
               gs, g, xt, sbuf, dinv):
    """Working-set CD for one problem (steps 1-4); ``x`` (zeros on entry) is written in place.

    The arrays after ``hist_pol`` are scratch space of the caller (length ``n``; ``inW`` all
    False and ``xw`` zeros on entry, and left so); the block buffers ``Gw``, ``U`` are replaced
    by larger ones when the working set outgrows them. Returns ``(outer iterations run, final
    violation, Gw, U)``; per outer iteration ``t`` the objective, violation, working-set size,
    CD epochs and whether a polish was kept go to ``hist_*[t]``.
    """
    n = c.shape[0]
    for i in range(n):
        g[i] = c[i]
    viol = _violation(x, g, n, lam)
    if viol < tol:
        return 0, viol, Gw, U
    cap = Gw.shape[0]
    k = 0
    outer = 0
    while outer < max_outer:
        # 1. working set: W only grows (so G_WW is gathered once per coordinate, not per outer
        #    iteration); add the violators of largest |g_i| - lam, at most max(ws_size, |supp x| // 2)
        nsupp = 0  # x is zero outside W, and xw holds x on W here
        for a in range(k):
            nsupp += xw[a] != 0.0
        nv = 0
        for i in range(n):  # branch-free compaction of the violators outside W (measured 10% of the time)
            e = abs(g[i]) - lam
            cand[nv] = i
            score[nv] = e
            nv += (e > 0.0) & (not inW[i])
        add = min(nv, max(ws_size, nsupp // 2), n - k)
        k_old = k
        if add == nv:
            for a in range(nv):
                W[k + a] = cand[a]
        else:  # the add largest scores: threshold by selection, ties by index order
            for a in range(nv):
                sbuf[a] = score[a]
            thr = _kth_largest(sbuf, nv, add)
            taken = 0
            for a in range(nv):
                if score[a] > thr:
                    W[k + taken] = cand[a]
                    taken += 1
            for a in range(nv):
                if taken < add and score[a] == thr:
                    W[k + taken] = cand[a]
                    taken += 1
        k += add
        for a in range(k_old, k):
            inW[W[a]] = True
        if k > cap:
            new_cap = min(n, max(k, 2 * cap, 16))
            Gn = np.empty((new_cap, new_cap), dtype=G.dtype)
            for a in range(k_old):
                for b in range(k_old):
                    Gn[a, b] = Gw[a, b]
            Gw = Gn
            U = np.empty((new_cap, new_cap), dtype=G.dtype)
            cap = new_cap
        for a in range(k_old, k):
            ja = W[a]
            for b in range(k):
                Gw[a, b] = G[ja, W[b]]
            for b in range(k_old):
                Gw[b, a] = Gw[a, b]
        for a in range(k_old, k):
            dd = Gw[a, a]
            dinv[a] = 1.0 / dd if dd > 0.0 else 0.0  # a zero column: g_a = 0, so x_a stays 0
        for a in range(k):
            ja = W[a]
            cw[a] = c[ja]
            xw[a] = x[ja]
            gw[a] = g[ja]
        # 2.-3. coordinate descent on W to tol_cd; with the polish, tighten tol_cd and polish again
        # until W is solved to tol / 2 (a polish that is kept is exact to rounding on its signs)
        tol_cd = max(inner_frac * viol, 0.5 * tol)
        if add == 0:  # nothing outside W violates eq. kkt: W is complete, solve it to the end
            tol_cd = 0.5 * tol
        ep = 0
        pol = False
        while ep < max_epochs:
            ep += 1
            for a in range(k):
                di = dinv[a]
                old = xw[a]
                z = old + gw[a] * di
                t = lam * di
                if z > t:
                    new = z - t
                elif z < -t:
                    new = z + t
                else:
                    new = 0.0
                if new != old:
                    xw[a] = new
                    delta = new - old
                    for b in range(k):
                        gw[b] -= Gw[a, b] * delta
            vw = _violation(xw, gw, k, lam)
            if vw < tol_cd:
                if polish < 2 or vw < 0.5 * tol:
                    break
                if _polish(Gw, cw, xw, gw, k, lam, pivot_tol, S, U, xs, gs, xt):
                    pol = True
                    vw = _violation(xw, gw, k, lam)
                if vw < 0.5 * tol:
                    break
                tol_cd = max(0.1 * min(tol_cd, vw), 0.5 * tol)
            elif polish >= 1 and ep % STALL_EPOCHS == 0:
                # slow CD (coherent columns): jump to the solution of the current sign pattern
                if _polish(Gw, cw, xw, gw, k, lam, pivot_tol, S, U, xs, gs, xt):
                    pol = True
                    if _violation(xw, gw, k, lam) < tol_cd:
                        break
        # 4. full check, gradient from scratch
        for i in range(n):
            x[i] = 0.0
            g[i] = c[i]
        for a in range(k):
            v = xw[a]
            if v != 0.0:
                ja = W[a]
                x[ja] = v
                for i in range(n):
                    g[i] -= G[ja, i] * v
        viol = _violation(x, g, n, lam)
        obj = yy
        for i in range(n):
            obj += -0.5 * (c[i] + g[i]) * x[i] + lam * abs(x[i])
        hist_obj[outer] = obj
        hist_crit[outer] = viol
        hist_ws[outer] = k
        hist_ep[outer] = ep
        hist_pol[outer] = pol
        outer += 1
        if viol < tol:
            break
    for a in range(k):  # leave the scratch as found
        inW[W[a]] = False
        xw[a] = 0.0
    return outer, viol, Gw, U


@njit(parallel=True, cache=True, fastmath=False, nogil=True)
def lasso_cd_batch(G, C, yy, lam, tol, max_outer, ws_size, max_epochs, inner_frac, polish, pivot_tol, n_chunks,
                   X, n_iter, viol, hist_obj, hist_crit, hist_ws, hist_ep, hist_pol):
    """Solve every row of ``C`` (``(B, n)``, :math:`c_b = A^Ty_b`) with the Gram ``G`` ``(n, n)``; outputs in place.

    ``X`` ``(B, n)`` must be zeros; ``n_iter`` ``(B,)`` int64 and ``viol`` ``(B,)`` float64 receive
    the outer iterations and the final violations; ``hist_*`` ``(B, max_outer)`` the per-outer
    records of :func:`_solve_one` (entries past ``n_iter[b]`` are left as they were).
    """
    B, n = C.shape
    n_chunks = max(1, min(B, n_chunks))
    for t in prange(n_chunks):
        # scratch allocated once per chunk of problems (a chunk runs on one thread)
        Gw = np.empty((0, 0), dtype=G.dtype)
        U = np.empty((0, 0), dtype=G.dtype)
        W = np.empty(n, dtype=np.int64)
        inW = np.zeros(n, dtype=np.bool_)
        cand = np.empty(n, dtype=np.int64)
        score = np.empty(n)
        cw = np.empty(n, dtype=C.dtype)
        xw = np.zeros(n, dtype=C.dtype)
        gw = np.empty(n, dtype=C.dtype)
        S = np.empty(n, dtype=np.int64)
        xs = np.empty(n, dtype=C.dtype)
        gs = np.empty(n, dtype=C.dtype)
        xt = np.empty(n, dtype=C.dtype)
        g = np.empty(n, dtype=C.dtype)
        sbuf = np.empty(n)
        dinv = np.zeros(n)
        for b in range(t * B // n_chunks, (t + 1) * B // n_chunks):
            it, v, Gw, U = _solve_one(G, C[b], yy[b], lam, tol, max_outer, ws_size, max_epochs, inner_frac, polish,
                                      pivot_tol, X[b], hist_obj[b], hist_crit[b], hist_ws[b], hist_ep[b], hist_pol[b],
                                      Gw, U, W, inW, cand, score, cw, xw, gw, S, xs, gs, g, xt, sbuf, dinv)
            n_iter[b] = it
            viol[b] = v
