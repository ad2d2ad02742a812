"""Registers the nmf family with :mod:`unrolled.core.registry` (entry point ``nmf`` in ``pyproject.toml``).

One net: ``deep-nmf`` (:class:`~unrolled.nmf.nets.DeepNMF`) on speech enhancement
(:class:`~unrolled.nmf.data.SpeechEnhancementProblem`): inputs are noisy magnitude spectrograms ``M``
``(B, F, T)``, targets the reverberant speech magnitudes. The algorithm it unrolls is supervised sparse NMF
(:func:`~unrolled.nmf.solvers.separate`) with bases learned per source on the problem's training material
(:func:`~unrolled.nmf.solvers.learn_bases`, cached per problem and options).
"""

from __future__ import annotations

from functools import lru_cache

from unrolled.core.registry import Family, NetSpec, register_family, register_net
from unrolled.core.unrolled_net import check_n_layers
from unrolled.nmf.data import SpeechEnhancementProblem
from unrolled.nmf.metrics import spectral_snr_db, spectral_snr_loss
from unrolled.nmf.nets import DeepNMF
from unrolled.nmf.solvers import learn_bases, separate

FAMILY = register_family(Family(
    "nmf", "unrolled.nmf",
    "non-negative matrix factorisation of spectrograms: sparse beta-NMF multiplicative updates and deep NMF",
    ("nmf_mu", "separate"),
))

#: Algorithm settings: divergence, l1 weight, bases per source and the iterations that learn them.
OPTIONS = {"beta": 1.0, "mu": 0.1, "n_speech": 40, "n_noise": 24, "basis_iter": 200}
SMALL_BASES = {"n_speech": 6, "n_noise": 4, "basis_iter": 40}


def problem(seed: int = 0, small: bool = False, **options) -> SpeechEnhancementProblem:
    """Training mixtures (8 kHz, 2 s, 256-point STFT, hop 64); ``small``: 0.5 s, 64-point STFT, hop 32, 2 rooms."""
    if small:
        options = {"n_rooms": 2, "duration": 0.5, "n_fft": 64, "hop": 32, **options}
    return SpeechEnhancementProblem(seed=seed, **options)


def problem_config(prob: SpeechEnhancementProblem) -> dict:
    return prob.config()


def _bases_options(prob: SpeechEnhancementProblem, options: dict) -> dict:
    o = {**OPTIONS, **(SMALL_BASES if prob.n_fft <= 64 else {}), **options}
    return o


@lru_cache(maxsize=8)
def _bases(prob: SpeechEnhancementProblem, n_speech: int, n_noise: int, beta: float, mu: float, basis_iter: int):
    speech, noise = prob.source_spectrograms()
    Ws = learn_bases(speech, n_speech, beta=beta, mu=mu, max_iter=basis_iter, seed=1)
    Wn = learn_bases(noise, n_noise, beta=beta, mu=mu, max_iter=basis_iter, seed=2)
    return Ws, Wn


def bases(prob: SpeechEnhancementProblem, options: dict | None = None):
    """``(W_speech, W_noise)`` learned on ``prob``'s training material with the NetSpec's options."""
    o = _bases_options(prob, options or {})
    return _bases(prob, int(o["n_speech"]), int(o["n_noise"]), float(o["beta"]), float(o["mu"]),
                  int(o["basis_iter"]))


def _from_algorithm(prob, n_layers, tied, options):
    o = _bases_options(prob, options)
    Ws, Wn = bases(prob, options)
    return DeepNMF.from_algorithm(Ws, Wn, check_n_layers(n_layers), beta=o["beta"], mu=o["mu"], tied=tied,
                                  dtype=prob.dtype)


def _solver(prob, inputs, max_iter, tol, callback, options):
    """Sparse NMF separation with the same bases, ``max_iter`` iterations of (24) from the same ``H^0``."""
    o = _bases_options(prob, options)
    Ws, Wn = bases(prob, options)
    return separate(inputs, Ws.to(inputs.dtype), Wn.to(inputs.dtype), beta=o["beta"], mu=o["mu"],
                    max_iter=max_iter, tol=tol, callback=callback)


def _metric(prediction, target) -> float:
    return float(spectral_snr_db(prediction, target).mean())


register_net(NetSpec(
    name="deep-nmf", family="nmf", cls=DeepNMF, problem=problem, from_algorithm=_from_algorithm, solver=_solver,
    loss=spectral_snr_loss, metric=_metric, metric_name="spectral SNR (dB)", input_name="M",
    problem_config=problem_config, options=dict(OPTIONS), default_layers=10,
    notes="Inputs: noisy magnitude spectrograms M (B, F, T); targets: reverberant speech magnitudes. Untrained, "
          "the net is sparse NMF separation (updates (24) with the per-source bases fixed, Wiener-like mask) for "
          "K iterations; the bases are learned with nmf_mu on the problem's own training material when the net "
          "is built (cached). Loss: negative spectral SNR in dB, mean over utterances.",
))

import unrolled.experiments.deepnmf_registry  # noqa: E402,F401  (its experiment and demo part register)
