"""Steps/second of one training step of a 16-layer LISTA-CPSS (m=250, n=500, batch 64, float32).

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_lista_training_step.py [--steps 200]

Side by side, in one process and one thread:

(a) the :class:`~unrolled.core.train.Trainer` as ``unrolled reproduce lista`` drives it (online data from
    ``SparseCodingProblem.sample``, validation of the reproduction's cadence and set size, a checkpoint at every
    validation), timed over one all-layer stage of ``--steps`` steps;
(b) a bare hand-written PyTorch loop of the same shapes: sample ``(y, x)``, 16 layers of
    ``eta_ss(x + (y - x A^T) W_k, theta_k)``, NMSE loss, backward, fused Adam step, no validation;
(c) the flops limit: the step's matrix-product flops divided by the GEMM rate measured here on products of the
    step's own shapes (and, for reference, on a large square product).

Rates are steps per CPU second of this (one-threaded) process, measured side by side in one run, so that other
processes on a shared machine do not distort the ratios; the thread settings and load are printed with the table.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

from unrolled.core.metrics import nmse
from unrolled.core.stages import Stage
from unrolled.core.train import Trainer
from unrolled.experiments.bench_cli import machine_info
from unrolled.sparse_coding.data import SparseCodingProblem
from unrolled.sparse_coding.nets import LISTACPSS, support_fractions


def _clock() -> float:
    """CPU seconds of this process: one thread, so contention from other processes on a shared machine does
    not count."""
    return time.process_time()


def _problem(m: int, n: int, seed: int = 0) -> SparseCodingProblem:
    return SparseCodingProblem(m=m, n=n, p=0.1, snr_db=None, seed=seed, dtype=torch.float32)


def trainer_rate(m: int, n: int, layers: int, batch: int, steps: int, *, val_every: int, n_val: int,
                 checkpoint: bool, **trainer_options) -> float:
    """Steps/s of ``Trainer.fit`` over one all-layer stage of ``steps`` steps (fit time / steps)."""
    problem = _problem(m, n)
    val = problem.sample(n_val, torch.Generator().manual_seed(1))
    net = LISTACPSS.from_algorithm(problem.A, 0.1, layers)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(net, nmse, problem.sample, val, stages=[Stage("bench", 5e-4, steps, layers, "all")],
                          batch_size=batch, val_every=val_every, checkpoint_dir=Path(tmp) if checkpoint else None,
                          seed=3, progress=False, **trainer_options)
        t0 = _clock()
        trainer.fit()
        return steps / (_clock() - t0)


def bare_rate(m: int, n: int, layers: int, batch: int, steps: int) -> float:
    """Steps/s of a hand-written loop (sample, forward, NMSE, backward, Adam), no validation or checks."""
    problem = _problem(m, n)
    A = problem.A
    At = A.T.contiguous()
    L = float(torch.linalg.matrix_norm(A, ord=2) ** 2)
    W = [torch.nn.Parameter((A / L).clone()) for _ in range(layers)]
    log_theta = [torch.nn.Parameter(torch.tensor(math.log(0.1 / L))) for _ in range(layers)]
    ks = [min(n, math.ceil(f * n - 1e-9)) for f in support_fractions(layers)]
    opt = torch.optim.Adam(W + log_theta, lr=5e-4, fused=True)
    g = torch.Generator().manual_seed(3)

    def one_step() -> None:
        y, x = problem.sample(batch, g)
        z = y.new_zeros(batch, n)
        for k in range(layers):
            v = z + torch.addmm(y, z, At, beta=-1).neg() @ W[k]   # x + W^T (y - A x), row-wise
            theta = log_theta[k].exp()
            shrunk = v - v.clamp(-theta, theta)
            idx = v.abs().topk(ks[k], dim=-1, sorted=False).indices
            keep = torch.zeros_like(v, dtype=torch.bool).scatter_(-1, idx, True) & (v.abs() > theta)
            z = torch.where(keep, v, shrunk)
        loss = ((z - x) ** 2).sum(-1).div(x.pow(2).sum(-1)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        one_step()
    t0 = _clock()
    for _ in range(steps):
        one_step()
    return steps / (_clock() - t0)


def gemm_rate(a: tuple[int, int], b: tuple[int, int], repeats: int) -> float:
    """Measured flop/s of ``(p, q) @ (q, r)`` products."""
    x, y = torch.randn(*a), torch.randn(*b)
    out = torch.empty(a[0], b[1])
    for _ in range(3):
        torch.mm(x, y, out=out)
    t0 = _clock()
    for _ in range(repeats):
        torch.mm(x, y, out=out)
    return 2.0 * a[0] * a[1] * b[1] * repeats / (_clock() - t0)


def step_flops(m: int, n: int, layers: int, batch: int) -> float:
    """Matrix-product flops of one step: per layer ``x A^T`` and ``r W`` forward, three products backward
    (``dr = dv W^T``, ``dW = r^T dv``, ``dx = dr A``), plus ``x A^T`` of the sampler."""
    return 2.0 * batch * m * n * (5 * layers + 1)


def measure(args) -> dict:
    torch.manual_seed(0)
    m, n, K, B = args.m, args.n, args.layers, args.batch
    flops = step_flops(m, n, K, B)
    shapes = [((B, n), (n, m)), ((B, m), (m, n)), ((m, B), (B, n))]
    rates = [gemm_rate(a, b, 200) for a, b in shapes]
    step_gemm_rate = len(rates) / sum(1 / r for r in rates)  # harmonic mean: equal flops of each product
    big_rate = gemm_rate((1024, 1024), (1024, 1024), 5)
    results = {"m": m, "n": n, "layers": K, "batch": B, "steps": args.steps, "machine": machine_info("cpu"),
               "step_matmul_gflop": flops / 1e9, "gemm_gflops_step_shapes": step_gemm_rate / 1e9,
               "gemm_gflops_1024": big_rate / 1e9, "flops_limit_steps_per_s": step_gemm_rate / flops,
               "rows": []}
    cases = []
    if args.before_src:
        cases.append((f"Trainer before (source {args.before_src}), reproduction settings",
                      lambda: _before_rate(args)))
    cases.append(("bare PyTorch loop", lambda: bare_rate(m, n, K, B, args.steps)))
    for key, (label, opts) in TRAINER_CASES.items():
        cases.append((label, lambda o=opts: trainer_rate(m, n, K, B, args.steps, **o)))
    for label, fn in cases:
        rate = fn()
        results["rows"].append({"case": label, "steps_per_s": rate})
        print(f"  {label}: {rate:.2f} steps/s", file=sys.stderr, flush=True)
    return results


def _before_rate(args) -> float:
    """The reproduction-settings Trainer case run by another source tree (e.g. ``git archive`` of the commit
    before the speed-up), in a child process with the same thread settings."""
    import os
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(Path(args.before_src) / "src"))
    out = subprocess.run([sys.executable, __file__, "--only-reproduction-case", "--steps", str(args.steps),
                          "--m", str(args.m), "--n", str(args.n), "--layers", str(args.layers),
                          "--batch", str(args.batch)], env=env, check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


#: Trainer settings timed: the lista reproduction's (val_every 25, 500 validation samples, a checkpoint at every
#: validation), and without checkpoints / with the papers' cadence (1000 validation samples every 100 steps).
TRAINER_CASES = {
    "reproduction": ("Trainer, lista reproduction settings (val 500 every 25, checkpoint every validation)",
                     {"val_every": 25, "n_val": 500, "checkpoint": True}),
    "papers": ("Trainer, lista-papers settings (val 1000 every 50, checkpoint every 10th, fused Adam)",
               {"val_every": 50, "n_val": 1000, "checkpoint": True, "checkpoint_every": 10,
                "optimizer_options": {"fused": True}}),
    "bare-trainer": ("Trainer, no validation cost (1 sample every 10^6 steps), no checkpoints, fused Adam",
                     {"val_every": 10**6, "n_val": 1, "checkpoint": False, "optimizer_options": {"fused": True}}),
}


def table(results: dict) -> str:
    limit = results["flops_limit_steps_per_s"]
    lines = [f"One training step of a {results['layers']}-layer LISTA-CPSS, m={results['m']}, n={results['n']}, "
             f"batch {results['batch']}, float32, {results['steps']} steps per case; "
             f"{results['machine']['summary']}",
             "",
             f"matrix-product work {results['step_matmul_gflop']:.3f} GFLOP/step; GEMM rate measured on the step's "
             f"shapes {results['gemm_gflops_step_shapes']:.1f} GFLOP/s (1024^3: {results['gemm_gflops_1024']:.1f})",
             "",
             "| case | steps/s | fraction of flops limit |",
             "|---|---:|---:|",
             f"| flops limit (matmul flops / GEMM rate) | {limit:.2f} | 1.00 |"]
    for r in results["rows"]:
        lines.append(f"| {r['case']} | {r['steps_per_s']:.2f} | {r['steps_per_s'] / limit:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200, help="timed steps per case")
    ap.add_argument("--m", type=int, default=250)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--before-src", default=None,
                    help="a source tree (with src/unrolled) whose Trainer is timed first, in a child process, with "
                         "the reproduction's settings: the 'before' of a speed-up, side by side")
    ap.add_argument("--only-reproduction-case", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.only_reproduction_case:
        opts = TRAINER_CASES["reproduction"][1]
        print(trainer_rate(args.m, args.n, args.layers, args.batch, args.steps, **opts))
        return {}
    results = measure(args)
    print(table(results))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
