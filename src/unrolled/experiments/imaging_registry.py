"""The compressive-MRI entries of the imaging family: ``imaging-csmri``, the ADMM-CSNet row of ``review-table2`` and
the ``csmri`` demo part (imported by :mod:`unrolled.imaging.registration`)."""

from __future__ import annotations

from unrolled.core.registry import DemoPart, Experiment, register_demo_part, register_experiment
from unrolled.experiments.review_table2 import Table2Row, register_table2_row


def _csmri(out_dir, **kwargs):
    from unrolled.experiments.imaging_csmri import reproduce_imaging_csmri

    return reproduce_imaging_csmri(out_dir, **kwargs)


def _table2_measure(out_dir, **kwargs):
    from unrolled.experiments.imaging_csmri_demo import measure_table2_row

    return measure_table2_row(out_dir, **kwargs)


def _demo(out_dir, **kwargs):
    from unrolled.experiments.imaging_csmri_demo import run_csmri_demo

    return run_csmri_demo(out_dir, **kwargs)


register_experiment(Experiment(
    "imaging-csmri",
    "ADMM-CSNet (review box, eqs. 12-15, Fig. 10): compressive MRI",
    "PSNR / SSIM vs sampling ratio (10-40 %, radial lines) on held-out phantoms and test-image patches for "
    "zero-filling, "
    "ADMM-TV to convergence (lam tuned on validation), ADMM-CSNet (K = 10) and a CNN baseline trained alike; "
    "inference times side by side; parameter counts; the review's three statements beside ours",
    _csmri,
), "imaging")
register_table2_row(Table2Row("ADMM-CSNet", "imaging", _table2_measure))
register_demo_part(DemoPart("csmri", "imaging", 60, _demo))
