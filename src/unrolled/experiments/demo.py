"""``unrolled demo``: one quick part per family, each an unrolled net measured against its solver on fresh problems.

Parts, in order of :data:`unrolled.core.registry.DEMO_PARTS` (registered by the families): LISTA-CP against ISTA
and FISTA (trained for seconds), SLoG-Net against ADMM, LPALM against PALM, the GF-LSTM against SBL and the deep
IRLS-ADMM net against IRLS-ADMM and scikit-learn (these four load their ``unrolled.pretrained`` model), then
ADMM-CSNet, DUBLID, CORONA, deep NMF and CRF-RNN (trained for seconds). Each part prints a table and writes a
figure. ``unrolled demo --part NAME`` runs one.
"""

from __future__ import annotations

from pathlib import Path

from unrolled.core.registry import DEMO_PARTS, demo_parts
from unrolled.experiments.lista import LABELS, ListaConfig, run_comparison

DEMO = ListaConfig(m=100, n=200, p=0.1, n_layers=8, settings=("noiseless",),
                   methods=("ista", "fista", "lista-cp"), lr=2e-3, schedule="end-to-end",
                   steps_per_stage=1200, patience=None, val_every=50, n_val=500, n_test=1000)


def run_demo(out_dir: str | Path, *, seed: int = 0, device: str = "cpu", progress: bool = True,
             parts: tuple[str, ...] | None = None) -> dict:
    """Run the demo parts (default: all registered parts, in order); returns ``{part: payload}``.

    Each part writes into ``out_dir`` (the LISTA part) or ``out_dir/<part>``.
    """
    known = [p.name for p in demo_parts()]
    parts = tuple(known) if parts is None else tuple(parts)
    unknown = [p for p in parts if p not in known]
    if unknown or not parts:
        raise ValueError(f"demo parts must be among {known}, got {list(parts)}")
    out = Path(out_dir)
    payloads = {}
    for name in parts:
        folder = out if name == "lista" else out / name
        payloads[name] = DEMO_PARTS[name].run(folder, seed=seed, device=device, progress=progress)
    return payloads


def __getattr__(name: str):
    if name == "PARTS":  # computed on access: the parts are registered by the families
        return {p.name: p.family for p in demo_parts()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run_lista_demo(out_dir: str | Path, *, seed: int = 0, device: str = "cpu", progress: bool = True) -> dict:
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
