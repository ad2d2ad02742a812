r"""Calibration of binary observations for SLoG-Net (SLoG-Net paper Sec. V-E, Alg. 2, App. E).

Binary data
-----------
On Digg the sources ``X`` (the 10% earliest voters of a story) and the
observations ``Y`` (all its voters) are both binary, and ``X`` is a subset of
``Y``. :func:`binary_cascade` is the offline stand-in used here: a
susceptible-infected cascade on a real graph, seeded by binary sources, whose
observation is the binary set of infected nodes (so ``supp X`` is inside
``supp Y`` as on Digg).

Calibration layer
-----------------
The paper learns the *inverse* calibration map, an i-ResNet block,

.. math::
    \Phi_c^{-1}(Y') = \tfrac12\big(Y' + g(Y')\big),

with ``g`` an MLP applied to each signal (column, a vector of ``N`` node
values), and computes :math:`Y' = \Phi_c(Y)` by fixed-point iteration
(Alg. 2). :class:`InvertibleCalibration` guarantees the contraction by
construction: every weight is divided by ``max(1, ||W||_2)`` (exact spectral
norm, so each linear layer is 1-Lipschitz), the activation is ``tanh``
(1-Lipschitz) and the output is multiplied by ``lip`` in ``(0, lip_max)``,
``lip_max < 1`` (scaled-sigmoid reparametrisation,
:func:`unrolled.core.params.bounded`). Hence ``Lip(g) <= lip < 1``,
``Phi_c^{-1}`` is bi-Lipschitz and the fixed-point map below is a
contraction with factor ``lip``; the error after ``k`` iterations is at most
``lip^k / (1 - lip) * ||Y'[1] - Y'[0]||``.

Deviation from the printed Algorithm 2
--------------------------------------
The paper prints :math:`Y'[k] = 2Y - \Phi_c^{-1}(Y'[k-1])`, whose fixed point
solves :math:`Y' + \Phi_c^{-1}(Y') = 2Y`, not :math:`\Phi_c^{-1}(Y') = Y`.
The i-ResNet inversion of :math:`\tfrac12(Y' + g(Y')) = Y` is
:math:`Y'[k] = 2Y - g(Y'[k-1])` (Behrmann et al. 2019, Alg. 1), which is what
:meth:`InvertibleCalibration.calibrate` iterates (from ``Y'[0] = Y`` as in
the paper).

Pre-training (App. E)
---------------------
The paper pre-trains ``Phi_c^{-1}`` composed with an unrolled network
diffusion net (ND-Net) :math:`\Upsilon(X)`: :math:`Y \approx
\Phi_c^{-1}(\Upsilon(X))`. ND-Net's details are omitted in the paper;
:class:`SpectralDiffusion` is the model ND-Net unrolls, a learnable graph
filter :math:`\Upsilon(X) = V\operatorname{diag}(\tilde h)V^\top X` (the
solution of (26) for fixed :math:`\tilde h` and :math:`\rho_1 = 0`), with the
:math:`\rho_1\|Y' - X\|^2` term of (26) kept as a penalty in
:func:`pretrain_calibration`.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
import torch
from torch import Tensor, nn

from unrolled.core.io import register_model
from unrolled.core.params import LayerParameter, bounded
from unrolled.core.train import Trainer, TrainResult
from unrolled.core.unrolled_net import dtype_from_name, dtype_name

__all__ = [
    "binary_cascade",
    "InvertibleCalibration",
    "SpectralDiffusion",
    "pretrain_calibration",
    "weighted_support_loss",
    "roc_auc",
    "source_detection_auc",
]


# --------------------------------------------------------------------------- #
# Binary observation model
# --------------------------------------------------------------------------- #
def binary_cascade(
    A: Tensor,
    n: int,
    P: int,
    *,
    n_sources: int = 2,
    beta: float = 0.3,
    steps: int = 2,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Draw ``n`` problems of ``P`` binary cascades: returns ``(Y, X)``, float64 ``(n, N, P)`` in {0, 1}.

    Every signal has ``n_sources`` distinct seed nodes (``X``); for ``steps``
    rounds each infected node infects each susceptible neighbour
    independently with probability ``beta`` (SI model on the unweighted
    adjacency ``A``); ``Y`` is the final infected set (``X <= Y``).
    """
    A = (torch.as_tensor(A, dtype=torch.float64) > 0).to(torch.float64)
    N = A.shape[0]
    if not 1 <= n_sources <= N:
        raise ValueError(f"n_sources must be in [1, {N}], got {n_sources}")
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    keys = torch.rand(n, P, N, generator=generator, dtype=torch.float64)
    idx = keys.argsort(dim=-1)[..., :n_sources]
    X = torch.zeros(n, P, N, dtype=torch.float64).scatter_(-1, idx, 1.0).transpose(1, 2).contiguous()
    Y = X.clone()
    for _ in range(steps):
        infected_nbrs = A @ Y  # (n, N, P): number of infected neighbours
        p_escape = (1.0 - beta) ** infected_nbrs
        u = torch.rand(Y.shape, generator=generator, dtype=torch.float64)
        Y = torch.maximum(Y, (u >= p_escape).to(torch.float64))
    return Y, X


