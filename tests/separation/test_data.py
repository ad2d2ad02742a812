"""Data model of the separation family: spectra, mixing matrices, sources, noise, the Sec. 3.1 split, realistic data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from unrolled.separation.data import (
    SPECTRA_KINDS,
    SeparationData,
    SyntheticConfig,
    add_noise,
    gennorm_sources,
    load_spectra,
    mixing_matrices,
    synthetic_experiment,
)
from unrolled.separation.realistic import (
    RealisticConfig,
    fit_ggd,
    randomised_real_sources,
    real_source_maps,
    realistic_experiment,
    separate_in_wavelet_domain,
    simulate_sources,
)
from unrolled.separation.wavelets import starlet_forward


def test_spectra_and_mixing_matrices():
    spectra = load_spectra()
    assert set(spectra) == set(SPECTRA_KINDS)
    for v in spectra.values():
        assert v.shape[1] == 65
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-12)
    A = mixing_matrices(900)
    assert A.shape == (900, 65, 4) and A.dtype == torch.float64
    for j, kind in enumerate(SPECTRA_KINDS):
        np.testing.assert_allclose(A[:, :, j].numpy(), spectra[kind][:900])
    with pytest.raises(ValueError, match="n_matrices"):
        mixing_matrices(901)


def test_gennorm_sources_are_seeded_normalised_and_heavy_tailed():
    S = gennorm_sources(20, 4, 500, seed=0)
    assert S.shape == (20, 4, 500)
    assert torch.allclose(torch.linalg.vector_norm(S, dim=-1), torch.ones(20, 4, dtype=torch.float64))
    assert torch.equal(S, gennorm_sources(20, 4, 500, seed=0)) and not torch.equal(S, gennorm_sources(20, 4, 500, seed=1))
    # the shape is scale invariant: a maximum-likelihood fit of the normalised sample gives back 0.3
    beta, _, _ = stats.gennorm.fit(S.numpy().ravel(), floc=0.0)
    assert beta == pytest.approx(0.3, rel=0.05)


def test_noise_level_is_the_requested_snr():
    clean = torch.randn(50, 65, 500, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    noisy = add_noise(clean, 30.0, seed=1)
    snr = 10 * torch.log10(clean.pow(2).sum((1, 2)) / (noisy - clean).pow(2).sum((1, 2)))
    assert torch.allclose(snr, torch.full_like(snr, 30.0), atol=0.1)
    assert torch.equal(add_noise(clean, None), clean)


def test_synthetic_split_is_seeded_and_disjoint():
    cfg = SyntheticConfig(n_matrices=60, n_train=50, t=40)
    train, test = synthetic_experiment(cfg, seed=3)
    assert len(train) == 50 and len(test) == 10
    assert train.X.shape == (50, 65, 40) and test.S.shape == (10, 4, 40)
    again, _ = synthetic_experiment(cfg, seed=3)
    assert torch.equal(train.X, again.X)
    flat_tr = {tuple(a.flatten().tolist()) for a in train.A}
    assert not any(tuple(a.flatten().tolist()) in flat_tr for a in test.A)
    resid = train.X - train.A @ train.S
    snr = 10 * torch.log10((train.A @ train.S).pow(2).sum((1, 2)) / resid.pow(2).sum((1, 2)))
    assert (snr - 30.0).abs().max() < 1.0
    with pytest.raises(ValueError, match="n_train"):
        synthetic_experiment(SyntheticConfig(n_matrices=10, n_train=10))


def test_separation_data_checks_shapes():
    with pytest.raises(ValueError, match="inconsistent"):
        SeparationData(torch.zeros(2, 5, 7), torch.zeros(2, 5, 3), torch.zeros(2, 3, 6))
    with pytest.raises(ValueError, match="3-d"):
        SeparationData(torch.zeros(5, 7), torch.zeros(5, 3), torch.zeros(3, 7))


def test_ggd_fit_recovers_known_parameters():
    rng = np.random.default_rng(0)
    v = np.zeros(40000)
    v[:12000] = stats.gennorm.rvs(0.5, loc=0.0, scale=0.02, size=12000, random_state=rng)
    fit = fit_ggd(torch.from_numpy(v), max_samples=12000)
    assert fit.p == pytest.approx(0.3, abs=1e-3)
    assert fit.beta == pytest.approx(0.5, rel=0.1) and fit.scale == pytest.approx(0.02, rel=0.2)
    S = simulate_sources([fit, fit], 3, 1000, seed=1)
    assert S.shape == (3, 2, 1000)
    assert ((S != 0).double().mean(-1) - 0.3).abs().max() < 1e-3
    assert torch.allclose(torch.linalg.vector_norm(S, dim=-1), torch.ones(3, 2, dtype=torch.float64))


def test_real_sources_and_realistic_experiment():
    maps = real_source_maps()
    assert maps.shape == (4, 346, 346) and (maps >= 0).all()
    S = randomised_real_sources(300, seed=0)
    assert S.shape == (4, 300) and torch.allclose(S.norm(dim=1), torch.ones(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="t must be"):
        randomised_real_sources(346 * 346 + 1)
    train, test, fits = realistic_experiment(RealisticConfig(n_matrices=12, n_train=8, t=100), seed=0)
    assert len(train) == 8 and len(test) == 4 and len(fits) == 4
    assert all(0 < f.p <= 1 and f.beta > 0 for f in fits)
    # every test mixture mixes the same real sources with its own matrix
    assert torch.equal(test.S[0], test.S[3]) and not torch.equal(test.A[0], test.A[3])


def test_wavelet_domain_pipeline_with_an_oracle_separator():
    """Appendix A: if the separator returns the true A and detail sources, the images are recovered exactly."""
    maps = real_source_maps()[:, 100:140, 120:150]
    A = mixing_matrices(1)[0]
    X = torch.einsum("mn,nhw->mhw", A, maps)
    _, (d_true,) = starlet_forward(maps, 1)
    A_hat, S_hat = separate_in_wavelet_domain(lambda dX: (A, d_true.reshape(4, -1)), X)
    assert torch.equal(A_hat, A)
    assert torch.allclose(S_hat, maps, atol=1e-12)
    with pytest.raises(ValueError, match="fewer observations"):
        separate_in_wavelet_domain(lambda dX: (A[:3], d_true.reshape(4, -1)), X[:3])
    with pytest.raises(ValueError, match="m, H, W"):
        separate_in_wavelet_domain(lambda dX: (A, d_true), X[0])
