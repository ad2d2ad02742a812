"""What the side-by-side Lasso benchmarks share: the problem options, the objective, and the command-line shell."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch


def add_problem_arguments(ap: argparse.ArgumentParser) -> None:
    """The Lasso benchmark problem: ``--n-problems --m --n --p --snr --lam --seed``."""
    ap.add_argument("--n-problems", type=int, default=1000, help="number of problems (batch size)")
    ap.add_argument("--m", type=int, default=250, help="measurements")
    ap.add_argument("--n", type=int, default=500, help="code size")
    ap.add_argument("--p", type=float, default=0.1, help="probability of a non-zero code entry")
    ap.add_argument("--snr", type=float, default=40.0, help="measurement SNR in dB")
    ap.add_argument("--lam", type=float, default=0.1, help="Lasso weight lambda (in the 0.5||y-Ax||^2 scaling)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the dictionary and of the samples")


def lasso_objective(Y: np.ndarray, A: np.ndarray, X: np.ndarray, lam: float) -> np.ndarray:
    """Per-problem ``0.5||y - Ax||^2 + lam||x||_1`` in float64 (rows of ``Y``, ``X``)."""
    R = Y - X @ A.T
    return 0.5 * np.einsum("ij,ij->i", R, R) + lam * np.abs(X).sum(axis=1)


def sync(device: str) -> None:
    """Wait for queued CUDA work before reading a clock."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_main(parse_args: Callable, measure: Callable, table: Callable, argv: list[str] | None = None) -> dict:
    """Parse ``argv``, run ``measure(args)``, print ``table(results)``, write ``--out`` JSON when given."""
    args = parse_args(argv)
    results = measure(args)
    print(table(results))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2)
    return results


def bench_run(main: Callable, json_name: str, out_dir="unrolled-bench", quick: bool = False, seed: int = 0,
              device: str = "cpu") -> dict:
    """``unrolled benchmark`` entry: ``main`` with ``--seed/--device/--out`` (``quick``: 100 problems)."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    argv = ["--seed", str(seed), "--device", device, "--out", str(Path(out_dir) / json_name)]
    if quick:
        argv += ["--n-problems", "100"]
    return main(argv)


def machine_info(device: str = "cpu") -> dict:
    """Thread settings, load and versions a timing ran under (printed with every benchmark table)."""
    import os
    import platform

    info = {
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "cpu_count": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
    }
    info["summary"] = (f"device {info['device']}; torch threads {info['torch_threads']} (interop "
                       f"{info['interop_threads']}), OMP_NUM_THREADS={info['OMP_NUM_THREADS']}, {info['cpu_count']} "
                       f"CPUs, load avg {info['load_avg_1min']}")
    return info


def ratio_row(case: str, ours: str, reference: str, ours_s: float, reference_s: float, accuracy: str) -> dict:
    """One row of ``unrolled benchmark all``: ``ratio = reference time / ours`` (> 1: ours faster)."""
    return {"case": case, "ours": ours, "reference": reference, "ours_s": ours_s, "reference_s": reference_s,
            "ratio": reference_s / ours_s, "accuracy": accuracy}


def write_benchmark(out_dir, name: str, result: dict, table: str) -> dict:
    """Print ``table`` and write ``out_dir/name.json`` and ``name.md``; returns ``result``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    print(table)
    (out / f"{name}.md").write_text(table + "\n")
    with open(out / f"{name}.json", "w") as fh:
        json.dump(result, fh, indent=2)
    print(f"written: {out / (name + '.json')}, {out / (name + '.md')}")
    return result


def ratio_table(rows: list[dict]) -> str:
    """The ``unrolled benchmark all`` table."""
    lines = ["| case | ours | reference | ours s | reference s | reference / ours | accuracy match |",
             "|---|---|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['ours']} | {r['reference']} | {r['ours_s']:.3f} | {r['reference_s']:.3f} | "
                     f"{r['ratio']:.1f}x | {r['accuracy']} |")
    return "\n".join(lines)