# --------------------------------------------------------------------------- #
# i-ResNet calibration layer
# --------------------------------------------------------------------------- #
def _spectral_normalised(W: Tensor) -> Tensor:
    """``W / max(1, ||W||_2)`` with the exact spectral norm (differentiable)."""
    sigma = torch.linalg.matrix_norm(W, ord=2)
    return W / torch.clamp(sigma, min=1.0)


@register_model
class InvertibleCalibration(nn.Module):
    r"""Calibration :math:`\Phi_c` of Sec. V-E, stored as its inverse :math:`\tfrac12(Y' + g(Y'))`.

    Parameters
    ----------
    n_nodes : int
        ``N``; ``g`` maps each column of ``Y`` (``R^N``) to ``R^N``.
    hidden : int
        Width of the two hidden layers of the three-layer MLP ``g`` (paper: 1000).
    lip_max : float
        Upper bound on ``Lip(g)``; must be ``< 1`` (the contraction factor of Alg. 2).
    lip_init : float
        Initial ``lip`` in ``(0, lip_max)``.
    seed : int
        Of the weight initialisation.

    Notes
    -----
    :meth:`inverse_map` is :math:`\Phi_c^{-1}` (differentiable, used in
    pre-training), :meth:`calibrate` is :math:`\Phi_c` by fixed-point
    iteration (Alg. 2) and ``forward`` is :meth:`calibrate`.
    """

    def __init__(self, n_nodes: int, hidden: int = 64, lip_max: float = 0.9, lip_init: float = 0.5,
                 seed: int = 0, dtype: str = "float64"):
        super().__init__()
        if not 0.0 < lip_max < 1.0:
            raise ValueError(f"lip_max must be in (0, 1) for the fixed-point inverse to converge, got {lip_max}")
        if not 0.0 < lip_init < lip_max:
            raise ValueError(f"lip_init must be in (0, lip_max={lip_max}), got {lip_init}")
        self.n_nodes, self.hidden, self.lip_max = int(n_nodes), int(hidden), float(lip_max)
        self._dtype = dtype_from_name(dtype)
        gen = torch.Generator().manual_seed(int(seed))
        dims = [self.n_nodes, self.hidden, self.hidden, self.n_nodes]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            W = torch.randn(d_out, d_in, generator=gen, dtype=torch.float64) / np.sqrt(d_in)
            self.weights.append(nn.Parameter(W.to(self._dtype)))
            self.biases.append(nn.Parameter(torch.zeros(d_out, dtype=self._dtype)))
        self.lip = LayerParameter(torch.tensor(float(lip_init), dtype=self._dtype), 1,
                                  constraint=bounded(0.0, self.lip_max))

    @property
    def dtype(self) -> torch.dtype:
        return self._dtype

    @torch.no_grad()
    def lipschitz_bound(self) -> Tensor:
        """Certified upper bound on ``Lip(g)`` (product of normalised norms times ``lip``), ``< lip_max``."""
        bound = self.lip[0]
        for W in self.weights:
            bound = bound * torch.clamp(torch.linalg.matrix_norm(_spectral_normalised(W), ord=2), max=1.0)
        return bound

    def residual(self, Yp: Tensor) -> Tensor:
        """``g(Y')`` applied column-wise to ``Y'`` ``(..., N, P)``."""
        h = Yp.transpose(-1, -2)  # (..., P, N)
        n = len(self.weights)
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ _spectral_normalised(W).T + b
            if i < n - 1:
                h = torch.tanh(h)
        return (self.lip[0] * h).transpose(-1, -2)

    def inverse_map(self, Yp: Tensor) -> Tensor:
        r""":math:`\Phi_c^{-1}(Y') = \tfrac12(Y' + g(Y'))`."""
        return 0.5 * (Yp + self.residual(Yp))

    def calibrate(self, Y: Tensor, n_iter: int = 100, tol: float = 0.0, return_history: bool = False):
        r""":math:`\Phi_c(Y)` by the fixed-point iteration :math:`Y'[k] = 2Y - g(Y'[k-1])`, ``Y'[0] = Y``.

        Stops after ``n_iter`` iterations or when the largest change is
        ``<= tol``. Differentiable (by unrolling) when called with grad enabled.
        With ``return_history`` also returns the list of max-abs changes.
        """
        Yp, history = Y, []
        for _ in range(int(n_iter)):
            new = 2.0 * Y - self.residual(Yp)
            delta = float((new - Yp).detach().abs().max())
            history.append(delta)
            Yp = new
            if delta <= tol:
                break
        return (Yp, history) if return_history else Yp

    def forward(self, Y: Tensor) -> Tensor:
        return self.calibrate(Y)

    def config(self) -> dict:
        return {"n_nodes": self.n_nodes, "hidden": self.hidden, "lip_max": self.lip_max,
                "dtype": dtype_name(self._dtype)}


