"""Sparse Bayesian learning family (He, Xin, Wipf et al., NIPS 2017).

Correlated dictionaries and DOA arrays (:mod:`.data`) -> batched SBL (:mod:`.solvers`; its compiled CPU
kernel in :mod:`.sbl_kernel`) -> the unrolled
LSTM-like SBL net and an IHT-inspired net (:mod:`.nets`) and the gated-feedback recurrent nets plus the
MaxSparseNet baseline (:mod:`.recurrent`); support decoding and accuracies in :mod:`.metrics`; SBL on a
net's top-k candidate atoms in :mod:`.screening`; photometric stereo as sparse regression on a rendered scene
in :mod:`.photometric`.
"""

from unrolled.sbl.data import CorrelatedSparseProblem, DOAProblem, correlated_dictionary, steering_matrix
from unrolled.sbl.metrics import (
    chamfer_distance,
    least_squares_on_support,
    loose_accuracy,
    pairwise_support_loss,
    strict_accuracy,
    support_loss,
    top_d_support,
)
from unrolled.sbl.iteration import SBLIteration
from unrolled.sbl.nets import IHTNet, SBLNet
from unrolled.sbl.photometric import (PhotometricCorruptionProblem, angular_error, light_directions,
                                      normals_from_corruption, nullspace_dictionary, render_sphere, residual_decode)
from unrolled.sbl.recurrent import GatedFeedbackNet, MaxSparseNet
from unrolled.sbl.screening import candidate_gamma0, screened_sbl
from unrolled.sbl.solvers import SBLResult, sbl, sbl_objective

#: Lines for ``unrolled list`` (the integrator prints them under "families:").
SUMMARY = (
    "  sbl             sparse Bayesian learning: y = Phi x + eps, correlated dictionaries and DOA arrays",
    "    solvers:      sbl (update='em' | 'mackay' | 'lstm', real and complex), screened_sbl (SBL on a net's top-k)",
    "    networks:     SBLNet (unrolled eqs. 8-11), IHTNet, GatedFeedbackNet (GF-LSTM / GF-GRU / stacked), MaxSparseNet",
    "    photometric:  render_sphere, nullspace_dictionary, residual_decode (photometric stereo as sparse regression)",
    "    experiments:  sbl-fig3ab, sbl-fig3c, sbl-fig3d, sbl-photometric, sbl-timing",
)

__all__ = [
    "SUMMARY",
    "CorrelatedSparseProblem", "DOAProblem", "correlated_dictionary", "steering_matrix",
    "sbl", "sbl_objective", "SBLResult", "SBLIteration", "screened_sbl", "candidate_gamma0",
    "SBLNet", "IHTNet", "GatedFeedbackNet", "MaxSparseNet",
    "top_d_support", "strict_accuracy", "loose_accuracy", "least_squares_on_support", "support_loss", "pairwise_support_loss",
    "chamfer_distance",
    "light_directions", "render_sphere", "nullspace_dictionary", "normals_from_corruption", "angular_error",
    "residual_decode", "PhotometricCorruptionProblem",
]
