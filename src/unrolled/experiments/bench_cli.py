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
