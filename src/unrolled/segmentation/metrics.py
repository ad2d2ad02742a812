"""Segmentation scores: confusion matrix, mean intersection-over-union and pixel accuracy."""

from __future__ import annotations

import torch
from torch import Tensor


def confusion_matrix(pred: Tensor, labels: Tensor, n_classes: int) -> Tensor:
    """``(L, L)`` int64 counts, rows the true class, columns the predicted one."""
    if pred.shape != labels.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and labels {tuple(labels.shape)} must have the same shape")
    idx = labels.reshape(-1).long() * n_classes + pred.reshape(-1).long()
    return torch.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes).cpu()


def mean_iou(conf: Tensor) -> float:
    """Mean over the classes present (in the truth or the prediction) of ``TP / (TP + FP + FN)``."""
    conf = conf.double()
    tp = conf.diag()
    union = conf.sum(0) + conf.sum(1) - tp
    present = union > 0
    return float((tp[present] / union[present]).mean())


def pixel_accuracy(conf: Tensor) -> float:
    """Fraction of pixels labelled correctly."""
    conf = conf.double()
    return float(conf.diag().sum() / conf.sum())


def scores(pred: Tensor, labels: Tensor, n_classes: int) -> dict[str, float]:
    """``{'mean_iou', 'pixel_accuracy'}`` of predicted label maps over a whole set (one confusion matrix)."""
    conf = confusion_matrix(pred, labels, n_classes)
    return {"mean_iou": mean_iou(conf), "pixel_accuracy": pixel_accuracy(conf)}
