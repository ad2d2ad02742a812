"""PALM's regularisation parameter chosen on training data (LPALM paper, Sec. 3.1.2)."""

from __future__ import annotations

import statistics
import time

import torch

from unrolled.core.validation import check_positive
from unrolled.separation.data import SeparationData
from unrolled.separation.metrics import separation_nmse
from unrolled.separation.solvers import palm, pinv_init


def random_training_start(data: SeparationData, pool: SeparationData, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Sec. 3.1.1 start: ``A0`` a random mixing matrix of ``pool`` (the training set) per mixture, ``S0 = A0^+ X``."""
    g = torch.Generator().manual_seed(int(seed))
    idx = torch.randint(len(pool), (len(data),), generator=g)
    A0 = pool.A[idx].to(dtype=data.X.dtype, device=data.X.device)
    return A0, pinv_init(data.X, A0)


def palm_lambda_grid(data: SeparationData, lambdas, A0: torch.Tensor, S0: torch.Tensor, *, max_iter: int = 10000,
                     tol: float = 1e-7) -> tuple[float, list[dict]]:
    """Run PALM for every ``lambda`` and pick the one with the lowest median NMSE(S) (after correction).

    Returns
    -------
    (float, list of dict)
        The best lambda and, per lambda, ``lam``, ``median_nmse_s``,
        ``median_nmse_a``, ``median_iter``, ``converged`` (fraction) and ``seconds``.
    """
    lambdas = [check_positive("lambda", v) for v in lambdas]
    if not lambdas:
        raise ValueError("give at least one lambda")
    grid = []
    for lam in lambdas:
        t0 = time.perf_counter()
        res = palm(data.X, A0, S0, lam, max_iter=max_iter, tol=tol)
        seconds = time.perf_counter() - t0
        err = separation_nmse(res.A, res.S, data.A, data.S)
        grid.append({"lam": lam, "median_nmse_s": statistics.median(err["S"].tolist()),
                     "median_nmse_a": statistics.median(err["A"].tolist()),
                     "median_iter": statistics.median(res.n_iter.double().tolist()),
                     "converged": float(res.converged.double().mean()), "seconds": seconds})
    best = min(grid, key=lambda g: g["median_nmse_s"])["lam"]
    return best, grid
