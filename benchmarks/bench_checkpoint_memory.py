"""Peak memory and time of LISTA-CP training steps at 16 / 64 / 256 layers, with and without checkpointing.

Each configuration runs in its own subprocess (so peaks do not mix): it builds a tied LISTA-CP
net (m=250, n=500; tied, so the parameters do not grow with depth and the difference is the
autograd graph), records the resident set after one warm-up step at 2 layers, then runs
``--steps`` Adam training steps (MSE loss, float32, batch ``--batch``) and reports the peak
resident set ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` and its growth over the baseline,
and the median seconds per step. Checkpointing uses ``S = round(sqrt(K))`` segments
(:meth:`unrolled.core.unrolled_net.UnrolledNet.gradient_checkpointing`). Threads: ``--threads``
(default 1) via ``torch.set_num_threads``, printed with the table. The children run with
``MALLOC_MMAP_THRESHOLD_=65536`` so glibc returns freed tensor memory to the system at once (with
its default dynamic threshold, freed blocks stay in the heap and the resident set stops
reflecting live memory; the first measurement showed checkpointed runs *above* plain ones).

    PYTHONPATH=src python benchmarks/bench_checkpoint_memory.py [--batch 128 --steps 3 --threads 1]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys

CHILD = r"""
import json, resource, statistics, sys, time
import torch
K, seg, batch, steps, threads = (int(a) for a in sys.argv[1:6])
torch.set_num_threads(threads)
from unrolled.sparse_coding.data import SparseCodingProblem
from unrolled.sparse_coding.nets import LISTACP
prob = SparseCodingProblem(m=250, n=500, p=0.1, snr_db=40.0, seed=0, dtype=torch.float32)
y, x = prob.sample(batch, torch.Generator().manual_seed(1))
net = LISTACP.from_algorithm(prob.A, 0.1, n_layers=K, tied=True)
if seg > 0:
    net.gradient_checkpointing(seg)
opt = torch.optim.Adam(net.parameters(), lr=1e-4)
def step():
    opt.zero_grad(set_to_none=False)
    loss = (net(y) - x).pow(2).mean()
    loss.backward()
    opt.step()
net.active_layers = 2
step()
net.active_layers = K
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = []
for _ in range(steps):
    t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"K": K, "segments": seg, "peak_mib": peak / 1024, "growth_mib": (peak - base) / 1024,
                  "s_per_step": statistics.median(times)}))
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    rows = []
    for K in a.layers:
        for seg in (0, round(math.sqrt(K))):
            out = subprocess.run([sys.executable, "-c", CHILD, str(K), str(seg), str(a.batch), str(a.steps),
                                  str(a.threads)], capture_output=True, text=True, check=True,
                                 env={**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"})
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    ref = {r["segments"] == 0: r for r in rows if r["K"] == a.layers[0]}
    print(f"tied LISTA-CP 250x500, float32, batch {a.batch}, Adam, {a.steps} steps (median time), "
          f"torch threads {a.threads}; peak = ru_maxrss of a fresh subprocess, "
          "MALLOC_MMAP_THRESHOLD_=65536")
    print("\n| layers | checkpoint segments | peak RSS MiB | growth over baseline MiB | s / step | ms / layer / step |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['K']} | {r['segments'] or 'off'} | {r['peak_mib']:.0f} | {r['growth_mib']:.0f} | "
              f"{r['s_per_step']:.3f} | {1e3 * r['s_per_step'] / r['K']:.2f} |")
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(rows, fh, indent=2)
    return rows


if __name__ == "__main__":
    main()
