"""The review's Table II from our own runs: time and parameter count of unrolled net vs iterative algorithm vs
generic network (``unrolled reproduce review-table2``).

Each system that has a row registers a :class:`Table2Row` (from its family's experiment registry module). A row's
``measure(out_dir, quick=..., seed=..., device=..., progress=...)`` trains / runs the three methods of that row side
by side and returns, for each of the columns ``"unrolled"``, ``"iterative"`` and ``"generic"``, a dict with

``name``
    the method (e.g. ``"ADMM-CSNet (K = 10)"``);
``time_s``
    seconds per problem (image, movie), measured in the same run as the other two columns;
``params``
    number of learned parameters (``None`` for the iterative algorithm);
``metric`` / ``metric_name``
    the accuracy it reaches at that time (e.g. PSNR in dB), so no time is quoted without its accuracy.

The review's own values (:data:`PAPER`) are printed beside ours, with each column's time divided by the unrolled
net's. ``--set rows=('DUBLID',)`` measures a subset; ``--set "dublid={'steps': 200}"`` passes settings to a row's
experiment (rows whose ``measure`` takes ``**settings``: ADMM-CSNet, DUBLID).
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from unrolled.core.registry import Experiment, Registry, register_experiment
from unrolled.experiments.report import markdown_table, write_json

COLUMNS = ("unrolled", "iterative", "generic")

#: Table II of the review: (reference, running time in s, parameter count) per column.
PAPER = {
    "ADMM-CSNet": {"unrolled": ("Yang et al. [14]", 2.61, 7.8e4), "iterative": ("Metzler et al. [64] (BM3D-AMP)", 12.59, None),
                   "generic": ("Kulkarni et al. [58] (ReconNet)", 2.83, 3.2e5)},
    "CORONA": {"unrolled": ("Solomon et al. [34]", 5.07, 1.8e3), "iterative": ("Beck et al. [29] (FISTA)", 15.33, None),
               "generic": ("He et al. [54] (ResNet)", 5.36, 8.3e3)},
    "DUBLID": {"unrolled": ("Li et al. [40]", 1.47, 2.3e4), "iterative": ("Perrone et al. [49] (TV)", 1462.90, None),
               "generic": ("Kupyn et al. [59] (DeblurGAN)", 10.29, 1.2e7)},
}


@dataclass(frozen=True)
class Table2Row:
    """One row of Table II: ``system`` (a key of :data:`PAPER`), its family and the function measuring it."""

    system: str
    family: str
    measure: Callable[..., dict]


TABLE2_ROWS: Registry[Table2Row] = Registry("Table II row")


def register_table2_row(row: Table2Row) -> Table2Row:
    """Add a row to ``review-table2`` (called by the family's experiment registry module)."""
    if row.system not in PAPER:
        raise ValueError(f"system {row.system!r} has no row in the review's Table II; known: {sorted(PAPER)}")
    return TABLE2_ROWS.register(row.system, row)


def _check_row(system: str, measured: dict) -> None:
    for col in COLUMNS:
        entry = measured.get(col)
        if not isinstance(entry, dict) or not {"name", "time_s", "params", "metric", "metric_name"} <= set(entry):
            raise ValueError(f"Table II row {system!r}: column {col!r} must give name, time_s, params, metric and "
                             f"metric_name; got {entry!r}")


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def settings_key(system: str) -> str:
    """The keyword that carries a row's settings: ``'ADMM-CSNet' -> 'admm_csnet'``."""
    return system.lower().replace("-", "_")


def _accepts_settings(fn: Callable) -> bool:
    params = inspect.signature(fn).parameters.values()
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _ratio(t, ref) -> float | None:
    return None if t is None or ref is None or ref <= 0 else t / ref


def _figure(path: Path, rows: dict) -> None:
    """Time of each column divided by the unrolled net's, ours beside the paper's, one group per row (log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from unrolled.experiments.report import save_figure

    systems = list(rows)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharey=True)
    for ax, who in zip(axes, ("ours", "paper")):
        for j, col in enumerate(COLUMNS):
            vals = []
            for system in systems:
                r = rows[system]
                t = r["ours"][col]["time_s"] if who == "ours" else r["paper"][col][1]
                ref = r["ours"]["unrolled"]["time_s"] if who == "ours" else r["paper"]["unrolled"][1]
                vals.append(_ratio(t, ref) or float("nan"))
            ax.bar([i + 0.27 * (j - 1) for i in range(len(systems))], vals, width=0.27, label=col)
        ax.set_yscale("log")
        ax.axhline(1.0, color="k", lw=0.6)
        ax.set_xticks(range(len(systems)), systems)
        ax.set_title("ours (one run, this machine)" if who == "ours" else "review, Table II", fontsize=9)
    axes[0].set_ylabel("time / unrolled net's time")
    axes[0].legend(fontsize=7)
    fig.set_dpi(100)
    save_figure(fig, path)


def reproduce_review_table2(out_dir, quick: bool = False, seed: int = 0, device: str = "cpu", progress: bool = False,
                            rows: tuple[str, ...] | None = None, **settings) -> dict:
    """Measure the registered rows and write ``results.json``, ``results.md`` and ``time_ratios.png``.

    Parameters
    ----------
    out_dir : path
        Output folder; each row's own experiment writes its files under ``out_dir / <system lower-cased>``.
    quick, seed, device, progress
        Passed to every row's ``measure``.
    rows : tuple of str, optional
        The systems to measure (keys of :data:`PAPER` with a registered row); default all registered.
    **settings
        ``<row key>=dict``: settings passed on to that row's experiment, the key being the system lower-cased
        with ``-`` as ``_`` (``admm_csnet={'steps': 200}``, ``dublid={'steps': 150}``); only rows whose
        ``measure`` takes settings accept them.
    """
    registered = dict(TABLE2_ROWS.items())
    chosen = sorted(registered) if rows is None else list(rows)
    unknown = [r for r in chosen if r not in registered]
    if unknown or not chosen:
        raise ValueError(f"rows must name registered Table II rows {sorted(registered)}, got {rows!r}")
    keys = {settings_key(system): system for system in registered}
    bad = sorted(set(settings) - set(keys))
    if bad:
        raise ValueError(f"review-table2 has no setting {bad}; settings are one dict per row: {sorted(keys)}")
    for key, value in settings.items():
        if not isinstance(value, dict):
            raise ValueError(f"{key} must be a dict of settings for the {keys[key]} row, got {value!r}")
        if value and not _accepts_settings(registered[keys[key]].measure):
            raise ValueError(f"{key}: the {keys[key]} row takes no settings")
        if keys[key] not in chosen:
            raise ValueError(f"{key} given but the {keys[key]} row is not among rows={chosen}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    measured_rows, wall = {}, {}
    for system in chosen:
        row = registered[system]
        extra = settings.get(settings_key(system), {})
        start = time.perf_counter()
        measured = row.measure(out / system.lower(), quick=quick, seed=seed, device=device, progress=progress,
                               **extra)
        wall[system] = time.perf_counter() - start
        _check_row(system, measured)
        measured_rows[system] = {"ours": measured, "paper": PAPER[system], "settings": extra,
                                 "wall_s": wall[system]}
    header = ["system", "column", "method (ours)", "time / problem (s)", "time / unrolled", "params", "accuracy",
              "paper: method", "paper: time (s)", "paper: time / unrolled", "paper: params"]
    table = []
    for system, r in measured_rows.items():
        ours_ref, paper_ref = r["ours"]["unrolled"]["time_s"], r["paper"]["unrolled"][1]
        for col in COLUMNS:
            ours, (ref, t, n) = r["ours"][col], r["paper"][col]
            table.append([system, col, ours["name"], _fmt(ours["time_s"], ".3g"),
                          _fmt(_ratio(ours["time_s"], ours_ref), ".3g"), _fmt(ours["params"], ".3g"),
                          f"{ours['metric']:.3g} {ours['metric_name']}", ref, _fmt(t, ".2f"),
                          _fmt(_ratio(t, paper_ref), ".3g"), _fmt(n, ".2g")])
    threads = torch.get_num_threads()
    md = (f"# Table II of the review, from our runs{' (quick)' if quick else ''}\n\nTimes are per problem, the "
          "three columns of a row measured side by side in one run on this machine "
          f"({device}, {threads} torch thread(s)); the paper's times come from other machines and sizes, so "
          "compare ratios within a row (`time / unrolled`), not seconds across tables.\n\n"
          + markdown_table(header, table) + "\n\n![time ratios](time_ratios.png)\n")
    _figure(out / "time_ratios.png", measured_rows)
    (out / "results.md").write_text(md)
    write_json(out / "results.json", {"quick": quick, "seed": seed, "device": device, "threads": threads,
                                      "rows": measured_rows})
    print(md)
    return measured_rows


register_experiment(Experiment(
    "review-table2", "Algorithm-unrolling review, Table II",
    "running time and parameter count of unrolled net vs iterative algorithm vs generic network for every system "
    "with a registered row (ADMM-CSNet, DUBLID, CORONA), each at the accuracy it reaches; "
    "--set rows=(...) picks rows, --set dublid={...} / admm_csnet={...} pass settings to a row's experiment",
    reproduce_review_table2,
))
