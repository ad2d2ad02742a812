"""LPALM paper, ablations on the synthetic data of Sec. 3.1 (appendix D).

* Table 3 (App. D.2): S-update LISTA-CP or ISTA-LLT x A-update ISTA-LL or
  explicit; median NMSE(S) on the test set (paper: 0.00085, 0.00097, 0.7943, 0.7948).
* Table 4 (App. D.5): unsupervised / supervised on S / on A / on S+A losses;
  median NMSE(S)+NMSE(A) (paper: 0.568, 0.00115, 0.00191, 0.00112).
* Fig. 10 (App. D.4): NMSE(S)+NMSE(A) vs the number of layers K (paper: best at K=50).

Every variant is one option set of :class:`~unrolled.separation.nets.LPALM`,
initialised as in appendix A and trained with Adam through the shared Trainer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from unrolled.experiments.lpalm_common import PAPER, TrainSettings, fmt, md_table, median, synthetic_data, train_or_load
from unrolled.experiments.report import save_figure, write_json
from unrolled.separation.data import SyntheticConfig
from unrolled.separation.training import evaluate

TABLE3_VARIANTS = (("lista-cp", "ista-ll"), ("lista-cp", "explicit"), ("ista-llt", "ista-ll"), ("ista-llt", "explicit"))
PAPER_TABLE3 = {("lista-cp", "ista-ll"): 0.00085, ("lista-cp", "explicit"): 0.00097,
                ("ista-llt", "ista-ll"): 0.7943, ("ista-llt", "explicit"): 0.7948}
TABLE4_LOSSES = ("unsupervised", "s", "a", "s+a")
PAPER_TABLE4 = {"unsupervised": 0.568, "s": 0.00115, "a": 0.00191, "s+a": 0.00112}
FIG10_LAYERS = (5, 10, 25, 50)


@dataclass
class AblationConfig:
    """Settings shared by the three ablations (training shortened to fit a CPU budget)."""

    syn: SyntheticConfig = field(default_factory=SyntheticConfig)
    n_val: int = 50
    train: TrainSettings = field(default_factory=lambda: TrainSettings(max_steps=6000, val_every=1000))
    layers: tuple[int, ...] = FIG10_LAYERS


QUICK = AblationConfig(syn=SyntheticConfig(n_matrices=40, n_train=30, t=100), n_val=6,
                       train=TrainSettings(n_layers=4, max_steps=20, val_every=10, lr=1e-3), layers=(2, 4))


def _variant(out_dir: Path, data, cfg: AblationConfig, *, seed: int, device: str, progress: bool, log, **options) -> dict:
    fit, val, test = data
    net, info = train_or_load(out_dir, fit, val, cfg.train, seed=seed, device=device, progress=progress, log=log, **options)
    err = evaluate(net, test.to(device=device))
    total = err["S"] + err["A"]
    return {**{k: v for k, v in options.items()}, "median_nmse_s": median(err["S"]), "median_nmse_a": median(err["A"]),
            "median_nmse_sum": median(total), "mean_nmse_sum": float(total.mean()), "train": info}


def _header(cfg: AblationConfig, data) -> str:
    fit, val, test = data
    t = cfg.train
    return (f"{len(fit)} train / {len(val)} validation / {len(test)} test mixtures (Sec. 3.1 data, t={cfg.syn.t}); "
            f"each variant initialised as in appendix A and trained with Adam lr {t.lr:g}, batch {t.batch_size}, "
            f"{t.max_steps} steps ({t.max_steps * t.batch_size / len(fit):.1f} epochs; the paper trains 100 epochs). "
            "NMSE after permutation/scale correction, medians over the test set.\n")


def _finish(out_dir: Path, name: str, cfg: AblationConfig, seed: int, device: str, rows: list[dict], md: str,
            paper: dict) -> dict:
    payload = {"experiment": name, "paper": PAPER, "config": asdict(cfg), "seed": seed, "device": device,
               "rows": rows, "paper_values": paper}
    write_json(out_dir / "results.json", payload)
    (out_dir / "results.md").write_text(md)
    return payload


def run_table3(cfg: AblationConfig, out_dir, *, seed=0, device="cpu", progress=True, log=print) -> dict:
    """Table 3: the four S/A update combinations; writes results.json, results.md, table3.png."""
    out_dir = Path(out_dir)
    data = synthetic_data(cfg.syn, cfg.n_val, seed)
    rows = []
    for s_up, a_up in TABLE3_VARIANTS:
        r = _variant(out_dir / f"{s_up}_{a_up}", data, cfg, seed=seed + 3, device=device, progress=progress, log=log,
                     s_update=s_up, a_update=a_up)
        rows.append(r)
        log(f"  S:{s_up:<8} A:{a_up:<8} median NMSE(S) {r['median_nmse_s']:.4g} (paper {PAPER_TABLE3[(s_up, a_up)]})")
    table = [[r["s_update"], r["a_update"], fmt(r["median_nmse_s"]), fmt(PAPER_TABLE3[(r["s_update"], r["a_update"])]),
              fmt(r["median_nmse_a"])] for r in rows]
    md = "\n".join(["# LPALM Table 3: S/A update ablation\n", _header(cfg, data),
                    md_table(["S-update", "A-update", "median NMSE(S), ours", "paper", "median NMSE(A), ours"], table), ""])
    _bar(out_dir / "table3.png", [f"{r['s_update']}\n{r['a_update']}" for r in rows], [r["median_nmse_s"] for r in rows],
         [PAPER_TABLE3[(r["s_update"], r["a_update"])] for r in rows], "median NMSE(S)")
    log(md)
    return _finish(out_dir, "lpalm-table3", cfg, seed, device, rows, md, {f"{s}/{a}": v for (s, a), v in PAPER_TABLE3.items()})


def run_table4(cfg: AblationConfig, out_dir, *, seed=0, device="cpu", progress=True, log=print) -> dict:
    """Table 4: the four training losses; writes results.json, results.md, table4.png."""
    out_dir = Path(out_dir)
    data = synthetic_data(cfg.syn, cfg.n_val, seed)
    rows = []
    for loss in TABLE4_LOSSES:
        r = _variant(out_dir / loss.replace("+", "_"), data, cfg, seed=seed + 3, device=device, progress=progress,
                     log=log, loss=loss)
        rows.append(r)
        log(f"  loss {loss:<12} median NMSE(S)+NMSE(A) {r['median_nmse_sum']:.4g} (paper {PAPER_TABLE4[loss]})")
    table = [[r["loss"], fmt(r["median_nmse_sum"]), fmt(PAPER_TABLE4[r["loss"]]), fmt(r["median_nmse_s"]),
              fmt(r["median_nmse_a"])] for r in rows]
    md = "\n".join(["# LPALM Table 4: loss ablation\n", _header(cfg, data),
                    md_table(["loss", "median NMSE(S)+NMSE(A), ours", "paper", "median NMSE(S)", "median NMSE(A)"], table), ""])
    _bar(out_dir / "table4.png", [r["loss"] for r in rows], [r["median_nmse_sum"] for r in rows],
         [PAPER_TABLE4[r["loss"]] for r in rows], "median NMSE(S)+NMSE(A)")
    log(md)
    return _finish(out_dir, "lpalm-table4", cfg, seed, device, rows, md, PAPER_TABLE4)


def run_fig10(cfg: AblationConfig, out_dir, *, seed=0, device="cpu", progress=True, log=print) -> dict:
    """Fig. 10: NMSE(S)+NMSE(A) vs K; writes results.json, results.md, fig10.png."""
    out_dir = Path(out_dir)
    data = synthetic_data(cfg.syn, cfg.n_val, seed)
    rows = []
    for K in cfg.layers:
        r = _variant(out_dir / f"K{K}", data, cfg, seed=seed + 3, device=device, progress=progress, log=log, n_layers=K)
        rows.append(r)
        log(f"  K={K:<3} median NMSE(S)+NMSE(A) {r['median_nmse_sum']:.4g}")
    table = [[r["n_layers"], fmt(r["median_nmse_sum"]), fmt(r["mean_nmse_sum"]), fmt(r["median_nmse_s"]),
              fmt(r["median_nmse_a"])] for r in rows]
    best = min(rows, key=lambda r: r["median_nmse_sum"])["n_layers"]
    md = "\n".join(["# LPALM Fig. 10: NMSE vs number of layers\n", _header(cfg, data),
                    f"Paper: the NMSE first decreases with K, is best at K = 50, then increases (overfitting). "
                    f"Ours: best K = {best} among {list(cfg.layers)} (same step budget for every K).\n",
                    md_table(["K", "median NMSE(S)+NMSE(A)", "mean", "median NMSE(S)", "median NMSE(A)"], table), ""])
    _line(out_dir / "fig10.png", [r["n_layers"] for r in rows], [r["median_nmse_sum"] for r in rows])
    log(md)
    return _finish(out_dir, "lpalm-fig10", cfg, seed, device, rows, md, {"best_K": 50})


def _bar(path: Path, labels: list[str], ours: list[float], paper: list[float], ylabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], ours, width=0.4, label="ours")
    ax.bar([x + 0.2 for x in xs], paper, width=0.4, label="paper")
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.legend()
    save_figure(fig, path)


def _line(path: Path, ks: list[int], ys: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.semilogy(ks, ys, "o-")
    ax.set_xlabel("number of layers K")
    ax.set_ylabel("median NMSE(S)+NMSE(A), test")
    ax.grid(True, alpha=0.3)
    save_figure(fig, path)


def _entry(runner):
    def reproduce(out_dir, *, quick: bool = False, seed: int = 0, device: str = "cpu", progress: bool = True, **overrides):
        cfg = replace(QUICK if quick else AblationConfig(), **overrides)
        return runner(cfg, out_dir, seed=seed, device=device, progress=progress)

    reproduce.__doc__ = f"Entry point of ``unrolled reproduce`` for {runner.__name__[4:]} (``quick``: tiny variant)."
    return reproduce


reproduce_table3 = _entry(run_table3)
reproduce_table4 = _entry(run_table4)
reproduce_fig10 = _entry(run_fig10)
