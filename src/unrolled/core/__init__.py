"""Shared machinery used by every family (and depending on none of them).

The unrolling core: :class:`Iteration` (an algorithm's step, defined once),
:func:`solve` (the one batched solver loop), :class:`UnrolledNet` (the same step
for K layers with learnable parameters), :class:`LayerParameter` (tied/untied,
constrained) and :mod:`unrolled.core.testing` (the equivalence checks); and
:class:`EKF`, extended-Kalman-filter training of any network's weights.
"""

from unrolled.core.ekf import EKF
from unrolled.core.iteration import Iteration, Param
from unrolled.core.metrics import nmse, nmse_db, support_recovery
from unrolled.core.params import LayerParameter, bounded, positive
from unrolled.core.prox import (
    hard_threshold,
    project_columns_unit_ball,
    project_columns_unit_sphere,
    soft_threshold,
    support_selection_threshold,
)
from unrolled.core.result import SolverResult
from unrolled.core.solve import solve
from unrolled.core.unrolled_net import UnrolledNet

__all__ = [
    "Iteration",
    "Param",
    "solve",
    "SolverResult",
    "UnrolledNet",
    "LayerParameter",
    "bounded",
    "positive",
    "hard_threshold",
    "soft_threshold",
    "support_selection_threshold",
    "project_columns_unit_ball",
    "project_columns_unit_sphere",
    "nmse",
    "nmse_db",
    "support_recovery",
    "EKF",
]
