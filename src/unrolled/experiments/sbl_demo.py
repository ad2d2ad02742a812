"""The SBL part of ``unrolled demo``: a small GF-LSTM trained for a few seconds against SBL, l1 and IHT."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from unrolled.experiments.report import markdown_table, write_json
from unrolled.experiments.sbl_common import LABELS, NetSpec, scores, train_net
from unrolled.sbl.data import CorrelatedSparseProblem
from unrolled.sbl.metrics import loose_accuracy, strict_accuracy

#: n=20, m=100 correlated dictionary, d=4 (d/n = 0.2); GF-LSTM 64 units x 2 layers, 5 steps, 900 online batches.
DEMO_SPEC = NetSpec(hidden=64, n_steps=5, steps=900, lr=5e-3, batch_size=128, val_every=100, n_val=500, n_whiten=10000)
DEMO_D = 4
DEMO_TRIALS = 500


def run_sbl_demo(out_dir: str | Path, *, seed: int = 0, device: str = "cpu", progress: bool = True) -> dict:
    """Train a small GF-LSTM on the correlated dictionary of Sec. 4.1 and print its strict/loose accuracy
    and time per problem beside SBL on its top-2n atoms, SBL, l1 (FISTA) and IHT on the same test problems."""
    out_dir = Path(out_dir)
    print(f"\nunrolled demo: GF-LSTM vs SBL / l1 / IHT, support recovery with a correlated 20x100 dictionary, d={DEMO_D}")
    train_problem = CorrelatedSparseProblem(d=DEMO_D, noise_std=1e-4, seed=seed, dtype=torch.float32)
    net, res = train_net("gf-lstm", train_problem, DEMO_SPEC, out_dir, d_max=DEMO_D, seed=seed, device=device,
                         progress=progress, log=lambda *a: None)
    problem = CorrelatedSparseProblem(d=DEMO_D, noise_std=1e-4, seed=seed)
    y, x = problem.sample(DEMO_TRIALS, torch.Generator().manual_seed(seed + 99))
    y, x, Phi = y.to(device), x.to(device), problem.Phi.to(device)
    rows = []
    for method in ("gf-lstm", "gf-lstm+sbl", "sbl", "l1", "iht"):
        t0 = time.perf_counter()
        s, _ = scores(method, y, Phi, DEMO_D, net=net if method.startswith("gf-lstm") else None)
        sec = (time.perf_counter() - t0) / DEMO_TRIALS
        rows.append({"method": method, "strict": float(strict_accuracy(s, x)), "loose": float(loose_accuracy(s, x, 20)),
                     "us_per_problem": sec * 1e6})
    table = markdown_table(["method", "strict acc.", "loose acc.", "us / problem"],
                           [[LABELS[r["method"]], f"{r['strict']:.3f}", f"{r['loose']:.3f}", f"{r['us_per_problem']:.0f}"]
                            for r in rows])
    print(f"GF-LSTM trained {res.n_steps} steps in {res.seconds:.0f} s; {DEMO_TRIALS} test problems:")
    print(table)
    print("(`unrolled reproduce sbl-fig3ab` trains longer and compares all of the paper's methods over d)")
    payload = {"experiment": "sbl-demo", "rows": rows, "train_seconds": res.seconds, "train_steps": res.n_steps}
    write_json(out_dir / "results.json", payload)
    (out_dir / "results.md").write_text("# SBL demo\n\n" + table + "\n")
    return payload
