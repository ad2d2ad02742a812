"""Reproduction of the SLoG-Net paper's Table I: inference time of SLoG-Net vs ADMM.

``unrolled reproduce slognet-table1``: for each ``N`` in ``20, 40, 60, 80, 100``
a connected ER graph and ``P = 400`` signals per problem; SLoG-Net and ADMM
are timed side by side in one run, reported in seconds and as ratios, with the
paper's Table I beside them. The timing protocol is described in the docstring
of :mod:`unrolled.experiments.slognet`.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from unrolled.experiments.report import markdown_table, save_figure, write_json
from unrolled.experiments.slognet_scoring import _fmt, _sync, _torch_threads
from unrolled.graph.data import GraphDiffusionProblem
from unrolled.graph.nets import SLoGNet
from unrolled.graph.solvers import admm
from unrolled.core.unrolled_net import dtype_from_name


#: Table I of the paper: N -> (SLoG-Net seconds, ADMM seconds), P = 400, ER graphs.
PAPER_TABLE1 = {
    20: (0.95e-2, 2.04),
    40: (1.09e-2, 5.70),
    60: (1.27e-2, 9.41),
    80: (1.42e-2, 12.29),
    100: (1.64e-2, 14.62),
}


@dataclass
class Table1Config:
    """Settings of the Table I timing (defaults: the paper's sizes; ``threads`` as in :class:`Table2Config`)."""

    sizes: tuple[int, ...] = (20, 40, 60, 80, 100)
    n_signals: int = 400
    n_layers: int = 5
    d: int = 2
    repeats: int = 10
    admm_max_iter: int = 10_000
    admm_tol: float = 1e-6
    dtype: str = "float64"
    threads: int | None = 1


FULL_TABLE1 = Table1Config()
QUICK_TABLE1 = Table1Config(sizes=(10, 20), repeats=3, admm_max_iter=500, admm_tol=1e-5)


# --------------------------------------------------------------------------- #
# Table I
# --------------------------------------------------------------------------- #
def run_table1(cfg: Table1Config, out_dir: str | Path, *, seed: int = 0, device: str = "cpu",
               progress: bool = True, log=print) -> dict:
    """Time SLoG-Net and ADMM side by side for every ``N`` of ``cfg``; write results.json, results.md, table1.png."""
    with _torch_threads(cfg.threads):
        return _run_table1(cfg, out_dir, seed=seed, device=device, progress=progress, log=log)


def _run_table1(cfg: Table1Config, out_dir, *, seed: int, device: str, progress: bool, log) -> dict:
    out_dir = Path(out_dir)
    if cfg.repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {cfg.repeats}")
    if cfg.dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {cfg.dtype!r}")
    dtype = dtype_from_name(cfg.dtype)
    rows = []
    for N in cfg.sizes:
        problem = GraphDiffusionProblem("er", n_nodes=N, n_signals=cfg.n_signals, graph_seed=seed, dtype=dtype,
                                        device=device)
        net = SLoGNet.from_algorithm(problem, cfg.n_layers, d=cfg.d, calibration_seed=seed)
        Ys, _ = problem.sample(cfg.repeats, torch.Generator().manual_seed(seed + 1))

        def run_net(Y):
            with torch.no_grad():
                return net(Y)

        def run_admm(Y):
            return admm(Y, problem.S, V=problem.V, max_iter=cfg.admm_max_iter, tol=cfg.admm_tol)

        def timed(fn, Y):
            _sync(device)
            t0 = time.perf_counter()
            out = fn(Y)
            _sync(device)
            return time.perf_counter() - t0, out

        timed(run_net, Ys[0])  # warm-up (untimed)
        timed(lambda Y: admm(Y, problem.S, V=problem.V, max_iter=5, tol=0.0), Ys[0])
        t_net, t_admm, iters, conv = [], [], [], []
        for r in range(cfg.repeats):
            Y = Ys[r]
            if r % 2 == 0:
                t_net.append(timed(run_net, Y)[0])
                dt, res = timed(run_admm, Y)
            else:
                dt, res = timed(run_admm, Y)
                t_net.append(timed(run_net, Y)[0])
            t_admm.append(dt)
            iters.append(int(res.n_iter))
            conv.append(bool(res.converged))
        med_net, med_admm = statistics.median(t_net), statistics.median(t_admm)
        mean_net, mean_admm = statistics.fmean(t_net), statistics.fmean(t_admm)
        paper = PAPER_TABLE1.get(N) if cfg.n_signals == 400 else None  # the paper's sizes: P = 400
        row = {
            "N": N,
            "edges": problem.nx_graph.number_of_edges(),
            "slognet_seconds": med_net,
            "admm_seconds": med_admm,
            "ratio": med_admm / med_net,
            "slognet_seconds_mean": mean_net,
            "admm_seconds_mean": mean_admm,
            "ratio_mean": mean_admm / mean_net,
            "admm_median_iterations": float(statistics.median(iters)),
            "admm_converged_fraction": sum(conv) / len(conv),
            "slognet_per_repeat": t_net,
            "admm_per_repeat": t_admm,
            "admm_iterations": iters,
            "paper_slognet_seconds": None if paper is None else paper[0],
            "paper_admm_seconds": None if paper is None else paper[1],
            "paper_ratio": None if paper is None else paper[1] / paper[0],
        }
        rows.append(row)
        log(f"N={N:>3}: SLoG-Net {med_net:.4f} s, ADMM {med_admm:.3f} s (median of {cfg.repeats}; "
            f"{row['admm_median_iterations']:.0f} iterations), ratio {row['ratio']:.0f}"
            + ("" if paper is None else
               f"  (paper {paper[0]:.4f} s, {paper[1]:.2f} s, ratio {paper[1] / paper[0]:.0f})"))
    payload = {"experiment": "slognet-table1", "config": asdict(cfg), "seed": seed, "device": str(device),
               "torch_threads": torch.get_num_threads(), "rows": rows}
    write_json(out_dir / "results.json", payload)
    (out_dir / "results.md").write_text(table1_markdown(cfg, rows, torch.get_num_threads(), str(device)))
    _plot_table1(out_dir / "table1.png", rows)
    return payload


def table1_markdown(cfg: Table1Config, rows: list[dict], threads: int, device: str) -> str:
    full = cfg == FULL_TABLE1
    parts = [
        "# SLoG-Net paper, Table I: mean inference time, SLoG-Net vs ADMM\n",
        f"{'Full' if full else 'Reduced (--quick or custom)'} run on {device} ({threads} torch thread(s)). "
        f"ER graphs (p = 0.3), P = {cfg.n_signals} signals, one problem per call, {cfg.repeats} problems per N "
        "(problem k has the same filter taps for every N) timed side by side, alternating which method runs "
        "first, after one warm-up call each. SLoG-Net: "
        f"K = {cfg.n_layers}, d = {cfg.d}, **untrained** (from_algorithm; its inference cost does not depend on "
        f"the parameter values). ADMM: to convergence (tol = {cfg.admm_tol:g}, max_iter = {cfg.admm_max_iter}), "
        "data-scaled penalties. Seconds: medians over the problems, and means (the paper's statistic); "
        "ratios ADMM / SLoG-Net of the medians and of the means. ADMM's time is heavy tailed: most problems "
        "converge in tens to hundreds of iterations, a few run to max_iter, and those dominate the means. "
        "The paper's times are from its own implementation and machine (its ADMM takes about 2 s at N = 20), "
        "so compare ratios and trends rather than seconds.\n",
    ]
    header = ["N", "SLoG-Net s (median)", "paper (mean)", "ADMM s (median)", "ADMM s (mean)", "paper (mean)",
              "ratio of medians", "ratio of means", "paper ratio", "ADMM iters (median / max)", "ADMM converged"]
    body = []
    for r in rows:
        body.append([r["N"], _fmt(r["slognet_seconds"], 4), _fmt(r["paper_slognet_seconds"], 4),
                     _fmt(r["admm_seconds"]), _fmt(r["admm_seconds_mean"]), _fmt(r["paper_admm_seconds"], 2),
                     f"{r['ratio']:.3g}", f"{r['ratio_mean']:.3g}",
                     "—" if r["paper_ratio"] is None else f"{r['paper_ratio']:.3g}",
                     f"{r['admm_median_iterations']:.0f} / {max(r['admm_iterations'])}",
                     f"{100 * r['admm_converged_fraction']:.0f}%"])
    parts.append(markdown_table(header, body) + "\n")
    return "\n".join(parts)


def _plot_table1(path: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Ns = [r["N"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    axes[0].plot(Ns, [r["slognet_seconds"] for r in rows], "o-", label="SLoG-Net (ours, median)")
    axes[0].plot(Ns, [r["admm_seconds"] for r in rows], "s-", label="ADMM (ours, median)")
    axes[0].plot(Ns, [r["admm_seconds_mean"] for r in rows], "s:", label="ADMM (ours, mean)")
    axes[1].plot(Ns, [r["ratio"] for r in rows], "o-", label="ours, medians")
    axes[1].plot(Ns, [r["ratio_mean"] for r in rows], "o:", label="ours, means")
    paper = [r for r in rows if r["paper_ratio"] is not None]
    if paper:
        Np = [r["N"] for r in paper]
        axes[0].plot(Np, [r["paper_slognet_seconds"] for r in paper], "o--", label="SLoG-Net (paper, mean)")
        axes[0].plot(Np, [r["paper_admm_seconds"] for r in paper], "s--", label="ADMM (paper, mean)")
        axes[1].plot(Np, [r["paper_ratio"] for r in paper], "o--", label="paper (means)")
    axes[0].set_yscale("log")
    axes[0].set_title("inference time per problem (P = 400)")
    axes[0].set_ylabel("seconds")
    axes[1].set_yscale("log")
    axes[1].set_title("ratio ADMM / SLoG-Net")
    for ax in axes:
        ax.set_xlabel("N (ER graph nodes)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def reproduce_table1(out_dir, *, quick: bool = False, seed: int = 0, device: str = "cpu", progress: bool = True,
                     **overrides) -> dict:
    """Entry point of ``unrolled reproduce slognet-table1`` (``quick``: the reduced test-sized version)."""
    cfg = replace(QUICK_TABLE1 if quick else FULL_TABLE1, **overrides)
    return run_table1(cfg, out_dir, seed=seed, device=device, progress=progress)
