"""Batched FISTA against a loop of scikit-learn ``Lasso`` fits, at matched accuracy.

Draws ``--n-problems`` noisy sparse-coding problems that share one dictionary
(:class:`unrolled.sparse_coding.data.SparseCodingProblem`, SNR 40 dB), solves
all of them at once with :func:`unrolled.sparse_coding.solvers.fista`, and one
by one with ``sklearn.linear_model.Lasso(alpha=lam/m, fit_intercept=False)``
(whose objective is ours divided by ``m``), in the same run.

Speed alone says little if one solver stops earlier, so both results are
scored on the same objective ``F(x) = 0.5||y - Ax||^2 + lam||x||_1`` (float64)
against the best of the two per problem, ``F* = min(F_fista, F_sklearn)``:
the table reports the mean and max relative gap ``(F - F*) / F*`` next to the
wall-clock times (``time.perf_counter``; thread settings left unchanged).

Examples
--------
::

    unrolled benchmark fista-vs-sklearn                              # 1000 problems, 250 x 500
    python benchmarks/bench_fista_vs_sklearn.py --n-problems 100 --out bench.json
    python benchmarks/bench_fista_vs_sklearn.py --device cuda
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
import torch

from unrolled.sparse_coding.data import SparseCodingProblem
from unrolled.sparse_coding.solvers import fista
from unrolled.experiments.bench_cli import add_problem_arguments, bench_main, bench_run, lasso_objective, sync


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_problem_arguments(ap)
    ap.add_argument("--tol", type=float, default=1e-6, help="FISTA tolerance on the normalised KKT violation")
    ap.add_argument("--max-iter", type=int, default=20_000, help="FISTA iteration cap")
    ap.add_argument("--sklearn-tol", type=float, default=1e-6, help="sklearn Lasso tol (duality-gap based)")
    ap.add_argument("--sklearn-max-iter", type=int, default=100_000, help="sklearn Lasso max_iter")
    ap.add_argument("--device", default="cpu", help="device of the batched FISTA run: cpu or cuda")
    ap.add_argument("--out", default=None, help="optional path of a JSON file with the results")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("--device cuda requested but CUDA is not available")
    return args


def measure(args: argparse.Namespace) -> dict:
    """Run both solvers and return the measurements."""
    prob = SparseCodingProblem(m=args.m, n=args.n, p=args.p, snr_db=args.snr, seed=args.seed, device=args.device)
    y, _ = prob.sample(args.n_problems, torch.Generator().manual_seed(args.seed + 1))
    A = prob.A

    # Warm-up (CUDA context, kernels, allocator) outside the timed region.
    fista(y[:2], A, args.lam, max_iter=5, tol=0.0)
    sync(args.device)

    t0 = time.perf_counter()
    res = fista(y, A, args.lam, tol=args.tol, max_iter=args.max_iter)
    sync(args.device)
    t_fista = time.perf_counter() - t0

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import Lasso

    A_np = np.asfortranarray(A.cpu().numpy())
    Y_np = y.cpu().numpy()
    X_sk = np.empty((args.n_problems, args.n))
    sk_iters = np.empty(args.n_problems, dtype=np.int64)
    n_warn = 0
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        for b in range(args.n_problems):
            model = Lasso(
                alpha=args.lam / args.m,
                fit_intercept=False,
                warm_start=False,
                tol=args.sklearn_tol,
                max_iter=args.sklearn_max_iter,
            )
            model.fit(A_np, Y_np[b])
            X_sk[b] = model.coef_
            sk_iters[b] = model.n_iter_
    t_sklearn = time.perf_counter() - t0
    n_warn = sum(issubclass(w.category, ConvergenceWarning) for w in caught)

    X_fi = res.x.cpu().numpy()
    A64 = A.cpu().numpy()
    F_fi = lasso_objective(Y_np, A64, X_fi, args.lam)
    F_sk = lasso_objective(Y_np, A64, X_sk, args.lam)
    F_best = np.minimum(F_fi, F_sk)
    gap_fi = (F_fi - F_best) / F_best
    gap_sk = (F_sk - F_best) / F_best

    return {
        "config": {k: v for k, v in vars(args).items() if k != "out"},
        "problem": prob.config(),
        "fista": {
            "seconds": t_fista,
            "mean_rel_gap": float(gap_fi.mean()),
            "max_rel_gap": float(gap_fi.max()),
            "mean_iter": float(res.n_iter.double().mean()),
            "max_iter_used": int(res.n_iter.max()),
            "converged": int(res.converged.sum()),
        },
        "sklearn": {
            "seconds": t_sklearn,
            "mean_rel_gap": float(gap_sk.mean()),
            "max_rel_gap": float(gap_sk.max()),
            "mean_iter": float(sk_iters.mean()),
            "max_iter_used": int(sk_iters.max()),
            "convergence_warnings": int(n_warn),
        },
        "speedup_sklearn_over_fista": t_sklearn / t_fista,
        "machine": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "load_avg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "platform": platform.platform(),
            "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        },
    }


def markdown_table(r: dict) -> str:
    """The results as a small Markdown table."""
    c = r["config"]
    lines = [
        f"{c['n_problems']} problems, A {c['m']}x{c['n']}, p={c['p']}, SNR {c['snr']} dB, lam={c['lam']}; "
        f"FISTA tol={c['tol']} (KKT) on {r['machine']['device']}, sklearn tol={c['sklearn_tol']}",
        "",
        "| solver | wall s | mean (F-F*)/F* | max (F-F*)/F* | mean iter |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label in (("fista", "unrolled fista (batched)"), ("sklearn", "sklearn Lasso (loop)")):
        s = r[key]
        lines.append(
            f"| {label} | {s['seconds']:.2f} | {s['mean_rel_gap']:.2e} | {s['max_rel_gap']:.2e} | {s['mean_iter']:.0f} |"
        )
    lines += ["", f"sklearn_time / fista_time = **{r['speedup_sklearn_over_fista']:.1f}x**"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    """Entry point: run, print the table, optionally write JSON."""
    return bench_main(parse_args, measure, markdown_table, argv)


def run(out_dir="unrolled-bench", quick: bool = False, seed: int = 0, device: str = "cpu") -> dict:
    """Entry point of ``unrolled benchmark fista-vs-sklearn`` (``quick``: 100 problems)."""
    return bench_run(main, "fista_vs_sklearn.json", out_dir, quick, seed, device)


if __name__ == "__main__":
    main()
