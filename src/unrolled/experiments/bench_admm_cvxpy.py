r"""Graph :func:`~unrolled.graph.solvers.admm` against cvxpy on the same linear program (8), side by side.

For each graph size ``N`` (Erdős–Rényi graphs, ``P`` diffused signals per problem, noiseless,
:class:`~unrolled.graph.data.GraphDiffusionProblem`), ``B`` problems on one graph are solved

* by the batched ADMM (updates (11)–(14) of the SLoG-Net paper, default data-scaled penalties,
  relative tolerance ``tol``, and its default polish every 100 iterations, accepted when certified
  ``tol``-optimal), one call for the whole batch; also timed with ``polish=False`` (plain ADMM, a
  column) and with the stopping test every ``check_every`` iterations (a column);
* by a loop of ``cvxpy.Problem(Minimize(norm1(Z g)), [sum(g) == c]).solve(solver)`` with the
  Khatri–Rao matrix :math:`Z = Y^\top V \odot V` (``NP x N``) formed explicitly, for the
  default LP solver HiGHS and the interior-point CLARABEL. The time of a cvxpy call includes
  its canonicalisation (what a user pays); the solver's own time (``solver_stats.solve_time``)
  is reported beside it.

Accuracy: ADMM's filter is made exactly feasible, :math:`\tilde g \leftarrow c\,\tilde g /
1^\top\tilde g` (:func:`~unrolled.graph.operators.deconvolution_objective` with ``c``), and its
objective :math:`\|Z\tilde g\|_1` is compared with the best cvxpy optimum of the same problem:
the table states max and median :math:`(F - F^*)/F^*` for each solver. Timings are
``time.perf_counter`` in one process, with the thread settings printed.

Examples
--------
::

    unrolled benchmark admm-vs-cvxpy            # N = 20, 50, 100; B = 2 problems of P = 100 signals (~2 min)
    unrolled benchmark admm-vs-cvxpy --quick    # N = 20; B = 2, P = 50
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch

from unrolled.experiments.bench_cli import machine_info, ratio_row, sync, write_benchmark
from unrolled.experiments.report import markdown_table as report_table
from unrolled.graph.data import GraphDiffusionProblem
from unrolled.graph.operators import deconvolution_objective
from unrolled.graph.solvers import admm

SOLVERS = ("HIGHS", "CLARABEL")


def khatri_rao(Y: np.ndarray, V: np.ndarray) -> np.ndarray:
    r"""``Z`` ``(N P, N)`` with column ``i`` :math:`\operatorname{vec}(v_i \tilde y_i^\top)`, so ``Z g = vec(V diag(g) V^T Y)``.

    ``vec`` is row-major here (``W.ravel()``), which only permutes the rows of ``Z`` and leaves
    :math:`\|Z\tilde g\|_1` unchanged.
    """
    Yt = V.T @ Y                                         # (N, P)
    return np.einsum("ji,ip->jpi", V, Yt).reshape(-1, V.shape[0])


def cvxpy_loop(Ys: np.ndarray, V: np.ndarray, c: float, solver: str) -> tuple[np.ndarray, float, float]:
    """Solve problem (8) for every ``Ys[b]`` with cvxpy; returns ``(g (B, N), wall s, solver s)``."""
    import cvxpy as cp

    B, N = Ys.shape[0], V.shape[0]
    G = np.empty((B, N))
    solver_s = 0.0
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b in range(B):
            g = cp.Variable(N)
            prob = cp.Problem(cp.Minimize(cp.norm1(khatri_rao(Ys[b], V) @ g)), [cp.sum(g) == c])
            prob.solve(solver=solver)
            if prob.status != cp.OPTIMAL:
                raise RuntimeError(f"cvxpy/{solver} ended with status {prob.status} on problem {b}")
            G[b] = g.value
            solver_s += prob.solver_stats.solve_time or 0.0
    return G, time.perf_counter() - t0, solver_s


def measure(sizes=(20, 50, 100), *, n_problems: int = 2, n_signals: int = 100, tol: float = 1e-5,
            max_iter: int = 5000, seed: int = 0, device: str = "cpu", solvers=SOLVERS, highs_max_nodes: int = 50,
            check_every: int = 10) -> dict:
    """Both solvers at each graph size; returns the rows and the ratio rows of ``benchmark all``.

    HiGHS runs only up to ``highs_max_nodes`` nodes: on this LP (``N P`` absolute values of a dense ``N P x N``
    expression) it took 16.9 s per problem at N = 50 and more than 5 minutes at N = 100 (stopped; one thread, load ~5),
    which is what kept the full benchmark from finishing; CLARABEL runs at every size. ADMM is timed with its
    default stopping test at every iteration (the ratio rows) and with ``check_every`` (a column)."""
    c = 1.0
    rows, ratios = [], []
    for N in sizes:
        prob = GraphDiffusionProblem("er", n_nodes=N, graph_seed=seed, n_signals=n_signals, device=device)
        Y, _ = prob.sample(n_problems, torch.Generator().manual_seed(seed + N))
        admm(Y[:1], prob.S, V=prob.V, max_iter=3, tol=0.0)  # warm-up outside the timed region
        sync(device)
        t0 = time.perf_counter()
        res = admm(Y, prob.S, V=prob.V, c=c, tol=tol, max_iter=max_iter)
        sync(device)
        t_admm = time.perf_counter() - t0
        sync(device)
        t0 = time.perf_counter()
        res_k = admm(Y, prob.S, V=prob.V, c=c, tol=tol, max_iter=max_iter, check_every=check_every)
        sync(device)
        t_admm_k = time.perf_counter() - t0
        t0 = time.perf_counter()
        res_p = admm(Y, prob.S, V=prob.V, c=c, tol=tol, max_iter=max_iter, polish=False)
        sync(device)
        t_plain = time.perf_counter() - t0
        F_admm = deconvolution_objective(Y, prob.V, res.g, c=c).cpu().double().numpy()
        Ys, V = Y.cpu().double().numpy(), prob.V.cpu().double().numpy()
        ref = {}
        for solver in solvers:
            if solver == "HIGHS" and N > highs_max_nodes:
                continue
            g_ref, wall, solver_s = cvxpy_loop(Ys, V, c, solver)
            F = deconvolution_objective(torch.from_numpy(Ys), torch.from_numpy(V), torch.from_numpy(g_ref),
                                        c=c).numpy()
            ref[solver] = (wall, solver_s, F)
        F_best = np.minimum.reduce([F_admm] + [r[2] for r in ref.values()])
        gap = lambda F: (F - F_best) / F_best  # noqa: E731
        g_admm = gap(F_admm)
        for solver, (wall, solver_s, F) in ref.items():
            g_ref = gap(F)
            row = {"N": N, "B": n_problems, "P": n_signals, "reference": f"cvxpy/{solver}", "reference_s": wall,
                   "reference_solver_s": solver_s, "ours_s": t_admm, "ratio": wall / t_admm,
                   "ours_iter": float(res.n_iter.double().mean()), "ours_converged": int(res.converged.sum()),
                   "ours_gap_max": float(g_admm.max()), "ours_gap_median": float(np.median(g_admm)),
                   "ref_gap_max": float(g_ref.max()), "ours_check_every_s": t_admm_k,
                   "ours_check_every_iter": float(res_k.n_iter.double().mean()),
                   "ours_polished": int(res.polished.sum()), "ours_plain_s": t_plain,
                   "ours_plain_iter": float(res_p.n_iter.double().mean()),
                   "ours_plain_converged": int(res_p.converged.sum())}
            rows.append(row)
            ratios.append(ratio_row(f"graph deconvolution (8), {n_problems} problems N={N}, P={n_signals}",
                                    "admm (batched)", f"cvxpy/{solver} loop", t_admm, wall,
                                    f"max (F-F*)/F* admm {row['ours_gap_max']:.1e}, cvxpy {row['ref_gap_max']:.1e}"))
    return {"config": {"sizes": list(sizes), "n_problems": n_problems, "n_signals": n_signals, "tol": tol,
                       "max_iter": max_iter, "seed": seed, "device": device, "solvers": list(solvers),
                       "highs_max_nodes": highs_max_nodes, "check_every": check_every},
            "rows": rows, "ratios": ratios, "machine": machine_info(device)}


def markdown_table(r: dict) -> str:
    """The rows as a Markdown table (:func:`unrolled.experiments.report.markdown_table`), with their settings."""
    c = r["config"]
    head = (f"graph blind deconvolution LP (8), ER graphs, {c['n_problems']} noiseless problems of P = "
            f"{c['n_signals']} signals per size; admm tol {c['tol']} (relative residuals, Boyd et al. 2011 Sec. "
            f"3.3.1), default penalties; HiGHS up to N = {c.get('highs_max_nodes')}; {r['machine']['summary']}")
    k = c.get("check_every")
    header = ["N", "reference", "reference s (solver only)", "admm s", "reference / ours",
              "admm mean iter (converged, polished)", f"admm s, test every {k} (mean iter)",
              "admm polish=False s (mean iter, converged)", "max (F-F*)/F* admm / ref", "median admm"]
    body = [[w["N"], w["reference"], f"{w['reference_s']:.3f} ({w['reference_solver_s']:.3f})", f"{w['ours_s']:.3f}",
             f"{w['ratio']:.1f}x",
             f"{w['ours_iter']:.0f} ({w['ours_converged']}/{w['B']}, {w.get('ours_polished', 0)}/{w['B']})",
             f"{w['ours_check_every_s']:.3f} ({w['ours_check_every_iter']:.0f})",
             f"{w['ours_plain_s']:.3f} ({w['ours_plain_iter']:.0f}, {w['ours_plain_converged']}/{w['B']})"
             if "ours_plain_s" in w else "-",
             f"{w['ours_gap_max']:.1e} / {w['ref_gap_max']:.1e}", f"{w['ours_gap_median']:.1e}"] for w in r["rows"]]
    return head + "\n\n" + report_table(header, body)


def run(out_dir="unrolled-bench", quick: bool = False, seed: int = 0, device: str = "cpu") -> dict:
    """Entry point of ``unrolled benchmark admm-vs-cvxpy`` (``quick``: N = 20, B = 2, P = 50)."""
    if quick:
        result = measure((20,), n_problems=2, n_signals=50, seed=seed, device=device)
    else:
        result = measure(seed=seed, device=device)
    return write_benchmark(out_dir, "admm_vs_cvxpy", result, markdown_table(result))
