"""The ``unrolled reproduce corona`` entry, its review-table2 row and the ``corona`` demo part (lowrank family)."""

from __future__ import annotations

from unrolled.core.registry import DemoPart, Experiment, register_demo_part, register_experiment
from unrolled.experiments.review_table2 import Table2Row, register_table2_row


def _corona(out_dir, **kwargs):
    from unrolled.experiments.corona import reproduce_corona

    return reproduce_corona(out_dir, **kwargs)


def _table2(out_dir, **kwargs):
    from unrolled.experiments.corona import measure_table2

    return measure_table2(out_dir, **kwargs)


def _demo(out_dir, **kwargs):
    from unrolled.experiments.corona_demo import run_corona_demo

    return run_corona_demo(out_dir, **kwargs)


register_experiment(Experiment(
    "corona", "Algorithm-unrolling review, box CORONA (eqs. 16-18, Fig. 11) and Table II row",
    "clutter suppression on simulated ultrasound movies D = L + S + N: NMSE (dB) of S and L on held-out movies "
    "and MIP figures for FISTA-RPCA to convergence, CORONA (10 layers) and a ResNet-style CNN trained on the same "
    "data; time per movie side by side and parameter counts",
    _corona,
), "lowrank")
register_table2_row(Table2Row("CORONA", "lowrank", _table2))
register_demo_part(DemoPart("corona", "lowrank", 70, _demo))
