"""Side-by-side benchmarks (``unrolled benchmark NAME``), reported as ratios measured in one run.

Families register theirs into :data:`unrolled.core.registry.BENCHMARKS` (re-exported here). :func:`run_all` is
``unrolled benchmark all`` with a choice of benchmarks (``only`` / ``skip``), and :func:`plot_ratios` draws its
table.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

from unrolled.core.registry import BENCHMARKS, Benchmark

__all__ = ["BENCHMARKS", "Benchmark", "run_all", "plot_ratios"]


def _names(only: Iterable[str] | None, skip: Iterable[str]) -> list[str]:
    included = [n for n, b in sorted(BENCHMARKS.items()) if b.in_all]
    for arg, names in (("only", only or ()), ("skip", skip)):
        unknown = sorted(set(names) - set(BENCHMARKS))
        if unknown:
            raise ValueError(f"{arg} names unknown benchmarks {unknown}; choose from {sorted(BENCHMARKS)}")
    chosen = list(only) if only is not None else included
    skipped = set(skip)
    return [n for n in chosen if n not in skipped]


def run_all(out_dir="unrolled-bench", *, only: Iterable[str] | None = None, skip: Iterable[str] = (),
            quick: bool = False, seed: int = 0, device: str = "cpu") -> dict:
    """Run the benchmarks of ``unrolled benchmark all`` (or ``only`` those, less ``skip``) and write one table.

    Writes ``all.json`` (the ratio rows, each with its benchmark's name, the wall time of every benchmark and
    the machine's thread settings and load) and ``all.md`` in ``out_dir``, as the CLI's ``all`` does; returns
    the JSON payload.

    Raises
    ------
    ValueError
        When ``only`` or ``skip`` names a benchmark that is not registered.
    """
    from unrolled.core.registry import load_families
    from unrolled.experiments.bench_cli import machine_info, ratio_table
    from unrolled.experiments.report import write_json

    load_families()
    skip = list(skip)
    names = _names(None if only is None else list(only), skip)
    rows, wall = [], {}
    for name in names:
        print(f"== benchmark {name} ==", flush=True)
        t0 = time.perf_counter()
        result = BENCHMARKS[name].run(out_dir=out_dir, quick=quick, seed=seed, device=device)
        wall[name] = time.perf_counter() - t0
        rows += [{"benchmark": name, **r} for r in result.get("ratios", [])]
    machine = machine_info(device)
    table = (f"# unrolled benchmark all{' --quick' if quick else ''} ({', '.join(names)})\n\nreference time / ours "
             f"(> 1: ours faster), each row measured side by side in one process; {machine['summary']}\n\n"
             + ratio_table(rows) + "\n\nwall time per benchmark: "
             + ", ".join(f"{n} {s:.0f} s" for n, s in wall.items()))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "all.md").write_text(table + "\n")
    payload = {"quick": quick, "seed": seed, "benchmarks": names, "rows": rows, "wall_s": wall, "machine": machine}
    write_json(out / "all.json", payload)
    print(table)
    return payload


def plot_ratios(rows: list[dict], path) -> None:
    """Horizontal bars of ``reference time / ours`` (log scale, 1 marked) for the rows of :func:`run_all`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from unrolled.experiments.report import save_figure

    labels = [f"{r['case']}\n{r['ours']} vs {r['reference']}" for r in rows]
    ratios = [r["ratio"] for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(rows) + 1.2))
    colors = ["tab:green" if v >= 1 else "tab:red" for v in ratios]
    ax.barh(range(len(rows)), ratios, color=colors)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", lw=1)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels, fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("reference time / ours (> 1: ours faster)")
    for i, v in enumerate(ratios):
        ax.text(v, i, f" {v:.1f}x", va="center", fontsize=6)
    save_figure(fig, path)