class SpectralDiffusion(nn.Module):
    r"""Stand-in for ND-Net: :math:`\Upsilon(X) = V\operatorname{diag}(\tilde h)V^\top X`, learnable :math:`\tilde h`."""

    def __init__(self, V: Tensor):
        super().__init__()
        self.register_buffer("V", V.clone())
        self.h = nn.Parameter(torch.ones(V.shape[0], dtype=V.dtype))

    def forward(self, X: Tensor) -> Tensor:
        return self.V @ (self.h[:, None] * (self.V.T @ X))


class _DiffuseThenDecalibrate(nn.Module):
    r"""``X -> (Φ_c^{-1}(Υ(X)), Υ(X))``: the two outputs the pre-training loss compares with ``(Y, X)``."""

    def __init__(self, calib: InvertibleCalibration, nd_net: SpectralDiffusion):
        super().__init__()
        self.calib, self.nd_net = calib, nd_net

    def forward(self, X: Tensor) -> tuple[Tensor, Tensor]:
        diffused = self.nd_net(X)
        return self.calib.inverse_map(diffused), diffused


def pretrain_calibration(calib: InvertibleCalibration, nd_net: SpectralDiffusion, X: Tensor, Y: Tensor, *,
                         steps: int = 200, lr: float = 1e-2, rho1: float = 0.1, batch: int = 4,
                         val_fraction: float = 0.2, seed: int = 0, progress: bool = False) -> TrainResult:
    r"""Fit ``Y ≈ Φ_c^{-1}(Υ(X))`` (Fig. 8 top) with the shared :class:`~unrolled.core.train.Trainer`.

    The loss is the MSE plus ``rho1 * ||Υ(X) - X||^2`` (Sec. V-E), Adam at
    ``lr`` on mini-batches of ``batch`` problems. The first ``val_fraction`` of
    the problems (at least one) is held out for validation and the weights with
    the lowest validation loss are kept (with a single problem it is used for
    both). ``calib`` and ``nd_net`` are trained in place.

    Returns
    -------
    TrainResult
        ``best_val`` and the validation history.
    """
    if X.shape != Y.shape or X.dim() != 3:
        raise ValueError(f"X and Y must both be (B, N, P), got {tuple(X.shape)} and {tuple(Y.shape)}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = max(1, int(round(val_fraction * X.shape[0]))) if X.shape[0] > 1 else 0
    Xtr, Ytr = (X[n_val:], Y[n_val:]) if n_val else (X, Y)
    Xva, Yva = (X[:n_val], Y[:n_val]) if n_val else (X, Y)

    def loss_fn(pred: tuple[Tensor, Tensor], target: tuple[Tensor, Tensor]) -> Tensor:
        (y_hat, diffused), (y, x) = pred, target
        return (y_hat - y).pow(2).mean() + rho1 * (diffused - x).pow(2).mean()

    model = _DiffuseThenDecalibrate(calib, nd_net)
    trainer = Trainer(model, loss_fn, (Xtr, (Ytr, Xtr)), (Xva, (Yva, Xva)), lr=lr, max_steps=int(steps),
                      batch_size=min(int(batch), Xtr.shape[0]), val_every=max(1, int(steps) // 20),
                      seed=seed, progress=progress)
    return trainer.fit()


# --------------------------------------------------------------------------- #
# Loss and ROC-AUC
# --------------------------------------------------------------------------- #
def weighted_support_loss(X_hat: Tensor, X: Tensor, Y: Tensor, phi: float = 0.01) -> Tensor:
    r"""The paper's :math:`L_\phi`, averaged over problems.

    Per problem, :math:`\min_\pm (\|[\hat X \pm X]_{I_Y}\|_F + \phi\|[\hat X \pm
    X]_{I_Y^c}\|_F)/\|X\|_F` with :math:`I_Y = \operatorname{supp}(Y)`.
    """
    mask = (Y != 0).to(X_hat.dtype)
    dims = (-2, -1)

    def part(E: Tensor) -> Tensor:
        on = (E * mask).pow(2).sum(dims).clamp_min(1e-30).sqrt()
        off = (E * (1 - mask)).pow(2).sum(dims).clamp_min(1e-30).sqrt()
        return on + phi * off

    nx = X.pow(2).sum(dims).sqrt()
    return (torch.minimum(part(X_hat - X), part(X_hat + X)) / nx).mean()


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve: the probability that a random positive outscores a random negative (ties 1/2).

    Computed by the Mann--Whitney rank statistic with average ranks for ties
    (equal to :func:`sklearn.metrics.roc_auc_score`). Needs both classes.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"scores and labels must have the same size, got {s.size} and {y.size}")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC-AUC needs at least one positive and one negative label")
    ranks = rankdata(s)  # average ranks over ties
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def source_detection_auc(X_hat: Tensor, X: Tensor, Y: Tensor) -> float:
    r"""ROC-AUC of :math:`|\hat X|` against ``supp X`` over the entries in :math:`I_Y = \operatorname{supp}(Y)` (Sec. V-E).

    The magnitude is scored because SLoG-Net's estimate is defined up to sign.
    """
    mask = (Y != 0)
    return roc_auc(X_hat.detach().abs()[mask].cpu().numpy(), (X[mask] != 0).cpu().numpy())
