"""Evaluation kind of the nmf family's pretrained model: deep NMF speech enhancement."""

from __future__ import annotations

from pathlib import Path

import torch

from unrolled.pretrained._common import per_problem, without_std


def speech(net, ev, n_test, seed, baseline):
    """Deep NMF (review box 'Deep (Unrolled) NMF', eqs. (24)-(26)): SDR and SI-SDR improvements over the noisy
    input, STOI and the spectral SNR on fresh reverberant noisy mixtures of the test voices and sentences in a
    fresh bank of test rooms; (``baseline``) sparse NMF to convergence with the training run's bases
    (``bases.safetensors`` beside the model) and ``mu``."""
    from safetensors.torch import load_file

    from unrolled.nmf.data import SpeechEnhancementProblem, magnitude, resynthesise
    from unrolled.nmf.metrics import sdr_si_sdr, spectral_snr_db, stoi
    from unrolled.nmf.solvers import separate

    p = ev["problem"]
    prob = SpeechEnhancementProblem(split="test", seed=p["room_seed"], n_rooms=p["n_rooms"], duration=p["duration"],
                                    n_fft=p["n_fft"], hop=p["hop"])
    w = prob.sample_waveforms(n_test, torch.Generator().manual_seed(seed))
    noisy, clean = w["noisy"], w["speech"]
    M = magnitude(noisy, prob.n_fft, prob.hop).to(net.dtype)
    S = magnitude(clean, prob.n_fft, prob.hop).double()
    ref_sdr, ref_si = sdr_si_sdr(clean, noisy)
    ref_stoi = torch.as_tensor(stoi(clean, noisy, prob.fs), dtype=torch.float64)

    def score(S_hat):
        res = {}
        wave = resynthesise(S_hat.double(), noisy, prob.n_fft, prob.hop)
        sdr, si = sdr_si_sdr(clean, wave)
        st = torch.as_tensor(stoi(clean, wave, prob.fs), dtype=torch.float64)
        per_problem(res, "sdr_improvement_db", sdr - ref_sdr)
        per_problem(res, "si_sdr_improvement_db", si - ref_si)
        per_problem(res, "stoi", st)
        per_problem(res, "spectral_snr_db", spectral_snr_db(S_hat.double(), S))
        return res

    out = score(net(M))
    base = {}
    if baseline:
        bases = load_file(str(Path(ev["model_dir"]) / "bases.safetensors"))
        x = separate(M, bases["speech"].to(M.dtype), bases["noise"].to(M.dtype), beta=ev["beta"], mu=ev["nmf_mu"],
                     max_iter=ev["nmf_max_iter"], tol=ev["nmf_tol"]).x
        base = without_std(score(x))
        base["noisy_stoi"] = float(ref_stoi.mean())
    return out, base
