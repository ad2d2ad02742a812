"""Fig. 3(a,b) re-scored fairly: the published GF-LSTMs on a fresh test set, against the strongest SBL.

``unrolled reproduce sbl-fig3ab-fresh``. The published Fig. 3(a,b) net was chosen by probes on the table's own
test problems, and that table's SBL row is the MacKay update. Here the shipped nets (``unrolled.pretrained``:
``sbl-gf-lstm-large-mf``, the published net, and ``sbl-gf-lstm``, the paper's size) are scored with no further
training on a test stream that no training, probe or results run drew from (generator seeds ``seed + 1000 d``
with ``seed = 990000``), beside SBL with both of the library's hyperparameter updates run to convergence:
EM (``update='em'``) and MacKay (``update='mackay'``), eq. (3)-(5) of He, Xin, Wipf et al. (NIPS 2017).

The paper names its SBL baseline only as "SBL [33]" (Sec. 4.1); our text copy carries no reference list and no
update rule, so which update the paper ran is not known from its text.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from unrolled.experiments.report import markdown_table, write_json
from unrolled.experiments.sbl_common import scores
from unrolled.sbl.data import CorrelatedSparseProblem
from unrolled.sbl.metrics import loose_accuracy, strict_accuracy
from unrolled.sbl.solvers import sbl

__all__ = ["FreshConfig", "QUICK", "reproduce_fig3ab_fresh"]


@dataclass(frozen=True)
class FreshConfig:
    """Settings of ``sbl-fig3ab-fresh`` (``--set KEY=VALUE``)."""

    d_values: tuple[int, ...] = (4, 5, 6, 7, 8, 9, 10)
    n_trials: int = 1000
    nets: tuple[str, ...] = ("sbl-gf-lstm-large-mf", "sbl-gf-lstm")
    sbl_lam: float = 1e-7
    sbl_max_iter: int = 5000
    sbl_tol: float = 1e-6
    test_seed: int = 990000


QUICK = FreshConfig(d_values=(4, 8), n_trials=40, nets=("sbl-gf-lstm",), sbl_max_iter=500)

#: How each shipped net departs from the paper's GF-LSTM (Sec. 3-4.1).
DEPARTURES = {
    "sbl-gf-lstm-large-mf": "4x wider (2 x 256 units), 25 time steps, SBL's E-step (posterior mean and residual at "
                            "the net's current variances) fed back as extra inputs, pairwise support loss and d "
                            "weighting in training; the paper's net has no E-step feedback",
    "sbl-gf-lstm": "the paper's size (2 x 128 units, gated feedback), trained from scratch on online data",
}


def reproduce_fig3ab_fresh(out_dir, quick: bool = False, seed: int = 0, device: str = "cpu", progress: bool = True,
                           **settings) -> dict:
    """Score the shipped Fig. 3(a,b) nets and SBL (EM, MacKay) on a fresh test stream; write JSON + Markdown.

    Parameters
    ----------
    out_dir : path
        Output folder (``results.json``, ``results.md``, ``accuracy_vs_d.png``).
    quick : bool
        Two values of d, 40 problems each, the paper-size net only (for the tests).
    seed : int
        Unused by the test stream (fixed by ``test_seed`` so the table is the same whatever ``--seed``); kept for
        the common ``reproduce`` signature.
    settings
        Fields of :class:`FreshConfig`.
    """
    from unrolled.pretrained import card, load_pretrained

    cfg = FreshConfig(**{**asdict(QUICK if quick else FreshConfig()), **settings})
    if cfg.n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {cfg.n_trials}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    nets = {name: load_pretrained(name, device=device) for name in cfg.nets}
    problem_kw = card(cfg.nets[0])["evaluation"]["problem"]
    methods = list(cfg.nets) + ["sbl-em", "sbl-mackay"]
    rows = {m: {"strict": {}, "loose": {}, "seconds": 0.0} for m in methods}
    solver_stats = {}
    for d in tqdm(cfg.d_values, desc="sbl-fig3ab-fresh", disable=not progress):
        problem = CorrelatedSparseProblem(n=problem_kw["n"], m=problem_kw["m"], d=d,
                                          noise_std=problem_kw["noise_std"], seed=problem_kw["seed"])
        y, x = problem.sample(cfg.n_trials, torch.Generator().manual_seed(cfg.test_seed + 1000 * d))
        y, x, Phi = y.to(device), x.to(device), problem.Phi.to(device)
        for m in methods:
            t0 = time.perf_counter()
            if m in nets:
                s, _ = scores("gf-lstm", y, Phi, d, net=nets[m])
            else:
                res = sbl(y, Phi, cfg.sbl_lam, update=m.removeprefix("sbl-"), max_iter=cfg.sbl_max_iter,
                          tol=cfg.sbl_tol)
                s = res.gamma
                solver_stats.setdefault(m, {})[str(d)] = {
                    "mean_iter": float(res.n_iter.double().mean()),
                    "converged": float(res.converged.double().mean())}
            rows[m]["seconds"] += time.perf_counter() - t0
            rows[m]["strict"][str(d)] = float(strict_accuracy(s, x))
            rows[m]["loose"][str(d)] = float(loose_accuracy(s, x, problem_kw["n"]))

    labels = {"sbl-gf-lstm-large-mf": "GF-LSTM 4x + E-step feedback (published, pretrained)",
              "sbl-gf-lstm": "GF-LSTM, paper's size (pretrained)", "sbl-em": "SBL, EM update",
              "sbl-mackay": "SBL, MacKay update"}
    header = ["method"] + [f"d={d}" for d in cfg.d_values] + ["s / problem"]
    n_total = cfg.n_trials * len(cfg.d_values)

    def table(kind: str) -> str:
        return markdown_table(header, [[labels[m]] + [f"{rows[m][kind][str(d)]:.3f}" for d in cfg.d_values]
                                       + [f"{rows[m]['seconds'] / n_total:.2e}"] for m in methods])

    strongest = max(("sbl-em", "sbl-mackay"), key=lambda m: sum(rows[m]["strict"].values()))
    verdict = []
    for name in cfg.nets:
        above = [d for d in cfg.d_values if rows[name]["strict"][str(d)] >= rows[strongest]["strict"][str(d)]]
        verdict.append(f"- {labels[name]}: strict accuracy at or above {labels[strongest]} at d = "
                       f"{', '.join(map(str, above)) or 'none'} of {', '.join(map(str, cfg.d_values))}.")
    stats = "; ".join(f"{labels[m]}: d={d} {v['mean_iter']:.0f} iterations, {100 * v['converged']:.1f} % converged"
                      for m, per_d in solver_stats.items() for d, v in per_d.items())
    command = "unrolled reproduce sbl-fig3ab-fresh" + (" --quick" if quick else "")
    md = [
        "# SBL Fig. 3(a,b) on a fresh test set, against the strongest SBL",
        "",
        "Paper (He, Xin, Wipf et al., NIPS 2017, Sec. 4.1, Fig. 3(a,b); curves only, 1e5 trials per d): the "
        "GF-LSTM at or above SBL [33] on strict accuracy at every d, far above it on loose accuracy. The text "
        "does not say which SBL update [33] uses.",
        "",
        f"Ours: `{command}` — {cfg.n_trials} problems per d drawn from a stream no training, probe or results run "
        f"used (seeds {cfg.test_seed} + 1000 d), n = {problem_kw['n']}, m = {problem_kw['m']}, noise std "
        f"{problem_kw['noise_std']}; nets loaded from `unrolled.pretrained` with no further training; SBL with "
        f"noise variance {cfg.sbl_lam:g}, tol {cfg.sbl_tol:g}, at most {cfg.sbl_max_iter} iterations; "
        f"{torch.get_num_threads()} torch thread(s), device {device}.",
        "",
        "## Strict accuracy (exact support)", "", table("strict"), "",
        "## Loose accuracy (true positives among the top n)", "", table("loose"), "",
        "## Verdict", "", f"The strongest SBL here is {labels[strongest]} (larger summed strict accuracy).", "",
        *verdict, "",
        "## How the nets depart from the paper's", "",
        *[f"- {labels[n]}: {DEPARTURES.get(n, 'see its model card')}." for n in cfg.nets], "",
        "The published net was selected by probes on the Fig. 3(a,b) table's own test problems "
        "(`docs/results/sbl-fig3ab/NOTES.md`); the stream here was never used for selection.", "",
        f"SBL iterations: {stats}.", "",
        "![accuracy vs d](accuracy_vs_d.png)",
    ]
    (out / "results.md").write_text("\n".join(md) + "\n")
    payload = {"experiment": "sbl-fig3ab-fresh", "config": asdict(cfg), "quick": quick, "rows": rows,
               "labels": labels, "solver_stats": solver_stats, "strongest_sbl": strongest, "command": command,
               "threads": torch.get_num_threads(), "device": device}
    write_json(out / "results.json", payload)
    _figure(out / "accuracy_vs_d.png", cfg.d_values, rows, labels, methods)
    print(f"written: {out / 'results.json'}, {out / 'results.md'}, {out / 'accuracy_vs_d.png'}")
    return payload


def _figure(path: Path, d_values, rows, labels, methods) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, kind in zip(axes, ("strict", "loose")):
        for m in methods:
            ax.plot(d_values, [rows[m][kind][str(d)] for d in d_values], marker="o", label=labels[m],
                    linestyle="--" if m in ("sbl-em", "sbl-mackay") else "-")
        ax.set_xlabel("d (non-zeros)")
        ax.set_ylabel(f"{kind} accuracy")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
