"""Training the deep IRLS-ADMM net with the shared :class:`~unrolled.core.train.Trainer`.

The net maps a labelled data set to coefficients, so a training sample is a
data set: :class:`SubsetSampler` draws random row subsets of the training data
(mini-batches of data sets). The loss is the logistic loss (32) of the net's
``beta``, averaged over samples: on the same rows the net saw (``holdout=0``,
the paper's loss) or on held-out rows of the same draw (``holdout > 0``, which
rewards coefficients that generalise).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F_
from torch import Tensor

from unrolled.core.stages import end_to_end
from unrolled.core.train import Trainer, TrainResult
from unrolled.core.validation import check_int, check_positive

__all__ = ["logistic_loss", "SubsetSampler", "train_deep_irls"]


def logistic_loss(beta: Tensor, targets: tuple[Tensor, Tensor]) -> Tensor:
    """Mean logistic loss (32) of ``beta`` ``(B, P)`` on ``targets = (X (B, M, p), y (B, M))``.

    ``P = p + 1`` means the last entry of ``beta`` is an intercept.
    """
    X, y = targets
    p = X.shape[-1]
    if beta.dim() == 1:
        beta, X, y = beta.unsqueeze(0), X.reshape(1, *X.shape[-2:]), y.reshape(1, -1)
    f = (X @ beta[:, :p].unsqueeze(-1)).squeeze(-1)
    if beta.shape[-1] == p + 1:
        f = f + beta[:, p:]
    elif beta.shape[-1] != p:
        raise ValueError(f"beta has {beta.shape[-1]} entries for {p} features")
    return F_.softplus(-y * f).mean()


class SubsetSampler:
    """Random row subsets of one labelled data set, for ``Trainer``'s ``sample(n, generator)``.

    Parameters
    ----------
    X : Tensor
        ``(N, p)`` features.
    y : Tensor
        ``(N,)`` labels in {-1, +1}.
    subsample : float
        Fraction of the rows the net sees in each draw (stratified by class).
    holdout : float
        Fraction of the rows on which the loss is measured, disjoint from the
        net's rows; ``0``: the loss is measured on the net's own rows.
    """

    def __init__(self, X: Tensor, y: Tensor, subsample: float = 0.8, holdout: float = 0.0):
        if not 0.0 < subsample <= 1.0:
            raise ValueError(f"subsample must be in (0, 1], got {subsample}")
        if not 0.0 <= holdout < 1.0 or subsample + holdout > 1.0 + 1e-12:
            raise ValueError(f"holdout must be in [0, 1) with subsample + holdout <= 1, got {holdout}")
        self.X, self.y = X, y
        self.classes = [torch.nonzero(y == c).squeeze(-1) for c in (-1.0, 1.0)]
        self.n_fit = [max(1, round(subsample * len(ix))) for ix in self.classes]
        self.n_eval = [round(holdout * len(ix)) for ix in self.classes]
        self.holdout = holdout
        if holdout > 0 and min(self.n_eval) < 1:
            raise ValueError("holdout leaves no held-out sample of some class; increase it")

    def sample(self, n: int, generator: torch.Generator | None = None):
        """``n`` draws: ``((X_fit (n, M, p), y_fit), (X_eval, y_eval))``."""
        check_int("n", n, minimum=1)
        fit, ev = [], []
        for ix, nf, ne in zip(self.classes, self.n_fit, self.n_eval):
            perm = torch.rand(n, len(ix), generator=generator).argsort(-1)
            fit.append(ix[perm[:, :nf]])
            ev.append(ix[perm[:, nf:nf + ne]])
        fit_idx = torch.cat(fit, -1).to(self.X.device)
        Xf, yf = self.X[fit_idx], self.y[fit_idx]
        if self.holdout == 0:
            return (Xf, yf), (Xf, yf)
        ev_idx = torch.cat(ev, -1).to(self.X.device)
        return (Xf, yf), (self.X[ev_idx], self.y[ev_idx])


def train_deep_irls(net, X: Tensor, y: Tensor, *, max_steps: int = 200, lr: float = 0.05, batch_size: int = 4,
                    subsample: float = 0.8, holdout: float = 0.0, n_val: int = 8, val_every: int = 20,
                    seed: int = 0, progress: bool = False, checkpoint_dir=None) -> TrainResult:
    """Train ``net`` on ``(X, y)`` with Adam through the shared Trainer (end-to-end, best validation kept).

    The validation set is ``n_val`` fixed draws of the same sampler (seed
    ``seed + 1``); ``lr`` is Adam's step on the log-parameters.
    """
    check_int("max_steps", max_steps, minimum=1)
    check_positive("lr", lr)
    sampler = SubsetSampler(X, y, subsample, holdout)
    val = sampler.sample(n_val, torch.Generator().manual_seed(seed + 1))
    trainer = Trainer(net, logistic_loss, sampler.sample, val, stages=end_to_end(lr, max_steps),
                      batch_size=batch_size, val_every=min(val_every, max_steps), seed=seed, progress=progress,
                      checkpoint_dir=checkpoint_dir, grad_clip=10.0)
    result = trainer.fit()
    if not math.isfinite(result.best_val):
        raise FloatingPointError("training the deep IRLS-ADMM net gave a non-finite loss")
    return result
