r"""
Unroll your own algorithm
=========================

Projected gradient for non-negative least squares (NNLS), in about 30 lines:

.. math::

    \min_x \tfrac12 \|A x - y\|^2 \quad\text{subject to}\quad x \ge 0, \qquad
    x \leftarrow \max\big(0,\; x - \gamma W^\top (A x - y)\big),

with :math:`W = A` and :math:`\gamma = 1/L`, :math:`L = \|A\|_2^2`, for the algorithm. Defining the iteration
once, as an :class:`unrolled.core.Iteration`, gives both the batched classic solver (:func:`unrolled.core.solve`)
and the trainable net (an :class:`unrolled.core.UnrolledNet` with a learned per-layer ``W_k`` and positive step
``gamma_k``); :func:`unrolled.core.testing.assert_untrained_equals_solver` checks that the untrained net *is* K
iterations of the solver.

Run on its own: ``python examples/unroll_your_own.py [--steps N]`` (``tests/test_examples.py`` runs it too).
"""

import argparse
from functools import partial

import torch

from unrolled.core.iteration import Iteration, Param
from unrolled.core.solve import solve
from unrolled.core.testing import assert_untrained_equals_solver
from unrolled.core.train import Trainer
from unrolled.core.unrolled_net import UnrolledNet


# %%
# 1. The iteration, defined once
# ------------------------------
# An :class:`~unrolled.core.Iteration` declares its parameters (with their constraints: ``gamma`` is positive),
# which data are batched (``y``, one row per problem; ``A`` is shared), how the state starts, one ``step``, the
# read-out and a per-problem stopping criterion (here the KKT violation of NNLS,
# :math:`\|x - \max(0, x - \nabla f(x))\|_\infty`).
class ProjectedGradient(Iteration):
    params = (Param("W", doc="(m, n) weight, A for the algorithm"), Param("gamma", "positive", doc="step size"))
    batched = ("y",)  # y is (B, m), one row per problem; A is shared

    def init(self, data, params):
        return {"x": data["y"].new_zeros(data["y"].shape[0], data["A"].shape[1])}

    def step(self, k, state, data, params):
        residual = state["x"] @ data["A"].T - data["y"]
        return {"x": torch.relu(state["x"] - params["gamma"] * residual @ params["W"])}

    def readout(self, state, data):
        return state["x"]

    def criterion(self, new, old, data, params):  # KKT violation of NNLS: |x - max(0, x - grad)|_inf
        grad = (new["x"] @ data["A"].T - data["y"]) @ data["A"]
        return (new["x"] - torch.relu(new["x"] - grad)).abs().amax(dim=-1)


# %%
# 2. The net: the same iteration with learnable, constrained, per-layer parameters
# --------------------------------------------------------------------------------
# ``iteration.layer_parameter(name, value, n_layers, tied=...)`` builds a
# :class:`~unrolled.core.LayerParameter` that starts at the algorithm's value and keeps the constraint the
# iteration declared (``gamma`` stays positive whatever the optimiser does). ``prepare`` turns the net's input
# into the iteration's data; the forward loop is :class:`~unrolled.core.UnrolledNet`'s.
class ProjectedGradientNet(UnrolledNet):
    def __init__(self, A, n_layers, tied=False):
        super().__init__(n_layers)
        self.iteration = ProjectedGradient()
        self.register_buffer("A", A)
        gamma = 1.0 / torch.linalg.matrix_norm(A, ord=2) ** 2  # 1/L: the algorithm's step
        self.W = self.iteration.layer_parameter("W", A.clone(), n_layers, tied=tied)
        self.gamma = self.iteration.layer_parameter("gamma", gamma, n_layers, tied=tied)

    def prepare(self, y):
        unbatched = y.dim() == 1
        return {"y": y.unsqueeze(0) if unbatched else y, "A": self.A}, unbatched


# %%
# 3. Use it: solver, untrained net == K iterations, training
# ----------------------------------------------------------
# The data model draws sparse non-negative codes and noisy measurements ``y = A x + w``. The classic solver runs
# every problem to its own stopping criterion; the untrained 8-layer net is checked to equal 8 solver iterations;
# then :class:`~unrolled.core.train.Trainer` trains it on freshly sampled problems (online data).
def main(steps: int = 400) -> dict:
    torch.manual_seed(0)
    m, n, K = 30, 60, 8
    A = torch.randn(m, n, dtype=torch.float64) / m**0.5

    def sample(count, generator=None):  # the data model: sparse non-negative x, y = A x + noise
        x = torch.rand(count, n, generator=generator, dtype=torch.float64)
        x = x * (torch.rand(count, n, generator=generator, dtype=torch.float64) < 0.2)
        return x @ A.T + 0.01 * torch.randn(count, m, generator=generator, dtype=torch.float64), x

    y, x = sample(500, torch.Generator().manual_seed(1))
    L = float(torch.linalg.matrix_norm(A, ord=2)) ** 2
    algorithm = {"W": A, "gamma": 1.0 / L}

    solved = solve(ProjectedGradient(), {"y": y, "A": A}, algorithm, max_iter=5000, tol=1e-8)  # the classic solver
    print(solved)

    net = ProjectedGradientNet(A, K)  # untrained: K iterations of the solver, by construction (and checked)
    assert_untrained_equals_solver(net, y, partial(solve, ProjectedGradient(), {"y": y, "A": A}, algorithm))

    def nmse_db(estimate):
        return float(10 * torch.log10(((estimate - x) ** 2).sum() / (x**2).sum()))

    with torch.no_grad():
        untrained_layers = [nmse_db(e) for e in net(y, return_layers=True)]
    before = nmse_db(net(y).detach())
    loss = lambda pred, target: ((pred - target) ** 2).sum(-1).mean()  # noqa: E731
    Trainer(net, loss, sample, (y, x), lr=1e-3, max_steps=steps, batch_size=64, val_every=50, progress=False).fit()
    after = nmse_db(net(y).detach())
    with torch.no_grad():
        trained_layers = [nmse_db(e) for e in net(y, return_layers=True)]
    k_iters = solve(ProjectedGradient(), {"y": y, "A": A}, algorithm, max_iter=K, tol=0.0)
    print(f"NMSE after {K} iterations / layers: projected gradient {nmse_db(k_iters.x):.2f} dB, "
          f"untrained net {before:.2f} dB, trained net {after:.2f} dB "
          f"(converged solver: {nmse_db(solved.x):.2f} dB after up to {int(solved.n_iter.max())} iterations)")
    return {"solver_k": nmse_db(k_iters.x), "untrained": before, "trained": after, "converged": nmse_db(solved.x),
            "untrained_layers": untrained_layers, "trained_layers": trained_layers}


# %%
# Run it and draw the NMSE after each layer: the untrained net's curve is the solver's first 8 iterations; the
# trained net reaches, in 8 layers, about what the solver reaches at convergence (thousands of iterations).
if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Unroll your own algorithm: projected gradient for NNLS.")
    parser.add_argument("--steps", type=int, default=400, help="training steps (default: 400)")
    got = main(parser.parse_args().steps)

    import matplotlib.pyplot as plt

    layers = range(1, len(got["trained_layers"]) + 1)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(layers, got["untrained_layers"], "o-", label="untrained net = projected gradient")
    ax.plot(layers, got["trained_layers"], "s-", label="trained net")
    ax.axhline(got["converged"], color="gray", ls="--", label="solver at convergence")
    ax.set_xlabel("layer / iteration k")
    ax.set_ylabel("NMSE (dB)")
    ax.legend()
    fig.tight_layout()
    plt.show()
