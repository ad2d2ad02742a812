r"""
Graph: SLoG-Net vs ADMM on a small Erdős–Rényi graph
=====================================================

Blind deconvolution of graph diffusion (source localization): on a graph with shift
:math:`S = V\operatorname{diag}(\lambda)V^\top`, the observations are :math:`Y = H X` with an unknown polynomial
filter :math:`H = \sum_l h_l S^l` and sparse sources :math:`X` (``N`` nodes, ``P`` signals per problem). ADMM
solves the convex relaxation (8) of the SLoG-Net paper for the inverse filter's frequency response
:math:`\tilde g` (:func:`unrolled.graph.admm`); SLoG-Net (:class:`unrolled.graph.SLoGNet`) is ADMM unrolled, with
per-layer learned penalties, step sizes and constraint, and untrained it *is* K ADMM iterations.

Here: an ER graph with ``N = 20`` nodes, ``P = 50`` signals per problem, a 5-layer SLoG-Net trained for 300 steps
on fresh problems (the paper trains for 15,000 steps at ``P = 400``; ``unrolled reproduce slognet-table2``).
"""

import time

import torch

from unrolled.core.train import Trainer
from unrolled.graph import GraphDiffusionProblem, SLoGNet, admm, relative_error, relative_error_loss
from unrolled.graph import support_accuracy
from unrolled.graph.net_init import median_default_penalties

torch.manual_seed(0)
problem = GraphDiffusionProblem("er", n_nodes=20, n_signals=50, graph_seed=0)
Y_val, X_val = problem.sample(8, torch.Generator().manual_seed(1))
Y_test, X_test = problem.sample(32, torch.Generator().manual_seed(2))
print(f"ER graph: N = {problem.S.shape[0]} nodes; {len(Y_test)} test problems of P = {Y_test.shape[-1]} signals")

# %%
# The untrained net equals ADMM
# -----------------------------
# :meth:`SLoGNet.from_algorithm <unrolled.graph.nets.SLoGNet.from_algorithm>` sets every layer to ADMM's values
# (penalties calibrated on the data model); its read-out is the paper's
# :math:`\hat X = V\operatorname{diag}(\tilde g)V^\top Y` (``output='filter'``).
K = 5
rho_l, rho_mu = median_default_penalties(problem, problem.dtype, 1.0, 8, 0)  # what from_algorithm calibrates
net = SLoGNet.from_algorithm(problem, K, rho_l=rho_l, rho_mu=rho_mu)
with torch.no_grad():
    untrained = net(Y_test)
k_admm = admm(Y_test, problem.S, V=problem.V, rho_l=rho_l, rho_mu=rho_mu, max_iter=K, tol=0.0, output="filter")
print(f"untrained net vs {K} ADMM iterations: max |difference| = {float((untrained - k_admm.x).abs().max()):.1e}")

# %%
# Train, then compare with ADMM run to convergence
# ------------------------------------------------
# ADMM's solution of (8) is defined up to the scale fixed by the constraint :math:`1^\top\tilde g = c`, so ADMM is
# also scored after the least-squares rescaling that uses the true sources (an oracle: the best ADMM can do).
STEPS = 300
t0 = time.perf_counter()
Trainer(net, relative_error_loss, problem.sample, (Y_val, X_val), lr=2e-2, max_steps=STEPS, batch_size=4,
        val_every=50, schedule="cosine", progress=False).fit()
train_seconds = time.perf_counter() - t0
with torch.no_grad():
    trained = net(Y_test)
solved = admm(Y_test, problem.S, V=problem.V, max_iter=3000, tol=1e-6, output="filter")
scale = (solved.x * X_test).sum((1, 2), keepdim=True) / (solved.x**2).sum((1, 2), keepdim=True)
oracle = scale * solved.x

rows = [(f"SLoG-Net, trained {train_seconds:.0f} s", trained), (f"SLoG-Net untrained = {K} ADMM its", untrained),
        (f"ADMM, up to {int(solved.n_iter.max())} its, raw", solved.x), ("ADMM, oracle scale", oracle),
        ("all-zero output", torch.zeros_like(X_test))]
print(f"{'method':<34} {'MRE':>7} {'ACC':>7}")
mre = {}
for name, estimate in rows:
    mre[name] = float(relative_error(estimate, X_test))
    print(f"{name:<34} {mre[name]:>7.3f} {float(support_accuracy(estimate, X_test)):>7.3f}")
print("MRE: mean relative error of X (lower is better); ACC counts all N x P entries, so the all-zero output "
      "already scores high on it.")
ours, start, best = mre[rows[0][0]], mre[rows[1][0]], mre["ADMM, oracle scale"]
print(f"Training {'lowered' if ours < start else 'did not lower'} the MRE of the {K} ADMM iterations the net "
      f"started from ({start:.3f} -> {ours:.3f}).")
if ours > best:
    print(f"This {STEPS}-step run is too short for SLoG-Net to beat converged ADMM with the oracle scale "
          "(the paper trains 15,000 steps of P = 400 signals).")

# %%
# One test problem: the true sources of one signal and the estimates
# ------------------------------------------------------------------
import matplotlib.pyplot as plt  # noqa: E402

signal = int(X_test[0].abs().sum(0).argmax())  # the signal with the most source mass
fig, ax = plt.subplots(figsize=(7, 3))
nodes = torch.arange(X_test.shape[1])
ax.stem(nodes, X_test[0, :, signal], linefmt="k-", markerfmt="ko", basefmt=" ", label="true sources")
sign = torch.sign((trained[0, :, signal] * X_test[0, :, signal]).sum())  # the bilinear model's sign ambiguity
ax.plot(nodes, sign * trained[0, :, signal], "s", label="SLoG-Net (trained)")
ax.plot(nodes, oracle[0, :, signal], "x", label="ADMM (oracle scale)")
ax.set_xlabel("node")
ax.set_ylabel("source amplitude")
ax.legend()
fig.tight_layout()
plt.show()
