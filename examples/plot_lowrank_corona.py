r"""
Low rank: CORONA vs ISTA / FISTA robust PCA
===========================================

An ultrasound-like movie ``D`` (``T`` frames of ``H x W`` pixels) is a low-rank tissue part ``L`` plus a sparse
microbubble (blood) part ``S`` plus noise. Convolutional robust PCA (the review's box CORONA, eq. (16))

.. math:: \min_{L, S}\ \tfrac12\|D - L - S\|_F^2 + \lambda_1\|L\|_* + \lambda_2\|S\|_{1,2}

is solved by ISTA/FISTA (:func:`unrolled.lowrank.rpca_ista`): a gradient step, then singular-value thresholding
of ``L`` and a row-wise (per pixel time series) soft threshold of ``S``. CORONA
(:class:`unrolled.lowrank.CORONA`) unrolls ISTA with learned convolution filters and thresholds per layer; its
``from_algorithm`` is ``K`` ISTA iterations exactly.

Small sizes (16 x 16 pixels, 10 frames, 5 layers, 60 training steps on 32 movies) so that the example runs in
seconds; ``unrolled reproduce corona`` runs larger settings.
"""

import time

import torch

from unrolled.core.train import Trainer
from unrolled.lowrank import CORONA, UltrasoundMovieProblem, rpca_ista
from unrolled.lowrank.metrics import mip_db, nmse_db
from unrolled.lowrank.registration import rpca_loss

torch.manual_seed(0)
problem = UltrasoundMovieProblem(height=16, width=16, frames=10, dtype="float32", seed=0)
train = problem.sample(32, torch.Generator().manual_seed(1))
val = problem.sample(4, torch.Generator().manual_seed(2))
D, Y = problem.sample(8, torch.Generator().manual_seed(3))  # test movies; Y[:, 0] = L, Y[:, 1] = S
# penalties on the noise's scale: lam1 ~ sigma (sqrt(HW) + sqrt(T)), lam2 ~ sigma sqrt(T)
sigma = 10 ** (-problem.snr_db / 20)
lam1, lam2 = sigma * ((16 * 16) ** 0.5 + 10 ** 0.5), sigma * 10 ** 0.5
K = 5

# %%
# Untrained, the net is K ISTA iterations
# ---------------------------------------
net = CORONA.from_algorithm(K, lam1, lam2, kernel_size=3, dtype="float32")
with torch.no_grad():
    untrained = net(D)
k_ista = rpca_ista(D, lam1, lam2, max_iter=K, tol=0, fast=False)
print(f"untrained CORONA vs {K} ISTA iterations: max |difference| = "
      f"{float((untrained - k_ista.x).abs().max()):.1e}")

# %%
# Training (Adam on the normalised MSE of L and S)
# ------------------------------------------------
t0 = time.perf_counter()
Trainer(net, rpca_loss, train, val, lr=1e-2, max_steps=60, batch_size=4, val_every=20, schedule="cosine",
        grad_clip=1.0, seed=0, progress=False).fit()
print(f"trained 60 steps in {time.perf_counter() - t0:.1f} s")

# %%
# NMSE of the blood (S) and tissue (L) on 8 test movies
# -----------------------------------------------------
with torch.no_grad():
    trained = net(D)
fista = rpca_ista(D, lam1, lam2, max_iter=2000, tol=1e-4)
rows = {f"ISTA, {K} iterations (= untrained net)": untrained, f"CORONA, {K} layers, trained": trained,
        f"FISTA to convergence ({int(fista.n_iter.max())} its at most)": fista.x}
print(f"{'method':<42} {'S (dB)':>8} {'L (dB)':>8}")
for name, est in rows.items():
    print(f"{name:<42} {nmse_db(est[:, 1], Y[:, 1]):>8.2f} {nmse_db(est[:, 0], Y[:, 0]):>8.2f}")

import matplotlib.pyplot as plt  # noqa: E402

ref = float(Y[0, 1].abs().amax())
panels = [("input D", mip_db(D[0])), ("true S", mip_db(Y[0, 1], ref)),
          (f"S: ISTA, {K} its", mip_db(untrained[0, 1], ref)), ("S: CORONA", mip_db(trained[0, 1], ref)),
          ("S: FISTA, converged", mip_db(fista.x[0, 1], ref))]
fig, axes = plt.subplots(1, 5, figsize=(11, 2.6))
for ax, (title, img) in zip(axes, panels):
    ax.imshow(img.numpy(), cmap="hot", vmin=-40, vmax=0)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
fig.suptitle("maximum-intensity projection over the frames (dB)", fontsize=9)
fig.tight_layout()
plt.show()
