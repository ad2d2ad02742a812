"""The ``unrolled reproduce lista`` experiment, the sparse-coding benchmarks and the ``lista`` demo part.

Imported by :mod:`unrolled.sparse_coding.registration`; registers into :mod:`unrolled.core.registry`.
"""

from __future__ import annotations

from unrolled.core.registry import (Benchmark, DemoPart, Experiment, register_benchmark, register_demo_part,
                                    register_experiment)

FAMILY = "sparse_coding"


def _lista(out_dir, **kwargs):
    from unrolled.experiments.lista import reproduce

    return reproduce(out_dir, **kwargs)



def _fista_vs_sklearn(**kwargs):
    from unrolled.experiments.bench_fista_sklearn import run

    return run(**kwargs)


def _lasso_vs_sklearn(**kwargs):
    from unrolled.experiments.bench_lasso_sklearn import run

    return run(**kwargs)


def _lista_cpss_vs_fista(**kwargs):
    from unrolled.experiments.bench_lista_fista import run

    return run(**kwargs)


def _demo(out_dir, **kwargs):
    from unrolled.experiments.demo import run_lista_demo

    return run_lista_demo(out_dir, **kwargs)


EXPERIMENTS: dict[str, Experiment] = {

    "lista": Experiment(
        "lista",
        "algorithm-unrolling-review / LISTA-CPSS (Chen et al. 2018)",
        "NMSE (dB) per layer of ISTA, FISTA, LISTA, LISTA-CP, LISTA-CPSS, ALISTA, ISTA-LLT; "
        "m=250, n=500, p=0.1, 16 layers, noiseless and SNR 40 dB, layer-wise training",
        _lista,
        config="unrolled.experiments.lista:ListaConfig",
    ),
}

BENCHMARKS: dict[str, Benchmark] = {
    "fista-vs-sklearn": Benchmark(
        "fista-vs-sklearn",
        "batched FISTA on 1000 Lasso problems (250x500) vs a loop of scikit-learn Lasso at the same objective",
        _fista_vs_sklearn,
        in_all=False,  # lasso-vs-sklearn times FISTA against the same loop
    ),
    "lasso-vs-sklearn": Benchmark(
        "lasso-vs-sklearn",
        "working-set lasso vs batched FISTA, a loop of scikit-learn Lasso and of skglm Lasso, matched objectives",
        _lasso_vs_sklearn,
    ),
    "lista-cpss-vs-fista": Benchmark(
        "lista-cpss-vs-fista",
        "trained LISTA-CPSS vs FISTA: iterations and wall-clock to equal NMSE",
        _lista_cpss_vs_fista,
        in_all=False,  # needs the trained net of `unrolled reproduce lista`
    ),
}

for _e in EXPERIMENTS.values():
    register_experiment(_e, FAMILY)
for _b in BENCHMARKS.values():
    register_benchmark(_b, FAMILY)
register_demo_part(DemoPart("lista", FAMILY, 10, _demo))
