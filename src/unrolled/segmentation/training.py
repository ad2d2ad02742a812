"""Training the segmentation networks with the pixel-wise cross-entropy, and tuning the classic CRF by hand."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unrolled.segmentation.metrics import scores
from unrolled.segmentation.solvers import mean_field


@dataclass
class TrainResult:
    """Loss per epoch (mean over the batches) and the number of optimiser steps."""

    losses: list[float] = field(default_factory=list)
    n_steps: int = 0


def log_probabilities(model: nn.Module, images: Tensor) -> Tensor:
    """``log p(l | image)`` ``(B, L, H, W)``: the model's ``log_marginals`` if it has one, else log-softmax of its scores."""
    if hasattr(model, "log_marginals"):
        return model.log_marginals(images)
    return torch.log_softmax(model(images), dim=1)


def train_segmentation(model: nn.Module, images: Tensor, labels: Tensor, *, epochs: int, batch_size: int = 16,
                       lr: float = 1e-2, seed: int = 0, progress: bool = False,
                       parameters: Iterable[nn.Parameter] | None = None,
                       on_epoch: Callable[[int, float], None] | None = None) -> TrainResult:
    """Adam on the pixel-wise cross-entropy ``-log p(label | image)``, shuffled mini-batches, fixed seed.

    ``parameters`` (default: all of the model's) are the ones trained; ``on_epoch(epoch, loss)`` after each epoch.
    """
    from tqdm.auto import tqdm

    params = list(model.parameters() if parameters is None else parameters)
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    result = TrainResult()
    model.train()
    for epoch in tqdm(range(epochs), desc=f"train {type(model).__name__}", disable=not progress, leave=False):
        order = torch.randperm(images.shape[0], generator=gen).to(images.device)
        total, n = 0.0, 0
        for start in range(0, images.shape[0], batch_size):
            idx = order[start:start + batch_size]
            loss = F.nll_loss(log_probabilities(model, images[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, n = total + float(loss.detach()), n + 1
            result.n_steps += 1
        result.losses.append(total / n)
        if on_epoch is not None:
            on_epoch(epoch, total / n)
    model.eval()
    return result


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, batch_size: int = 32) -> Tensor:
    """Label maps ``(B, H, W)`` of a model (argmax of its scores or marginals), in batches."""
    model.eval()
    return torch.cat([model(images[s:s + batch_size]).argmax(1) for s in range(0, images.shape[0], batch_size)])


@torch.no_grad()
def crf_labels(unary: Tensor, images: Tensor, *, kernels, weights, n_iter: int = 10, filtering: str = "fast",
               stride: int = 2, batch_size: int = 32) -> Tensor:
    """Label maps of :func:`~unrolled.segmentation.solvers.mean_field` (``n_iter`` iterations), in batches."""
    out = []
    for s in range(0, images.shape[0], batch_size):
        res = mean_field(unary[s:s + batch_size], images[s:s + batch_size], kernels=kernels, weights=weights,
                         max_iter=n_iter, filtering=filtering, stride=stride)
        out.append(res.x.argmax(1))
    return torch.cat(out)


def tune_crf(unary: Tensor, images: Tensor, labels: Tensor, grid: dict[str, list], *, n_iter: int = 10,
             filtering: str = "fast", stride: int = 2, progress: bool = False) -> tuple[dict, list[dict]]:
    """Grid search of the dense CRF's widths and weights for the best mean IoU on validation images.

    ``grid`` has lists under ``'spatial'``, ``'bilateral_spatial'``, ``'bilateral_colour'``, ``'w_spatial'``,
    ``'w_bilateral'``. Returns the best setting ``{'kernels': (gamma, alpha, beta), 'weights': (w1, w2),
    'mean_iou', 'pixel_accuracy'}`` and every row tried.
    """
    from tqdm.auto import tqdm

    n_classes = unary.shape[1]
    keys = ("spatial", "bilateral_spatial", "bilateral_colour", "w_spatial", "w_bilateral")
    rows = []
    for values in tqdm(list(itertools.product(*(grid[k] for k in keys))), desc="tune CRF", disable=not progress,
                       leave=False):
        v = dict(zip(keys, values))
        kernels, weights = (v["spatial"], v["bilateral_spatial"], v["bilateral_colour"]), (v["w_spatial"],
                                                                                           v["w_bilateral"])
        pred = crf_labels(unary, images, kernels=kernels, weights=weights, n_iter=n_iter, filtering=filtering,
                          stride=stride)
        rows.append({"kernels": kernels, "weights": weights, **scores(pred, labels, n_classes)})
    best = max(rows, key=lambda r: r["mean_iou"])
    return best, rows
