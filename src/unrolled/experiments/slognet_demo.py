"""The graph part of ``unrolled demo``: the pretrained SLoG-Net (``slognet-er20``) beside ADMM on fresh problems.

No training: the net (5 layers, trained 8000 steps on its ER graph, see its card) is loaded from the package
(:mod:`unrolled.pretrained`) and compared, on problems drawn with seeds no training used, with the same net
untrained (= 5 ADMM iterations) and ADMM run to convergence (rescaled without and with the ground truth).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from unrolled.experiments.report import markdown_table, save_figure, write_json
from unrolled.experiments.slognet import FULL_TABLE2, make_slognet
from unrolled.experiments.slognet_scoring import _scale, _second_moment, oracle_scale, prior_scale
from unrolled.graph.data import GraphDiffusionProblem
from unrolled.graph.metrics import relative_error, support_accuracy
from unrolled.graph.solvers import admm

PRETRAINED = "slognet-er20"
DEMO_PROBLEMS = 12
#: generator seed of the demo's problems: base + seed (the card and the training use others)
TEST_SEED = 330000
ADMM_MAX_ITER, ADMM_TOL = 10_000, 1e-6


def run_slognet_demo(out_dir: str | Path, *, seed: int = 0, device: str = "cpu", progress: bool = True,
                     n_problems: int = DEMO_PROBLEMS, admm_max_iter: int = ADMM_MAX_ITER) -> dict:
    """Score the pretrained SLoG-Net, its untrained start and converged ADMM on ``n_problems`` fresh problems.

    Prints the mean relative error of X, the support accuracy ACC and the support F1 (kappa = 0.1), and seconds;
    writes ``results.json``, ``results.md`` and ``scores.png`` into ``out_dir``; returns the results.
    """
    from unrolled.pretrained import card, load_pretrained, support_f1

    out_dir = Path(out_dir)
    net = load_pretrained(PRETRAINED, device=device)
    p = card(PRETRAINED)["evaluation"]["problem"]
    problem = GraphDiffusionProblem(p["graph"], n_signals=p["n_signals"], graph_seed=p["graph_seed"],
                                    dtype=next(net.parameters()).dtype, device=device)
    print(f"\nunrolled demo: pretrained SLoG-Net (5 layers) vs ADMM, graph source localization on its ER graph "
          f"(N={problem.N}, p=0.3), {n_problems} fresh problems of P={problem.n_signals} diffused signals each")
    Y, X = problem.sample(n_problems, torch.Generator().manual_seed(TEST_SEED + seed))
    untrained = make_slognet(problem, FULL_TABLE2, seed=4)  # the training's start: 5 ADMM iterations
    est, secs = {}, {}
    with torch.no_grad():
        t0 = time.perf_counter()
        est["net"] = net(Y)
        secs["net"] = time.perf_counter() - t0
        est["untrained"] = untrained(Y)
    t0 = time.perf_counter()
    res = admm(Y, problem.S, V=problem.V, max_iter=admm_max_iter, tol=ADMM_TOL)
    secs["admm_prior"] = time.perf_counter() - t0
    est["admm_prior"] = _scale(res.x, prior_scale(res.x, _second_moment(problem)))
    est["admm_oracle"] = _scale(res.x, oracle_scale(res.x, X))
    est["zeros"] = torch.zeros_like(X)
    names = {"net": f"SLoG-Net, pretrained ({PRETRAINED})", "untrained": "SLoG-Net, untrained (5 ADMM its)",
             "admm_prior": "ADMM converged, rescaled to E[x^2]=theta", "admm_oracle": "ADMM converged, oracle scale",
             "zeros": "all-zero output (reference)"}
    rows = []
    for key, Xh in est.items():
        rows.append({"method": names[key], "key": key, "mre_x": float(relative_error(Xh, X)),
                     "acc": float(support_accuracy(Xh, X)), "f1": float(support_f1(Xh, X).mean()),
                     "seconds": secs.get(key)})
    table = markdown_table(["method", "mean RE of X", "ACC", "support F1", "seconds (all)"],
                           [[r["method"], f"{r['mre_x']:.3f}", f"{r['acc']:.3f}", f"{r['f1']:.3f}",
                             "—" if r["seconds"] is None else f"{r['seconds']:.3f}"] for r in rows])
    print(table)
    print("RE = relative error of the recovered sources (lower is better); ACC = share of all N x P entries whose "
          "on/off state (|x| >= 0.1) is right, which all zeros already score; F1 = how well the true sources are found "
          "(0 for all zeros)")
    r = {row["key"]: row for row in rows}
    n_conv = int(res.converged.sum())
    net, adm = r["net"], r["admm_prior"]
    better = {"RE": net["mre_x"] < adm["mre_x"], "ACC": net["acc"] > adm["acc"], "F1": net["f1"] > adm["f1"]}
    wins = [k for k, v in better.items() if v]
    losses = [k for k, v in better.items() if not v]
    verdict = (f"against ADMM rescaled without the ground truth the net wins on {' and '.join(wins) or 'nothing'}"
               + (f", loses on {' and '.join(losses)}" if losses else "")
               + f" (RE {net['mre_x']:.3f} vs {adm['mre_x']:.3f}, F1 {net['f1']:.3f} vs {adm['f1']:.3f}), in "
               f"{secs['admm_prior'] / secs['net']:.0f}x less time; ADMM with the oracle (true-X) scale gets RE "
               f"{r['admm_oracle']['mre_x']:.3f}. ADMM converged on {n_conv} of {n_problems} problems and is nearly "
               "all-or-nothing per problem, so a dozen problems swing its means")
    cb = card(PRETRAINED)["evaluation"]
    verdict += (f"; on the card's problems ({cb['n_test']} for the net, the first {cb['baseline_n_test']} for ADMM): "
                f"net RE {cb['metrics']['mre_x']:.3f} / F1 "
                f"{cb['metrics']['f1']:.3f}, ADMM (no ground truth) {cb['baseline']['mre_x']:.3f} / "
                f"{cb['baseline']['f1']:.3f}")
    print("  " + verdict)
    _figure(out_dir / "scores.png", rows)
    print(f"(the net's card: `unrolled evaluate pretrained:{PRETRAINED}`; figure: {out_dir / 'scores.png'}; "
          "`unrolled reproduce slognet-table2` trains one net per graph)")
    payload = {"experiment": "slognet-demo", "pretrained": PRETRAINED, "seed": seed, "n_problems": n_problems,
               "rows": rows, "admm_converged": n_conv, "verdict": verdict}
    write_json(out_dir / "results.json", payload)
    (out_dir / "results.md").write_text("# SLoG-Net demo\n\n" + table + f"\n\n{verdict}\n")
    return payload


def _figure(path: Path, rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = (("mre_x", "mean RE of X (lower better)"), ("acc", "ACC"), ("f1", "support F1"))
    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    for ax, (key, title) in zip(axes, metrics):
        ax.barh(range(len(rows)), [r[key] for r in rows])
        ax.set_yticks(range(len(rows)), [r["method"].split(" (")[0] if ax is axes[0] else "" for r in rows],
                      fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.invert_yaxis()
    save_figure(fig, path)
