"""Unroll your own algorithm: projected gradient for non-negative least squares, in about 30 lines.

    min_x  1/2 ||A x - y||^2   subject to  x >= 0,     x <- max(0, x - gamma W^T (A x - y))

Defining the iteration once gives the batched classic solver (``solve``) and the trainable net
(``UnrolledNet``, learned per-layer ``W_k`` and positive step ``gamma_k``); the contract helper checks that the
untrained net *is* K iterations of the solver. Run: ``python examples/unroll_your_own.py [--steps N]``.
"""

import argparse
from functools import partial

import torch

from unrolled.core.iteration import Iteration, Param
from unrolled.core.solve import solve
from unrolled.core.testing import assert_untrained_equals_solver
from unrolled.core.train import Trainer
from unrolled.core.unrolled_net import UnrolledNet


# --- 1. the iteration, defined once -------------------------------------------------------------------------------
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


# --- 2. the net: the same iteration with learnable, constrained, per-layer parameters -------------------------------
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


# --- 3. use it ------------------------------------------------------------------------------------------------------
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

    before = nmse_db(net(y).detach())
    loss = lambda pred, target: ((pred - target) ** 2).sum(-1).mean()  # noqa: E731
    Trainer(net, loss, sample, (y, x), lr=1e-3, max_steps=steps, batch_size=64, val_every=50, progress=False).fit()
    after = nmse_db(net(y).detach())
    k_iters = solve(ProjectedGradient(), {"y": y, "A": A}, algorithm, max_iter=K, tol=0.0)
    print(f"NMSE after {K} iterations / layers: projected gradient {nmse_db(k_iters.x):.2f} dB, "
          f"untrained net {before:.2f} dB, trained net {after:.2f} dB "
          f"(converged solver: {nmse_db(solved.x):.2f} dB after up to {int(solved.n_iter.max())} iterations)")
    return {"solver_k": nmse_db(k_iters.x), "untrained": before, "trained": after, "converged": nmse_db(solved.x)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="training steps")
    main(parser.parse_args().steps)
