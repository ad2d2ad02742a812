"""Graphs: blind deconvolution of graph diffusion (source localization), its ADMM solver, SLoG-Net.

Data model and graph ensembles of the SLoG-Net paper (Sec. II, V-A), the
one iteration (:class:`GraphADMMIteration`, SLoG-Net's generalised ADMM step), the
ADMM solver of the convex relaxation (8) (Sec. III), the unrolled network
SLoG-Net (Sec. IV) and the figures of merit and loss of Sec. V-A.
"""

from unrolled.graph.data import DiffusionBatch, GraphDiffusionProblem, exact_recovery_target
from unrolled.graph.graphs import (
    ENSEMBLES,
    adjacency_matrix,
    graph_fourier_basis,
    make_graph,
    normalized_adjacency,
    vandermonde,
)
from unrolled.graph.iteration import GraphADMMIteration, algorithm_values
from unrolled.graph.metrics import relative_error, relative_error_loss, support_accuracy
from unrolled.graph.nets import SLoGNet
from unrolled.graph.solvers import (
    ADMMResult,
    admm,
    deconvolution_objective,
    default_penalties,
    gamma_inverse,
    sources_from_filter,
)

__all__ = [
    "GraphDiffusionProblem",
    "DiffusionBatch",
    "exact_recovery_target",
    "ENSEMBLES",
    "make_graph",
    "adjacency_matrix",
    "normalized_adjacency",
    "graph_fourier_basis",
    "vandermonde",
    "GraphADMMIteration",
    "algorithm_values",
    "ADMMResult",
    "admm",
    "deconvolution_objective",
    "default_penalties",
    "gamma_inverse",
    "sources_from_filter",
    "SLoGNet",
    "relative_error",
    "relative_error_loss",
    "support_accuracy",
]
