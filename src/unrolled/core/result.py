"""The result type returned by every classic iterative solver."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class SolverResult:
    """Output of a batched iterative solver.

    Attributes
    ----------
    x : Tensor
        Solution estimate, batch-first (``(B, n)`` for the sparse-coding family).
    n_iter : Tensor
        ``(B,)`` int64: iterations each problem needed to meet the tolerance
        (``max_iter`` for those that did not).
    converged : Tensor
        ``(B,)`` bool: whether each problem met the tolerance.
    history : dict
        Per-iteration diagnostics, each a list of floats (e.g. ``'objective'``
        and ``'criterion'``, the batch maximum of the stopping criterion).
    """

    x: Tensor
    n_iter: Tensor
    converged: Tensor
    history: dict = field(default_factory=dict)

    @property
    def all_converged(self) -> bool:
        """True when every problem of the batch converged."""
        return bool(self.converged.all())
