"""Source separation: sparse semi-blind BSS, its PALM solver and the LPALM unrolled network.

Data model of the LPALM paper (X-ray spectra as mixing-matrix columns,
generalised-Gaussian or realistic wavelet-domain sources, Sec. 3 and appendix
B), the starlet transform (appendix A), batched PALM (Eq. 6) with the
permutation-corrected NMSE of Eq. (10), and LPALM (Eq. 8) with its ablations.
"""

from unrolled.separation.data import (
    SPECTRA_KINDS,
    SeparationData,
    SeparationProblem,
    SyntheticConfig,
    gennorm_sources,
    load_spectra,
    mix,
    mixing_matrices,
    synthetic_experiment,
)
from unrolled.separation.iteration import PALMIteration
from unrolled.separation.metrics import correct_permutation, matching_permutations, separation_nmse
from unrolled.separation.nets import A_UPDATES, LPALM, S_UPDATES
from unrolled.separation.realistic import RealisticConfig, realistic_experiment, real_source_maps
from unrolled.separation.solvers import PALMResult, bss_objective, estimate_mixing, palm, pinv_init
from unrolled.separation.tuning import palm_lambda_grid, random_training_start
from unrolled.separation.training import LOSSES, evaluate, nmse_per_layer, predict, train_lpalm
from unrolled.separation.wavelets import starlet_forward, starlet_inverse

__all__ = [
    "SPECTRA_KINDS", "SeparationData", "SeparationProblem", "PALMIteration", "SyntheticConfig", "gennorm_sources", "load_spectra", "mix",
    "mixing_matrices", "synthetic_experiment", "correct_permutation", "matching_permutations",
    "separation_nmse", "A_UPDATES", "LPALM", "S_UPDATES", "RealisticConfig", "realistic_experiment",
    "real_source_maps", "PALMResult", "bss_objective", "estimate_mixing", "palm", "pinv_init", "LOSSES",
    "evaluate", "nmse_per_layer", "palm_lambda_grid", "random_training_start", "predict", "train_lpalm", "starlet_forward", "starlet_inverse",
]
