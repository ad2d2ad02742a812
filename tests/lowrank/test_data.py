"""The ultrasound-like movie model: shapes, rank, row sparsity, SNR and tissue-to-blood ratio, determinism."""

from __future__ import annotations

import pytest
import torch

from unrolled.lowrank.data import UltrasoundMovieProblem
from unrolled.lowrank.operators import blur, casorati


def _power(x):
    return float(x.abs().pow(2).mean())


@pytest.mark.parametrize("operator", ["identity", "psf"])
def test_movies_follow_the_model(operator):
    prob = UltrasoundMovieProblem(height=16, width=16, frames=10, rank=3, tbr_db=10.0, snr_db=20.0,
                                  operator=operator)
    D, Y = prob.sample(4, torch.Generator().manual_seed(0))
    assert D.shape == (4, 10, 16, 16) and Y.shape == (4, 2, 10, 16, 16) and D.dtype == torch.complex128
    L, S = Y[:, 0], Y[:, 1]
    H = prob.H
    for b in range(4):
        sv = torch.linalg.svdvals(casorati(L[b]))
        assert float(sv[2]) > 1e-6 * float(sv[0]) and float(sv[3]) < 1e-10 * float(sv[0])  # rank exactly 3
        HL, HS = blur(L[b], H), blur(S[b], H)
        assert 10 * torch.log10(torch.tensor(_power(HL) / _power(HS))) == pytest.approx(10.0, abs=1e-6)
        noise = D[b] - HL - HS
        snr = 10 * torch.log10(torch.tensor(_power(HL + HS) / _power(noise)))
        assert float(snr) == pytest.approx(20.0, abs=0.5)  # the noise is drawn at that SNR
        assert _power(D[b]) == pytest.approx(1.0, rel=1e-10)
        rows = casorati(S[b]).abs().pow(2).sum(-1).sqrt()
        active = float((rows > 0).float().mean())  # pixels (rows) that blood ever reaches
        assert 0.05 < active < (0.8 if operator == "identity" else 0.5)


def test_sampling_is_deterministic_and_the_seed_fixes_the_probe():
    a = UltrasoundMovieProblem(height=8, width=8, frames=5, rank=2)
    D1, Y1 = a.sample(2, torch.Generator().manual_seed(7))
    D2, Y2 = a.sample(2, torch.Generator().manual_seed(7))
    assert torch.equal(D1, D2) and torch.equal(Y1, Y2)
    b = UltrasoundMovieProblem(height=8, width=8, frames=5, rank=2, seed=1)
    assert b.psf_sigma != a.psf_sigma
    assert not torch.equal(b.sample(2, torch.Generator().manual_seed(7))[0], D1)
    f32 = UltrasoundMovieProblem(height=8, width=8, frames=5, rank=2, dtype="float32")
    assert f32.sample(1, torch.Generator().manual_seed(7))[0].dtype == torch.complex64
    assert UltrasoundMovieProblem(**a.config()) == a


@pytest.mark.parametrize("kwargs,name", [
    ({"rank": 0}, "rank"), ({"rank": 7, "frames": 6}, "rank"), ({"frames": 1}, "frames"), ({"height": 3}, "height"),
    ({"operator": "fft"}, "operator"), ({"snr_db": float("nan")}, "snr_db"), ({"dtype": "float16"}, "dtype"),
    ({"vessels": 0}, "vessels"),
])
def test_bad_settings_are_refused(kwargs, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        UltrasoundMovieProblem(**kwargs)
