"""What the CORONA reproduction and demo share: penalty tuning, training, timed evaluation, the MIP figure."""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch import Tensor

from unrolled.core.train import Trainer
from unrolled.experiments.report import save_figure
from unrolled.lowrank.data import UltrasoundMovieProblem
from unrolled.lowrank.metrics import mip_db, nmse_db
from unrolled.lowrank.registration import rpca_loss
from unrolled.lowrank.solvers import rpca_ista

__all__ = ["base_penalties", "tune_penalties", "train_net", "timed_per_movie", "scores", "mip_figure",
           "n_params"]


def n_params(net: torch.nn.Module) -> int:
    """Number of learned (real) parameters."""
    return sum(p.numel() for p in net.parameters())


def base_penalties(problem: UltrasoundMovieProblem) -> tuple[float, float]:
    r"""Scale of the penalties of (16) for unit-power movies with noise std :math:`\sigma` per entry:
    :math:`\lambda_1 \sim \sigma(\sqrt{HW} + \sqrt T)` (the noise's largest singular value) and
    :math:`\lambda_2 \sim \sigma\sqrt T` (the norm of a pixel's noise time series)."""
    sigma = 10 ** (-problem.snr_db / 20)
    m, n = problem.height * problem.width, problem.frames
    return sigma * (math.sqrt(m) + math.sqrt(n)), sigma * math.sqrt(n)


def tune_penalties(problem, D: Tensor, targets: Tensor, factors=(0.5, 1.0, 2.0), *, tol: float = 1e-3,
                   max_iter: int = 500, progress: bool = False) -> tuple[dict, list[dict]]:
    """Grid search of ``(lam1, lam2)`` around :func:`base_penalties` for the best NMSE of ``S`` by FISTA."""
    from tqdm.auto import tqdm

    b1, b2 = base_penalties(problem)
    grid = [(f1 * b1, f2 * b2) for f1 in factors for f2 in factors]
    rows = []
    for lam1, lam2 in tqdm(grid, desc="FISTA penalty grid", disable=not progress, leave=False):
        res = rpca_ista(D, lam1, lam2, max_iter=max_iter, tol=tol)
        rows.append({"lam1": lam1, "lam2": lam2, "S_db": nmse_db(res.S, targets[:, 1]),
                     "L_db": nmse_db(res.L, targets[:, 0])})
    best = min(rows, key=lambda r: r["S_db"])
    return {"lam1": best["lam1"], "lam2": best["lam2"]}, rows


def train_net(net, train, val, *, steps: int, lr: float, batch_size: int, seed: int, device: str,
              progress: bool, checkpoint_dir: Path | None = None, val_every: int = 25) -> dict:
    """Adam on :func:`~unrolled.lowrank.registration.rpca_loss` (cosine decay, gradient norm clipped at 1)."""
    trainer = Trainer(net, rpca_loss, train, val, lr=lr, max_steps=steps, batch_size=batch_size,
                      val_every=min(val_every, steps), schedule="cosine", grad_clip=1.0, seed=seed, device=device,
                      progress=progress, checkpoint_dir=checkpoint_dir, on_mismatch="restart")
    t0 = time.perf_counter()
    trainer.fit()
    return {"steps": steps, "lr": lr, "batch_size": batch_size, "seconds": time.perf_counter() - t0,
            "val_loss": [h["val_loss"] for h in trainer.history if "val_loss" in h]}


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed_per_movie(run, D: Tensor, device: str = "cpu") -> tuple[Tensor, list[float], list]:
    """Run ``run(movie)`` on each movie of ``D`` alone; returns the stacked estimates, the seconds per movie and
    whatever extra ``run`` returned per movie (``run`` returns ``estimate`` or ``(estimate, extra)``)."""
    outs, secs, extras = [], [], []
    with torch.no_grad():
        run(D[0])  # warm-up (allocations, lazy initialisation), not timed
        for d in D:
            _sync(device)
            t0 = time.perf_counter()
            out = run(d)
            _sync(device)
            secs.append(time.perf_counter() - t0)
            est, extra = out if isinstance(out, tuple) else (out, None)
            outs.append(est)
            extras.append(extra)
    return torch.stack(outs), secs, extras


def scores(estimate: Tensor, targets: Tensor) -> dict:
    """NMSE (dB) of ``S`` and ``L`` over the test movies."""
    return {"S_db": nmse_db(estimate[:, 1], targets[:, 1]), "L_db": nmse_db(estimate[:, 0], targets[:, 0])}


def mip_figure(path: Path, D: Tensor, target: Tensor, estimates: dict[str, Tensor], floor_db: float = -40.0) -> None:
    """Fig. 11 for one movie: MIP of the input, ground-truth S, recovered S (each method), ground-truth L and
    recovered L (each method), in dB (each panel of S and L relative to its ground truth's maximum)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    D, target = D.cpu(), target.cpu()
    refS, refL = float(target[1].abs().amax()), float(target[0].abs().amax())
    methods = list(estimates)
    fig, axes = plt.subplots(2, 2 + len(methods), figsize=(2.6 * (2 + len(methods)), 5.2), squeeze=False)
    panels = [(axes[0, 0], mip_db(D, floor_db=floor_db), "(a) input D"),
              (axes[0, 1], mip_db(target[1], refS, floor_db), "(b) ground-truth S"),
              (axes[1, 1], mip_db(target[0], refL, floor_db), "(d) ground-truth L")]
    for j, name in enumerate(methods):
        est = estimates[name].cpu()
        panels.append((axes[0, 2 + j], mip_db(est[1], refS, floor_db), f"S: {name}"))
        panels.append((axes[1, 2 + j], mip_db(est[0], refL, floor_db), f"L: {name}"))
    axes[1, 0].axis("off")
    im = None
    for ax, img, title in panels:
        im = ax.imshow(img.numpy(), cmap="hot", vmin=floor_db, vmax=0)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[1, 0], fraction=0.8, label="dB")
    save_figure(fig, path)
