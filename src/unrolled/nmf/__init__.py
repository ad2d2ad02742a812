"""NMF: sparse beta-divergence NMF by multiplicative updates and the deep unrolled NMF for speech enhancement.

The review's box "Deep (Unrolled) NMF" (eqs. 21-26): the multiplicative updates (24)-(26) defined once
(:mod:`.iteration`) and run as the classic solver :func:`nmf_mu` / the supervised separation :func:`separate`
(:mod:`.solvers`) or as the trainable :class:`DeepNMF` (:mod:`.nets`); the shipped eSpeak NG speech
(:mod:`.corpus`), reverberant noisy mixtures (:mod:`.data`), the BLSTM mask baseline (:mod:`.baselines`) and
the enhancement metrics (:mod:`.metrics`).
"""

from unrolled.nmf.baselines import MaskBLSTM
from unrolled.nmf.data import SpeechEnhancementProblem, magnitude, resynthesise
from unrolled.nmf.divergence import beta_divergence, mm_exponent
from unrolled.nmf.iteration import NMFIteration
from unrolled.nmf.metrics import sdr_si_sdr, spectral_snr_db, spectral_snr_loss, stoi
from unrolled.nmf.nets import DeepNMF
from unrolled.nmf.solvers import NMFResult, learn_bases, nmf_mu, separate

__all__ = [
    "NMFIteration", "NMFResult", "nmf_mu", "separate", "learn_bases", "beta_divergence", "mm_exponent",
    "DeepNMF", "MaskBLSTM", "SpeechEnhancementProblem", "magnitude", "resynthesise",
    "spectral_snr_db", "spectral_snr_loss", "sdr_si_sdr", "stoi",
]
