"""The ``unrolled reproduce irls-<name>`` entries of the classification family (registered by the family's registration module)."""

from __future__ import annotations

from unrolled.core.registry import (
    Benchmark, DemoPart, Experiment, register_benchmark, register_demo_part, register_experiment,
)


def _irls_simulation(out_dir, **kwargs):
    from unrolled.experiments.irls_simulation import reproduce_simulation

    return reproduce_simulation(out_dir, **kwargs)


def _irls_real(out_dir, **kwargs):
    from unrolled.experiments.irls_real import reproduce_real

    return reproduce_real(out_dir, **kwargs)


EXPERIMENTS: dict[str, Experiment] = {
    "irls-simulation": Experiment(
        "irls-simulation",
        "Deep IRLS-ADMM net (sparse classification), Sec. IV-A: Fig. 3, Fig. 4, Table I",
        "500 x 50 simulation with two correlated sets of 4 true features, noise std 0/0.1/0.5/1: scaled weights, "
        "selection score vs q, and accuracy / FP / FN over 20 data sets x 5-fold CV of the deep net vs l1-logistic "
        "regression (IRLS-ADMM and liblinear, timed side by side)",
        _irls_simulation,
        config="unrolled.experiments.irls_simulation:SimulationConfig",
    ),
    "irls-real": Experiment(
        "irls-real",
        "Deep IRLS-ADMM net (sparse classification), Sec. IV-B on substitute data",
        "breast-cancer (569 x 30) 5-fold CV accuracy and selected features in place of the cervical-cancer data, "
        "and a 20 x 350 gene-expression-like simulation in place of the CNS data (Fig. 6: weights, correlation "
        "heatmap, LOO accuracy); deep net vs IRLS-ADMM vs liblinear with fit times",
        _irls_real,
        config="unrolled.experiments.irls_real:RealConfig",
    ),
}


def _demo(out_dir, **kwargs):
    from unrolled.experiments.irls_demo import run_classification_demo

    return run_classification_demo(out_dir, **kwargs)


for _e in EXPERIMENTS.values():
    register_experiment(_e, "classification")
register_demo_part(DemoPart("irls", "classification", 50, _demo))


def _benchmark(**kwargs):
    from unrolled.experiments.bench_irls_sklearn import run

    return run(**kwargs)


register_benchmark(Benchmark("irls-vs-sklearn", "batched IRLS-ADMM vs loops of LogisticRegression(l1) with liblinear and saga at C = 1/lam, matched objective", _benchmark), "classification")
