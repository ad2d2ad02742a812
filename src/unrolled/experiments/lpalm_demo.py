"""The LPALM part of ``unrolled demo``: the pretrained 25-layer LPALM (``lpalm-xray``) beside PALM on fresh mixtures.

No training: the net is loaded from the package (:mod:`unrolled.pretrained`, see its card) and both methods separate
the same freshly simulated mixtures X = A S + N of the paper's Sec. 3.1 (65-channel X-ray spectra, 4 sources).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from unrolled.experiments.report import markdown_table, save_figure, write_json
from unrolled.separation.data import SeparationProblem
from unrolled.separation.metrics import separation_nmse
from unrolled.separation.solvers import palm, pinv_init
from unrolled.separation.training import predict

PRETRAINED = "lpalm-xray"
DEMO_MIXTURES = 12
#: generator seed of the demo's mixtures: base + seed (the card and the training use others)
TEST_SEED = 550000
PALM_LAM = 1e-3  # the best lambda of PALM's grid on training mixtures in `unrolled reproduce lpalm-table1`
PALM_MAX_ITER, PALM_TOL = 3000, 1e-7


def run_separation_demo(out_dir: str | Path, *, seed: int = 0, device: str = "cpu", progress: bool = True,
                        n_mixtures: int = DEMO_MIXTURES, palm_max_iter: int = PALM_MAX_ITER) -> dict:
    """Separate ``n_mixtures`` fresh mixtures with the pretrained LPALM and with PALM; print NMSE and time.

    PALM starts as in the paper's Sec. 3.1.2 (a random matrix of the pool, ``S0 = A0^+ X``), lambda = 1e-3, and stops
    at ``||dS||, ||dA|| < 1e-7`` or ``palm_max_iter`` iterations. Writes ``results.json``, ``results.md`` and
    ``nmse_per_mixture.png`` into ``out_dir``; returns the results.
    """
    from unrolled.pretrained import card, load_pretrained

    out_dir = Path(out_dir)
    net = load_pretrained(PRETRAINED, device=device)
    p = card(PRETRAINED)["evaluation"]["problem"]
    problem = SeparationProblem(p["t"], n_matrices=p["n_matrices"], channel_step=p["channel_step"], beta=p["beta"],
                                snr_db=p["snr_db"], seed=p["seed"])
    print(f"\nunrolled demo: pretrained LPALM ({net.n_layers} layers) vs PALM, semi-blind separation of "
          f"{n_mixtures} fresh mixtures X = A S + N (A {problem.m}x{problem.n} X-ray spectra, S {problem.n}x{problem.t} "
          f"generalised Gaussian, {p['snr_db']:g} dB)")
    X, (A, S, _) = problem.sample(n_mixtures, torch.Generator().manual_seed(TEST_SEED + seed))
    t0 = time.perf_counter()
    with torch.no_grad():
        A_net, S_net = predict(net, X.to(device=device, dtype=net.dtype))
    net_s = time.perf_counter() - t0
    e_net = separation_nmse(A_net.double().cpu(), S_net.double().cpu(), A, S)
    idx = torch.randint(problem.n_matrices, (n_mixtures,), generator=torch.Generator().manual_seed(TEST_SEED + seed + 1))
    A0 = problem.pool[idx]
    t0 = time.perf_counter()
    res = palm(X, A0, pinv_init(X, A0), PALM_LAM, max_iter=palm_max_iter, tol=PALM_TOL)
    palm_s = time.perf_counter() - t0
    e_palm = separation_nmse(res.A, res.S, A, S)
    capped = int((~res.converged).sum())
    rows = [
        {"method": f"LPALM, pretrained ({PRETRAINED})", "nmse_s": float(e_net["S"].median()),
         "nmse_a": float(e_net["A"].median()), "iterations": float(net.n_layers), "seconds": net_s},
        {"method": f"PALM (lambda={PALM_LAM:g}, to convergence or {palm_max_iter} its)",
         "nmse_s": float(e_palm["S"].median()), "nmse_a": float(e_palm["A"].median()),
         "iterations": float(res.n_iter.double().median()), "seconds": palm_s},
    ]
    table = markdown_table(["method", "median NMSE(S)", "median NMSE(A)", "layers / median its", "seconds (all)"],
                           [[r["method"], f"{r['nmse_s']:.2e}", f"{r['nmse_a']:.2e}", f"{r['iterations']:.0f}",
                             f"{r['seconds']:.3f}"] for r in rows])
    print(table)
    print("NMSE = ||estimate - truth||^2 / ||truth||^2 after matching the sources' order and scale (lower is better); "
          f"{capped} of {n_mixtures} PALM runs stopped at the {palm_max_iter}-iteration cap")
    ratio = rows[1]["nmse_s"] / max(rows[0]["nmse_s"], 1e-300)
    if ratio > 1:
        verdict = (f"LPALM's median NMSE(S) is {ratio:.1f}x lower than PALM's, in {palm_s / max(net_s, 1e-9):.0f}x "
                   "less time")
    else:
        verdict = f"LPALM loses to PALM here: its median NMSE(S) is {1 / ratio:.1f}x higher"
    print("  " + verdict)
    _figure(out_dir / "nmse_per_mixture.png", e_net["S"], e_palm["S"])
    print(f"(the net's card: `unrolled evaluate pretrained:{PRETRAINED}`; figure: {out_dir / 'nmse_per_mixture.png'}; "
          "`unrolled reproduce lpalm-table1` runs the paper's protocol)")
    payload = {"experiment": "lpalm-demo", "pretrained": PRETRAINED, "seed": seed, "rows": rows,
               "palm_capped": capped, "verdict": verdict}
    write_json(out_dir / "results.json", payload)
    (out_dir / "results.md").write_text("# LPALM demo\n\n" + table + f"\n\n{verdict}\n")
    return payload


def _figure(path: Path, nmse_net: torch.Tensor, nmse_palm: torch.Tensor) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, b = 10 * torch.log10(nmse_palm), 10 * torch.log10(nmse_net)
    fig, ax = plt.subplots(figsize=(4, 3.6))
    ax.scatter(a.numpy(), b.numpy(), s=14)
    lo, hi = float(min(a.min(), b.min())) - 2, float(max(a.max(), b.max())) + 2
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="equal")
    ax.set_xlabel("PALM NMSE(S) (dB)")
    ax.set_ylabel("LPALM NMSE(S) (dB)")
    ax.set_title("one point per fresh mixture (below the line: LPALM better)", fontsize=8)
    ax.legend(fontsize=7)
    save_figure(fig, path)
