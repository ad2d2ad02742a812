"""Scales, figures of merit and small run helpers shared by the SLoG-Net experiments (Table II, sweeps, timing).

Moved out of :mod:`unrolled.experiments.slognet`, which re-exports them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from unrolled.graph.data import GraphDiffusionProblem
from unrolled.graph.metrics import relative_error, support_accuracy
from unrolled.pretrained import support_f1


# --------------------------------------------------------------------------- #
# Scales and figures of merit
# --------------------------------------------------------------------------- #
def prior_scale(estimate: Tensor, second_moment: float) -> Tensor:
    r"""Factor ``(B,)`` that gives each problem's estimate the mean squared entry ``second_moment`` (no ground truth).

    For Bernoulli(:math:`\theta`)-Gaussian sources :math:`\mathbb E[X_{ij}^2] =
    \theta`, so :math:`\alpha = (\theta\, NP / \|\hat X\|_F^2)^{1/2}` puts an
    estimate known only up to scale (ADMM's, with :math:`1^\top\tilde g = c`)
    on the scale of the data model. An all-zero estimate gets factor 0.
    """
    e = estimate.reshape(estimate.shape[0], -1)
    energy = (e * e).sum(-1)
    alpha = torch.sqrt(second_moment * e.shape[-1] / energy.clamp_min(torch.finfo(e.dtype).tiny))
    return torch.where(energy > 0, alpha, torch.zeros_like(alpha))


def oracle_scale(estimate: Tensor, target: Tensor) -> Tensor:
    r"""Least-squares scalar per problem ``(B,)``: :math:`\langle\hat X, X\rangle/\|\hat X\|^2` (uses the truth)."""
    e = estimate.reshape(estimate.shape[0], -1)
    t = target.reshape(target.shape[0], -1)
    return (e * t).sum(-1) / (e * e).sum(-1).clamp_min(torch.finfo(e.dtype).tiny)


def _scale(t: Tensor, alpha: Tensor) -> Tensor:
    return t * alpha.reshape(-1, *([1] * (t.dim() - 1)))


def _scores(X_hat: Tensor, g_hat: Tensor, X: Tensor, g_true: Tensor) -> dict:
    """MRE of X, median RE, MRE of the inverse filter, ACC and support F1 (all means over problems).

    ACC counts all ``N P`` entries, so an all-zero estimate already scores about 0.86 on Bernoulli(0.15)
    sources; the support F1 (:func:`unrolled.pretrained.support_f1`, the same ``kappa = 0.1``) is 0 for it.
    """
    re = relative_error(X_hat, X, reduction="none")
    return {
        "mre_x": float(re.mean()),
        "median_re_x": float(re.median()),
        "mre_g": float(relative_error(g_hat, g_true)),
        "acc": float(support_accuracy(X_hat, X)),
        "f1": float(support_f1(X_hat, X).mean()),
    }


def _second_moment(problem: GraphDiffusionProblem) -> float:
    """:math:`\\mathbb E[X_{ij}^2]` of the data model's sources (unit-variance values)."""
    if problem.n_sources is not None:
        return problem.n_sources / problem.N
    return float(problem.theta)


def _p_perp_norm(h_freq: Tensor) -> Tensor:
    """:math:`\\|P_1^\\perp \\tilde g\\|_2` of the true inverse filter :math:`\\tilde g = 1/\\tilde h`, per problem."""
    g = 1.0 / h_freq
    return torch.linalg.vector_norm(g - g.mean(-1, keepdim=True), dim=-1)


class _torch_threads:
    """Set torch's intra-op thread count inside a ``with`` block (``None``: leave it)."""

    def __init__(self, n: int | None):
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"threads must be None or an int >= 1, got {n!r}")
        self.n, self.before = n, None

    def __enter__(self):
        if self.n is not None:
            self.before = torch.get_num_threads()
            torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc):
        if self.before is not None:
            torch.set_num_threads(self.before)
        return False


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "—"
        if v != 0 and (abs(v) < 10 ** -(digits - 1) or abs(v) >= 1e5):
            return f"{v:.{digits - 1}e}"
        return f"{v:.{digits}f}"
    return str(v)
