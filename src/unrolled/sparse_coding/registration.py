"""Registers the sparse-coding family: its nets (CLI, contract suite), experiments, benchmarks and demo part.

Named by the ``unrolled.families`` entry point ``sparse_coding`` in
``pyproject.toml``; imported by :func:`unrolled.core.registry.load_families`.
"""

from __future__ import annotations

import torch

from unrolled.core.metrics import nmse, nmse_db
from unrolled.core.registry import Family, NetSpec, register_family, register_net
from unrolled.core.solve import solve
from unrolled.core.unrolled_net import dtype_from_name
from unrolled.core.validation import as_batch, check_positive
from unrolled.sparse_coding.alista_weight import analytic_weight
from unrolled.sparse_coding.data import SparseCodingProblem, lipschitz_constant
from unrolled.sparse_coding.iteration import ShrinkageIteration
from unrolled.sparse_coding.nets import NETWORKS, support_fractions
from unrolled.sparse_coding.solvers import fista, ista

FAMILY = register_family(Family(
    "sparse_coding", "unrolled.sparse_coding", "Lasso / sparse coding: y = A x + w, x sparse (LISTA family)",
    ("ista", "fista", "iht"),
))

LAM = 0.1


def problem(seed: int = 0, small: bool = False, *, m: int | None = None, n: int | None = None, p: float = 0.1,
            snr_db: float | None = None, dtype: str = "float64", device=None) -> SparseCodingProblem:
    """The LISTA papers' data model (m = 250, n = 500 unless given; 10 x 20 when ``small``)."""
    m = m if m is not None else (10 if small else 250)
    n = n if n is not None else (20 if small else 500)
    return SparseCodingProblem(m=m, n=n, p=p, snr_db=snr_db, seed=seed, dtype=dtype_from_name(dtype), device=device)


def problem_config(prob: SparseCodingProblem) -> dict:
    return prob.config()


def _ss_ista(A, W, gamma: float, lam: float, fractions: list[float]):
    """The algorithm LISTA-CPSS / ALISTA unroll: (SS-)ISTA with weight ``W`` and a support-selection schedule."""

    def run(prob, y, max_iter, tol, callback, options):
        yb, single = as_batch("y", y, A.shape[0])
        data = {"y": yb, "A": A, "At": A.T.contiguous()}

        def schedule(k):
            return {"W": W, "gamma": gamma, "theta": lam * gamma, "ss": fractions[min(k, len(fractions) - 1)]}

        return solve(ShrinkageIteration(lam), data, schedule, max_iter=max_iter, tol=tol, callback=callback)

    return run


def _ista(prob, y, max_iter, tol, callback, options):
    return ista(y, prob.A, options["lam"], max_iter=max_iter, tol=tol, callback=callback)


def _fista(prob, y, max_iter, tol, callback, options):
    return fista(y, prob.A, options["lam"], max_iter=max_iter, tol=tol, callback=callback)


def _solver_for(name: str):
    """The algorithm the untrained net ``name`` equals (float64, 1e-10)."""

    def run(prob, y, max_iter, tol, callback, options):
        lam = check_positive("lam", options["lam"])
        A = prob.A
        if name in ("lista", "lista-cp", "ista-llt"):
            return _ista(prob, y, max_iter, tol, callback, options)
        if name == "lista-cpss":
            L = lipschitz_constant(A)
            return _ss_ista(A, None, 1.0 / L, lam, support_fractions(max_iter))(prob, y, max_iter, tol, callback, options)
        W = analytic_weight(A)
        gamma = 1.0 / float(torch.linalg.matrix_norm(W.T @ A, ord=2))
        return _ss_ista(A, W, gamma, lam, support_fractions(max_iter))(prob, y, max_iter, tol, callback, options)

    return run


def _from_algorithm(name: str):
    def build(prob, n_layers, tied, options):
        return NETWORKS[name].from_algorithm(prob.A, options["lam"], n_layers, tied=tied)

    return build


def _nmse_db(pred, target) -> float:
    return float(nmse_db(pred, target))


for _name, _cls in NETWORKS.items():
    register_net(NetSpec(
        name=_name, family="sparse_coding", cls=_cls, problem=problem, from_algorithm=_from_algorithm(_name),
        solver=_solver_for(_name), loss=nmse, metric=_nmse_db, metric_name="NMSE (dB)", input_name="y",
        problem_config=problem_config, options={"lam": LAM}, baselines={"ISTA": _ista, "FISTA": _fista},
        default_layers=16,
        notes="LISTA-CPSS and ALISTA equal support-selection ISTA (their own schedule, ALISTA with its analytic "
              "weight), not plain ISTA: that algorithm is run through the same ShrinkageIteration by solve().",
    ))

import unrolled.experiments.lista_registry  # noqa: E402,F401  (its experiments, benchmarks and demo part register)
import unrolled.experiments.ekf_registry  # noqa: E402,F401
