"""``unrolled reproduce deepnmf``: deep NMF vs sparse NMF vs a BLSTM on reverberant noisy speech (review, box Deep NMF).

The review: "The deep NMF was evaluated on the task of speech enhancement in reverberated noisy mixtures [...]
Deep NMF was shown to outperform both a conventional deep neural network [30] and the iterative sparse NMF
method [55]." Here: the shipped eSpeak NG speech (:mod:`unrolled.nmf.corpus`) in pyroomacoustics rooms with
coloured, babble and machine noise (:mod:`unrolled.nmf.data`); train, validation and test differ in
utterances, voices and rooms. Methods, all from the same training mixtures:

* sparse NMF (:func:`~unrolled.nmf.solvers.separate`) run to convergence with per-source bases learned by
  :func:`~unrolled.nmf.solvers.learn_bases` on the training speech and noise, ``mu`` chosen on validation;
* the same for ``K`` iterations only (= the untrained deep NMF);
* deep NMF (:class:`~unrolled.nmf.nets.DeepNMF`) for each ``K`` in ``layers``, initialised from those bases and
  trained with the spectral SNR loss;
* a BLSTM mask estimator (:class:`~unrolled.nmf.baselines.MaskBLSTM`) with more parameters, same loss and data.

Test metrics per utterance: SDR and SI-SDR improvements over the noisy input (``fast_bss_eval``) and STOI
(``pystoi``), against the reverberant speech; enhanced waveforms use the noisy phase. Time per utterance is the
estimation from the noisy magnitude spectrogram (STFT and inverse STFT excluded), one utterance at a time, all
methods in float32 in the same run.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from unrolled.core.train import Trainer
from unrolled.experiments.deepnmf_report import write_report
from unrolled.nmf.baselines import MaskBLSTM
from unrolled.nmf.data import SpeechEnhancementProblem, resynthesise
from unrolled.nmf.metrics import sdr_si_sdr, spectral_snr_db, spectral_snr_loss, stoi
from unrolled.nmf.nets import DeepNMF
from unrolled.nmf.solvers import learn_bases, separate

FULL = dict(n_train=160, n_val=24, n_test=48, duration=2.0, n_fft=256, hop=64, n_rooms=6, n_speech=40,
            n_noise=24, n_noise_clips=24, beta=1.0, basis_mu=0.1, mu_grid=(0.0, 0.1, 0.5), basis_iter=100,
            nmf_max_iter=500, nmf_tol=1e-4, layers=(10, 15, 20, 25), steps=200, lr=1e-2, batch_size=8,
            val_every=25, lstm_hidden=96, lstm_layers=2, lstm_steps=600, lstm_lr=2e-3, checkpoint_dir=None)
QUICK = dict(FULL, n_train=16, n_val=4, n_test=4, duration=1.0, n_fft=128, hop=64, n_rooms=2, n_speech=12,
             n_noise=8, n_noise_clips=6, mu_grid=(0.1,), basis_iter=30, nmf_max_iter=100, layers=(10,), steps=8,
             val_every=4, batch_size=4, lstm_hidden=24, lstm_layers=1, lstm_steps=8)


def _problem(split: str, seed: int, s: dict) -> SpeechEnhancementProblem:
    return SpeechEnhancementProblem(split=split, seed=seed, n_rooms=s["n_rooms"], duration=s["duration"],
                                    n_fft=s["n_fft"], hop=s["hop"])


def _spectrograms(prob: SpeechEnhancementProblem, w: dict) -> tuple[torch.Tensor, torch.Tensor]:
    from unrolled.nmf.data import magnitude

    return (magnitude(w["noisy"], prob.n_fft, prob.hop).float(), magnitude(w["speech"], prob.n_fft, prob.hop).float())


def _train(model, name: str, train, val, steps: int, lr: float, s: dict, seed: int, progress: bool):
    ckpt = Path(s["checkpoint_dir"]) / name if s["checkpoint_dir"] else None
    trainer = Trainer(model, spectral_snr_loss, train, val, lr=lr, max_steps=steps, batch_size=s["batch_size"],
                      val_every=s["val_every"], schedule="cosine", grad_clip=10.0, seed=seed, progress=progress,
                      checkpoint_dir=ckpt, on_mismatch="restart", val_batch_size=8)
    res = trainer.fit()
    return {"best_val_snr_db": -float(res.best_val), "steps": int(res.n_steps), "train_seconds": float(res.seconds),
            "curve": [{"step": int(r["global_step"]), "val_snr_db": -float(r["val_loss"])} for r in res.history]}


def _evaluate(methods: dict, test: dict, prob: SpeechEnhancementProblem, progress: bool) -> dict:
    """Per method: metrics per utterance and the time per utterance (estimation only)."""
    noisy, speech = test["noisy"], test["speech"]
    M = _spectrograms(prob, test)[0]
    ref_sdr, ref_si = sdr_si_sdr(speech, noisy)
    ref_stoi = stoi(speech, noisy, prob.fs)
    out = {}
    for name, fn in tqdm(methods.items(), desc="test methods", disable=not progress, leave=False):
        estimates, seconds = [], []
        with torch.no_grad():
            fn(M[:1])  # warm-up (allocations, first-call overheads)
            for i in range(M.shape[0]):
                t0 = time.perf_counter()
                estimates.append(fn(M[i: i + 1]))
                seconds.append(time.perf_counter() - t0)
        S_hat = torch.cat(estimates)
        wave = resynthesise(S_hat.double(), noisy, prob.n_fft, prob.hop)
        sdr, si = sdr_si_sdr(speech, wave)
        st = stoi(speech, wave, prob.fs)
        out[name] = {"sdr_db": sdr.tolist(), "si_sdr_db": si.tolist(), "stoi": st.tolist(),
                     "sdr_improvement_db": (sdr - ref_sdr).tolist(), "si_sdr_improvement_db": (si - ref_si).tolist(),
                     "stoi_improvement": (st - ref_stoi).tolist(), "seconds_per_utterance": seconds,
                     "spectral_snr_db": spectral_snr_db(S_hat.double(), _spectrograms(prob, test)[1].double()).tolist(),
                     "_estimate": S_hat, "_wave": wave}
    return out


def reproduce_deepnmf(out_dir, quick: bool = False, seed: int = 0, device: str = "cpu", progress: bool = False,
                      **settings) -> dict:
    """Run the comparison; write results.json, results.md, figures and audio examples into ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
    quick : bool
        Tiny sizes (under a minute): 16 training mixtures of 1 s, K = 10 only, a few training steps.
    seed : int
        Seeds the rooms, the mixtures, the bases and the training.
    device : str
        Only ``'cpu'`` (timings are CPU timings).
    progress : bool
        Progress bars.
    **settings
        Overrides of :data:`FULL` / :data:`QUICK` (e.g. ``layers=(10, 25)``, ``steps=300``, ``checkpoint_dir``).
    """
    if device != "cpu":
        raise ValueError("the deepnmf reproduction runs on the CPU (its timings are CPU timings)")
    base = QUICK if quick else FULL
    unknown = set(settings) - set(base)
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; known: {sorted(base)}")
    s = {**base, **settings}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    t_start = time.perf_counter()

    probs = {split: _problem(split, seed, s) for split in ("train", "val", "test")}
    waves = {split: probs[split].sample_waveforms(s[f"n_{split}"], torch.Generator().manual_seed(seed + 1 + i))
             for i, split in enumerate(("train", "val", "test"))}
    train, val = _spectrograms(probs["train"], waves["train"]), _spectrograms(probs["val"], waves["val"])

    t0 = time.perf_counter()
    speech_specs, noise_specs = probs["train"].source_spectrograms(n_noise=s["n_noise_clips"], seed=seed)
    Ws = learn_bases(speech_specs, s["n_speech"], beta=s["beta"], mu=s["basis_mu"], max_iter=s["basis_iter"],
                     seed=seed + 1).float()
    Wn = learn_bases(noise_specs, s["n_noise"], beta=s["beta"], mu=s["basis_mu"], max_iter=s["basis_iter"],
                     seed=seed + 2).float()
    basis_seconds = time.perf_counter() - t0

    def sparse_nmf(mu, max_iter, tol):
        return lambda M: separate(M, Ws, Wn, beta=s["beta"], mu=mu, max_iter=max_iter, tol=tol).x

    mu_scores = {mu: float(spectral_snr_db(sparse_nmf(mu, s["nmf_max_iter"], s["nmf_tol"])(val[0]), val[1]).mean())
                 for mu in s["mu_grid"]}
    mu = max(mu_scores, key=mu_scores.get)

    trained, nets = {}, {}
    for K in tqdm(s["layers"], desc="deep NMF depths", disable=not progress):
        net = DeepNMF.from_algorithm(Ws, Wn, K, beta=s["beta"], mu=mu, dtype="float32")
        trained[f"deep NMF K={K}"] = _train(net, f"deepnmf-K{K}", train, val, s["steps"], s["lr"], s, seed, progress)
        trained[f"deep NMF K={K}"]["parameters"] = sum(p.numel() for p in net.parameters())
        nets[K] = net.eval()
    lstm = MaskBLSTM(probs["train"].n_freq, s["lstm_hidden"], s["lstm_layers"]).fit_normalisation(train[0])
    trained["BLSTM mask"] = _train(lstm, "blstm", train, val, s["lstm_steps"], s["lstm_lr"], s, seed, progress)
    trained["BLSTM mask"]["parameters"] = sum(p.numel() for p in lstm.parameters())
    lstm.eval()

    K_max = max(s["layers"])
    methods = {"noisy input": lambda M: M,
               f"sparse NMF, converged (tol {s['nmf_tol']:g})": sparse_nmf(mu, s["nmf_max_iter"], s["nmf_tol"]),
               f"sparse NMF, {K_max} iterations (untrained deep NMF)": sparse_nmf(mu, K_max, 0.0)}
    methods.update({f"deep NMF K={K}": net for K, net in nets.items()})
    methods["BLSTM mask"] = lstm
    results = _evaluate(methods, waves["test"], probs["test"], progress)
    conv_name = next(n for n in methods if n.startswith("sparse NMF, converged"))
    with torch.no_grad():
        n_iter = separate(_spectrograms(probs["test"], waves["test"])[0], Ws, Wn, beta=s["beta"], mu=mu,
                          max_iter=s["nmf_max_iter"], tol=s["nmf_tol"]).n_iter
    results[conv_name]["iterations"] = n_iter.tolist()

    payload = {
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in s.items() if k != "checkpoint_dir"},
        "quick": quick, "seed": seed, "threads": torch.get_num_threads(), "mu_selected": mu,
        "mu_validation_snr_db": {str(k): v for k, v in mu_scores.items()}, "basis_seconds": basis_seconds,
        "problems": {k: p.config() for k, p in probs.items()},
        "rooms_rt60_s": {k: [round(r["rt60"], 3) for r in p.rooms()] for k, p in probs.items()},
        "training": trained, "total_seconds": None,
    }
    summary = write_report(out_dir, payload, results, waves["test"], probs["test"], Ws.shape[1], t_start)
    return summary
