"""Batched (accelerated) proximal gradient for ``0.5 ||y - A x||^2 + penalty(x)``.

The engine behind the sparse-coding solvers (ISTA, FISTA, IHT), usable by any
family whose data fit is a linear least-squares term with one dictionary
shared by the whole batch. Each problem stops on its own criterion and is
frozen at the iterate that met it.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

#: Maps (x_new, grad_new, x_old) -> per-problem stopping criterion, shape (B,).
Criterion = Callable[[Tensor, Tensor, Tensor], Tensor]


def proximal_gradient(
    y: Tensor,
    A: Tensor,
    x0: Tensor,
    *,
    prox: Callable[[Tensor], Tensor],
    criterion: Criterion,
    penalty: Callable[[Tensor], Tensor],
    step: float,
    max_iter: int,
    tol: float,
    momentum: bool,
    callback: Callable[[int, Tensor], None] | None = None,
) -> tuple[Tensor, Tensor, Tensor, dict]:
    """Batched (accelerated) proximal gradient with per-problem freezing.

    Parameters
    ----------
    y : Tensor
        ``(B, m)`` measurements.
    A : Tensor
        ``(m, n)`` dictionary.
    x0 : Tensor
        ``(B, n)`` starting point (owned: may be modified).
    prox : callable
        ``v -> prox(v)`` applied to the gradient step ``z - step * grad(z)``.
    criterion : callable
        ``(x_new, grad_new, x_old) -> (B,)`` stopping criterion; a problem
        converges at the first iteration where it is ``< tol``.
    penalty : callable
        ``x -> (B,)`` regulariser value, added to the data fit in the
        ``'objective'`` history.
    step, max_iter, tol : float, int, float
        Step size, iteration cap and tolerance.
    momentum : bool
        Use Beck–Teboulle (FISTA) extrapolation.
    callback : callable, optional
        ``callback(k, x)`` after iteration ``k`` with the ``(B, n)`` iterate of
        the whole batch (converged problems at their frozen value).

    Returns
    -------
    x, n_iter, converged, history
    """
    B = y.shape[0]
    device = y.device
    x_out = x0.clone()
    n_iter = torch.full((B,), max_iter, dtype=torch.int64, device=device)
    converged = torch.zeros(B, dtype=torch.bool, device=device)
    history: dict[str, list[float]] = {"objective": [], "criterion": []}
    if B == 0:
        n_iter.zero_()
        return x_out, n_iter, converged, history

    obj_all = torch.empty(B, dtype=y.dtype, device=device)
    crit_all = torch.empty(B, dtype=y.dtype, device=device)
    # Working set: rows still being iterated. ``orig`` maps them to the batch;
    # ``live`` marks those not yet converged. Converged rows are recorded at
    # once, and dropped from the working set in bulk (when they are at least
    # 1/8 of it), so the tensors are not copied at every iteration.
    orig = torch.arange(B, device=device)
    live = torch.ones(B, dtype=torch.bool, device=device)
    n_live = B

    At = A.T.contiguous()  # plain (non-transposed) GEMMs in the loop
    x = x0
    g = torch.addmm(y, x, At, beta=-1) @ A  # gradient of the data fit at x
    x_prev, g_prev = x, g
    t, beta = 1.0, 0.0

    for it in range(1, max_iter + 1):
        if momentum and beta != 0.0:
            # z = x + beta (x - x_prev); the gradient is affine, so grad(z) is the
            # same combination of the gradients at x and x_prev (no extra product).
            z = torch.lerp(x_prev, x, 1.0 + beta)
            gz = torch.lerp(g_prev, g, 1.0 + beta)
        else:
            z, gz = x, g
        x_new = prox(torch.add(z, gz, alpha=-step))
        r_new = torch.addmm(y, x_new, At, beta=-1)  # A x_new - y
        g_new = r_new @ A

        if callback is not None:
            if orig.numel() == B:
                callback(it, x_new)
            else:
                full = x_out.clone()
                full[orig] = x_new
                callback(it, full)
        crit = criterion(x_new, g_new, x)
        obj = 0.5 * torch.linalg.vecdot(r_new, r_new) + penalty(x_new)
        if n_live == live.numel():
            obj_all[orig] = obj
            crit_all[orig] = crit
            done = crit < tol
        else:
            obj_all[orig] = torch.where(live, obj, obj_all[orig])
            crit_all[orig] = torch.where(live, crit, crit_all[orig])
            done = (crit < tol) & live
        stats = torch.stack([obj_all.mean(), crit_all.max(), done.sum().to(y.dtype)]).tolist()
        history["objective"].append(stats[0])
        history["criterion"].append(stats[1])

        if momentum:
            t_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
            beta = (t - 1.0) / t_next
            t = t_next
        x_prev, g_prev, x, g = x, g, x_new, g_new

        n_done = int(stats[2])
        if n_done:
            finished = orig[done]
            x_out[finished] = x[done]
            n_iter[finished] = it
            converged[finished] = True
            n_live -= n_done
            if n_live == 0:
                break
            live = live & ~done
            if 8 * (live.numel() - n_live) >= live.numel():
                orig, x, g, y = orig[live], x[live], g[live], y[live]
                x_prev, g_prev = x_prev[live], g_prev[live]
                live = live[live]

    if n_live > 0:
        x_out[orig[live]] = x[live]
    return x_out, n_iter, converged, history
