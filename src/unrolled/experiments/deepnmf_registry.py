"""The ``unrolled reproduce deepnmf`` entry and the ``deepnmf`` demo part (registered by the nmf family)."""

from __future__ import annotations

from unrolled.core.registry import DemoPart, Experiment, register_demo_part, register_experiment


def _deepnmf(out_dir, **kwargs):
    from unrolled.experiments.deepnmf import reproduce_deepnmf

    return reproduce_deepnmf(out_dir, **kwargs)


def _demo(out_dir, **kwargs):
    from unrolled.experiments.deepnmf_demo import run_deepnmf_demo

    return run_deepnmf_demo(out_dir, **kwargs)


EXPERIMENT = register_experiment(Experiment(
    "deepnmf",
    "Algorithm unrolling review, box 'Deep (Unrolled) NMF' (Hershey et al. 2014), on shipped eSpeak NG speech",
    "speech enhancement in simulated reverberant rooms with coloured, babble and machine noise: SDR / SI-SDR "
    "improvement and STOI of sparse NMF to convergence, deep NMF (K = 10..25) and a BLSTM mask estimator trained "
    "on the same data, with time per utterance side by side",
    _deepnmf,
), "nmf")
register_demo_part(DemoPart("deepnmf", "nmf", 75, _demo))
