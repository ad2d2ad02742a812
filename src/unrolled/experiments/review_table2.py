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

The review's own values (:data:`PAPER`) are printed beside ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

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


def reproduce_review_table2(out_dir, quick: bool = False, seed: int = 0, device: str = "cpu", progress: bool = False,
                            **settings) -> dict:
    """Measure every registered row and write ``results.json`` and ``results.md`` to ``out_dir``."""
    if settings:
        raise ValueError(f"review-table2 takes no settings; got {sorted(settings)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for system, row in sorted(TABLE2_ROWS.items()):
        measured = row.measure(out / system.lower(), quick=quick, seed=seed, device=device, progress=progress)
        _check_row(system, measured)
        rows[system] = {"ours": measured, "paper": PAPER[system]}
    header = ["system", "column", "method (ours)", "time / problem (s)", "params", "accuracy",
              "paper: method", "paper: time (s)", "paper: params"]
    table = []
    for system, r in rows.items():
        for col in COLUMNS:
            ours, (ref, t, n) = r["ours"][col], r["paper"][col]
            table.append([system, col, ours["name"], _fmt(ours["time_s"], ".3g"), _fmt(ours["params"], ".3g"),
                          f"{ours['metric']:.3g} {ours['metric_name']}", ref, _fmt(t, ".2f"), _fmt(n, ".2g")])
    md = ("# Table II of the review, from our runs\n\nTimes are per problem, the three columns of a row measured side "
          "by side in one run on this machine; the paper's times come from other machines and sizes, so compare "
          "ratios within a row, not seconds across tables.\n\n" + markdown_table(header, table) + "\n")
    (out / "results.md").write_text(md)
    write_json(out / "results.json", {"quick": quick, "seed": seed, "device": device, "rows": rows})
    print(md)
    return rows


register_experiment(Experiment(
    "review-table2", "Algorithm-unrolling review, Table II",
    "running time and parameter count of unrolled net vs iterative algorithm vs generic network for every system "
    "with a registered row (ADMM-CSNet, DUBLID, CORONA), each at the accuracy it reaches",
    reproduce_review_table2,
))
