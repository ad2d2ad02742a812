"""Reproductions of the papers' tables and figures, one module per paper.

Each experiment writes ``results.json`` (rows), ``results.md`` (tables with the
paper's values beside ours) and PNG figures into an output folder. The
registry :data:`EXPERIMENTS` maps the names used by ``unrolled reproduce``.
"""

from unrolled.experiments.registry import EXPERIMENTS

__all__ = ["EXPERIMENTS"]
