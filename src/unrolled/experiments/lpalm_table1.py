"""LPALM paper, Table 1 and Fig. 2: PALM with lambda chosen on the training set vs LPALM (Sec. 3.1.2).

* Fig. 2(a): PALM's median NMSE(S) and median iterations vs lambda on
  ``n_lambda_samples`` training mixtures (paper: 45 samples, 30 values;
  best 2e-3, NMSE 8.72e-3 in 1435 iterations).
* Table 1: on the test set, PALM at the best lambda (median NMSE 0.0176, median
  2011 iterations) vs LPALM with 25 layers (0.00085), with the wall-clock
  time of both measured side by side in this run.
* Fig. 2(b): LPALM mean NMSE per layer on train and test sets.

PALM starts from a random training matrix and ``S0 = A0^+ X`` and stops when
``||dS||_F, ||dA||_F < 1e-7``; LPALM from ``(1/sqrt(m)) ones`` and zeros.
NMSEs are after permutation/scale correction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from unrolled.experiments.lpalm_common import (
    PAPER,
    TrainSettings,
    fmt,
    md_table,
    median,
    run_palm,
    synthetic_data,
    time_lpalm,
    train_or_load,
)
from unrolled.experiments.report import save_figure, write_json
from unrolled.separation.data import SyntheticConfig
from unrolled.separation.tuning import palm_lambda_grid, random_training_start
from unrolled.separation.training import nmse_per_layer

PAPER_TABLE1 = {"palm_median_nmse_s": 0.0176, "lpalm_median_nmse_s": 0.00085, "palm_median_iter": 2011,
                "lpalm_layers": 25, "palm_best_lambda": 2e-3, "palm_train_nmse_at_best": 8.72e-3,
                "palm_train_iter_at_best": 1435}


@dataclass
class Table1Config:
    """Settings (defaults: the paper's data; training shortened to fit a CPU budget)."""

    syn: SyntheticConfig = field(default_factory=SyntheticConfig)
    n_val: int = 50
    lambdas: tuple[float, ...] = (3e-4, 1e-3, 2e-3, 5e-3, 1e-2, 3e-2, 1e-1)
    n_lambda_samples: int = 45
    palm_max_iter: int = 5000
    palm_tol: float = 1e-7
    train: TrainSettings = field(default_factory=TrainSettings)


QUICK = Table1Config(syn=SyntheticConfig(n_matrices=40, n_train=30, t=100), n_val=6, lambdas=(1e-3, 1e-2),
                     n_lambda_samples=6, palm_max_iter=300,
                     train=TrainSettings(n_layers=5, max_steps=40, val_every=20, lr=1e-3))


def run_table1(cfg: Table1Config, out_dir: str | Path, *, seed: int = 0, device: str = "cpu", progress: bool = True,
               log=print) -> dict:
    """Run the comparison and write results.json, results.md and fig2.png into ``out_dir``."""
    out_dir = Path(out_dir)
    fit, val, test = synthetic_data(cfg.syn, cfg.n_val, seed)
    log(f"LPALM Table 1: {len(fit)} train / {len(val)} val / {len(test)} test mixtures, m={fit.X.shape[1]}, t={fit.X.shape[2]}")
    grid_set = fit.subset(slice(0, min(cfg.n_lambda_samples, len(fit))))
    A0, S0 = random_training_start(grid_set, fit, seed=seed + 20)
    best_lam, grid = palm_lambda_grid(grid_set, cfg.lambdas, A0, S0, max_iter=cfg.palm_max_iter, tol=cfg.palm_tol)
    for g in grid:
        log(f"  PALM lambda={g['lam']:.1e}: train median NMSE(S) {g['median_nmse_s']:.4g}, "
            f"median iterations {g['median_iter']:.0f} ({g['seconds']:.1f} s)")
    best = next(g for g in grid if g["lam"] == best_lam)
    palm_test = run_palm(test, fit, best["lam"], max_iter=cfg.palm_max_iter, tol=cfg.palm_tol, seed=seed + 21)
    net, train_info = train_or_load(out_dir / "lpalm", fit, val, cfg.train, seed=seed + 3, device=device,
                                    progress=progress, log=log)
    test_dev = test.to(device=device)
    lpalm_err, lpalm_seconds = time_lpalm(net, test_dev)
    per_layer = {"train": nmse_per_layer(net, fit.subset(slice(0, min(150, len(fit)))).to(device=device)),
                 "test": nmse_per_layer(net, test_dev)}
    ours = {
        "palm_best_lambda": best["lam"],
        "palm_train_nmse_at_best": best["median_nmse_s"],
        "palm_train_iter_at_best": best["median_iter"],
        "palm_median_nmse_s": median(palm_test["nmse_s"]),
        "palm_median_nmse_a": median(palm_test["nmse_a"]),
        "palm_median_iter": median(palm_test["n_iter"].double()),
        "palm_converged": float(palm_test["converged"].double().mean()),
        "palm_seconds": palm_test["seconds"],
        "lpalm_median_nmse_s": median(lpalm_err["S"]),
        "lpalm_median_nmse_a": median(lpalm_err["A"]),
        "lpalm_layers": net.n_layers,
        "lpalm_seconds": lpalm_seconds,
        "wallclock_ratio_palm_over_lpalm": palm_test["seconds"] / lpalm_seconds,
    }
    payload = {"experiment": "lpalm-table1", "paper": PAPER, "config": asdict(cfg), "seed": seed, "device": device,
               "ours": ours, "paper_values": PAPER_TABLE1, "lambda_grid": grid, "lpalm_per_layer": per_layer,
               "train": train_info}
    write_json(out_dir / "results.json", payload)
    (out_dir / "results.md").write_text(table1_markdown(cfg, ours, grid, train_info, len(test)))
    plot_fig2(out_dir / "fig2.png", grid, per_layer)
    log(table1_markdown(cfg, ours, grid, train_info, len(test)))
    return payload


def table1_markdown(cfg: Table1Config, ours: dict, grid: list[dict], train_info: dict, n_test: int) -> str:
    """Our Table 1 / Fig. 2(a) numbers beside the paper's."""
    p = PAPER_TABLE1
    rows = [
        ["PALM median NMSE(S), test", fmt(ours["palm_median_nmse_s"]), fmt(p["palm_median_nmse_s"])],
        ["LPALM median NMSE(S), test", fmt(ours["lpalm_median_nmse_s"]), fmt(p["lpalm_median_nmse_s"])],
        ["PALM median NMSE(A), test", fmt(ours["palm_median_nmse_a"]), "—"],
        ["LPALM median NMSE(A), test", fmt(ours["lpalm_median_nmse_a"]), "—"],
        ["PALM median iterations, test", f"{ours['palm_median_iter']:.0f}", str(p["palm_median_iter"])],
        ["LPALM layers", str(ours["lpalm_layers"]), str(p["lpalm_layers"])],
        ["best lambda (train)", fmt(ours["palm_best_lambda"]), fmt(p["palm_best_lambda"])],
        ["PALM train median NMSE(S) at best lambda", fmt(ours["palm_train_nmse_at_best"]), fmt(p["palm_train_nmse_at_best"])],
        ["PALM train median iterations at best lambda", f"{ours['palm_train_iter_at_best']:.0f}", str(p["palm_train_iter_at_best"])],
        [f"wall-clock on the {n_test} test mixtures, PALM / LPALM (s)",
         f"{ours['palm_seconds']:.2f} / {ours['lpalm_seconds']:.3f} (ratio {ours['wallclock_ratio_palm_over_lpalm']:.0f})", "—"],
    ]
    grid_rows = [[fmt(g["lam"]), fmt(g["median_nmse_s"]), f"{g['median_iter']:.0f}", f"{g['converged']:.2f}"] for g in grid]
    t = cfg.train
    return "\n".join([
        "# LPALM Table 1 and Fig. 2 (PALM vs LPALM, synthetic data of Sec. 3.1)\n",
        f"Test set of {n_test} mixtures; NMSE after permutation/scale correction. PALM: lambda chosen on "
        f"{cfg.n_lambda_samples} training mixtures over {len(cfg.lambdas)} values, start A0 = a random training "
        f"matrix, S0 = A0^+ X, stop at ||dS||, ||dA|| < {cfg.palm_tol:g} (max {cfg.palm_max_iter}). LPALM: "
        f"K={t.n_layers}, Adam lr {t.lr:g}, batch {t.batch_size}, {train_info['steps']} steps "
        f"({train_info['epochs']:.1f} epochs; the paper trains 100 epochs), loss NMSE(S)+NMSE(A). "
        "Both timed on the same machine in the same run (PALM float64, LPALM float32, 1 thread).\n",
        md_table(["quantity", "ours", "paper"], rows) + "\n",
        "## Fig. 2(a): PALM on the training subset vs lambda\n",
        md_table(["lambda", "median NMSE(S)", "median iterations", "fraction converged"], grid_rows) + "\n",
    ])


def plot_fig2(path: Path, grid: list[dict], per_layer: dict) -> None:
    """Fig. 2: (a) PALM NMSE and iterations vs lambda; (b) LPALM NMSE per layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax3) = plt.subplots(1, 2, figsize=(11, 4.2))
    lams = [g["lam"] for g in grid]
    ax1.loglog(lams, [g["median_nmse_s"] for g in grid], "o-", color="C0", label="median NMSE(S)")
    ax1.set_xlabel("lambda")
    ax1.set_ylabel("PALM median NMSE(S) (train)", color="C0")
    ax2 = ax1.twinx()
    ax2.semilogx(lams, [g["median_iter"] for g in grid], "s--", color="C1")
    ax2.set_ylabel("median iterations", color="C1")
    ax1.set_title("(a) PALM vs lambda")
    for name, curves in per_layer.items():
        ks = range(1, len(curves["S"]) + 1)
        ax3.semilogy(ks, curves["S"], "o-", markersize=3, label=f"NMSE(S), {name}")
        ax3.semilogy(ks, curves["A"], "x--", markersize=3, label=f"NMSE(A), {name}")
    ax3.set_xlabel("layer")
    ax3.set_ylabel("mean NMSE")
    ax3.set_title("(b) LPALM per layer")
    ax3.legend(fontsize=8)
    ax3.grid(True, alpha=0.3)
    save_figure(fig, path)


def reproduce_table1(out_dir, *, quick: bool = False, seed: int = 0, device: str = "cpu", progress: bool = True,
                     **overrides) -> dict:
    """Entry point of ``unrolled reproduce lpalm-table1`` (``quick``: the tiny test-sized variant)."""
    cfg = replace(QUICK if quick else Table1Config(), **overrides)
    return run_table1(cfg, out_dir, seed=seed, device=device, progress=progress)
