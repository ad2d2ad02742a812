"""Registers the graph family with :mod:`unrolled.core.registry` (entry point ``graph`` in ``pyproject.toml``).

One net, ``slognet``: :class:`~unrolled.graph.nets.SLoGNet`, whose untrained
form is ADMM (:func:`~unrolled.graph.solvers.admm`) with the penalties
``from_algorithm`` calibrates, both running
:class:`~unrolled.graph.iteration.GraphADMMIteration`. The option ``output``
picks the read-out of both (the paper's ``'filter'``, or ``'sources'``).
"""

from __future__ import annotations

from unrolled.core.registry import Family, NetSpec, register_family, register_net
from unrolled.core.unrolled_net import dtype_from_name
from unrolled.graph.data import GraphDiffusionProblem
from unrolled.graph.metrics import relative_error, relative_error_loss
from unrolled.graph.net_init import median_default_penalties
from unrolled.graph.nets import SLoGNet
from unrolled.graph.solvers import admm

FAMILY = register_family(Family(
    "graph", "unrolled.graph",
    "blind deconvolution of graph diffusion (source localization): Y = H X, H a graph filter (SLoG-Net)", ("admm",),
))

#: Draws ``from_algorithm`` calibrates its penalties on (its defaults), and their seed.
CALIBRATION_PROBLEMS, CALIBRATION_SEED = 8, 0


def problem(seed: int = 0, small: bool = False, *, graph="er", graph_seed: int | None = None,
            n_nodes: int | None = None, n_signals: int | None = None, dtype: str = "float64", device="cpu",
            **options) -> GraphDiffusionProblem:
    """The paper's data model on graph ``graph`` drawn with ``seed`` (20 nodes, P = 400; 8 nodes, P = 12 when ``small``).

    ``graph_seed`` (what :meth:`~unrolled.graph.data.GraphDiffusionProblem.config`
    stores) overrides ``seed``; other options go to
    :class:`~unrolled.graph.data.GraphDiffusionProblem`.
    """
    if isinstance(graph, str) and n_nodes is None:
        n_nodes = 8 if small else None
    return GraphDiffusionProblem(graph, n_nodes=n_nodes, graph_seed=seed if graph_seed is None else graph_seed,
                                 n_signals=n_signals if n_signals is not None else (12 if small else 400),
                                 dtype=dtype_from_name(dtype), device=device, **options)


def problem_config(prob: GraphDiffusionProblem) -> dict:
    return prob.config()


def penalties(prob: GraphDiffusionProblem, options: dict) -> tuple[float, float]:
    """``(rho_l, rho_mu)`` of the net and of its solver: the options', else ``from_algorithm``'s calibrated medians."""
    return median_default_penalties(prob, prob.dtype, options["c"], CALIBRATION_PROBLEMS, CALIBRATION_SEED,
                                    options.get("rho_l"), options.get("rho_mu"))


def _from_algorithm(prob, n_layers, tied, options):
    rho_l, rho_mu = penalties(prob, options)
    return SLoGNet.from_algorithm(prob, n_layers, rho_l=rho_l, rho_mu=rho_mu, c=options["c"],
                                  output=options["output"], tied=tied)


def _admm(prob, Y, max_iter, tol, callback, options):
    """ADMM with the net's penalties: the algorithm the untrained net equals."""
    rho_l, rho_mu = penalties(prob, options)
    return admm(Y, prob.S, V=prob.V, c=options["c"], rho_l=rho_l, rho_mu=rho_mu, max_iter=max_iter, tol=tol,
                output=options["output"], callback=callback)


def _admm_per_problem(prob, Y, max_iter, tol, callback, options):
    """ADMM with each problem's data-scaled :func:`~unrolled.graph.solvers.default_penalties`."""
    return admm(Y, prob.S, V=prob.V, c=options["c"], max_iter=max_iter, tol=tol, output=options["output"],
                callback=callback)


def _relative_error(pred, target) -> float:
    return float(relative_error(pred, target))


register_net(NetSpec(
    name="slognet", family="graph", cls=SLoGNet, problem=problem, from_algorithm=_from_algorithm, solver=_admm,
    loss=relative_error_loss, metric=_relative_error, metric_name="relative error", input_name="Y",
    problem_config=problem_config,
    options={"c": 1.0, "output": "filter", "rho_l": None, "rho_mu": None},
    baselines={"ADMM": _admm, "ADMM (per-problem penalties)": _admm_per_problem},
    default_layers=5,
    notes="The untrained net is ADMM with one pair of penalties for all problems (given, or the medians of "
          "default_penalties over 8 draws); the baseline 'ADMM (per-problem penalties)' scales them to each "
          "problem, as admm() does by default. The option output ('filter', the paper's read-out V diag(g) V^T Y, "
          "or 'sources', the thresholded iterate) sets the read-out of the net and of the solver alike.",
))

import unrolled.experiments.slognet_registry  # noqa: E402,F401  (its experiments, benchmarks and demo part register)
