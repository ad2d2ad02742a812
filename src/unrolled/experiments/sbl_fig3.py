"""Reproduction of He et al. (NIPS 2017), Fig. 3(a,b) and 3(c), and the SBL-vs-net timing.

* ``sbl-fig3ab``: strict and loose accuracy vs ``d`` (``n = 20``, ``m = 100``, correlated dictionary of
  Sec. 4.1) for SBL, l1 (FISTA), IHT, LISTA, the IHT-net, MaxSparseNet and the GF-LSTM. Each net is trained
  once on online data with ``d`` drawn per sample in ``[min d, max d]`` (the paper does not say whether
  it trains one net per ``d``; ``train_d=(d_min, d_max)`` sets another range and ``train_d_weights`` the
  relative frequencies of its values), then evaluated on ``n_trials`` fresh problems per ``d``.
* ``sbl-fig3c``: the ablation at ``d/n = 0.4`` (``d = 8``): gated feedback or not, LSTM or GRU, small or
  4x large, nets trained at ``d = 8``.
* ``sbl-timing``: seconds per solved problem of the GF-LSTM (small and large) and of SBL run to
  convergence, on the same problems, measured side by side; the net's cost does not depend on its
  weights, so untrained nets of the trained architectures are timed.

``reproduce_*(out_dir, quick=False, seed=0, device='cpu', progress=True, **overrides)`` writes
``results.json``, ``results.md`` and a PNG.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from unrolled.experiments.report import markdown_table, save_figure, write_json
from unrolled.experiments.sbl_common import (NetSpec, build_net, label, net_of, scores, time_side_by_side,
                                             train_net, warm_start_note, with_overrides)
from unrolled.sbl.data import CorrelatedSparseProblem, check_d_weights
from unrolled.sbl.metrics import least_squares_on_support, loose_accuracy, strict_accuracy, top_d_support
from unrolled.sbl.solvers import sbl

PAPER_FIG3AB = ("Paper (Sec. 4.1, Fig. 3a,b; 1e5 trials): on strict accuracy only SBL is somewhat competitive with the "
                "GF-LSTM, which is at or above SBL at every d, and the other learned nets are much worse; on loose "
                "accuracy the GF-LSTM is far above every method. (Our text copy of the paper has no numeric values "
                "of the curves, so the comparison is qualitative.)")
SCREENING_NOTE = ("'top-k + SBL' rows (this library's addition, not in the paper): SBL run only on the k atoms the "
                  "trained net scores highest (`unrolled.sbl.screening.screened_sbl`; k = `screen_k`, default 2n); "
                  "the net proposes, SBL decides.")
PAPER_FIG3C = ("Paper (Fig. 3c, d/n = 0.4): gated feedback matters most, then model size (4x large better); LSTM "
               "and GRU cells perform similarly.")
PAPER_TIMING = ("Paper (Table 1, photometric stereo): the nets are 20-60x faster than SBL (e.g. Bunny r=10: "
                "SBL 35.46 s, MaxSparseNet 0.90 s, GF-LSTM 0.63 s).")


@dataclass
class Fig3Config:
    """Settings (defaults: the full run used for docs/results)."""

    n: int = 20
    m: int = 100
    d_values: tuple[int, ...] = (4, 5, 6, 7, 8, 9, 10)
    train_d: tuple[int, int] | None = None  # (d_min, d_max) the nets train on (default: the range of d_values)
    train_d_weights: tuple[float, ...] | None = None  # relative frequency of each d in train_d (default: uniform)
    noise_std: float = 1e-4
    methods: tuple[str, ...] = ("sbl", "l1", "iht", "lista", "iht-net", "maxsparsenet", "gf-lstm", "gf-lstm+sbl")
    screen_k: int | None = None    # candidates kept by the '<net>+sbl' methods (default: min(2n, m))
    ablation: tuple[str, ...] = ("gf-lstm", "gf-gru", "lstm", "gf-lstm-large", "gf-gru-large", "lstm-large")
    ablation_d: int = 8
    ablation_hidden: int = 64      # base hidden units of the ablation's small nets (large: 2x, 4x the parameters)
    ablation_steps: int = 1500
    n_trials: int = 2000
    sbl_lam: float = 1e-7
    l1_lam: float = 1e-3
    net: NetSpec = field(default_factory=lambda: NetSpec(steps=4000, steps_baselines=1500))
    timing_trials: int = 1000
    timing_updates: tuple[str, ...] = ("mackay", "em")


QUICK = Fig3Config(d_values=(4, 8), methods=("sbl", "l1", "iht", "lista", "iht-net", "maxsparsenet", "gf-lstm",
                                           "gf-lstm+sbl"),
                   ablation=("gf-lstm", "lstm", "gf-gru-large"), ablation_hidden=16, ablation_steps=20,
                   n_trials=64, timing_trials=64,
                   timing_updates=("mackay",),
                   net=NetSpec(hidden=16, n_steps=3, unrolled_layers=3, msn_layers=2, msn_width=32, steps=20,
                               batch_size=32, val_every=10, n_val=64))


def _config(quick: bool, overrides: dict) -> Fig3Config:
    return with_overrides(QUICK if quick else Fig3Config(), overrides)


def _train_d_range(cfg: Fig3Config) -> tuple[int, int]:
    """The ``(d_min, d_max)`` the nets of Fig. 3(a,b) train on: ``cfg.train_d``, or the range of ``d_values``."""
    if cfg.train_d is None:
        return (min(cfg.d_values), max(cfg.d_values))
    if len(cfg.train_d) != 2:
        raise ValueError(f"train_d must be a pair (d_min, d_max), got {cfg.train_d!r}")
    d_min, d_max = (int(v) for v in cfg.train_d)
    if not 1 <= d_min <= d_max <= cfg.n:
        raise ValueError(f"train_d must satisfy 1 <= d_min <= d_max <= n = {cfg.n}, got {cfg.train_d!r}")
    return (d_min, d_max)


def _weights_note(cfg: Fig3Config) -> str:
    if cfg.train_d_weights is None:
        return ""
    return " (d drawn with relative weights " + ", ".join(f"{w:g}" for w in cfg.train_d_weights) + ")"


def _problem(cfg: Fig3Config, d, seed: int, dtype=torch.float64, d_weights=None) -> CorrelatedSparseProblem:
    if isinstance(d, int) and d > cfg.n or not isinstance(d, int) and max(d) > cfg.n:
        raise ValueError(f"d={d} is larger than n={cfg.n}")
    return CorrelatedSparseProblem(n=cfg.n, m=cfg.m, d=d, noise_std=cfg.noise_std, seed=seed, dtype=dtype,
                                   d_weights=d_weights)


def _train_all(cfg: Fig3Config, methods, d, out_dir: Path, *, seed, device, progress, log) -> dict:
    nets = {}
    for method in methods:
        if net_of(method) not in (None, method) and net_of(method) not in methods:
            raise ValueError(f"method {method!r} screens with the {net_of(method)!r} net: list it in methods too")
    for method in methods:
        if net_of(method) != method:  # solvers, and '<net>+sbl' (uses <net>)
            continue
        dt = torch.float64 if method in ("lista", "iht-net") else torch.float32
        problem = _problem(cfg, d, seed, dtype=dt, d_weights=None if isinstance(d, int) else cfg.train_d_weights)
        d_max = d if isinstance(d, int) else max(d)
        net, res = train_net(method, problem, cfg.net, out_dir, d_max=d_max, seed=seed, device=device,
                             progress=progress, log=log)
        nets[method] = (net, {"steps": res.n_steps, "seconds": res.seconds, "best_val": res.best_val})
    return nets


EVAL_CHUNK = 2000  # test problems scored at once (bounds memory at n_trials = 1e5, the paper's count)


def _chunked_scores(method: str, y, Phi, d: int, **kw) -> tuple:
    """:func:`scores` over ``y`` in chunks of :data:`EVAL_CHUNK` rows; solver statistics (means over problems)
    are combined weighted by chunk size. Every method treats problems independently, so chunks change nothing."""
    parts, stats = [], {}
    for i in range(0, y.shape[0], EVAL_CHUNK):
        s, st = scores(method, y[i:i + EVAL_CHUNK], Phi, d, **kw)
        parts.append(s)
        for k, v in st.items():
            stats[k] = stats.get(k, 0.0) + v * s.shape[0] / y.shape[0]
    return torch.cat(parts), stats


def _ls_relative_error(y, Phi, support, x):
    """Per-problem ``||x_LS - x|| / ||x||`` of amplitude recovery by least squares on the decoded ``support``."""
    return torch.linalg.vector_norm(least_squares_on_support(y, Phi, support) - x, dim=-1) \
        / torch.linalg.vector_norm(x, dim=-1)


def _evaluate(cfg: Fig3Config, methods, nets, d: int, seed: int, device: str) -> list[dict]:
    problem = _problem(cfg, d, seed)
    y, x = problem.sample(cfg.n_trials, torch.Generator().manual_seed(seed + 1000 + d))
    y, x = y.to(device), x.to(device)
    Phi = problem.Phi.to(device)
    rows = []
    for method in methods:
        t0 = time.perf_counter()
        s, stats = _chunked_scores(method, y, Phi, d, net=nets.get(net_of(method), (None,))[0], sbl_lam=cfg.sbl_lam,
                                   l1_lam=cfg.l1_lam, screen_k=cfg.screen_k)
        sec = time.perf_counter() - t0
        support = top_d_support(s, d)
        rel = torch.cat([_ls_relative_error(y[i:i + EVAL_CHUNK], Phi, support[i:i + EVAL_CHUNK], x[i:i + EVAL_CHUNK])
                         for i in range(0, y.shape[0], EVAL_CHUNK)]).mean()
        rows.append({"method": method, "d": d, "d_over_n": d / cfg.n, "strict": float(strict_accuracy(s, x)),
                     "loose": float(loose_accuracy(s, x, cfg.n)), "rel_error_ls": float(rel),
                     "seconds_per_problem": sec / cfg.n_trials, **stats})
    return rows


def _plot(path: Path, panels: dict, xs: list[float], xlabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels.items()):
        for name, ys in curves.items():
            ax.plot(xs, ys, marker="o", markersize=3, label=name)
        ax.set_title(title); ax.set_xlabel(xlabel); ax.grid(True, alpha=0.3); ax.legend(fontsize=7)
    save_figure(fig, path)


def reproduce_fig3ab(out_dir, *, quick: bool = False, seed: int = 0, device: str = "cpu", progress: bool = True,
                     log=print, **overrides) -> dict:
    """Fig. 3(a,b): strict and loose accuracy vs d for all methods; writes results.json/md, accuracy_vs_d.png."""
    cfg = _config(quick, dict(overrides))
    out_dir = Path(out_dir)
    d_range = _train_d_range(cfg)
    if cfg.train_d_weights is not None:  # checked before any training starts
        check_d_weights(cfg.train_d_weights, d_range)
    log(f"sbl-fig3ab: n={cfg.n}, m={cfg.m}, d in {list(cfg.d_values)}, {cfg.n_trials} trials per d")
    nets = _train_all(cfg, cfg.methods, d_range, out_dir, seed=seed, device=device, progress=progress, log=log)
    rows = []
    for d in cfg.d_values:
        rows += _evaluate(cfg, cfg.methods, nets, d, seed, device)
        log("  d=%d: " % d + ", ".join(f"{label(r['method'])} {r['strict']:.3f}/{r['loose']:.3f}"
                                        for r in rows if r["d"] == d))
    table = {key: [[label(mth)] + [next(r[key] for r in rows if r["method"] == mth and r["d"] == d)
                                    for d in cfg.d_values] for mth in cfg.methods] for key in ("strict", "loose")}
    header = ["method"] + [f"d={d} ({d / cfg.n:.2f})" for d in cfg.d_values]
    def strict(method, d):
        return next(r["strict"] for r in rows if r["method"] == method and r["d"] == d)

    vs_sbl = {m: {d: strict(m, d) - strict("sbl", d) for d in cfg.d_values}
              for m in cfg.methods if m.startswith("gf-") and "sbl" in cfg.methods}  # the paper's nets (+ screened)
    payload = {"experiment": "sbl-fig3ab", "config": asdict(cfg), "seed": seed, "rows": rows,
               "training": {m: v[1] for m, v in nets.items()},
               "minus_sbl_strict": {m: {str(k): v for k, v in diff.items()} for m, diff in vs_sbl.items()},
               "paper": PAPER_FIG3AB}
    write_json(out_dir / "results.json", payload)
    md = [f"# SBL family, Fig. 3(a,b): accuracy vs d (n={cfg.n}, m={cfg.m}, correlated dictionary)", "",
          f"{cfg.n_trials} test problems per d (the paper: 1e5), noise std {cfg.noise_std}; " + (
              "nets evaluated as saved (no training in this run)." if cfg.net.steps == 0 else
              f"nets trained once on d in [{d_range[0]}, {d_range[1]}]{_weights_note(cfg)} with online data "
              f"({cfg.net.steps} steps, batch {cfg.net.batch_size}, {cfg.net.loss} support loss)."), "",
          "## Strict accuracy (exact support)", "", markdown_table(header, _fmt(table["strict"])), "",
          f"## Loose accuracy (true positives among the top n={cfg.n})", "", markdown_table(header, _fmt(table["loose"])),
          "", "## Paper", "", PAPER_FIG3AB, ""]
    for m, diff in vs_sbl.items():
        md += [f"{label(m)} minus SBL, strict accuracy per d: " + ", ".join(f"d={d}: {v:+.3f}" for d, v in diff.items()), ""]
    if any(net_of(m) not in (None, m) for m in cfg.methods):
        md += [SCREENING_NOTE, ""]
    md += ["Training: " + ", ".join(f"{label(m)} {v[1]['steps']} steps / {v[1]['seconds']:.0f} s" for m, v in nets.items())]
    md += [""] + warm_start_note(cfg.net)
    (out_dir / "results.md").write_text("\n".join(md) + "\n")
    xs = [d / cfg.n for d in cfg.d_values]
    _plot(out_dir / "accuracy_vs_d.png", {k.capitalize() + " accuracy": {label(m): table[k][i][1:] for i, m in
                                                                           enumerate(cfg.methods)} for k in table},
          xs, "d / n")
    log("\n".join(md))
    return payload


def _fmt(rows: list[list]) -> list[list]:
    return [[r[0]] + [f"{v:.3f}" for v in r[1:]] for r in rows]


def reproduce_fig3c(out_dir, *, quick: bool = False, seed: int = 0, device: str = "cpu", progress: bool = True,
                    log=print, **overrides) -> dict:
    """Fig. 3(c): strict accuracy at d/n = 0.4 of the recurrent variants (+ SBL); writes results and ablation.png."""
    cfg = _config(quick, dict(overrides))
    out_dir = Path(out_dir)
    d = cfg.ablation_d
    log(f"sbl-fig3c: ablation at d={d} (d/n={d / cfg.n:.2f}), {cfg.n_trials} trials")
    cfg = replace(cfg, net=replace(cfg.net, hidden=cfg.ablation_hidden, steps=cfg.ablation_steps))
    nets = _train_all(cfg, cfg.ablation, d, out_dir, seed=seed, device=device, progress=progress, log=log)
    rows = _evaluate(cfg, ("sbl",) + tuple(cfg.ablation), nets, d, seed, device)
    for r in rows:
        if r["method"] in nets:
            r["n_params"] = sum(p.numel() for p in nets[r["method"]][0].parameters())
    payload = {"experiment": "sbl-fig3c", "config": asdict(cfg), "seed": seed, "rows": rows,
               "training": {m: v[1] for m, v in nets.items()}, "paper": PAPER_FIG3C}
    write_json(out_dir / "results.json", payload)
    table = [[label(r["method"]), r.get("n_params", "—"), f"{r['strict']:.3f}", f"{r['loose']:.3f}"] for r in rows]
    md = [f"# SBL family, Fig. 3(c): ablation at d/n = {d / cfg.n:.2f}", "",
          f"{cfg.n_trials} test problems; nets trained at d={d} ({cfg.net.steps} steps, batch {cfg.net.batch_size}, "
          f"{cfg.net.loss} support loss).", "",
          markdown_table(["method", "parameters", "strict", "loose"], table), "", "## Paper", "", PAPER_FIG3C, ""]
    (out_dir / "results.md").write_text("\n".join(md) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar([label(r["method"]) for r in rows], [r["strict"] for r in rows])
    ax.set_ylabel("strict accuracy"); ax.set_title(f"d/n = {d / cfg.n:.2f}"); ax.tick_params(axis="x", rotation=30)
    save_figure(fig, out_dir / "ablation.png")
    log("\n".join(md))
    return payload


def reproduce_timing(out_dir, *, quick: bool = False, seed: int = 0, device: str = "cpu", progress: bool = True,
                     log=print, **overrides) -> dict:
    """Seconds per solved problem: GF-LSTM (small, large) vs SBL to convergence, side by side, as ratios."""
    cfg = _config(quick, dict(overrides))
    out_dir = Path(out_dir)
    d = cfg.ablation_d
    problem = _problem(cfg, d, seed)
    y, _ = problem.sample(cfg.timing_trials, torch.Generator().manual_seed(seed + 5))
    y, Phi = y.to(device), problem.Phi.to(device)
    rows = []
    for method in ("gf-lstm", "gf-lstm-large"):
        net = build_net(method, Phi, cfg.net, d)[0].to(device).eval()
        y32 = y.float()
        for update in cfg.timing_updates:
            holder = {}

            def run_sbl():
                holder["res"] = sbl(y, Phi, cfg.sbl_lam, update=update, max_iter=2000, tol=1e-6)

            def run_net():
                with torch.no_grad():
                    net(y32)

            t_net, t_sbl = time_side_by_side(run_net, run_sbl, repeats=2 if quick else 3)
            rows.append({"net": method, "sbl_update": update, "net_s_per_problem": t_net / len(y),
                         "sbl_s_per_problem": t_sbl / len(y), "ratio_sbl_over_net": t_sbl / t_net,
                         "sbl_mean_iter": float(holder["res"].n_iter.double().mean()),
                         "sbl_converged": float(holder["res"].converged.double().mean()),
                         "n_params": sum(p.numel() for p in net.parameters())})
            log(f"  {label(method)} vs SBL ({update}): {t_net / len(y) * 1e6:.1f} us vs {t_sbl / len(y) * 1e6:.1f} us "
                f"per problem -> SBL/net = {t_sbl / t_net:.1f}x")
    payload = {"experiment": "sbl-timing", "config": asdict(cfg), "seed": seed, "rows": rows,
               "threads": torch.get_num_threads(), "device": device, "paper": PAPER_TIMING}
    write_json(out_dir / "results.json", payload)
    table = [[label(r["net"]), r["n_params"], f"SBL ({r['sbl_update']}, {r['sbl_mean_iter']:.0f} it.)",
              f"{r['net_s_per_problem'] * 1e6:.1f}", f"{r['sbl_s_per_problem'] * 1e6:.1f}", f"{r['ratio_sbl_over_net']:.1f}x"]
             for r in rows]
    md = [f"# SBL family: inference time per problem (d={d}, n={cfg.n}, m={cfg.m}, batch of {len(y)})", "",
          f"{torch.get_num_threads()} thread(s) on {device}, best of repeats, net and SBL alternated in one process.", "",
          markdown_table(["net", "parameters", "solver", "net us/problem", "SBL us/problem", "SBL / net"], table), "",
          "## Paper", "", PAPER_TIMING, ""]
    (out_dir / "results.md").write_text("\n".join(md) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar([f"{label(r['net'])}\nvs SBL {r['sbl_update']}" for r in rows], [r["ratio_sbl_over_net"] for r in rows])
    ax.set_ylabel("SBL time / net time"); save_figure(fig, out_dir / "timing.png")
    log("\n".join(md))
    return payload
