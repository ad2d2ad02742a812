"""``unrolled demo``: a small LISTA-CP trained against ISTA and FISTA in about two minutes on 2 CPU cores."""

from __future__ import annotations

from pathlib import Path

from unrolled.experiments.lista import LABELS, ListaConfig, run_comparison

DEMO = ListaConfig(m=100, n=200, p=0.1, n_layers=8, settings=("noiseless",),
                   methods=("ista", "fista", "lista-cp"), lr=2e-3, schedule="end-to-end",
                   steps_per_stage=1200, patience=None, val_every=50, n_val=500, n_test=1000)


def run_demo(out_dir: str | Path, *, seed: int = 0, device: str = "cpu", progress: bool = True) -> dict:
    """Train LISTA-CP (8 layers, m=100, n=200) and print NMSE per layer beside ISTA and FISTA."""
    print("unrolled demo: LISTA-CP (8 layers) vs ISTA / FISTA on y = A x, A 100x200, p=0.1")
    payload = run_comparison(DEMO, out_dir, seed=seed, device=device, progress=progress)
    curves: dict[str, list[float]] = {}
    for row in payload["rows"]:
        curves.setdefault(LABELS[row["method"]], []).append(row["nmse_db"])
    print("\nNMSE (dB) per layer / iteration on 1000 test samples:")
    print("layer " + "".join(f"{name:>11}" for name in curves))
    for k in range(DEMO.n_layers):
        print(f"{k + 1:>5} " + "".join(f"{c[k]:>11.2f}" for c in curves.values()))
    print(f"\nfigure: {Path(out_dir) / 'nmse_vs_layer.png'}; tables: {Path(out_dir) / 'results.md'}")
    return payload
