"""``unrolled reproduce lpalm-<name>`` entries of the source-separation family (registered by the
family's registration module)."""

from __future__ import annotations

from unrolled.core.registry import Benchmark, DemoPart, Experiment, register_benchmark, register_demo_part, register_experiment

_PAPER = "LPALM (semi-blind source separation, Fahes et al. 2022)"


def _table1(out_dir, **kwargs):
    from unrolled.experiments.lpalm_table1 import reproduce_table1

    return reproduce_table1(out_dir, **kwargs)


def _table2(out_dir, **kwargs):
    from unrolled.experiments.lpalm_table2 import reproduce_table2

    return reproduce_table2(out_dir, **kwargs)


def _ablation(name):
    def run(out_dir, **kwargs):
        from unrolled.experiments import lpalm_ablation

        return getattr(lpalm_ablation, f"reproduce_{name}")(out_dir, **kwargs)

    return run


EXPERIMENTS: dict[str, Experiment] = {
    "lpalm-table1": Experiment(
        "lpalm-table1", f"{_PAPER}, Table 1 and Fig. 2",
        "PALM (lambda chosen on the training set over a grid, pseudo-inverse start) vs LPALM (25 layers) on the "
        "synthetic X-ray mixtures: median NMSE, PALM iterations, wall-clock of both side by side, NMSE per layer",
        _table1,
        config="unrolled.experiments.lpalm_table1:Table1Config",
    ),
    "lpalm-table2": Experiment(
        "lpalm-table2", f"{_PAPER}, Table 2 and Fig. 3",
        "realistic experiment: LPALM and LISTA trained on simulated wavelet-domain sources, NMSE on A for the real "
        "Cassiopeia-A-like sources (example and generalisation)",
        _table2,
        config="unrolled.experiments.lpalm_table2:Table2Config",
    ),
    "lpalm-table3": Experiment(
        "lpalm-table3", f"{_PAPER}, Table 3 (App. D.2)",
        "update ablation: S-update LISTA-CP / ISTA-LLT x A-update ISTA-LL / explicit, median NMSE(S)",
        _ablation("table3"),
        config="unrolled.experiments.lpalm_ablation:AblationConfig",
    ),
    "lpalm-table4": Experiment(
        "lpalm-table4", f"{_PAPER}, Table 4 (App. D.5)",
        "loss ablation: unsupervised, supervised on S, on A, on S+A; median NMSE(S)+NMSE(A)",
        _ablation("table4"),
        config="unrolled.experiments.lpalm_ablation:AblationConfig",
    ),
    "lpalm-fig10": Experiment(
        "lpalm-fig10", f"{_PAPER}, Fig. 10 (App. D.4)",
        "NMSE(S)+NMSE(A) of LPALM vs the number of layers K",
        _ablation("fig10"),
        config="unrolled.experiments.lpalm_ablation:AblationConfig",
    ),
}


def _demo(out_dir, **kwargs):
    from unrolled.experiments.lpalm_demo import run_separation_demo

    return run_separation_demo(out_dir, **kwargs)


for _e in EXPERIMENTS.values():
    register_experiment(_e, "separation")
register_demo_part(DemoPart("lpalm", "separation", 30, _demo))


def _benchmark(**kwargs):
    from unrolled.experiments.bench_palm_iteration import run

    return run(**kwargs)


register_benchmark(Benchmark("palm-per-iteration", "PALM's per-iteration cost vs the bare matrix products it must do "
                             "(and vs the same arithmetic written out)", _benchmark), "separation")
