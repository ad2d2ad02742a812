"""Registers the classification family with :mod:`unrolled.core.registry` (entry point ``classification`` in ``pyproject.toml``).

One net: ``deep-irls-admm`` (:class:`~unrolled.classification.nets.DeepIRLSADMMNet`)
on the Sec. IV-A data model (:class:`~unrolled.classification.data.CorrelatedFeaturesProblem`);
its inputs are the pairs ``(X, y)`` of ``sample(n, generator)``.
"""

from __future__ import annotations

import torch

from unrolled.classification.data import CorrelatedFeaturesProblem
from unrolled.classification.nets import F_INIT, RHO_INIT, DeepIRLSADMMNet
from unrolled.classification.solvers import classic_setup
from unrolled.core.registry import Family, NetSpec, register_family, register_net
from unrolled.core.solve import solve
from unrolled.core.unrolled_net import check_n_layers, dtype_from_name

FAMILY = register_family(Family(
    "classification", "unrolled.classification",
    "l1 logistic regression with feature selection: P(y=1|x) = sigmoid(beta^T x) (deep IRLS-ADMM)", ("irls_admm",),
))

#: Algorithm settings of the untrained net (the paper's initialisation, Sec. IV-A).
OPTIONS = {"w": F_INIT, "rho": RHO_INIT, "i_max": 4, "fit_intercept": False, "sparse_direction": False}


def problem(seed: int = 0, small: bool = False, *, n_samples: int | None = None, n_features: int | None = None,
            n_true: int | None = None, noise_std: float = 0.5, corr_std: float = 0.1,
            dtype: str = "float64") -> CorrelatedFeaturesProblem:
    """The Sec. IV-A simulation (500 x 50, 2 x 4 true features; 24 x 4, 2 x 1 when ``small``).

    ``seed`` fixes the true weights (every draw is a new data set of the same model).
    """
    return CorrelatedFeaturesProblem(
        n_samples=n_samples if n_samples is not None else (24 if small else 500),
        n_features=n_features if n_features is not None else (4 if small else 50),
        n_true=n_true if n_true is not None else (1 if small else 4),
        noise_std=noise_std, corr_std=corr_std, dtype=dtype_from_name(dtype), seed=seed)


def problem_config(prob: CorrelatedFeaturesProblem) -> dict:
    return prob.config()


def _from_algorithm(prob, n_layers, tied, options):
    o = {**OPTIONS, **options}
    n_layers = check_n_layers(n_layers)  # the net's k_max
    return DeepIRLSADMMNet.from_algorithm(prob.n_features, o["w"], rho=o["rho"], k_max=n_layers, i_max=o["i_max"],
                                          fit_intercept=o["fit_intercept"], sparse_direction=o["sparse_direction"],
                                          tied=tied)


def _run(inputs, max_iter, tol, callback, options, **settings):
    """IRLS-ADMM through :func:`solve`, its estimates in the net's output form ``(B, p + fit_intercept)``."""
    o = {**OPTIONS, **options}
    X, y = inputs
    iteration, data, params, single = classic_setup(X, y, o["w"], fit_intercept=o["fit_intercept"], tol=tol,
                                                    sparse_direction=o["sparse_direction"], **settings)
    return solve(iteration, data, params, max_iter=max_iter, tol=tol, callback=callback)


def _solver(prob, inputs, max_iter, tol, callback, options):
    """The algorithm the untrained net equals: ``i_max`` ADMM iterations per outer step from ``z = u = 0``,
    ``rho`` fixed, ``t = 1``. Its fixed point is not the optimum of (4), so it stops on the relative change of
    ``beta`` (not the KKT violation)."""
    o = {**OPTIONS, **options}
    return _run(inputs, max_iter, tol, callback, options, rho=o["rho"], inner_max_iter=o["i_max"], inner_tol=0.0,
                inexact=False, line_search=False, warm_start=False, stop="change")


def _classic(prob, inputs, max_iter, tol, callback, options):
    """IRLS-ADMM with :func:`~unrolled.classification.solvers.irls_admm`'s defaults (auto ``rho``, line search)."""
    return _run(inputs, max_iter, tol, callback, options)


def coefficient_cosine(beta: torch.Tensor, beta_true: torch.Tensor) -> torch.Tensor:
    """Mean cosine between the coefficients (intercept dropped) and the true weights: 1 = same direction."""
    p = beta_true.shape[-1]
    return torch.nn.functional.cosine_similarity(beta[..., :p], beta_true, dim=-1, eps=1e-12).mean()


def cosine_loss(beta: torch.Tensor, beta_true: torch.Tensor) -> torch.Tensor:
    """``1 - coefficient_cosine``: scale-free (the logistic coefficients' scale depends on the label noise)."""
    return 1.0 - coefficient_cosine(beta, beta_true)


def _cosine_metric(beta, beta_true) -> float:
    return float(coefficient_cosine(beta, beta_true))


register_net(NetSpec(
    name="deep-irls-admm", family="classification", cls=DeepIRLSADMMNet, problem=problem,
    from_algorithm=_from_algorithm, solver=_solver, loss=cosine_loss, metric=_cosine_metric,
    metric_name="cosine(beta, beta_true)", input_name="X", problem_config=problem_config, options=dict(OPTIONS),
    baselines={"IRLS-ADMM (rho, t = 1 fixed)": _solver, "IRLS-ADMM (auto rho, line search)": _classic},
    default_layers=3,
    notes="Inputs are pairs (X, y) (a labelled data set per problem), targets the true weights beta_true; every "
          "input error names them as 'inputs (X, y)'. A layer is one IRLS (outer) step holding i_max inner ADMM "
          "layers. The generic loss is supervised (1 - cosine to beta_true); the paper trains on the logistic loss "
          "(32) of the data itself (classification.training.train_deep_irls). The solver the untrained net equals "
          "(i_max ADMM steps from zero per outer step, rho and t = 1 fixed) converges to its own fixed point, not the "
          "optimum of (4), so it stops on the relative change of beta; the 'auto rho, line search' baseline is the "
          "converging irls_admm. Tied nets share {rho_i, F_i}_i and t across the outer layers.",
))

import unrolled.experiments.irls_registry  # noqa: E402,F401  (its experiments, benchmarks and demo part register)
