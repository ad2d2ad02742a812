"""Shared machinery used by every family (and depending on none of them)."""

from unrolled.core.metrics import nmse, nmse_db, support_recovery
from unrolled.core.params import LayerParameter, bounded, positive
from unrolled.core.prox import (
    hard_threshold,
    project_columns_unit_ball,
    project_columns_unit_sphere,
    soft_threshold,
    support_selection_threshold,
)

__all__ = [
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
]
