"""The ``unrolled reproduce slognet-<name>`` experiments of the graph family and its ``slognet`` demo part.

Imported by :mod:`unrolled.graph.registration`; registers into :mod:`unrolled.core.registry`.
"""

from __future__ import annotations

from unrolled.core.registry import Benchmark, DemoPart, Experiment, register_benchmark, register_demo_part, register_experiment

FAMILY = "graph"


def _slognet_table2(out_dir, **kwargs):
    from unrolled.experiments.slognet import reproduce_table2

    return reproduce_table2(out_dir, **kwargs)


def _slognet_table1(out_dir, **kwargs):
    from unrolled.experiments.slognet_timing import reproduce_table1

    return reproduce_table1(out_dir, **kwargs)


def _slognet_sweep(figure):
    def run(out_dir, **kwargs):
        from unrolled.experiments.slognet_sweeps import reproduce_sweep

        return reproduce_sweep(figure, out_dir, **kwargs)

    return run


def _slognet_calibration(out_dir, **kwargs):
    from unrolled.experiments.slognet_calibration import reproduce_calibration

    return reproduce_calibration(out_dir, **kwargs)


def _slognet_community(out_dir, **kwargs):
    from unrolled.experiments.slognet_community import reproduce_community

    return reproduce_community(out_dir, **kwargs)



def _demo(out_dir, **kwargs):
    from unrolled.experiments.slognet_demo import run_slognet_demo

    return run_slognet_demo(out_dir, **kwargs)


EXPERIMENTS: dict[str, Experiment] = {
    "slognet-table2": Experiment(
        "slognet-table2",
        "SLoG-Net (graph source localization), Table II",
        "MRE and ACC of trained SLoG-Net and converged ADMM on ER, SBM, RG, BA, karate, dolphins (P=400)",
        _slognet_table2,
        config="unrolled.experiments.slognet:FULL_TABLE2",
    ),
    "slognet-table1": Experiment(
        "slognet-table1",
        "SLoG-Net (graph source localization), Table I",
        "inference time of SLoG-Net vs ADMM on ER graphs, N=20..100, P=400, side by side (seconds and ratios)",
        _slognet_table1,
        config="unrolled.experiments.slognet_timing:FULL_TABLE1",
    ),
    "slognet-fig3": Experiment(
        "slognet-fig3",
        "SLoG-Net (graph source localization), Fig. 3",
        "MRE and ACC of SLoG-Net (and ADMM for reference) vs the training budget |T| on ER",
        _slognet_sweep("fig3"),
        config="unrolled.experiments.slognet_sweeps:_FULL_BASE",
    ),
    "slognet-fig5": Experiment(
        "slognet-fig5",
        "SLoG-Net (graph source localization), noise sweep (the paper's Fig. 4)",
        "MRE and ACC of SLoG-Net (trained noiseless) and ADMM vs test noise eta in [0, 0.1] on ER",
        _slognet_sweep("fig5"),
        config="unrolled.experiments.slognet_sweeps:_FULL_BASE",
    ),
    "slognet-fig6": Experiment(
        "slognet-fig6",
        "SLoG-Net (graph source localization), Fig. 6",
        "MRE and ACC of SLoG-Net and ADMM vs signals per problem P from 40 to 400 on ER",
        _slognet_sweep("fig6"),
        config="unrolled.experiments.slognet_sweeps:_FULL_BASE",
    ),
    "slognet-calibration": Experiment(
        "slognet-calibration",
        "SLoG-Net (graph source localization), Sec. V-E / Alg. 2",
        "ROC-AUC of SLoG-Net with the i-ResNet calibration on binary cascades (karate, dolphins as Digg stand-ins)",
        _slognet_calibration,
        config="unrolled.experiments.slognet_calibration:FULL",
    ),
    "slognet-community": Experiment(
        "slognet-community",
        "SLoG-Net (graph source localization), Sec. V-D / Fig. 7",
        "source-community recovery on an SBM (N=20, 3 communities): community ACC vs noise of SLoG-Net, "
        "ADMM and the selection GNN trained with labels",
        _slognet_community,
        config="unrolled.experiments.slognet_community:FULL_COMMUNITY",
    ),
}

for _e in EXPERIMENTS.values():
    register_experiment(_e, FAMILY)
register_demo_part(DemoPart("slognet", FAMILY, 20, _demo))


def _benchmark(**kwargs):
    from unrolled.experiments.bench_admm_cvxpy import run

    return run(**kwargs)


register_benchmark(Benchmark("admm-vs-cvxpy", "batched graph ADMM vs a loop of cvxpy (HiGHS, CLARABEL) on the same "
                             "LP (8) of SLoG-Net, N = 20, 50, 100", _benchmark), FAMILY)
