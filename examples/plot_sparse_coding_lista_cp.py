r"""
Sparse coding: LISTA-CP vs ISTA and FISTA
=========================================

Sparse codes :math:`x` (Bernoulli-Gaussian, a fraction ``p`` non-zero) are measured as :math:`y = A x + w` with a
Gaussian dictionary :math:`A` ``(m, n)``. ISTA solves the Lasso
:math:`\min_x \tfrac12\|y - Ax\|_2^2 + \lambda\|x\|_1` by
:math:`x^{k+1} = \eta_{\lambda/L}\big(x^k - \tfrac1L A^\top(Ax^k - y)\big)`; LISTA-CP (Chen et al. 2018) unrolls
it as :math:`x^{k+1} = \eta_{\theta_k}\big(x^k + W_k^\top(y - Ax^k)\big)` with a learned matrix :math:`W_k` and
threshold :math:`\theta_k` per layer (:class:`unrolled.sparse_coding.LISTACP`).

Small sizes (``m = 50``, ``n = 100``, 8 layers) and a short end-to-end training (1000 steps), so that the
example runs in seconds; ``unrolled reproduce lista`` runs the paper's setting (``m = 250``, ``n = 500``, 16
layers).
"""

import time

import torch

from unrolled.core import nmse_db
from unrolled.core.train import Trainer
from unrolled.sparse_coding import LISTACP, SparseCodingProblem
from unrolled.sparse_coding.solvers import fista, ista

torch.manual_seed(0)
problem = SparseCodingProblem(m=50, n=100, p=0.1, snr_db=40.0, seed=0, dtype=torch.float32)
y_val, x_val = problem.sample(500, torch.Generator().manual_seed(1))
y_test, x_test = problem.sample(1000, torch.Generator().manual_seed(2))
lam, K = 0.05, 8

# %%
# Untrained, the net is K ISTA iterations
# ---------------------------------------
net = LISTACP.from_algorithm(problem.A, lam=lam, n_layers=K)
with torch.no_grad():
    untrained = net(y_test)
k_ista = ista(y_test, problem.A, lam, max_iter=K, tol=0)
print(f"untrained LISTA-CP vs {K} ISTA iterations: max |difference| = "
      f"{float((untrained - k_ista.x).abs().max()):.1e}")

# %%
# Training on fresh problems
# --------------------------
# One end-to-end stage (every layer at once, Adam, cosine decay), each batch freshly drawn from the data model.
# The paper's schedule is layer-wise, :func:`unrolled.core.stages.layerwise` (train layer ``k`` alone, then
# fine-tune layers ``1..k`` at two smaller learning rates: ``stages=layerwise(K, 5e-4, steps)``); it needs more
# steps than this example can afford.
t0 = time.perf_counter()
Trainer(net, lambda pred, x: ((pred - x) ** 2).sum(-1).mean(), problem.sample, (y_val, x_val),
        lr=3e-3, max_steps=1000, schedule="cosine", batch_size=64, val_every=50, progress=False).fit()
print(f"trained 1000 steps in {time.perf_counter() - t0:.1f} s")

# %%
# NMSE after each layer / iteration on 1000 test problems
# -------------------------------------------------------
with torch.no_grad():
    net_curve = [float(nmse_db(x, x_test)) for x in net(y_test, return_layers=True)]
ista_curve = [float(nmse_db(ista(y_test, problem.A, lam, max_iter=k, tol=0).x, x_test)) for k in range(1, K + 1)]
fista_curve = [float(nmse_db(fista(y_test, problem.A, lam, max_iter=k, tol=0).x, x_test)) for k in range(1, K + 1)]
converged = fista(y_test, problem.A, lam, max_iter=5000, tol=1e-6)  # the Lasso solution (FISTA: fewer its)
print(f"{'k':>2} {'ISTA':>8} {'FISTA':>8} {'LISTA-CP':>9}   (NMSE, dB)")
for k in range(K):
    print(f"{k + 1:>2} {ista_curve[k]:>8.2f} {fista_curve[k]:>8.2f} {net_curve[k]:>9.2f}")
print(f"Lasso solution (FISTA to convergence, {int(converged.n_iter.max())} iterations at most): "
      f"{float(nmse_db(converged.x, x_test)):.2f} dB")
for name, curve in (("ISTA", ista_curve), ("FISTA", fista_curve)):
    gain = curve[-1] - net_curve[-1]
    print(f"at {K} layers the trained net is {abs(gain):.1f} dB {'better' if gain > 0 else 'worse'} than {K} {name} "
          "iterations")
if net_curve[-1] > float(nmse_db(converged.x, x_test)):
    print("(this short training does not reach the converged Lasso solution in 8 layers; the paper's 16-layer nets, "
          "trained far longer, do: see `unrolled reproduce lista`)")

import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(6, 3.5))
layers = range(1, K + 1)
ax.plot(layers, ista_curve, "o-", label="ISTA (= untrained net)")
ax.plot(layers, fista_curve, "^-", label="FISTA")
ax.plot(layers, net_curve, "s-", label="LISTA-CP, trained")
ax.axhline(float(nmse_db(converged.x, x_test)), color="gray", ls="--", label="Lasso solution (converged)")
ax.set_xlabel("layer / iteration k")
ax.set_ylabel("NMSE (dB)")
ax.legend()
fig.tight_layout()
plt.show()
