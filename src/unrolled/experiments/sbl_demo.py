"""The SBL part of ``unrolled demo``: the pretrained GF-LSTM (``sbl-gf-lstm-large-mf``) beside SBL on fresh problems.

No training: the net is loaded from the package (:mod:`unrolled.pretrained`, about 17 CPU-hours of training, see its
card) and scored against SBL with the EM and the MacKay updates on problems drawn with seeds no training used.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from unrolled.experiments.report import markdown_table, save_figure, write_json
from unrolled.experiments.sbl_common import scores
from unrolled.sbl.data import CorrelatedSparseProblem
from unrolled.sbl.metrics import loose_accuracy, strict_accuracy
from unrolled.sbl.solvers import sbl

PRETRAINED = "sbl-gf-lstm-large-mf"
DEMO_D = (4, 8)
DEMO_TRIALS = 100
#: generator seeds of the demo's test problems: base + 1000 * seed + d (the card uses 770000 + d, training others)
TEST_SEED = 660000
SBL_LAM, SBL_MAX_ITER, SBL_TOL = 1e-7, 2000, 1e-6
METHODS = ("gf-lstm", "sbl-em", "sbl-mackay")
NAMES = {"gf-lstm": f"GF-LSTM 4x, pretrained ({PRETRAINED})", "sbl-em": "SBL, EM update (to convergence)",
         "sbl-mackay": "SBL, MacKay update (to convergence)"}


def _scores(method: str, net, y: torch.Tensor, Phi: torch.Tensor, d: int) -> torch.Tensor:
    if method == "gf-lstm":
        return scores("gf-lstm", y, Phi, d, net=net)[0]
    update = "em" if method == "sbl-em" else "mackay"
    return sbl(y, Phi, SBL_LAM, update=update, max_iter=SBL_MAX_ITER, tol=SBL_TOL).gamma


def run_sbl_demo(out_dir: str | Path, *, seed: int = 0, device: str = "cpu", progress: bool = True,
                 d_values: tuple[int, ...] = DEMO_D, n_trials: int = DEMO_TRIALS) -> dict:
    """Score the pretrained GF-LSTM and SBL (EM, MacKay) on ``n_trials`` fresh problems per ``d``.

    The data model is the net's (n = 20, m = 100, the correlated dictionary of ``CorrelatedSparseProblem(seed=0)``,
    noise std 1e-4); ``seed`` changes the test problems, not the dictionary. Writes ``results.json``,
    ``results.md`` and ``strict_accuracy.png`` into ``out_dir``; returns the results.
    """
    from unrolled.pretrained import load_pretrained

    out_dir = Path(out_dir)
    net = load_pretrained(PRETRAINED, device=device)
    print(f"\nunrolled demo: pretrained GF-LSTM vs SBL, support recovery of d-sparse x from y = Phi x + w "
          f"(Phi 20x100 correlated, the net's dictionary), {n_trials} fresh problems per d")
    rows = []
    for d in d_values:
        problem = CorrelatedSparseProblem(d=d, noise_std=1e-4, seed=0)
        y, x = problem.sample(n_trials, torch.Generator().manual_seed(TEST_SEED + 1000 * seed + d))
        y, x, Phi = y.to(device), x.to(device), problem.Phi.to(device)
        for method in METHODS:
            t0 = time.perf_counter()
            with torch.no_grad():
                s = _scores(method, net, y, Phi, d)
            sec = (time.perf_counter() - t0) / n_trials
            rows.append({"d": d, "method": method, "strict": float(strict_accuracy(s, x)),
                         "loose": float(loose_accuracy(s, x, 20)), "ms_per_problem": sec * 1e3})
    table = markdown_table(["d", "method", "strict acc.", "loose acc.", "ms / problem"],
                           [[r["d"], NAMES[r["method"]], f"{r['strict']:.3f}", f"{r['loose']:.3f}",
                             f"{r['ms_per_problem']:.2f}"] for r in rows])
    print(table)
    print("strict = share of problems whose d largest scores are exactly the true support; loose = share of the true "
          "atoms among the 20 largest scores (higher is better)")
    verdicts = []
    short = {"sbl-em": "SBL-EM", "sbl-mackay": "SBL-MacKay"}
    for d in d_values:
        by = {r["method"]: r for r in rows if r["d"] == d}
        best = max(("sbl-em", "sbl-mackay"), key=lambda m: by[m]["strict"])
        net_s, sbl_s = by["gf-lstm"]["strict"], by[best]["strict"]
        se = math.sqrt(max(net_s * (1 - net_s) + sbl_s * (1 - sbl_s), 1e-4) / n_trials)  # of the difference
        if abs(net_s - sbl_s) < 2 * se:
            word = "is on par (within 2 standard errors of sampling noise) with"
        else:
            word = "beats" if net_s > sbl_s else "loses to"
        verdicts.append(f"d={d}: the net {word} the stronger SBL ({short[best]}) on strict accuracy, {net_s:.3f} vs "
                        f"{sbl_s:.3f} (+-{2 * se:.3f}), at {by['gf-lstm']['ms_per_problem']:.1f} vs "
                        f"{by[best]['ms_per_problem']:.1f} ms per problem; it beats SBL-MacKay "
                        f"({by['sbl-mackay']['strict']:.3f})" if net_s > by["sbl-mackay"]["strict"] else
                        f"d={d}: the net {word} the stronger SBL ({short[best]}) on strict accuracy, {net_s:.3f} vs "
                        f"{sbl_s:.3f} (+-{2 * se:.3f}), and does not beat SBL-MacKay ({by['sbl-mackay']['strict']:.3f})")
    for v in verdicts:
        print("  " + v)
    _figure(out_dir / "strict_accuracy.png", rows, d_values)
    print(f"(the net's card: `unrolled evaluate pretrained:{PRETRAINED}`; figure: {out_dir / 'strict_accuracy.png'})")
    payload = {"experiment": "sbl-demo", "pretrained": PRETRAINED, "seed": seed, "n_trials": n_trials, "rows": rows,
               "verdicts": verdicts}
    write_json(out_dir / "results.json", payload)
    (out_dir / "results.md").write_text("# SBL demo\n\n" + table + "\n\n" + "\n".join(f"* {v}" for v in verdicts) + "\n")
    return payload


def _figure(path: Path, rows: list[dict], d_values) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    width = 0.8 / len(METHODS)
    for i, method in enumerate(METHODS):
        vals = [next(r["strict"] for r in rows if r["d"] == d and r["method"] == method) for d in d_values]
        ax.bar([k + (i - 1) * width for k in range(len(d_values))], vals, width, label=NAMES[method])
    ax.set_xticks(range(len(d_values)), [f"d = {d}" for d in d_values])
    ax.set_ylabel("strict accuracy")
    ax.set_ylim(0, 1)
    ax.set_title("support recovery, fresh problems (n=20, m=100)", fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, path)
