"""Data models of the classification family.

* :class:`CorrelatedFeaturesProblem`: the simulation of Sec. IV-A. ``Phi`` is
  ``n_samples x n_features`` standard normal; two sets ``S1``, ``S2`` of
  ``n_true`` features carry the signal, with ``Phi[:, S2] = Phi[:, S1] + N(0, corr_std^2)``
  (correlated copies); labels are ``sign(Phi beta + noise)``.
* :func:`gene_expression_like`: a ``p >> n`` stand-in for the paper's CNS
  tumour data (20 samples x 350 correlated "genes" in blocks sharing latent
  factors), used for the Fig. 6 style analysis.

The paper does not give the true weights; we draw their magnitudes from
U[1, 2] with one random sign per correlated pair (``S1_m`` and ``S2_m`` agree),
so the pairs reinforce rather than cancel. The noise std ``N(0, 0.1)`` of the
copies is read as a standard deviation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from unrolled.core.validation import check_int, check_positive


@dataclass
class CorrelatedFeaturesProblem:
    """The Sec. IV-A simulation (defaults: the paper's 500 x 50, two sets of 4 true features).

    Parameters
    ----------
    n_samples, n_features, n_true : int
        Sizes; features ``0..n_true-1`` form ``S1`` and ``n_true..2*n_true-1`` form ``S2``.
    noise_std : float
        Std of the Gaussian noise added to ``Phi beta`` before taking the sign.
    corr_std : float
        Std of the perturbation making ``S2`` a noisy copy of ``S1``.
    dtype : torch.dtype
    seed : int, optional
        ``None`` (the paper's experiments): every data set draws its own true
        weights. An int fixes them once (a fixed model, like a fixed dictionary;
        the deep net's generic training in ``registration.py``).
    """

    n_samples: int = 500
    n_features: int = 50
    n_true: int = 4
    noise_std: float = 0.0
    corr_std: float = 0.1
    dtype: torch.dtype = torch.float64
    seed: int | None = None

    def __post_init__(self) -> None:
        check_int("n_samples", self.n_samples, minimum=2)
        check_int("n_true", self.n_true, minimum=1)
        check_int("n_features", self.n_features, minimum=2 * self.n_true)
        check_positive("noise_std", self.noise_std, allow_zero=True)
        check_positive("corr_std", self.corr_std, allow_zero=True)
        self._beta = None
        if self.seed is not None:
            self._beta = self._weights(1, torch.Generator().manual_seed(check_int("seed", self.seed)))[0]

    @property
    def support(self) -> Tensor:
        """Indices of the ``2 * n_true`` true features."""
        return torch.arange(2 * self.n_true)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[tuple[Tensor, Tensor], Tensor]:
        """Draw ``n`` independent data sets: ``((Phi (n, N, p), y (n, N) in {-1, +1}), beta_true (n, p))``.

        Inputs of :class:`~unrolled.classification.nets.DeepIRLSADMMNet` and
        :func:`~unrolled.classification.solvers.irls_admm`, and the true weights.
        ``n = 1`` draws what earlier versions' ``sample(generator)`` drew for one
        data set (same generator stream).
        """
        check_int("n", n, minimum=1)
        g, dt, q, N = generator, self.dtype, self.n_true, self.n_samples
        Phi = torch.randn(n, N, self.n_features, generator=g, dtype=dt)
        Phi[..., q:2 * q] = Phi[..., :q] + self.corr_std * torch.randn(n, N, q, generator=g, dtype=dt)
        beta = self._weights(n, g) if self._beta is None else self._beta.expand(n, -1).clone()
        f = (Phi @ beta.unsqueeze(-1)).squeeze(-1) + self.noise_std * torch.randn(n, N, generator=g, dtype=dt)
        y = torch.where(f >= 0, 1.0, -1.0).to(dt)
        return (Phi, y), beta

    def _weights(self, n: int, g: torch.Generator | None) -> Tensor:
        """``(n, p)`` true weights: magnitudes U[1, 2], one random sign per correlated pair."""
        q, dt = self.n_true, self.dtype
        mag = 1.0 + torch.rand(n, 2, q, generator=g, dtype=dt)
        sign = torch.where(torch.rand(n, 1, q, generator=g) < 0.5, -1.0, 1.0).to(dt)
        beta = torch.zeros(n, self.n_features, dtype=dt)
        beta[:, : 2 * q] = (mag * sign).reshape(n, -1)
        return beta

    def config(self) -> dict:
        """JSON-serialisable description."""
        return {"n_samples": self.n_samples, "n_features": self.n_features, "n_true": self.n_true,
                "noise_std": self.noise_std, "corr_std": self.corr_std, "dtype": str(self.dtype).replace("torch.", ""),
                "seed": self.seed}


def gene_expression_like(n_samples: int = 20, n_genes: int = 350, *, n_blocks: int = 35, n_informative_blocks: int = 3,
                         within_corr: float = 0.8, effect: float = 1.5, generator: torch.Generator | None = None,
                         dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor, Tensor]:
    """A ``p >> n`` two-class data set with correlated blocks of genes (stand-in for the CNS data).

    Genes come in ``n_blocks`` equal blocks; genes of a block share a latent
    factor (pairwise correlation about ``within_corr``). Half the samples are
    class +1; in the first ``n_informative_blocks`` blocks the latent factor is
    shifted by ``+-effect`` with the class, so whole correlated groups are informative.

    Returns
    -------
    (X, y, informative) : (Tensor, Tensor, Tensor)
        ``(n_samples, n_genes)`` standardised expression, labels in {-1, +1},
        and the bool mask of informative genes.
    """
    check_int("n_samples", n_samples, minimum=4)
    check_int("n_blocks", n_blocks, minimum=1)
    check_int("n_genes", n_genes, minimum=n_blocks)
    if not 0.0 <= within_corr < 1.0:
        raise ValueError(f"within_corr must be in [0, 1), got {within_corr}")
    g = generator
    y = torch.ones(n_samples, dtype=dtype)
    y[n_samples // 2:] = -1.0
    block = torch.arange(n_genes) * n_blocks // n_genes
    latent = torch.randn(n_samples, n_blocks, generator=g, dtype=dtype)
    shift = torch.zeros(n_blocks, dtype=dtype)
    shift[:n_informative_blocks] = effect
    latent = latent + 0.5 * y.unsqueeze(-1) * shift
    X = within_corr ** 0.5 * latent[:, block] + (1 - within_corr) ** 0.5 * torch.randn(n_samples, n_genes, generator=g,
                                                                                     dtype=dtype)
    X = (X - X.mean(0)) / X.std(0)
    return X, y, block < n_informative_blocks
