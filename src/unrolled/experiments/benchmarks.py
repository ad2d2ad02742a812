"""Side-by-side benchmarks (``unrolled benchmark NAME``), reported as ratios measured in one run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    run: Callable[..., dict]


def _fista_vs_sklearn(**kwargs):
    from unrolled.experiments.bench_fista_sklearn import run

    return run(**kwargs)


def _lista_cpss_vs_fista(**kwargs):
    from unrolled.experiments.bench_lista_fista import run

    return run(**kwargs)


BENCHMARKS: dict[str, Benchmark] = {
    "fista-vs-sklearn": Benchmark(
        "fista-vs-sklearn",
        "batched FISTA on 1000 Lasso problems (250x500) vs a loop of scikit-learn Lasso at the same objective",
        _fista_vs_sklearn,
    ),
    "lista-cpss-vs-fista": Benchmark(
        "lista-cpss-vs-fista",
        "trained LISTA-CPSS vs FISTA: iterations and wall-clock to equal NMSE",
        _lista_cpss_vs_fista,
    ),
}
