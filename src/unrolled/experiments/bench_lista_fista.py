"""Trained LISTA-CPSS against FISTA: iterations and wall-clock to reach the same NMSE.

The network is the LISTA-CPSS saved by ``unrolled reproduce lista`` (pass its
folder as ``model_dir``) or, when none is given, one trained here on a reduced
problem. FISTA is run on the same test set with growing iteration counts until
its NMSE reaches the network's; both are then timed side by side, alternating
repeats, and the medians and their ratio are reported.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from unrolled.core.io import load_model, read_config
from unrolled.core.metrics import nmse_db
from unrolled.experiments.report import markdown_table, write_json
from unrolled.sparse_coding.data import SparseCodingProblem
from unrolled.sparse_coding.solvers import fista
from unrolled.core.unrolled_net import dtype_from_name


def _time(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def fista_iterations_to_reach(y, A, lam, x, target_db: float, max_iter: int,
                              plateau: int = 500) -> tuple[int | None, float]:
    """Smallest FISTA iteration count whose NMSE (dB) is <= ``target_db``.

    One FISTA run of at most ``max_iter`` iterations, recording the NMSE of
    every iterate. Returns ``(iterations, nmse_db_there)``, or ``(None, best
    NMSE seen)`` when the target is not reached: after ``max_iter``, or once
    the NMSE has improved by less than 0.01 dB over ``plateau`` iterations
    (the Lasso solution of this ``lam`` is then not accurate enough).
    """
    best = [None, float("inf")]
    marks: list[float] = []

    class _Reached(Exception):
        pass

    def watch(k, xk):
        v = float(nmse_db(xk, x))
        best[1] = min(best[1], v)
        if v <= target_db:
            best[0] = k
            raise _Reached
        marks.append(best[1])
        if k > plateau and marks[-plateau - 1] - best[1] < 0.01:
            raise _Reached

    try:
        fista(y, A, lam, max_iter=max_iter, tol=0.0, callback=watch)
    except _Reached:
        pass
    return best[0], best[1]


def _quick_model(seed: int, device: str, out_dir: Path):
    from unrolled.experiments.lista import QUICK, train_network

    cfg = replace(QUICK, settings=("noiseless",), methods=("lista-cpss",))
    prob = SparseCodingProblem(m=cfg.m, n=cfg.n, p=cfg.p, seed=seed, dtype=torch.float32, device=device)
    val = prob.sample(cfg.n_val, torch.Generator().manual_seed(seed + 1))
    net, _ = train_network("lista-cpss", prob, val, cfg, out_dir / "quick-model", seed=seed + 3, device=device,
                           progress=False)
    return net, prob, cfg.lam


def run(out_dir="unrolled-bench", quick: bool = False, seed: int = 0, device: str = "cpu",
        model_dir: str | None = None, n_test: int = 1000, lams=(0.1, 0.01, 0.001), max_iter: int = 20000,
        repeats: int = 7) -> dict:
    """Run the benchmark; prints a Markdown table and writes ``lista_cpss_vs_fista.json``."""
    out_dir = Path(out_dir)
    if model_dir is None:
        default = Path("unrolled-results/lista/noiseless/lista-cpss/model")
        model_dir = str(default) if (default / "config.json").is_file() and not quick else None
    if model_dir is not None:
        net = load_model(model_dir, device=device)
        meta = read_config(model_dir)["metadata"]
        pc = dict(meta["problem"])
        pc["dtype"] = dtype_from_name(pc["dtype"])
        prob = SparseCodingProblem(**pc, device=device)
        source = model_dir
    else:
        net, prob, _ = _quick_model(seed, device, out_dir)
        source = "trained here on the quick problem"
        max_iter = min(max_iter, 5000)
    if quick:
        n_test, repeats = min(n_test, 256), 3
    y, x = prob.sample(n_test, torch.Generator().manual_seed(seed + 2))
    with torch.no_grad():
        target = float(nmse_db(net(y), x))
    rows, records = [], []
    for lam in lams:
        iters, reached = fista_iterations_to_reach(y, prob.A, lam, x, target, max_iter)
        if iters is None:
            rows.append([f"{lam:g}", net.n_layers, f"not reached (best {reached:.2f} dB)", reached, None, None, None])
            records.append({"lam": lam, "fista_iterations": None, "fista_best_db": reached})
            continue
        t_net, t_fista = [], []
        for _ in range(repeats):  # alternate so machine drift hits both
            with torch.no_grad():
                t_net += _time(lambda: net(y), 1)
            t_fista += _time(lambda: fista(y, prob.A, lam, max_iter=iters, tol=0.0), 1)
        mn, mf = statistics.median(t_net), statistics.median(t_fista)
        rows.append([f"{lam:g}", net.n_layers, iters, reached, mn * 1e3, mf * 1e3, mf / mn])
        records.append({"lam": lam, "net_layers": net.n_layers, "fista_iterations": iters, "fista_nmse_db": reached,
                        "net_ms": mn * 1e3, "fista_ms": mf * 1e3, "time_ratio_fista_over_net": mf / mn})
    print(f"LISTA-CPSS ({source}) NMSE on {n_test} test samples: {target:.2f} dB")
    print(markdown_table(["FISTA lambda", "net layers", "FISTA iterations to match", "FISTA NMSE (dB)",
                          "net ms (median)", "FISTA ms (median)", "time ratio FISTA/net"], rows))
    payload = {"benchmark": "lista-cpss-vs-fista", "model": source, "net_nmse_db": target, "n_test": n_test,
               "device": device, "repeats": repeats, "rows": records}
    write_json(out_dir / "lista_cpss_vs_fista.json", payload)
    return payload
