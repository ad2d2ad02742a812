r"""
Imaging: ADMM-CSNet vs ADMM for compressive MRI
===============================================

An image :math:`x` is measured in k-space on a radial mask, :math:`y = M \odot \mathcal F x + w` (20 % of the
coefficients). ADMM (:func:`unrolled.imaging.admm_cs`, here with the 3 x 3 DCT filters the net starts from; and with finite
differences, TV, as a second baseline) solves the filtered-sparsity problem (the review's box
ADMM-CSNet, eq. (12)) :math:`\min_x \tfrac12\|\Phi x - y\|_2^2 + \sum_i \lambda_i\|D_i x\|_1` by the three
steps of eq. (15),

.. math::
    x^l &= \Big(\Phi^H\Phi + \textstyle\sum_i \rho_i D_i^T D_i\Big)^{-1}
           \Big[\Phi^H y + \textstyle\sum_i \rho_i D_i^T (z_i^{l-1} - \alpha_i^{l-1})\Big] \\
    z_i^l &= \mathcal S\big(D_i x^l + \alpha_i^{l-1};\ \lambda_i/\rho_i\big), \qquad
    \alpha_i^l = \alpha_i^{l-1} + \eta_i (D_i x^l - z_i^l).

ADMM-CSNet (:class:`unrolled.imaging.ADMMCSNet`) learns per stage the filters :math:`D_i^l`,
:math:`\lambda_i^l, \rho_i^l, \eta_i^l` and a piecewise-linear shrinkage in place of the soft threshold
:math:`\mathcal S`; ``from_algorithm`` starts from the DCT filters and the soft threshold (untrained = ``K``
ADMM iterations).

32 x 32 random phantoms, 10 stages, 60 Adam steps; ``unrolled reproduce imaging-csmri`` runs larger settings.
"""

import time

import numpy as np
import torch

from unrolled.imaging import ADMMCSNet, CSMRIProblem, admm_cs, nrmse_loss, psnr, shepp_logan, zero_filled

torch.manual_seed(0)
problem = CSMRIProblem(32, 0.2, mask="radial", noise_std=0.01, seed=0, dtype=torch.float32)
lam, rho, K = 3e-3, 0.3, 10
y_test, x_test = problem.sample(16, torch.Generator().manual_seed(2))  # held-out phantoms

# %%
# Untrained, the net is K ADMM iterations
# ---------------------------------------
net = ADMMCSNet.from_algorithm(problem.mask, K, lam, rho, dtype="float32")
with torch.no_grad():
    untrained = net(y_test)
k_admm = admm_cs(y_test, problem.mask, lam, rho, transforms="dct3", max_iter=K, tol=0)
print(f"untrained ADMM-CSNet vs {K} ADMM iterations: max |difference| = "
      f"{float((untrained - k_admm.x).abs().max()):.1e}")

# %%
# Training on fresh phantoms (normalised RMSE)
# --------------------------------------------
opt = torch.optim.Adam(net.parameters(), lr=5e-3)
gen = torch.Generator().manual_seed(1)
t0 = time.perf_counter()
for _ in range(60):
    y, x = problem.sample(8, gen)
    opt.zero_grad()
    nrmse_loss(net(y), x).backward()
    opt.step()
print(f"trained 60 steps in {time.perf_counter() - t0:.1f} s")

# %%
# PSNR on 16 test phantoms and on Shepp-Logan
# -------------------------------------------
# The longer ADMM runs stop at 200 iterations (with a 500-iteration cap, some test phantoms still missed
# ``tol = 1e-4``; 200 keeps the example short).
phantom = shepp_logan(32)
y_sl = problem.measure(phantom[None], torch.Generator().manual_seed(3)).to(torch.complex64)
methods = {"zero-filling": zero_filled, f"ADMM, {K} its (= untrained net)":
           lambda y: admm_cs(y, problem.mask, lam, rho, transforms="dct3", max_iter=K, tol=0).x,
           "ADMM (DCT filters), 200 its":
           lambda y: admm_cs(y, problem.mask, lam, rho, transforms="dct3", max_iter=200, tol=1e-4).x,
           "ADMM-TV, 200 its": lambda y: admm_cs(y, problem.mask, lam, 0.1, max_iter=200, tol=1e-4).x,
           f"ADMM-CSNet, {K} stages": net}
images = {}
print(f"{'method':<34} {'phantoms (dB)':>14} {'Shepp-Logan (dB)':>17}")
with torch.no_grad():
    for name, fn in methods.items():
        test_psnr = float(psnr(fn(y_test).abs(), x_test.abs()).mean())
        images[name] = fn(y_sl)[0].abs().double()
        print(f"{name:<34} {test_psnr:>14.2f} {float(psnr(images[name], phantom)):>17.2f}")

import matplotlib.pyplot as plt  # noqa: E402

fig, axes = plt.subplots(1, 6, figsize=(12, 2.5))
for ax, (title, im) in zip(axes, [("ground truth", phantom), *images.items()]):
    ax.imshow(np.clip(im.numpy(), 0, 1), cmap="gray", vmin=0, vmax=1)
    ax.set_title(title, fontsize=8)
    ax.axis("off")
fig.tight_layout()
plt.show()
