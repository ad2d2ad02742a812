"""The working-set :func:`~unrolled.sparse_coding.lasso.lasso` against FISTA, scikit-learn and skglm, in one run.

Draws ``--n-problems`` noisy sparse-coding problems sharing one dictionary
(:class:`~unrolled.sparse_coding.data.SparseCodingProblem`, SNR 40 dB) and solves
them with

* ``lasso`` (this library's reference solver; on CPU its compiled per-problem
  working-set coordinate-descent kernel, ``method='numba'``),
* ``lasso(method='torch')`` (the batched torch working-set solver that CUDA tensors
  use; on CPU it is the "before" row of issue 30),
* ``fista`` (batched, the algorithm the nets unroll),
* a loop of ``sklearn.linear_model.Lasso(alpha=lam/m, fit_intercept=False)``
  (its objective is ours divided by ``m``),
* a loop of ``skglm.Lasso(alpha=lam/m, fit_intercept=False)`` when skglm is
  installed (``pip install skglm``; the ``dev`` extra has it),

timing each with ``time.perf_counter`` side by side in the same process (``lasso`` and the
sklearn / skglm loops ``--repeat`` times each, best reported: one sub-second run is at the
mercy of other jobs on a shared machine). Every
result is scored on the same float64 objective ``F(x) = 0.5||y - Ax||^2 +
lam||x||_1`` against the best of all solvers per problem, ``F*``: the table
reports mean and max ``(F - F*) / F*`` next to the times, and the ratio
``reference time / lasso time`` (> 1: ``lasso`` is faster). The torch and
numba thread counts and the machine's load are printed with the table;
``--threads`` sets ``torch.set_num_threads`` and ``numba.set_num_threads`` (the
sklearn / skglm loops run single-problem Cython / numba code, one thread). The
first call of the numba kernel in a process compiles it (or loads it from
numba's cache); that call runs on two problems before the timed region and its
time is reported as ``jit_first_call_s``.

Examples
--------
::

    unrolled benchmark lasso-vs-sklearn                # 1000 problems, 250 x 500, lam 0.1
    unrolled benchmark lasso-vs-sklearn --quick        # 100 problems, a smoke run
    python -m unrolled.experiments.bench_lasso_sklearn --n-problems 200 --threads 1
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from unrolled.sparse_coding.data import SparseCodingProblem
from unrolled.sparse_coding.lasso import lasso
from unrolled.sparse_coding.solvers import fista
from unrolled.experiments.bench_cli import (add_problem_arguments, bench_main, bench_run, lasso_objective,
                                            machine_info, ratio_row, sync)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_problem_arguments(ap)
    ap.add_argument("--tol", type=float, default=1e-6, help="lasso / FISTA tolerance on the normalised KKT violation")
    ap.add_argument("--sklearn-tol", type=float, default=1e-6, help="sklearn / skglm tol (duality-gap based)")
    ap.add_argument("--no-fista", action="store_true", help="skip FISTA (the slowest)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed runs of lasso and of the sklearn / skglm loops, best reported (FISTA and "
                         "method='torch' run once)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads and numba.set_num_threads (default: leave as is)")
    ap.add_argument("--no-torch-lasso", action="store_true", help="skip lasso(method='torch')")
    ap.add_argument("--no-skglm", action="store_true", help="skip the skglm loop (its numba compilation takes seconds)")
    ap.add_argument("--device", default="cpu", help="device of the batched torch solvers")
    ap.add_argument("--out", default=None, help="optional JSON file for the results")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error(f"--repeat must be >= 1, got {args.repeat}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("--device cuda requested but CUDA is not available")
    return args


def _best_of(repeat: int, fn):
    """Run ``fn()`` (which returns ``(result, seconds)``) ``repeat`` times: last result, best and all times."""
    times = []
    for _ in range(repeat):
        out, sec = fn()
        times.append(sec)
    return out, min(times), times


def _timed(fn, device: str):
    """``fn()`` and its wall time (device synchronised)."""
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - t0


def _loop(make, A_np: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``make()`` to every row of ``Y``; returns the codes and the iteration counts."""
    X = np.empty((Y.shape[0], A_np.shape[1]))
    its = np.zeros(Y.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in range(Y.shape[0]):
            model = make().fit(A_np, Y[b])
            X[b] = model.coef_
            its[b] = np.mean(getattr(model, "n_iter_", np.nan))
    return X, its


def measure(args: argparse.Namespace) -> dict:
    """Run every solver and return the measurements."""
    import numba

    if args.threads is not None:
        torch.set_num_threads(args.threads)
        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    prob = SparseCodingProblem(m=args.m, n=args.n, p=args.p, snr_db=args.snr, seed=args.seed, device=args.device)
    y, _ = prob.sample(args.n_problems, torch.Generator().manual_seed(args.seed + 1))
    A = prob.A
    A_np = np.asfortranarray(A.cpu().numpy())
    Y_np = y.cpu().numpy()
    alpha = args.lam / args.m
    rows: dict[str, dict] = {}
    codes: dict[str, np.ndarray] = {}

    # warm-ups (allocator, numba compilation or cache load) outside the timed regions
    t0 = time.perf_counter()
    lasso(y[:2], A, args.lam)
    jit_s = time.perf_counter() - t0
    if not args.no_torch_lasso:
        lasso(y[:2], A, args.lam, method="torch")
    fista(y[:2], A, args.lam, max_iter=5, tol=0.0)
    sync(args.device)

    method = "numba" if args.device == "cpu" else "torch"
    res, sec, all_s = _best_of(args.repeat, lambda: _timed(lambda: lasso(y, A, args.lam, tol=args.tol), args.device))
    rows["lasso"] = {"label": f"unrolled lasso (method='{method}')", "seconds": sec, "seconds_all": all_s,
                     "mean_iter": float(res.n_iter.double().mean()), "converged": int(res.converged.sum()),
                     "iter_unit": "outer", "ws_size": res.history["ws_size"], "inner_iter": res.history["inner_iter"]}
    codes["lasso"] = res.x.cpu().numpy()
    if method == "numba" and not args.no_torch_lasso:
        t0 = time.perf_counter()
        rt = lasso(y, A, args.lam, tol=args.tol, method="torch")
        rows["lasso_torch"] = {"label": "unrolled lasso (method='torch', batched torch working sets)",
                               "seconds": time.perf_counter() - t0, "mean_iter": float(rt.n_iter.double().mean()),
                               "converged": int(rt.converged.sum()), "iter_unit": "outer"}
        codes["lasso_torch"] = rt.x.cpu().numpy()

    if not args.no_fista:
        t0 = time.perf_counter()
        rf = fista(y, A, args.lam, tol=args.tol, max_iter=20_000)
        sync(args.device)
        rows["fista"] = {"label": "unrolled fista (batched)", "seconds": time.perf_counter() - t0,
                         "mean_iter": float(rf.n_iter.double().mean()), "converged": int(rf.converged.sum()),
                         "iter_unit": "iterations"}
        codes["fista"] = rf.x.cpu().numpy()

    from sklearn.linear_model import Lasso as SkLasso

    make = lambda: SkLasso(alpha=alpha, fit_intercept=False, tol=args.sklearn_tol, max_iter=100_000)  # noqa: E731
    (X, its), sec, all_s = _best_of(args.repeat, lambda: _timed(lambda: _loop(make, A_np, Y_np), "cpu"))
    rows["sklearn"] = {"label": "sklearn Lasso (loop)", "seconds": sec, "seconds_all": all_s,
                       "mean_iter": float(its.mean()),
                       "iter_unit": "epochs"}
    codes["sklearn"] = X
    try:
        if args.no_skglm:
            raise ImportError
        from skglm import Lasso as SkglmLasso
    except ImportError:  # optional reference
        rows["skglm"] = {"label": "skglm Lasso (loop)",
                         "skipped": "--no-skglm" if args.no_skglm else "skglm not installed"}
    else:
        make = lambda: SkglmLasso(alpha=alpha, fit_intercept=False, tol=args.sklearn_tol, max_iter=100)  # noqa: E731
        make().fit(A_np, Y_np[0])  # numba compilation
        (X, its), sec, all_s = _best_of(args.repeat, lambda: _timed(lambda: _loop(make, A_np, Y_np), "cpu"))
        rows["skglm"] = {"label": "skglm Lasso (loop)", "seconds": sec, "seconds_all": all_s,
                         "mean_iter": float(its.mean()),
                         "iter_unit": "outer"}
        codes["skglm"] = X

    A64 = A.cpu().double().numpy()
    Y64 = y.cpu().double().numpy()
    F = {k: lasso_objective(Y64, A64, X, args.lam) for k, X in codes.items()}
    F_best = np.min(np.stack(list(F.values())), axis=0)
    t_lasso = rows["lasso"]["seconds"]
    for k, Fk in F.items():
        gap = (Fk - F_best) / F_best
        rows[k].update(mean_rel_gap=float(gap.mean()), max_rel_gap=float(gap.max()),
                       ratio_over_lasso=rows[k]["seconds"] / t_lasso)
    case = f"Lasso {args.n_problems} problems {args.m}x{args.n}, lam {args.lam}"
    ratios = [ratio_row(case, rows["lasso"]["label"], rows[k]["label"], t_lasso, rows[k]["seconds"],
                        f"max (F-F*)/F* lasso {rows['lasso']['max_rel_gap']:.1e}, reference {rows[k]['max_rel_gap']:.1e}")
              for k in ("sklearn", "skglm") if "seconds" in rows[k]]
    for k in ("lasso_torch", "fista"):
        if k in rows:
            ratios.append(ratio_row(case, rows[k]["label"], rows["sklearn"]["label"], rows[k]["seconds"],
                                    rows["sklearn"]["seconds"], f"max (F-F*)/F* {k} {rows[k]['max_rel_gap']:.1e}"))
    machine = machine_info(args.device)
    machine.update(numba_threads=numba.get_num_threads(), numba_threading_layer=_threading_layer(numba),
                   jit_first_call_s=jit_s)
    return {
        "config": {k: v for k, v in vars(args).items() if k != "out"},
        "problem": prob.config(),
        "solvers": rows,
        "ratios": ratios,
        "machine": machine,
    }


def _threading_layer(numba) -> str:
    """The numba threading layer in use ('unknown' before any parallel kernel ran)."""
    try:
        return str(numba.threading_layer())
    except ValueError:
        return "unknown"


def markdown_table(r: dict) -> str:
    """The results as a Markdown table, with the settings it ran under."""
    c, mach = r["config"], r["machine"]
    lines = [
        f"{c['n_problems']} problems, A {c['m']}x{c['n']}, p={c['p']}, SNR {c['snr']} dB, lam={c['lam']}; "
        f"lasso/fista tol={c['tol']} (KKT), sklearn/skglm tol={c['sklearn_tol']}; device {mach['device']}",
        f"threads: torch {mach['torch_threads']} (interop {mach['interop_threads']}), "
        f"OMP_NUM_THREADS={mach['OMP_NUM_THREADS']}, numba {mach['numba_threads']} "
        f"({mach['numba_threading_layer']} layer), {mach['cpu_count']} CPUs, load avg {mach['load_avg_1min']}; "
        f"lasso's first call (numba compile or cache load, 2 problems, untimed) {mach['jit_first_call_s']:.2f} s; "
        f"lasso and the loops: best of {c.get('repeat', 1)} runs",
        "",
        "| solver | wall s | time / lasso time | mean (F-F*)/F* | max (F-F*)/F* | mean iter |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in r["solvers"].values():
        if "skipped" in s:
            lines.append(f"| {s['label']} | skipped: {s['skipped']} | | | | |")
            continue
        lines.append(f"| {s['label']} | {s['seconds']:.3f} | {s['ratio_over_lasso']:.1f}x | {s['mean_rel_gap']:.1e} "
                     f"| {s['max_rel_gap']:.1e} | {s['mean_iter']:.1f} {s['iter_unit']} |")
    ls = r["solvers"]["lasso"]
    inner = "coordinate-descent epochs" if "numba" in ls["label"] else "restricted FISTA iterations"
    lines += ["", f"lasso working-set sizes per outer iteration (batch max) {ls['ws_size']}, "
                  f"{inner} (batch max) {ls['inner_iter']}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    """Entry point: run, print the table, optionally write JSON."""
    return bench_main(parse_args, measure, markdown_table, argv)


def run(out_dir="unrolled-bench", quick: bool = False, seed: int = 0, device: str = "cpu") -> dict:
    """Entry point of ``unrolled benchmark lasso-vs-sklearn`` (``quick``: 100 problems)."""
    return bench_run(main, "lasso_vs_sklearn.json", out_dir, quick, seed, device)


if __name__ == "__main__":
    main()
