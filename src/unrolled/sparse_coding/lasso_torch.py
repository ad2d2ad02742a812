r"""The batched torch path of :func:`~unrolled.sparse_coding.lasso.lasso` (``method='torch'``, any device).

Steps 1-4 of "Algorithm of ``method='torch'``" in :mod:`unrolled.sparse_coding.lasso`: working sets
grown per problem, a restarted FISTA on the gathered blocks :math:`G_{WW}` ``(B, k, k)``, the
sign-pattern polish by a batched Cholesky factorisation, and the full KKT check as one
``(B, n) @ (n, n)`` product; problems below ``tol`` leave the batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from unrolled.core.result import SolverResult
from unrolled.sparse_coding.solvers import lasso_kkt_violation


def _soft(z: Tensor, t) -> Tensor:
    return torch.sign(z) * torch.clamp(z.abs() - t, min=0)


def _gather_block(Gflat: Tensor, n: int, W: Tensor) -> Tensor:
    """``G[W_b][:, W_b]`` for every row of ``W`` ``(B, k)``: ``(B, k, k)`` (one flat index_select)."""
    B, k = W.shape
    flat = (W.unsqueeze(2) * n + W.unsqueeze(1)).reshape(-1)
    return Gflat.index_select(0, flat).reshape(B, k, k)


def _bmv(M: Tensor, v: Tensor) -> Tensor:
    """Row-wise ``M_b @ v_b`` for ``M`` ``(B, k, k)`` symmetric and ``v`` ``(B, k)``."""
    return torch.bmm(M, v.unsqueeze(2)).squeeze(2)


def _spectral_bound(Gw: Tensor) -> Tensor:
    r"""Per-problem upper bound :math:`L_W \ge \|G_{WW}\|_2`: the step :math:`1/L_W` is safe for FISTA.

    With momentum, FISTA needs a step of at most :math:`1/\|G_{WW}\|_2` (plain proximal gradient
    tolerates up to :math:`2/\|G\|_2`). Power iteration gives lower bounds only, far off on
    coherent dictionaries (clustered top eigenvalues; a margin of 1.15 let FISTA diverge to
    ``|x| ~ 1e163`` on 20 x 100 correlated dictionaries), so the bound is
    :math:`\min(\|G_{WW}\|_\infty, \|G_{WW}\|_F)`, both valid for any symmetric matrix.
    """
    inf_norm = Gw.abs().sum(2).amax(1)
    fro = torch.linalg.matrix_norm(Gw)
    return torch.minimum(inf_norm, fro).clamp_min(torch.finfo(Gw.dtype).tiny)


def _restricted_fista(Gw: Tensor, cw: Tensor, xw: Tensor, lam: float, L: Tensor, inner_tol: Tensor,
                      max_iter: int, check_every: int) -> tuple[Tensor, Tensor, int]:
    r"""Batched FISTA with adaptive restart on :math:`\min_x \tfrac12 x^TG_{WW}x - c_W^Tx + \lambda\|x\|_1`.

    Returns the iterate, the negative gradient :math:`c_W - G_{WW}x` there, and the iterations
    run. Stops when every problem's restricted violation of :eq:`kkt` is below its
    ``inner_tol`` (checked every ``check_every`` iterations); problems below it are frozen
    meanwhile. One batched product per iteration: the gradient at the extrapolated point is the
    same combination of the gradients at the last two iterates.
    """
    step = (1.0 / L).unsqueeze(1)
    thr = lam * step
    x = xw
    gx = cw - _bmv(Gw, x)
    z, gz = x, gx
    t = torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)
    active = (lasso_kkt_violation(x, gx, lam) >= inner_tol).unsqueeze(1)
    it = 0
    while it < max_iter and bool(active.any()):
        it += 1
        x_new = torch.where(active, _soft(z + step * gz, thr), x)
        g_new = cw - _bmv(Gw, x_new)
        # adaptive restart: momentum is dropped where it points uphill, (z - x_new)'(x_new - x) > 0
        restart = ((z - x_new) * (x_new - x)).sum(1, keepdim=True) > 0
        t_new = torch.where(restart, torch.ones_like(t), 0.5 * (1 + torch.sqrt(1 + 4 * t * t)))
        beta = torch.where(restart, torch.zeros_like(t), (t - 1) / t_new)
        z = x_new + beta * (x_new - x)
        gz = g_new + beta * (g_new - gx)
        x, gx, t = x_new, g_new, t_new
        if it % check_every == 0:
            active = (lasso_kkt_violation(x, gx, lam) >= inner_tol).unsqueeze(1)
    return x, gx, it


def _polish(Gw: Tensor, cw: Tensor, xw: Tensor, gw: Tensor, lam: float) -> tuple[Tensor, Tensor, Tensor]:
    r"""Exact solve on the sign pattern of ``xw``: :math:`G_{SS}x_S = c_S - \lambda s` (step 3).

    Returns ``(x, g, accepted)``: the polished iterate and negative gradient where accepted
    (factorisation succeeded, signs kept, restricted violation not larger), else the inputs.
    """
    k = xw.shape[1]
    supp = xw != 0
    s = torch.sign(xw)
    both = supp.unsqueeze(2) & supp.unsqueeze(1)
    eye = torch.eye(k, dtype=Gw.dtype, device=Gw.device).expand_as(Gw)
    M = torch.where(both, Gw, eye)
    rhs = torch.where(supp, cw - lam * s, torch.zeros_like(cw))
    chol, info = torch.linalg.cholesky_ex(M)
    xs = torch.cholesky_solve(rhs.unsqueeze(2), chol).squeeze(2)
    xs = torch.where(supp, xs, torch.zeros_like(xs))
    gs = cw - _bmv(Gw, xs)
    ok = (info == 0) & torch.isfinite(xs).all(1) & ((torch.sign(xs) == s) | ~supp).all(1)
    ok &= lasso_kkt_violation(xs, gs, lam) <= lasso_kkt_violation(xw, gw, lam)
    okc = ok.unsqueeze(1)
    return torch.where(okc, xs, xw), torch.where(okc, gs, gw), ok


def lasso_torch(y: Tensor, A: Tensor, lam: float, max_iter: int, tol: float, ws_size: int, inner_max_iter: int,
                check_every: int, polish: bool, bucket: int) -> SolverResult:
    """Batched working-set solve of ``(B, m)`` measurements ``y`` with dictionary ``A``; arguments as in ``lasso``.

    The caller validates the arguments and runs this under :func:`torch.no_grad`.
    """
    B, n = y.shape[0], A.shape[1]
    dev, dt = y.device, y.dtype
    c = y @ A                       # (B, n)  A^T y
    G = A.T @ A                     # (n, n)
    Gflat = G.reshape(-1)
    yy = 0.5 * (y * y).sum(1)

    x = torch.zeros(B, n, dtype=dt, device=dev)
    g = c.clone()
    viol = lasso_kkt_violation(x, g, lam)
    n_iter = torch.zeros(B, dtype=torch.int64, device=dev)
    history: dict[str, list] = {"objective": [], "criterion": [], "ws_size": [], "inner_iter": [], "polished": []}

    def objective(xr, gr, rows):
        # F = 0.5||y||^2 - c'x + 0.5 x'Gx = 0.5||y||^2 - 0.5 (c + g)'x  (g = c - Gx), plus lam|x|_1
        return yy[rows] - 0.5 * ((c[rows] + gr) * xr).sum(1) + lam * xr.abs().sum(1)

    live = (viol >= tol).nonzero().squeeze(1)
    for outer in range(1, max_iter + 1):
        if live.numel() == 0:
            break
        gl = g[live]
        supp = x[live] != 0
        n_supp = supp.sum(1)
        n_viol = ((gl.abs() > lam) & ~supp).sum(1)
        # k_b = |S| + min(#violators, max(|S|, k_0)), rounded up to a multiple of `bucket`
        need = n_supp + torch.minimum(n_viol, torch.clamp(n_supp, min=ws_size)).clamp_min(1)
        need = torch.clamp((need + bucket - 1) // bucket * bucket, max=n)
        sizes = torch.unique(need).tolist()   # one host sync per outer iteration
        n_inner, n_pol = 0, 0
        for kb in sizes:
            rows = live[need == kb]
            xl, gl = x[rows], g[rows]
            score = torch.where(xl != 0, torch.full_like(gl, float("inf")), gl.abs() - lam)
            W = score.topk(kb, dim=1).indices
            Gw = _gather_block(Gflat, n, W)
            cw = c[rows].gather(1, W)
            xw = xl.gather(1, W)
            Lw = _spectral_bound(Gw)
            inner_tol = torch.clamp(0.1 * viol[rows], min=tol)
            xw, gw, it = _restricted_fista(Gw, cw, xw, lam, Lw, inner_tol, inner_max_iter, check_every)
            n_inner = max(n_inner, it)
            if polish:
                xw, gw, ok = _polish(Gw, cw, xw, gw, lam)
                n_pol = n_pol + ok.sum()
            x[rows] = torch.zeros_like(xl).scatter_(1, W, xw)
        xl = x[live]
        gl = c[live] - xl @ G
        vl = lasso_kkt_violation(xl, gl, lam)
        g[live], viol[live] = gl, vl
        n_iter[live] = outer
        obj = objective(x, g, slice(None))
        stats = torch.stack([obj.mean(), viol.max(), torch.as_tensor(n_pol, dtype=dt, device=dev)]).tolist()
        if stats[1] != stats[1]:
            raise FloatingPointError("lasso diverged: non-finite KKT violation (data of a dtype too narrow for it?)")
        history["objective"].append(stats[0])
        history["criterion"].append(stats[1])
        history["ws_size"].append(max(sizes))
        history["inner_iter"].append(n_inner)
        history["polished"].append(int(stats[2]))
        live = live[vl >= tol]
    converged = viol < tol
    return SolverResult(x=x, n_iter=n_iter, converged=converged, history=history)
