"""Low rank: convolutional robust PCA of ultrasound-like movies, the ISTA/FISTA solver and the unrolled CORONA net (review, box CORONA).

Public names: :class:`UltrasoundMovieProblem` (data model), :func:`rpca_ista` (classic solver, :class:`RPCAResult`),
:class:`CORONA` (unrolled net), :class:`ResNetRPCA` (CNN baseline), :func:`svt` and :func:`row_soft_threshold`
(the proximal operators, with bounded SVD gradients), :class:`RPCAIteration` (the step they share).
"""

from unrolled.lowrank.data import UltrasoundMovieProblem
from unrolled.lowrank.iteration import RPCAIteration
from unrolled.lowrank.nets import CORONA, ResNetRPCA
from unrolled.lowrank.prox import row_soft_threshold, svt
from unrolled.lowrank.solvers import RPCAResult, rpca_ista

__all__ = ["UltrasoundMovieProblem", "RPCAIteration", "CORONA", "ResNetRPCA", "svt", "row_soft_threshold",
           "RPCAResult", "rpca_ista"]
