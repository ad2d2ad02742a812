"""Shared pieces of the LPALM reproductions (Fahes et al., ICLR 2022): data, PALM runs, training, reports."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from unrolled.core.io import load_model, save_model
from unrolled.separation.data import SeparationData, SyntheticConfig, synthetic_experiment
from unrolled.separation.metrics import separation_nmse
from unrolled.separation.nets import LPALM
from unrolled.separation.solvers import palm
from unrolled.separation.tuning import random_training_start
from unrolled.separation.training import evaluate, predict, train_lpalm

PAPER = "LPALM (Fahes, Kervazo, Bobin, Tupin, ICLR 2022)"


@dataclass(frozen=True)
class TrainSettings:
    """How one LPALM variant is trained (paper: Adam 1e-4, batch 1, 100 epochs of 750)."""

    n_layers: int = 25
    lr: float = 1e-4
    max_steps: int = 12000
    batch_size: int = 1
    val_every: int = 1000
    lam_init: float = 1e-5
    dtype: str = "float32"


def split_validation(train: SeparationData, n_val: int) -> tuple[SeparationData, SeparationData]:
    """Hold the last ``n_val`` training mixtures out for model selection (the test set is never used for it)."""
    if not 1 <= n_val < len(train):
        raise ValueError(f"n_val must be in [1, {len(train)}), got {n_val}")
    return train.subset(slice(0, len(train) - n_val)), train.subset(slice(len(train) - n_val, None))


def synthetic_data(syn: SyntheticConfig, n_val: int, seed: int):
    """Train (minus validation), validation and test sets of Sec. 3.1, float64."""
    train, test = synthetic_experiment(syn, seed=seed)
    fit, val = split_validation(train, n_val)
    return fit, val, test


def train_or_load(out_dir: Path, fit: SeparationData, val: SeparationData, ts: TrainSettings, *, s_update="lista-cp",
                  a_update="ista-ll", loss="s+a", n_layers: int | None = None, seed: int = 0, device="cpu",
                  progress=True, log=print) -> tuple[LPALM, dict]:
    """Initialise a variant as in the paper (appendix A) from the first training pair, train it, save it.

    Resumes from ``out_dir/checkpoints`` and reuses ``out_dir/model`` when it exists.
    """
    K = ts.n_layers if n_layers is None else n_layers
    model_dir = out_dir / "model"
    if (model_dir / "config.json").is_file():
        net = load_model(model_dir, device=device)
        meta = json.loads((model_dir / "config.json").read_text())["metadata"]
        return net, meta["train"]
    torch.manual_seed(seed)
    net = LPALM.from_training_pair(fit.A[0], fit.S[0], K, lam=ts.lam_init, s_update=s_update, a_update=a_update,
                                   dtype=ts.dtype)
    log(f"  training LPALM K={K} S:{s_update} A:{a_update} loss:{loss} ({ts.max_steps} steps, batch {ts.batch_size}) ...")
    res = train_lpalm(net, fit, val, loss=loss, lr=ts.lr, max_steps=ts.max_steps, batch_size=ts.batch_size,
                      val_every=ts.val_every, checkpoint_dir=out_dir / "checkpoints", seed=seed, device=device,
                      progress=progress)
    info = {"steps": res.n_steps, "seconds": res.seconds, "best_val": res.best_val,
            "epochs": res.n_steps * ts.batch_size / len(fit), "val_curve": [h["val_loss"] for h in res.history]}
    save_model(net, model_dir, metadata={"train": info, "loss": loss, "experiment": "lpalm"})
    return net, info


def median(values) -> float:
    """Median of a tensor or list as a float."""
    vals = values.tolist() if isinstance(values, torch.Tensor) else list(values)
    return float(statistics.median(vals))


def run_palm(data: SeparationData, pool: SeparationData, lam: float, *, max_iter: int, tol: float, seed: int) -> dict:
    """PALM from the Sec. 3.1.2 start on every mixture of ``data`` (float64); NMSEs, iterations and time."""
    d = data.to(torch.float64)
    A0, S0 = random_training_start(d, pool.to(torch.float64), seed=seed)
    t0 = time.perf_counter()
    res = palm(d.X, A0, S0, lam, max_iter=max_iter, tol=tol)
    seconds = time.perf_counter() - t0
    err = separation_nmse(res.A, res.S, d.A, d.S)
    return {"lam": lam, "nmse_s": err["S"], "nmse_a": err["A"], "n_iter": res.n_iter, "converged": res.converged,
            "seconds": seconds}


def time_lpalm(net: LPALM, data: SeparationData) -> tuple[dict, float]:
    """Time ``net``'s forward pass over the whole set (seconds; no metric computation), then evaluate it."""
    X = data.X.to(net.dtype)
    t0 = time.perf_counter()
    predict(net, X)
    seconds = time.perf_counter() - t0
    return evaluate(net, data), seconds


def fmt(v: float | None) -> str:
    """Short scientific formatting for the Markdown tables."""
    return "—" if v is None else f"{v:.3g}"


def md_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table of pre-formatted cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
