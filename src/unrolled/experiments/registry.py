"""Names of the reproducible experiments, for ``unrolled reproduce NAME``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Experiment:
    """A reproduction: ``run(out_dir, quick=..., device=..., seed=..., progress=...) -> dict``."""

    name: str
    paper: str
    description: str
    run: Callable[..., dict]


def _lista(out_dir, **kwargs):
    from unrolled.experiments.lista import reproduce

    return reproduce(out_dir, **kwargs)


EXPERIMENTS: dict[str, Experiment] = {
    "lista": Experiment(
        "lista",
        "algorithm-unrolling-review / LISTA-CPSS (Chen et al. 2018)",
        "NMSE (dB) per layer of ISTA, FISTA, LISTA, LISTA-CP, LISTA-CPSS, ALISTA, ISTA-LLT; "
        "m=250, n=500, p=0.1, 16 layers, noiseless and SNR 40 dB, layer-wise training",
        _lista,
    ),
}
