"""``unrolled reproduce sbl-<name>`` entries of the SBL family (registered by the family's registration module)."""

from __future__ import annotations

from unrolled.core.registry import (
    Benchmark, DemoPart, Experiment, register_benchmark, register_demo_part, register_experiment,
)

PAPER = "From Bayesian sparsity to gated recurrent nets (He, Xin, Wipf et al., NIPS 2017)"


def _fig3ab(out_dir, **kwargs):
    from unrolled.experiments.sbl_fig3 import reproduce_fig3ab

    return reproduce_fig3ab(out_dir, **kwargs)


def _fig3c(out_dir, **kwargs):
    from unrolled.experiments.sbl_fig3 import reproduce_fig3c

    return reproduce_fig3c(out_dir, **kwargs)


def _fig3d(out_dir, **kwargs):
    from unrolled.experiments.sbl_doa import reproduce_fig3d

    return reproduce_fig3d(out_dir, **kwargs)


def _photometric(out_dir, **kwargs):
    from unrolled.experiments.sbl_photometric import reproduce_photometric

    return reproduce_photometric(out_dir, **kwargs)


def _fresh(out_dir, **kwargs):
    from unrolled.experiments.sbl_fresh import reproduce_fig3ab_fresh

    return reproduce_fig3ab_fresh(out_dir, **kwargs)


def _timing(out_dir, **kwargs):
    from unrolled.experiments.sbl_fig3 import reproduce_timing

    return reproduce_timing(out_dir, **kwargs)


EXPERIMENTS: dict[str, Experiment] = {
    "sbl-fig3ab": Experiment(
        "sbl-fig3ab", f"{PAPER}, Fig. 3(a,b)",
        "strict and loose support accuracy vs d (n=20, m=100, correlated dictionary) of SBL, l1, IHT, LISTA, "
        "IHT-net, MaxSparseNet and the GF-LSTM trained on online data",
        _fig3ab,
        config="unrolled.experiments.sbl_fig3:Fig3Config",
        nested=("net",),
    ),
    "sbl-fig3ab-fresh": Experiment(
        "sbl-fig3ab-fresh", f"{PAPER}, Fig. 3(a,b), re-scored",
        "the shipped Fig. 3(a,b) GF-LSTMs on a fresh test stream (never used for selection) beside SBL with the "
        "EM and the MacKay update, strict and loose accuracy vs d",
        _fresh,
        config="unrolled.experiments.sbl_fresh:FreshConfig",
    ),
    "sbl-fig3c": Experiment(
        "sbl-fig3c", f"{PAPER}, Fig. 3(c)",
        "ablation at d/n=0.4: gated feedback or not, LSTM or GRU, small or 4x large (strict accuracy)",
        _fig3c,
        config="unrolled.experiments.sbl_fig3:Fig3Config",
        nested=("net",),
    ),
    "sbl-fig3d": Experiment(
        "sbl-fig3d", f"{PAPER}, Fig. 3(d)",
        "direction-of-arrival (10-sensor ULA, 4 sources): Chamfer distance vs SNR of SBL and a complex-input GF-LSTM",
        _fig3d,
        config="unrolled.experiments.sbl_doa:DOAConfig",
        nested=("net",),
    ),
    "sbl-photometric": Experiment(
        "sbl-photometric", f"{PAPER}, Table 1 (on a rendered scene)",
        "photometric stereo on a rendered sphere with shadows and specular spots (the paper's HDR images are not "
        "available offline): angular error and seconds per scene of least squares, SBL, MaxSparseNet and the GF-LSTM "
        "for r = 10, 20, 40 images",
        _photometric,
        config="unrolled.experiments.sbl_photometric:PhotometricConfig",
        nested=("net",),
    ),
    "sbl-timing": Experiment(
        "sbl-timing", f"{PAPER}, timing (cf. Table 1)",
        "seconds per solved problem of the GF-LSTM vs SBL run to convergence, side by side, as a ratio",
        _timing,
        config="unrolled.experiments.sbl_fig3:Fig3Config",
        nested=("net",),
    ),
}


def _demo(out_dir, **kwargs):
    from unrolled.experiments.sbl_demo import run_sbl_demo

    return run_sbl_demo(out_dir, **kwargs)


for _e in EXPERIMENTS.values():
    register_experiment(_e, "sbl")
register_demo_part(DemoPart("sbl", "sbl", 40, _demo))


def _benchmark(**kwargs):
    from unrolled.experiments.bench_sbl_ard import run

    return run(**kwargs)


register_benchmark(Benchmark("sbl-vs-ard", "batched SBL (MacKay, pruned and unpruned; EM up to B = 100) vs a loop of scikit-learn ARDRegression with matched pruning on the same model (noise variance known), B = 40 and 1000", _benchmark), "sbl")
