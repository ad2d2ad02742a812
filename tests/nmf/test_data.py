"""The shipped speech set and the reverberant noisy mixtures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unrolled.nmf import corpus
from unrolled.nmf.data import SpeechEnhancementProblem, fft_convolve, magnitude, resynthesise, room_bank

SMALL = dict(n_rooms=2, duration=0.5, n_fft=64, hop=32)


def test_splits_differ_in_sentences_and_voices():
    entries = corpus.manifest()["utterances"]
    by_split = {s: [e for e in entries if e["split"] == s] for s in corpus.SPLITS}
    assert [len(by_split[s]) for s in corpus.SPLITS] == [25, 6, 8]
    for a in corpus.SPLITS:
        for b in corpus.SPLITS:
            if a < b:
                assert not {e["text"] for e in by_split[a]} & {e["text"] for e in by_split[b]}
                assert not {e["voice"] for e in by_split[a]} & {e["voice"] for e in by_split[b]}
    for u in corpus.utterances("test"):
        assert 1.0 < len(u) / corpus.SAMPLE_RATE < 4.0 and 0.69 < float(u.abs().max()) < 0.71


def test_rooms_differ_by_split_and_seed():
    a = room_bank("train", 0, 2, 8000)
    b = room_bank("test", 0, 2, 8000)
    c = room_bank("train", 1, 2, 8000)
    assert a[0]["dims"] != b[0]["dims"] and a[0]["dims"] != c[0]["dims"]
    for r in a:
        assert 0.2 <= r["rt60"] <= 0.6 and np.argmax(np.abs(r["speech_rir"])) > 0  # a propagation delay


@pytest.mark.parametrize("noise", ["coloured", "babble", "machine"])
def test_mixture_is_speech_plus_noise_at_the_drawn_snr(noise):
    prob = SpeechEnhancementProblem("val", snr_db=(2.5, 2.5), noises=(noise,), **SMALL)
    w = prob.sample_waveforms(3, torch.Generator().manual_seed(0))
    assert w["noisy"].shape == (3, 4000)
    torch.testing.assert_close(w["noisy"], w["speech"] + w["noise"])
    snr = 10 * torch.log10(w["speech"].pow(2).sum(-1) / w["noise"].pow(2).sum(-1))
    torch.testing.assert_close(snr, torch.full((3,), 2.5, dtype=torch.float64))
    M, S = prob.sample(3, torch.Generator().manual_seed(0))
    assert M.shape == S.shape == (3, 33, 126) and M.is_contiguous()
    torch.testing.assert_close(M, magnitude(w["noisy"], 64, 32))


def test_machine_noise_is_harmonic_and_babble_is_speech_like():
    prob = SpeechEnhancementProblem("train", noises=("machine",), **SMALL)
    x = prob.noise("machine", 8000, torch.Generator().manual_seed(3))
    spec = torch.fft.rfft(x).abs()
    assert float(spec.max() / spec.median()) > 100  # line spectrum
    b = prob.noise("babble", 8000, torch.Generator().manual_seed(3), exclude=0)
    sb = torch.fft.rfft(b).abs()
    assert float(sb.max() / sb.median()) < float(spec.max() / spec.median())


def test_resynthesis_with_own_magnitude_is_identity_and_convolution_is_linear():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1000, generator=g, dtype=torch.float64)
    torch.testing.assert_close(resynthesise(magnitude(x, 64, 16), x, 64, 16), x, rtol=1e-9, atol=1e-9)
    h = torch.randn(37, generator=g, dtype=torch.float64)
    ref = np.convolve(x[0].numpy(), h.numpy())[:1000]
    np.testing.assert_allclose(fft_convolve(x[0], h).numpy(), ref, atol=1e-10)


def test_bad_problem_settings():
    with pytest.raises(ValueError, match="split"):
        SpeechEnhancementProblem("dev")
    with pytest.raises(ValueError, match="noises"):
        SpeechEnhancementProblem(noises=("music",))
    with pytest.raises(ValueError, match="snr_db"):
        SpeechEnhancementProblem(snr_db=(5.0, -5.0))
