r"""
NMF: deep NMF vs sparse NMF for speech enhancement
==================================================

A noisy, reverberant utterance's magnitude spectrogram :math:`M` (``F x T``) is modelled as
:math:`M \approx W H = W_s H_s + W_n H_n` with non-negative speech and noise bases :math:`W_s, W_n` learned
beforehand. Sparse NMF (the review's box Deep NMF, eqs. (21)-(26)) estimates the activations :math:`H` by the
multiplicative updates of the :math:`\beta`-divergence with an :math:`\ell_1` penalty :math:`\mu`,

.. math:: H^{l+1} = H^l \odot \frac{W^\top\big(M \odot (W H^l)^{\beta - 2}\big)}
          {W^\top (W H^l)^{\beta - 1} + \mu},

and the speech estimate is the Wiener-like mask :math:`\frac{W_s H_s}{W H} \odot M`
(:func:`unrolled.nmf.separate`). Deep NMF (:class:`unrolled.nmf.DeepNMF`) unrolls ``K`` updates with untied,
learned (non-negative) bases :math:`W^l`; ``from_algorithm`` sets every :math:`W^l = [W_s, W_n]`.

1-s mixtures at 8 kHz (shipped eSpeak NG voices), 10 layers, 40 training steps on 24 mixtures;
``unrolled reproduce deepnmf`` runs the full setting.
"""

import time

import torch

from unrolled.core.train import Trainer
from unrolled.nmf import (DeepNMF, SpeechEnhancementProblem, learn_bases, magnitude, resynthesise, sdr_si_sdr,
                          separate, spectral_snr_db, spectral_snr_loss)

torch.manual_seed(0)
sizes = dict(seed=0, n_rooms=2, duration=1.0, n_fft=128, hop=64)
train_p, test_p = SpeechEnhancementProblem("train", **sizes), SpeechEnhancementProblem("test", **sizes)
M_tr, S_tr = (t.float() for t in train_p.sample(24, torch.Generator().manual_seed(1)))
test = test_p.sample_waveforms(6, torch.Generator().manual_seed(2))
M, S = magnitude(test["noisy"], 128, 64).float(), magnitude(test["speech"], 128, 64).float()

# bases from the training speech and noise (KL divergence, beta = 1)
speech, noise = train_p.source_spectrograms(n_noise=6, seed=0)
Ws = learn_bases(speech, 12, beta=1.0, mu=0.1, max_iter=30, seed=1).float()
Wn = learn_bases(noise, 8, beta=1.0, mu=0.1, max_iter=30, seed=2).float()
K = 10

# %%
# Untrained, the net is K multiplicative updates
# ----------------------------------------------
net = DeepNMF.from_algorithm(Ws, Wn, K, beta=1.0, mu=0.1, dtype="float32")
k_its = separate(M, Ws, Wn, beta=1.0, mu=0.1, max_iter=K, tol=0.0)
with torch.no_grad():
    rel = float((net(M) - k_its.x).abs().max() / k_its.x.abs().max())
print(f"untrained deep NMF vs {K} sparse-NMF iterations: max relative difference = {rel:.1e}")

# %%
# Training the bases of every layer (spectral SNR loss)
# -----------------------------------------------------
t0 = time.perf_counter()
Trainer(net, spectral_snr_loss, (M_tr, S_tr), (M_tr[:6], S_tr[:6]), lr=1e-2, max_steps=40, batch_size=8,
        val_every=10, seed=0, progress=False).fit()
print(f"trained 40 steps in {time.perf_counter() - t0:.1f} s")

# %%
# SDR improvement and spectral SNR on 6 test mixtures
# ---------------------------------------------------
converged = separate(M, Ws, Wn, beta=1.0, mu=0.1, max_iter=300, tol=1e-4)
with torch.no_grad():
    estimates = {"noisy input": M, f"sparse NMF, {K} its (= untrained net)": k_its.x,
                 f"sparse NMF, converged ({int(converged.n_iter.max())} its)": converged.x,
                 f"deep NMF, {K} layers, trained": net(M)}
ref_sdr = sdr_si_sdr(test["speech"], test["noisy"])[0]
print(f"{'method':<40} {'SDRi (dB)':>10} {'spectral SNR (dB)':>18}")
for name, est in estimates.items():
    wave = resynthesise(est.double(), test["noisy"], 128, 64)
    sdri = float((sdr_si_sdr(test["speech"], wave)[0] - ref_sdr).mean())
    print(f"{name:<40} {sdri:>10.2f} {float(spectral_snr_db(est, S).mean()):>18.2f}")

import matplotlib.pyplot as plt  # noqa: E402

top = float(20 * torch.log10(M[0].max()))
shown = {"noisy": M[0], "target speech": S[0], "sparse NMF, converged": converged.x[0],
         "deep NMF": estimates[f"deep NMF, {K} layers, trained"][0]}
fig, axes = plt.subplots(1, 4, figsize=(11, 2.6), sharey=True)
for ax, (title, X) in zip(axes, shown.items()):
    ax.imshow(20 * torch.log10(X.double() + 1e-6).numpy(), origin="lower", aspect="auto", cmap="magma",
              vmin=top - 70, vmax=top)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("frame")
axes[0].set_ylabel("frequency bin")
fig.tight_layout()
plt.show()
