"""Trained LISTA-CPSS vs FISTA: iterations and wall-clock to equal NMSE (see unrolled.experiments.bench_lista_fista).

    python benchmarks/bench_lista_cpss_vs_fista.py [MODEL_DIR] [--quick]

MODEL_DIR defaults to the LISTA-CPSS saved by `unrolled reproduce lista`
(unrolled-results/lista/noiseless/lista-cpss/model) when present.
"""

import argparse

from unrolled.experiments.bench_lista_fista import run

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir", nargs="?", default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="unrolled-bench")
    a = ap.parse_args()
    run(out_dir=a.out, quick=a.quick, device=a.device, model_dir=a.model_dir)
