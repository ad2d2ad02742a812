"""Registers the sbl family with :mod:`unrolled.core.registry` (entry point ``sbl`` in ``pyproject.toml``).

Nets with an algorithmic initialisation (CLI, contract suite): ``sbl-net`` (:class:`~unrolled.sbl.nets.SBLNet`,
untrained = SBL's LSTM form) and ``iht-net`` (:class:`~unrolled.sbl.nets.IHTNet`, untrained = IHT). The
gated recurrent nets (:class:`~unrolled.sbl.recurrent.GatedFeedbackNet`) have no algorithm to equal and are
not registered here (they are trained by the ``sbl-fig3*`` experiments).
"""

from __future__ import annotations

import torch

from unrolled.core.metrics import nmse
from unrolled.core.registry import Family, NetSpec, register_family, register_net
from unrolled.core.solve import solve
from unrolled.core.unrolled_net import dtype_from_name
from unrolled.core.validation import as_batch, check_int, check_positive
from unrolled.sbl.data import CorrelatedSparseProblem
from unrolled.sbl.metrics import strict_accuracy
from unrolled.sbl.nets import IHTNet, SBLNet
from unrolled.sbl.solvers import default_mu, run_sbl
from unrolled.sparse_coding.data import lipschitz_constant
from unrolled.sparse_coding.iteration import ShrinkageIteration

FAMILY = register_family(Family(
    "sbl", "unrolled.sbl",
    "sparse Bayesian learning: y = Phi x + w, support recovery (SBL-derived and gated recurrent nets)", ("sbl",),
))

LAM = 1e-3


def problem(seed: int = 0, small: bool = False, *, n: int | None = None, m: int | None = None, d=None,
            noise_std: float = 0.01, correlated: bool = True, dtype: str = "float64", device: str = "cpu",
            d_weights=None) -> CorrelatedSparseProblem:
    """Sec. 4.1's correlated dictionary, ``Phi (n, m)`` with ``y (B, n)``: 20 x 100, d = 8 (6 x 12, d = 2 ``small``)."""
    n = n if n is not None else (6 if small else 20)
    m = m if m is not None else (12 if small else 100)
    d = d if d is not None else (2 if small else 8)
    return CorrelatedSparseProblem(n=n, m=m, d=tuple(d) if isinstance(d, list) else d, noise_std=noise_std,
                                   correlated=correlated, seed=seed, dtype=dtype_from_name(dtype), device=device,
                                   d_weights=d_weights)


def problem_config(prob: CorrelatedSparseProblem) -> dict:
    return prob.config()


def _y(prob: CorrelatedSparseProblem, y):
    return as_batch("y", y, prob.Phi.shape[0])[0]


def _sbl(update: str):
    """SBL with ``update`` (its callback sees the posterior means, the form of :class:`SBLNet`'s outputs)."""

    def run(prob, y, max_iter, tol, callback, options):
        lam = check_positive("lam", options.get("lam", LAM))
        mu = options.get("mu")
        mu = default_mu(prob.Phi) if mu is None else check_positive("mu", mu)
        return run_sbl(_y(prob, y), prob.Phi, lam, update, None, mu, max_iter=max_iter, tol=tol, callback=callback)

    return run


def _sparsity(prob: CorrelatedSparseProblem, options) -> int:
    d = options.get("d")
    if d is None:
        d = prob.d if isinstance(prob.d, int) else max(prob.d)
    return check_int("d", d, minimum=1)


def _iht(prob, y, max_iter, tol, callback, options):
    """IHT with step ``1/||Phi||_2^2`` keeping ``d`` entries (the foundation's ``iht``, with a callback)."""
    Phi = prob.Phi
    data = {"y": _y(prob, y), "A": Phi, "At": Phi.T.contiguous()}
    params = {"W": None, "gamma": 1.0 / lipschitz_constant(Phi)}
    return solve(ShrinkageIteration(None, hard=_sparsity(prob, options)), data, params, max_iter=max_iter, tol=tol,
                 callback=callback)


def _sbl_net(prob, n_layers, tied, options):
    return SBLNet.from_algorithm(prob.Phi, options.get("lam", LAM), n_layers, mu=options.get("mu"), tied=tied)


def _iht_net(prob, n_layers, tied, options):
    return IHTNet.from_algorithm(prob.Phi, _sparsity(prob, options), n_layers, tied=tied)


def _strict(pred, target) -> float:
    """Share of problems whose top-d atoms (d = |supp x*|, by ``|x|``) are the true support (Fig. 3a)."""
    return float(strict_accuracy(pred.abs().to(torch.float64), target))


register_net(NetSpec(
    name="sbl-net", family="sbl", cls=SBLNet, problem=problem, from_algorithm=_sbl_net, solver=_sbl("lstm"),
    loss=nmse, metric=_strict, metric_name="strict accuracy", input_name="y", problem_config=problem_config,
    options={"lam": LAM, "mu": None},
    baselines={"SBL (LSTM form)": _sbl("lstm"), "SBL (EM)": _sbl("em"), "SBL (MacKay)": _sbl("mackay")},
    default_layers=10,
    notes="Layer outputs and solver estimates are the posterior mean (4) at the current gamma (lam of the "
          "layer); the solver reuses each step's Cholesky factorisation, the net refactorises per layer "
          "(its lam_k may differ): same update code, equal to rounding. mu=None means 1/||Phi||_2^2.",
))

register_net(NetSpec(
    name="iht-net", family="sbl", cls=IHTNet, problem=problem, from_algorithm=_iht_net, solver=_iht,
    loss=nmse, metric=_strict, metric_name="strict accuracy", input_name="y", problem_config=problem_config,
    options={"d": None, "lam": LAM}, baselines={"IHT": _iht, "SBL (MacKay)": _sbl("mackay")}, default_layers=10,
    notes="The net is ShrinkageIteration's uncoupled form (W1 y + W2 x), the solver its coupled form (x - "
          "A^T(Ax - y)/L) at W1 = Phi^T/L, W2 = I - Phi^T Phi/L: equal to rounding unless a hard-threshold tie "
          "flips. d=None means the problem's (largest) d.",
))

import unrolled.experiments.sbl_registry  # noqa: E402,F401  (its experiments, benchmarks and demo part register)
