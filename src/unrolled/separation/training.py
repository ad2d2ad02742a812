"""Losses, training and evaluation of LPALM (LPALM paper, Eq. 9 and Table 4).

Targets are ``(A, S, X)`` triples (see :attr:`SeparationData.pair`), so every
loss of Table 4, the unsupervised one included, has the signature
``loss(prediction, target)`` the shared :class:`~unrolled.core.train.Trainer` expects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from unrolled.core.metrics import nmse
from unrolled.core.stages import end_to_end
from unrolled.core.train import Trainer, TrainResult
from unrolled.separation.data import SeparationData
from unrolled.separation.metrics import separation_nmse
from unrolled.separation.nets import LPALM
from unrolled.separation.solvers import estimate_mixing

Prediction = tuple[Tensor, Tensor]
Target = tuple[Tensor, Tensor, Tensor]


def loss_s_and_a(pred: Prediction, target: Target) -> Tensor:
    """Eq. (9): mean over the batch of ``NMSE(S) + NMSE(A)``."""
    return nmse(pred[1], target[1], "mean") + nmse(pred[0], target[0], "mean")


def loss_s(pred: Prediction, target: Target) -> Tensor:
    """Table 4, supervised on S only: mean ``NMSE(S)``."""
    return nmse(pred[1], target[1], "mean")


def loss_a(pred: Prediction, target: Target) -> Tensor:
    """Table 4, supervised on A only: mean ``NMSE(A)``."""
    return nmse(pred[0], target[0], "mean")


def loss_unsupervised(pred: Prediction, target: Target) -> Tensor:
    """Table 4, unsupervised: mean ``||X - A S||_F^2 / ||X||_F^2``."""
    X = target[2]
    return nmse(pred[0] @ pred[1], X, "mean")


LOSSES: dict[str, Callable[[Prediction, Target], Tensor]] = {
    "s+a": loss_s_and_a,
    "s": loss_s,
    "a": loss_a,
    "unsupervised": loss_unsupervised,
}


def get_loss(name: str) -> Callable[[Prediction, Target], Tensor]:
    """The loss called ``name`` (one of :data:`LOSSES`)."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose from {sorted(LOSSES)}") from None


def train_lpalm(net: LPALM, train: SeparationData, val: SeparationData, *, loss: str = "s+a", lr: float = 1e-4,
                max_steps: int = 1000, batch_size: int = 1, val_every: int = 100, checkpoint_dir: str | Path | None = None,
                seed: int = 0, device: str = "cpu", progress: bool = True, grad_clip: float | None = None) -> TrainResult:
    """Train ``net`` with Adam at a constant ``lr`` (paper: 1e-4, batch 1) through the shared Trainer.

    Parameters
    ----------
    net : LPALM
        Initialised network (its dtype is used for the data).
    train, val : SeparationData
        Fixed training set and validation set; the weights with the best
        validation loss are kept.
    loss : str
        One of :data:`LOSSES` (``'s+a'`` is Eq. 9).
    """
    loss_fn = get_loss(loss)
    dt = net.dtype
    trainer = Trainer(net, loss_fn, train.to(dt).pair, val.to(dt).pair, stages=end_to_end(lr, max_steps),
                      batch_size=batch_size, val_every=val_every, checkpoint_dir=checkpoint_dir, seed=seed,
                      device=device, progress=progress, grad_clip=grad_clip, val_batch_size=64)
    return trainer.fit()


@torch.no_grad()
def predict(net: LPALM, X: Tensor, *, chunk: int = 64, a_step_scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """``(A, S)`` for a batch of mixtures, in chunks; for ``a_update='none'`` (LISTA) ``A`` comes from
    :func:`~unrolled.separation.solvers.estimate_mixing` on the estimated sources (paper, footnote 5).
    ``a_step_scale`` is passed to :meth:`LPALM.forward`."""
    X = X.to(net.dtype)
    outs = [net(X[i:i + chunk], a_step_scale=a_step_scale) for i in range(0, X.shape[0], chunk)]
    A, S = torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])
    if net.a_update == "none":
        A = estimate_mixing(X.to(torch.float64), S.to(torch.float64)).to(net.dtype)
    return A, S


@torch.no_grad()
def evaluate(net: LPALM, data: SeparationData, *, correct: bool = True) -> dict[str, Tensor]:
    """Per-mixture ``NMSE(A)``, ``NMSE(S)`` (float64, after permutation correction when ``correct``)."""
    A, S = predict(net, data.X)
    return separation_nmse(A.double(), S.double(), data.A.double(), data.S.double(), correct=correct)


@torch.no_grad()
def nmse_per_layer(net: LPALM, data: SeparationData, *, chunk: int = 64) -> dict[str, list[float]]:
    """Mean ``NMSE(A)`` and ``NMSE(S)`` (no correction) of every layer's output (Fig. 2b)."""
    X = data.X.to(net.dtype)
    totals_a = torch.zeros(net.active_layers, dtype=torch.float64)
    totals_s = torch.zeros(net.active_layers, dtype=torch.float64)
    for i in range(0, X.shape[0], chunk):
        layers = net(X[i:i + chunk], return_layers=True)
        for k, (A, S) in enumerate(layers):
            totals_a[k] += nmse(A.double(), data.A[i:i + chunk].double(), "none").sum()
            totals_s[k] += nmse(S.double(), data.S[i:i + chunk].double(), "none").sum()
    return {"A": (totals_a / len(data)).tolist(), "S": (totals_s / len(data)).tolist()}
