"""Batched :func:`~unrolled.sbl.solvers.sbl` against a loop of scikit-learn's ``ARDRegression``, in one run.

The same Bayesian model on both sides: ``y = Phi x + w``, ``w ~ N(0, lam I)`` with the noise variance ``lam``
*known*, ``x_i ~ N(0, gamma_i)``, evidence maximisation over ``gamma`` (type II). ``ARDRegression`` learns the
noise precision ``alpha``; with its Gamma hyperprior ``alpha_1 = K / lam``, ``alpha_2 = K`` (``K = 1e12``) the
update ``alpha = (N / 2 + alpha_1) / (rss / 2 + alpha_2)`` stays at ``1 / lam``, and ``lambda_1 = lambda_2 =
1e-12`` make its weight-precision update the plain MacKay update (ours: ``update='mackay'``). Its default
pruning (``threshold_lambda = 1e4``) is matched by ours with ``prune=1e-4`` (the same rule: an atom whose
``gamma = 1/lambda`` falls below ``1e-4`` leaves the model for good), and no pruning (``threshold_lambda = 1e12``)
by ours without; its
``tol`` is on the l1 change of the coefficients, ours on the relative change of ``gamma``, so both are reported
with the solutions' agreement: ``max ||x - x_ard|| / ||x_ard||`` over problems (and the support accuracy against
the true codes). Times are ``time.perf_counter`` side by side in one process; the torch thread count and the
load are printed with the table (the sklearn loop is single-threaded NumPy/LAPACK on small matrices).

Examples
--------
::

    unrolled benchmark sbl-vs-ard             # B = 40 and B = 1000 problems, 25 x 60, d = 4
    unrolled benchmark sbl-vs-ard --quick     # B = 40 and 100
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch

from unrolled.experiments.bench_cli import machine_info, ratio_row, sync, write_benchmark
from unrolled.experiments.report import markdown_table as report_table
from unrolled.sbl.data import CorrelatedSparseProblem
from unrolled.sbl.solvers import sbl

K_PRIOR = 1e12


def _ard_loop(Phi: np.ndarray, Y: np.ndarray, lam: float, threshold: float, tol: float, max_iter: int):
    from sklearn.linear_model import ARDRegression

    X = np.empty((Y.shape[0], Phi.shape[1]))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in range(Y.shape[0]):
            model = ARDRegression(fit_intercept=False, alpha_1=K_PRIOR / lam, alpha_2=K_PRIOR, lambda_1=1e-12,
                                  lambda_2=1e-12, threshold_lambda=threshold, tol=tol, max_iter=max_iter)
            X[b] = model.fit(Phi, Y[b]).coef_
    return X, time.perf_counter() - t0


def _agreement(X: np.ndarray, X_ref: np.ndarray) -> tuple[float, float]:
    """Median and max over problems of ``||x - x_ref|| / ||x_ref||`` (evidence maximisation is non-convex: a
    few problems may end in different local optima)."""
    rel = np.linalg.norm(X - X_ref, axis=1) / np.maximum(np.linalg.norm(X_ref, axis=1), 1e-300)
    return float(np.median(rel)), float(rel.max())


def _support_accuracy(X: np.ndarray, X_true: np.ndarray, d: int) -> float:
    """Fraction of problems whose ``d`` largest |x| are exactly the true support (the paper's strict accuracy)."""
    top = np.argsort(-np.abs(X), axis=1)[:, :d]
    true = np.argsort(-np.abs(X_true), axis=1)[:, :d]
    return float(np.mean([set(a) == set(b) for a, b in zip(top, true)]))


def measure(batches=(40, 1000), *, n: int = 25, m: int = 60, d: int = 4, noise_std: float = 1e-2, seed: int = 0,
            device: str = "cpu", tol: float = 1e-6, ard_tol: float = 1e-6, max_iter: int = 5000,
            prune: float = 1e-4, em_max_batch: int = 100) -> dict:
    """Run both solvers at each batch size; returns the rows and the ratio rows of ``benchmark all``.

    ``sbl`` runs with its default ``method='auto'`` (the numba kernel for these float64 CPU problems); the batched
    torch path (``method='torch'``) is timed too, for the table's "sbl torch path s" column. Two matched pairs per
    batch size: ``sbl(update='mackay', prune=prune)`` against ``ARDRegression`` with its
    default pruning ``threshold_lambda = 1e4 = 1 / prune`` (the same model *and* the same pruning rule: an atom
    leaves once its ``gamma < 1e-4``), and ``sbl(update='mackay')`` without pruning against ``threshold_lambda =
    1e12``. The EM update (slower, monotone) is timed for the strict support accuracy only, at batch sizes up to
    ``em_max_batch`` (at B = 1000 it took 49 s, 639 iterations on average).

    The dictionary is Gaussian (``correlated=False``): with Sec. 4.1's correlated one both solvers need a far
    smaller ``lam`` than the noise variance to recover anything, which is a modelling question, not a speed one.
    """
    prob = CorrelatedSparseProblem(n=n, m=m, d=d, noise_std=noise_std, correlated=False, seed=seed, device=device)
    lam = noise_std**2
    Phi_np = prob.Phi.cpu().numpy()
    rows, ratios = [], []
    warm = prob.sample(2, torch.Generator().manual_seed(seed))[0]
    how = "numba" if prob.Phi.device.type == "cpu" and prob.Phi.dtype == torch.float64 else "torch"  # sbl's 'auto'
    for pr in (None, prune):  # also loads (or compiles, in a fresh environment) the numba kernel
        for method in ("auto", "torch"):
            sbl(warm, prob.Phi, lam, update="mackay", max_iter=3, tol=0.0, prune=pr, method=method)
    threshold = 1.0 / prune
    for B in batches:
        y, x_true = prob.sample(B, torch.Generator().manual_seed(seed + B))
        Y, X_true = y.cpu().numpy(), x_true.cpu().numpy()
        res = {}
        runs = [("pruned", "mackay", prune), ("unpruned", "mackay", None)]
        if B <= em_max_batch:
            runs.append(("em", "em", None))
        for key, update, pr in runs:
            sync(device)
            t0 = time.perf_counter()
            r = sbl(y, prob.Phi, lam, update=update, max_iter=max_iter, tol=tol, prune=pr)
            sync(device)
            res[key] = (r.x.cpu().numpy(), time.perf_counter() - t0, float(r.n_iter.double().mean()),
                        int(r.converged.sum()))
        torch_s = {}
        if how == "numba":  # the batched torch path on the same problems, for its own row of the table
            for key, update, pr in runs[:2]:
                t0 = time.perf_counter()
                sbl(y, prob.Phi, lam, update=update, max_iter=max_iter, tol=tol, prune=pr, method="torch")
                torch_s[key] = time.perf_counter() - t0
        pairs = ((f"ARDRegression, default pruning (threshold_lambda {threshold:.0e})", threshold, "pruned",
                  f"sbl (MacKay, prune {prune:.0e}, {how})"),
                 ("ARDRegression, no pruning (threshold_lambda 1e12)", 1e12, "unpruned",
                  f"sbl (MacKay, no pruning, {how})"))
        for label, thr, key, ours in pairs:
            X_ard, t_ard = _ard_loop(Phi_np, Y, lam, thr, tol=ard_tol, max_iter=max_iter)
            x_o, t_o, it_o, conv_o = res[key]
            row = {"B": B, "ours": ours, "reference": label, "reference_s": t_ard, "ours_s": t_o, "ratio": t_ard / t_o,
                   "ours_iter": it_o, "ours_converged": conv_o, "agreement": _agreement(x_o, X_ard),
                   "ard_tol": ard_tol, "acc_ours": _support_accuracy(x_o, X_true, d),
                   "acc_ref": _support_accuracy(X_ard, X_true, d),
                   "acc_em": _support_accuracy(res["em"][0], X_true, d) if "em" in res else None,
                   "em_s": res["em"][1] if "em" in res else None, "torch_s": torch_s.get(key)}
            rows.append(row)
            ratios.append(ratio_row(f"SBL {B} problems {n}x{m}, d={d} ({'pruned' if key == 'pruned' else 'no pruning'})",
                                    ours, label + " loop", t_o, t_ard,
                                    f"rel. diff of x median {row['agreement'][0]:.1e}, max {row['agreement'][1]:.1e}"))
    return {"config": {"batches": list(batches), "n": n, "m": m, "d": d, "noise_std": noise_std, "lam": lam,
                       "tol": tol, "ard_tol": ard_tol, "max_iter": max_iter, "prune": prune,
                       "em_max_batch": em_max_batch, "seed": seed, "device": device},
            "rows": rows, "ratios": ratios, "machine": machine_info(device)}


def _opt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def markdown_table(r: dict) -> str:
    """The benchmark's table (:func:`unrolled.experiments.report.markdown_table`) under its settings line."""
    c, mach = r["config"], r["machine"]
    head = (f"SBL {c['n']}x{c['m']}, d={c['d']}, noise std {c['noise_std']} (lam = {c['lam']:.1e} known), tol "
            f"{c['tol']} on the relative change of gamma (ARDRegression tol {c['ard_tol']}, on the l1 change of the "
            f"coefficients); {mach['summary']}")
    header = ["B", "ours", "reference", "reference s", "ours s", "reference / ours", "sbl torch path s", "mean iter",
              "rel. diff x median / max", "strict acc ours / ref / EM", "sbl (EM) s"]
    body = [[w["B"], w["ours"], w["reference"], f"{w['reference_s']:.3f}", f"{w['ours_s']:.3f}", f"{w['ratio']:.1f}x",
             _opt(w.get("torch_s")), f"{w['ours_iter']:.0f}", f"{w['agreement'][0]:.1e} / {w['agreement'][1]:.1e}",
             f"{w['acc_ours']:.3f} / {w['acc_ref']:.3f} / {_opt(w['acc_em'])}", _opt(w["em_s"])] for w in r["rows"]]
    return head + "\n\n" + report_table(header, body)


def run(out_dir="unrolled-bench", quick: bool = False, seed: int = 0, device: str = "cpu") -> dict:
    """Entry point of ``unrolled benchmark sbl-vs-ard`` (``quick``: B = 40 and 100)."""
    result = measure((40, 100) if quick else (40, 1000), seed=seed, device=device)
    return write_benchmark(out_dir, "sbl_vs_ard", result, markdown_table(result))
