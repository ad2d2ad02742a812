"""The result type returned by every classic iterative solver."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import Tensor


@dataclass
class SolverResult:
    """Output of a batched iterative solver (every solver returns one, or a subclass).

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
        Per-iteration batch statistics, each a list of floats: ``'criterion'``
        (batch maximum of the stopping criterion) and, where the problem has
        one, ``'objective'`` (batch mean); some solvers add more keys.
    state : dict, optional
        The final per-problem state of the iteration (see
        :func:`unrolled.core.solve.solve`); ``None`` for solvers that keep none.

    Notes
    -----
    Subclasses add named estimates (e.g. ``g`` of graph ADMM, ``A`` and ``S`` of
    PALM). ``print(result)`` gives a short summary, not the history.
    """

    x: Tensor
    n_iter: Tensor
    converged: Tensor
    history: dict = field(default_factory=dict)
    state: dict | None = field(default=None, repr=False, compare=False)

    @property
    def all_converged(self) -> bool:
        """True when every problem of the batch converged."""
        return bool(self.converged.all())

    def __str__(self) -> str:
        conv = torch.as_tensor(self.converged)
        it = torch.as_tensor(self.n_iter)
        parts = [f"{int(conv.sum())}/{conv.numel()} converged"]
        if it.numel():
            parts.append(f"iterations {int(it.min())}..{int(it.max())}" if it.numel() > 1 else f"iterations {int(it)}")
        for key in ("objective", "criterion"):
            h = self.history.get(key) if isinstance(self.history, dict) else None
            if h is not None and len(h):
                last = h[-1]
                last = float(last.mean()) if isinstance(last, Tensor) else float(last)
                parts.append(f"final {key} {last:.4g}")
        shapes = []
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Tensor) and f.name not in ("n_iter", "converged"):
                shapes.append(f"{f.name}{tuple(v.shape)}")
        return f"{type(self).__name__}({', '.join(shapes)}; {', '.join(parts)})"
