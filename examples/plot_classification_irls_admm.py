r"""
Classification: deep IRLS-ADMM vs IRLS-ADMM for sparse logistic regression
==========================================================================

Labels :math:`y_i \in \{-1, +1\}` of samples :math:`x_i` with 50 correlated features, 8 of which matter
(the paper's simulation, Sec. IV-A). The weighted :math:`\ell_1` logistic problem (eq. (4))

.. math:: \min_\beta\ \sum_i \log\big(1 + e^{-y_i x_i^\top\beta}\big) + \lambda\|w \odot \beta\|_1

is solved by IRLS-ADMM (:func:`unrolled.classification.irls_admm`): each outer (Newton / IRLS) step builds a
weighted least-squares problem from the current :math:`\beta`, and inner ADMM iterations solve its
:math:`\ell_1`-penalised version. The deep IRLS-ADMM net (:class:`unrolled.classification.DeepIRLSADMMNet`)
unrolls ``k_max`` outer x ``i_max`` inner steps and learns the :math:`\ell_1` weights :math:`F_{k,i}` and the
ADMM penalty :math:`\rho_{k,i}` of every inner layer; ``from_algorithm`` holds the solver's values (untrained = 3 x 4 iterations of
IRLS-ADMM).

400 training / 100 test samples, noise std 0.5, 40 Adam steps; ``unrolled reproduce irls-simulation`` runs the
paper's sweep.
"""

import time

import numpy as np
import torch

from unrolled.classification import (CorrelatedFeaturesProblem, DeepIRLSADMMNet, irls_admm, lambda_max,
                                     logistic_loss, train_deep_irls)

torch.manual_seed(0)
problem = CorrelatedFeaturesProblem(n_samples=500, n_features=50, noise_std=0.5)
(X, y), beta_true = problem.sample(1, torch.Generator().manual_seed(0))
X_tr, y_tr, X_te, y_te = X[0, :400], y[0, :400], X[0, 400:], y[0, 400:]

# %%
# Untrained, the net is 3 x 4 iterations of IRLS-ADMM
# ---------------------------------------------------
net = DeepIRLSADMMNet.from_algorithm(50, 10.0, sparse_direction=True)
with torch.no_grad():
    untrained = net((X_tr, y_tr))
k_its = irls_admm(X_tr, y_tr, w=10.0, rho=1.0, max_iter=3, inner_max_iter=4, tol=0, inner_tol=0, line_search=False,
                  warm_start=False, sparse_direction=True)
print(f"untrained net vs 3 x 4 IRLS-ADMM iterations: max |difference| = "
      f"{float((untrained - k_its.beta).abs().max()):.1e}")

# %%
# Training on subsets of the training samples
# -------------------------------------------
t0 = time.perf_counter()
train_deep_irls(net, X_tr, y_tr, max_steps=40, lr=0.05, batch_size=4, seed=0, progress=False)
print(f"trained 40 steps in {time.perf_counter() - t0:.1f} s")

# %%
# Test accuracy, test loss and the true features found
# ----------------------------------------------------
lam = 0.1 * float(lambda_max(X_tr[None])[0])
converged = irls_admm(X_tr, y_tr, lam)
with torch.no_grad():
    betas = {"IRLS-ADMM, 3 x 4 its (= untrained)": untrained, "deep IRLS-ADMM, trained": net((X_tr, y_tr)),
             f"IRLS-ADMM converged ({int(converged.n_iter)} outer its)": converged.beta}
print(f"{'method':<38} {'test acc':>9} {'test loss':>10} {'true in top 8':>14}")
for name, b in betas.items():
    acc = float(((X_te @ b) * y_te > 0).double().mean())
    top8 = set(np.argsort(-b.abs().numpy())[:8].tolist())
    print(f"{name:<38} {acc:>9.3f} {float(logistic_loss(b, (X_te, y_te))):>10.3f} "
          f"{len(top8 & set(range(8))):>12}/8")

import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(7, 3))
idx = np.arange(50)
ax.bar(idx - 0.3, beta_true[0].numpy() / beta_true[0].abs().max().item(), 0.3, label="true (scaled)")
for shift, (name, b) in zip((0.0, 0.3), list(betas.items())[1:]):
    ax.bar(idx + shift, b.numpy() / b.abs().max().item(), 0.3, label=name)
ax.set_xlabel("feature")
ax.set_ylabel("coefficient / max")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
