"""The realistic experiment's data (LPALM paper, Sec. 3.2 and appendix B).

* Test set: the 150 test mixing matrices of Sec. 3.1 applied to the real
  Cassiopeia-A-like source maps, in the wavelet domain (detail scale of the
  starlet with ``J = 1``). To avoid partial correlations the pixels of each
  source are randomised (an independent random permutation per source), and
  ``t`` of them are kept; rows are normalised.
* Train set: the 750 training mixing matrices with *simulated* sources having
  the wavelet-domain statistics of the real ones: per source, the proportion
  ``p`` of non-zero detail coefficients and a generalised Gaussian
  (``scipy.stats.gennorm``: shape, location, scale) fitted to the non-zero
  ones; a source is ``t p`` GGD draws, ``t (1 - p)`` zeros, shuffled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from unrolled.core.validation import check_int
from unrolled.separation.data import (
    REAL_SOURCES_FILE,
    SPECTRA_KINDS,
    SeparationData,
    SyntheticConfig,
    load_packaged_npz,
    mix,
    mixing_matrices,
    normalise_rows,
)
from unrolled.separation.solvers import check_mixtures
from unrolled.separation.wavelets import starlet_forward, starlet_inverse


def real_source_maps() -> Tensor:
    """The four real source maps ``(4, 346, 346)``, float64, in the order of :data:`SPECTRA_KINDS`."""
    maps = load_packaged_npz(REAL_SOURCES_FILE)
    return torch.from_numpy(np.stack([maps[k] for k in SPECTRA_KINDS]))


def wavelet_details(maps: Tensor) -> Tensor:
    """Detail scale ``w_1`` of the ``J = 1`` starlet of each map, flattened to ``(n, H * W)``."""
    _, (detail,) = starlet_forward(maps, 1)
    return detail.reshape(maps.shape[0], -1)


@dataclass(frozen=True)
class GGDFit:
    """Wavelet-domain statistics of one source: non-zero proportion and GGD parameters."""

    p: float
    beta: float
    loc: float
    scale: float


def fit_ggd(values: Tensor, *, max_samples: int = 20000, seed: int = 0) -> GGDFit:
    """Fit ``p`` and a generalised Gaussian to the non-zero entries of ``values`` (MLE on a seeded subsample)."""
    v = values.detach().cpu().numpy().ravel()
    nz = v[v != 0]
    if nz.size < 10:
        raise ValueError("need at least 10 non-zero coefficients to fit a generalised Gaussian")
    rng = np.random.default_rng(seed)
    if nz.size > max_samples:
        nz = rng.choice(nz, size=max_samples, replace=False)
    beta, loc, scale = stats.gennorm.fit(nz)
    return GGDFit(p=float((v != 0).mean()), beta=float(beta), loc=float(loc), scale=float(scale))


def simulate_sources(fits: list[GGDFit], n_samples: int, t: int, *, seed: int = 0) -> Tensor:
    """``(n_samples, len(fits), t)`` simulated sources (appendix B), unit-norm rows, float64."""
    check_int("n_samples", n_samples, minimum=1)
    check_int("t", t, minimum=1)
    rng = np.random.default_rng(seed)
    out = np.zeros((n_samples, len(fits), t))
    for i, f in enumerate(fits):
        n_nz = max(1, int(round(f.p * t)))
        vals = stats.gennorm.rvs(f.beta, loc=f.loc, scale=f.scale, size=(n_samples, n_nz), random_state=rng)
        out[:, i, :n_nz] = vals
        out[:, i] = rng.permuted(out[:, i], axis=-1)
    return normalise_rows(torch.from_numpy(out))


def randomised_real_sources(t: int, *, seed: int = 0) -> Tensor:
    """The real sources in the wavelet domain, pixels randomised per source, ``t`` kept: ``(4, t)``, unit rows."""
    details = wavelet_details(real_source_maps())
    check_int("t", t, minimum=1)
    if t > details.shape[1]:
        raise ValueError(f"t must be <= {details.shape[1]} pixels, got {t}")
    g = torch.Generator().manual_seed(int(seed))
    rows = [d[torch.randperm(d.numel(), generator=g)[:t]] for d in details]
    return normalise_rows(torch.stack(rows))


@dataclass(frozen=True)
class RealisticConfig:
    """Settings of the realistic experiment (``t`` wavelet coefficients per mixture)."""

    n_matrices: int = 900
    n_train: int = 750
    t: int = 500
    snr_db: float = 30.0


def realistic_experiment(cfg: RealisticConfig = RealisticConfig(), *, seed: int = 0) -> tuple[SeparationData, SeparationData, list[GGDFit]]:
    """Train set (simulated sources), test set (real sources) and the fitted statistics, float64.

    The mixing matrices are split exactly as in
    :func:`~unrolled.separation.data.synthetic_experiment` with the same seed.
    """
    syn = SyntheticConfig(n_matrices=cfg.n_matrices, n_train=cfg.n_train)
    if not 1 <= syn.n_train < syn.n_matrices:
        raise ValueError(f"n_train must be in [1, n_matrices), got {cfg.n_train} of {cfg.n_matrices}")
    A = mixing_matrices(cfg.n_matrices)
    A = A[torch.randperm(cfg.n_matrices, generator=torch.Generator().manual_seed(int(seed)))]
    A_train, A_test = A[: cfg.n_train], A[cfg.n_train:]
    details = wavelet_details(real_source_maps())
    fits = [fit_ggd(d, seed=seed + i) for i, d in enumerate(details)]
    S_train = simulate_sources(fits, cfg.n_train, cfg.t, seed=seed + 10)
    S_real = randomised_real_sources(cfg.t, seed=seed + 11)
    train = mix(A_train, S_train, cfg.snr_db, seed=seed + 12)
    test = mix(A_test, S_real.expand(A_test.shape[0], -1, -1).clone(), cfg.snr_db, seed=seed + 13)
    return train, test, fits


def separate_in_wavelet_domain(separator: Callable[[Tensor], tuple[Tensor, Tensor]], images: Tensor) -> tuple[Tensor, Tensor]:
    """Appendix A's test-time pipeline on multichannel images ``(m, H, W)``.

    ``Phi(X) = (cX, dX)`` with the ``J = 1`` starlet; ``separator(dX)`` (``dX``
    flattened to ``(1, m, H W)``) returns ``(A, dS)`` (e.g. a trained LPALM);
    the coarse scale of the sources is ``cS = A^+ cX`` and ``S = Phi^-1(cS, dS)``.
    Needs at least as many channels as sources (``A^+`` must be a left inverse).

    Returns
    -------
    (Tensor, Tensor)
        ``A`` ``(m, n)`` and the source images ``S`` ``(n, H, W)``.
    """
    if images.dim() != 3:
        raise ValueError(f"images must be (m, H, W), got shape {tuple(images.shape)}")
    m, H, W = images.shape
    coarse, (detail,) = starlet_forward(images, 1)
    dX = check_mixtures(detail.reshape(1, m, H * W))
    A, dS = separator(dX)
    A, dS = A.reshape(m, -1).to(images.dtype), dS.reshape(-1, H * W).to(images.dtype)
    n = A.shape[1]
    check_mixtures(dX, n, allow_underdetermined=False)
    cS = torch.linalg.pinv(A) @ coarse.reshape(m, H * W)
    return A, starlet_inverse(cS.reshape(n, H, W), [dS.reshape(n, H, W)])
