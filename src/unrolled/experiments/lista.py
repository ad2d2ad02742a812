"""Reproduction of the LISTA-CPSS paper's main comparison (Chen et al. 2018, Fig. 3).

Setting: ``m = 250``, ``n = 500``, ``p = 0.1``, 16 layers, noiseless and SNR 40 dB;
layer-wise training (Adam 5e-4, then fine-tuning at x0.2 and x0.02), batch 64,
NMSE (dB) per layer on a held-out test set of 1000, for ISTA, FISTA, LISTA,
LISTA-CP, LISTA-CPSS, ALISTA and ISTA-LLT.

``unrolled reproduce lista`` runs it; ``--quick`` a reduced version used by the
tests. Training resumes from the checkpoints in the output folder if a run is
interrupted.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from unrolled.core.io import save_model
from unrolled.core.metrics import nmse, nmse_db
from unrolled.core.stages import end_to_end, layerwise
from unrolled.core.train import Trainer
from unrolled.experiments.report import markdown_table, plot_curves, write_json
from unrolled.sparse_coding.data import SparseCodingProblem
from unrolled.sparse_coding.nets import NETWORKS
from unrolled.sparse_coding.solvers import fista, ista
from unrolled.core.unrolled_net import dtype_from_name

SETTINGS = {"noiseless": None, "snr40": 40.0}
SOLVERS = {"ista": ista, "fista": fista}
LABELS = {"ista": "ISTA", "fista": "FISTA", "lista": "LISTA", "lista-cp": "LISTA-CP",
          "lista-cpss": "LISTA-CPSS", "alista": "ALISTA", "ista-llt": "ISTA-LLT"}

#: Approximate NMSE (dB) at 16 layers read off the papers' figures (Chen et al. 2018,
#: Fig. 3; Liu et al. 2019, Fig. 1) as the issue states them; None where no value is claimed.
PAPER_16_LAYERS = {
    ("lista-cpss", "noiseless"): -60.0,
    ("alista", "noiseless"): -60.0,
}


@dataclass
class ListaConfig:
    """Settings of the comparison (defaults: the paper's)."""

    m: int = 250
    n: int = 500
    p: float = 0.1
    n_layers: int = 16
    settings: tuple[str, ...] = ("noiseless", "snr40")
    methods: tuple[str, ...] = ("ista", "fista", "lista", "lista-cp", "lista-cpss", "alista", "ista-llt")
    lam: float = 0.1
    lr: float = 5e-4
    decays: tuple[float, ...] = (0.2, 0.02)
    schedule: str = "layerwise"
    steps_per_stage: int = 300
    patience: int | None = 4
    val_every: int = 25
    batch_size: int = 64
    n_val: int = 500
    n_test: int = 1000
    dtype: str = "float32"
    extra: dict = field(default_factory=dict)


QUICK = ListaConfig(m=50, n=100, n_layers=6, steps_per_stage=30, patience=None, val_every=10,
                    n_val=256, n_test=256)


def solver_per_layer(name: str, y: torch.Tensor, A: torch.Tensor, lam: float, n_layers: int, x: torch.Tensor) -> list[float]:
    """NMSE (dB) of ``k`` iterations of a classic solver from ``x0 = 0``, ``k = 1..n_layers``."""
    solver = SOLVERS[name]
    return [float(nmse_db(solver(y, A, lam, max_iter=k, tol=0.0).x, x)) for k in range(1, n_layers + 1)]


@torch.no_grad()
def net_per_layer(net, y: torch.Tensor, x: torch.Tensor) -> list[float]:
    """NMSE (dB) of the output of every layer of ``net``."""
    return [float(nmse_db(o, x)) for o in net(y, return_layers=True)]


def train_network(name: str, problem: SparseCodingProblem, val, cfg: ListaConfig, out_dir: Path, *,
                  seed: int, device: str, progress: bool):
    """Initialise ``name`` from ISTA and train it with the configured schedule. Returns (net, TrainResult)."""
    net = NETWORKS[name].from_algorithm(problem.A, cfg.lam, cfg.n_layers)
    if cfg.schedule == "layerwise":
        stages = layerwise(cfg.n_layers, cfg.lr, cfg.steps_per_stage, decays=cfg.decays, patience=cfg.patience)
    else:
        stages = end_to_end(cfg.lr, cfg.steps_per_stage, cfg.patience)
    trainer = Trainer(net, nmse, problem.sample, val, stages=stages, batch_size=cfg.batch_size,
                      val_every=cfg.val_every, checkpoint_dir=out_dir / "checkpoints", seed=seed,
                      device=device, progress=progress)
    return net, trainer.fit()


def run_comparison(cfg: ListaConfig, out_dir: str | Path, *, seed: int = 0, device: str = "cpu",
                   progress: bool = True, log=print) -> dict:
    """Run every method of ``cfg`` in every setting; write results.json, results.md and nmse_vs_layer.png."""
    out_dir = Path(out_dir)
    dtype = dtype_from_name(cfg.dtype)
    unknown = [m for m in cfg.methods if m not in SOLVERS and m not in NETWORKS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {sorted(SOLVERS) + sorted(NETWORKS)}")
    rows, timings, curves, depth_k = [], [], {}, {}
    for setting in cfg.settings:
        if setting not in SETTINGS:
            raise ValueError(f"unknown setting {setting!r}; choose from {sorted(SETTINGS)}")
        problem = SparseCodingProblem(m=cfg.m, n=cfg.n, p=cfg.p, snr_db=SETTINGS[setting], seed=seed,
                                      dtype=dtype, device=device)
        val = problem.sample(cfg.n_val, torch.Generator().manual_seed(seed + 1))
        y_test, x_test = problem.sample(cfg.n_test, torch.Generator().manual_seed(seed + 2))
        curves[setting] = {}
        for method in cfg.methods:
            t0 = time.perf_counter()
            if method in SOLVERS:
                per_layer = solver_per_layer(method, y_test, problem.A, cfg.lam, cfg.n_layers, x_test)
                extra = {}
            else:
                log(f"[{setting}] training {LABELS[method]} ...")
                net, res = train_network(method, problem, val, cfg, out_dir / setting / method,
                                         seed=seed + 3, device=device, progress=progress)
                save_model(net, out_dir / setting / method / "model",
                           metadata={"problem": problem.config(), "lam_init": cfg.lam, "experiment": "lista"})
                per_layer = net_per_layer(net, y_test, x_test)
                depth_k[(method, setting)] = depth_k_validation(res.stages, cfg)
                extra = {"train_steps": res.n_steps, "best_val_nmse_db": 10 * torch.log10(torch.tensor(res.best_val)).item()}
            seconds = time.perf_counter() - t0 if method in SOLVERS else res.seconds
            timings.append({"method": method, "setting": setting, "seconds": seconds, **extra})
            curves[setting][LABELS[method]] = per_layer
            stagewise = depth_k.get((method, setting))
            for k, v in enumerate(per_layer, start=1):
                rows.append({"method": method, "setting": setting, "layer": k, "nmse_db": v,
                             "depth_k_val_nmse_db": None if stagewise is None else stagewise[k - 1]})
            log(f"[{setting}] {LABELS[method]:<11} layer {cfg.n_layers}: {per_layer[-1]:7.2f} dB  ({seconds:.1f} s)")
    payload = {"experiment": "lista", "config": asdict(cfg), "seed": seed, "device": device,
               "rows": rows, "timings": timings}
    write_json(out_dir / "results.json", payload)
    (out_dir / "results.md").write_text(results_markdown(cfg, curves, timings, depth_k))
    plot_curves(out_dir / "nmse_vs_layer.png",
                {f"{s} (m={cfg.m}, n={cfg.n})": c for s, c in curves.items()},
                xlabel="layer / iteration", ylabel="NMSE (dB)")
    return payload


def depth_k_validation(stages: list[dict], cfg: ListaConfig) -> list[float] | None:
    """Validation NMSE (dB) of the depth-``k`` network at the end of its layer-wise stages, ``k = 1..K``.

    Layer-wise training optimises the output of layer ``k`` only while layer
    ``k`` is the deepest; later stages may trade it away for deeper layers.
    This is the curve of the successive networks, read from the Trainer's
    stage summaries (best validation loss of each depth's last stage).
    """
    if cfg.schedule != "layerwise":
        return None
    last = {s["stage"]: s["best_val"] for s in stages}
    suffix = f"-x{cfg.decays[-1]:g}" if cfg.decays else ""
    return [10.0 * math.log10(last[f"layer{k}{suffix}"]) for k in range(1, cfg.n_layers + 1)]


def results_markdown(cfg: ListaConfig, curves: dict, timings: list[dict], depth_k: dict | None = None) -> str:
    """Per-setting tables: NMSE (dB) at selected layers, the paper's value at 16 layers beside ours."""
    K = cfg.n_layers
    shown = sorted({1, max(1, K // 4), max(1, K // 2), max(1, 3 * K // 4), K})
    parts = [f"# LISTA family comparison (m={cfg.m}, n={cfg.n}, p={cfg.p}, {K} layers)\n",
             "NMSE in dB on a held-out test set; solvers run k iterations from x0=0 with lambda="
             f"{cfg.lam}. Paper values are approximate readings of the LISTA-CPSS / ALISTA figures "
             "(given at 16 layers, noiseless only).\n"]
    secs = {(t["method"], t["setting"]): t["seconds"] for t in timings}
    for setting, methods in curves.items():
        header = ["method"] + [f"layer {k}" for k in shown] + ["paper @16", "seconds (solve / train)"]
        rows = []
        for label, ys in methods.items():
            key = next(k for k, v in LABELS.items() if v == label)
            paper = PAPER_16_LAYERS.get((key, setting)) if K == 16 else None
            rows.append([label] + [ys[k - 1] for k in shown] + [None if paper is None else f"≈ {paper:.0f} or better",
                                                                 secs[(key, setting)]])
        parts.append(f"## {setting}\n\n" + markdown_table(header, rows) + "\n")
        stagewise = {LABELS[m]: v for (m, s), v in (depth_k or {}).items() if s == setting and v is not None}
        if stagewise:
            parts.append(f"Depth-k networks at the end of their layer-wise stages ({setting}, validation set, dB): "
                         "the output of layer k right after layer k was trained and fine-tuned, before deeper "
                         "layers were added.\n")
            rows = [[label] + [ys[k - 1] for k in shown] for label, ys in stagewise.items()]
            parts.append(markdown_table(["method"] + [f"depth {k}" for k in shown], rows) + "\n")
    return "\n".join(parts)


def reproduce(out_dir, *, quick: bool = False, seed: int = 0, device: str = "cpu", progress: bool = True,
              **overrides) -> dict:
    """Entry point of ``unrolled reproduce lista`` (``quick``: the reduced test-sized version)."""
    cfg = replace(QUICK if quick else ListaConfig(), **overrides)
    return run_comparison(cfg, out_dir, seed=seed, device=device, progress=progress)
