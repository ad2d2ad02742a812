"""The nmf part of ``unrolled demo``: a 10-layer deep NMF trained briefly against sparse NMF (a few seconds)."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from unrolled.core.train import Trainer
from unrolled.experiments.report import markdown_table, save_figure, write_json
from unrolled.nmf.data import SpeechEnhancementProblem, magnitude, resynthesise
from unrolled.nmf.metrics import sdr_si_sdr, spectral_snr_db, spectral_snr_loss
from unrolled.nmf.nets import DeepNMF
from unrolled.nmf.solvers import learn_bases, separate


def run_deepnmf_demo(out_dir: str | Path, *, seed: int = 0, device: str = "cpu", progress: bool = True) -> dict:
    """Sparse NMF (to convergence and for 10 iterations) vs a 10-layer deep NMF on 1-s test mixtures.

    Bases (12 speech, 8 noise, KL divergence) come from the training speech and noise; the deep NMF starts from
    them (untrained = 10 iterations of sparse NMF) and trains 30 steps on 24 training mixtures. Prints and
    returns the SDR improvement and spectral SNR on 6 test mixtures, and writes ``deepnmf_demo.png``.
    """
    if device != "cpu":
        raise ValueError("the deepnmf demo runs on the CPU")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    sizes = dict(seed=seed, n_rooms=2, duration=1.0, n_fft=128, hop=64)
    train_p, test_p = SpeechEnhancementProblem("train", **sizes), SpeechEnhancementProblem("test", **sizes)
    Mtr, Str = (t.float() for t in train_p.sample(24, torch.Generator().manual_seed(seed + 1)))
    test = test_p.sample_waveforms(6, torch.Generator().manual_seed(seed + 2))
    M, S = magnitude(test["noisy"], 128, 64).float(), magnitude(test["speech"], 128, 64).float()
    speech, noise = train_p.source_spectrograms(n_noise=6, seed=seed)
    Ws = learn_bases(speech, 12, beta=1.0, mu=0.1, max_iter=30, seed=seed + 1).float()
    Wn = learn_bases(noise, 8, beta=1.0, mu=0.1, max_iter=30, seed=seed + 2).float()
    print("\nunrolled demo: deep NMF (10 layers, untied W^l) vs sparse NMF, speech enhancement on 1-s reverberant "
          "noisy mixtures (8 kHz, shipped eSpeak NG voices; 24 training / 6 test mixtures)")
    net = DeepNMF.from_algorithm(Ws, Wn, 10, beta=1.0, mu=0.1, dtype="float32")
    Trainer(net, spectral_snr_loss, (Mtr, Str), (Mtr[:6], Str[:6]), lr=1e-2, max_steps=30, batch_size=8,
            val_every=10, seed=seed, progress=progress).fit()
    estimates, seconds = {}, {}
    runs = {"noisy input": lambda X: X,
            "sparse NMF, converged": lambda X: separate(X, Ws, Wn, beta=1.0, mu=0.1, max_iter=300, tol=1e-4).x,
            "sparse NMF, 10 iterations": lambda X: separate(X, Ws, Wn, beta=1.0, mu=0.1, max_iter=10, tol=0.0).x,
            "deep NMF, 10 layers (trained)": net}
    with torch.no_grad():
        for name, fn in runs.items():
            t0 = time.perf_counter()
            estimates[name] = fn(M)
            seconds[name] = (time.perf_counter() - t0) / M.shape[0]
    ref_sdr = sdr_si_sdr(test["speech"], test["noisy"])[0]
    rows, payload = [], {}
    for name, est in estimates.items():
        wave = resynthesise(est.double(), test["noisy"], 128, 64)
        sdri = float((sdr_si_sdr(test["speech"], wave)[0] - ref_sdr).mean())
        snr = float(spectral_snr_db(est, S).mean())
        payload[name] = {"sdr_improvement_db": sdri, "spectral_snr_db": snr, "ms_per_utterance": 1e3 * seconds[name]}
        rows.append([name, sdri, snr, f"{1e3 * seconds[name]:.1f}"])
    print(markdown_table(["method", "SDRi (dB)", "spectral SNR (dB)", "ms / utterance"], rows))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = {"noisy": M[0], "target (reverberant speech)": S[0], "sparse NMF, converged":
             estimates["sparse NMF, converged"][0], "deep NMF, 10 layers": estimates["deep NMF, 10 layers (trained)"][0]}
    fig, axes = plt.subplots(1, 4, figsize=(12, 2.8), sharey=True)
    for ax, (title, X) in zip(axes, shown.items()):
        ax.imshow(20 * torch.log10(X.double() + 1e-6).numpy(), origin="lower", aspect="auto", cmap="magma",
                  vmin=float(20 * torch.log10(M[0].max())) - 70, vmax=float(20 * torch.log10(M[0].max())))
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("frame")
    axes[0].set_ylabel("frequency bin")
    save_figure(fig, out_dir / "deepnmf_demo.png")
    payload["seconds"] = time.perf_counter() - t_start
    write_json(out_dir / "deepnmf_demo.json", payload)
    return payload
