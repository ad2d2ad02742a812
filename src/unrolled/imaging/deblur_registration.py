"""Registers the blind-deblurring half of the imaging family: the net ``dublid``, the reproduction
``imaging-deblur``, the demo part ``deblur`` and the DUBLID row of ``review-table2``.

Imported at the end of :mod:`unrolled.imaging.registration` (the family's entry point).
"""

from __future__ import annotations

import torch

from unrolled.core.registry import DemoPart, Experiment, NetSpec, register_demo_part, register_experiment, register_net
from unrolled.core.unrolled_net import check_n_layers
from unrolled.imaging.deblur import BlindDeblurProblem
from unrolled.imaging.deblur_metrics import deblur_loss, shift_corrected_psnr
from unrolled.imaging.dublid import DUBLID
from unrolled.imaging.hqs import DEFAULTS, hqs_blind_deblur, unpack

#: Algorithm settings of the untrained net: HQS at fixed weights (so a tied net equals it too).
OPTIONS = {"lam": DEFAULTS["lam"], "zeta": DEFAULTS["zeta"], "eta": DEFAULTS["eta"], "eps": DEFAULTS["eps"],
           "kernel_solve": "support"}


def problem(seed: int = 0, small: bool = False, *, size: int | None = None, kernel_size: int | None = None,
            kernels=("gaussian", "motion"), noise_std: float = 0.01, source: str | dict | None = None,
            dtype: str = "float64") -> BlindDeblurProblem:
    """Blurred natural-image patches, 64 x 64 with 15 x 15 kernels (``small``: 16 x 16 phantoms, 5 x 5 kernels).

    ``seed`` fixes the problem's kernel stream (:class:`~unrolled.imaging.deblur.BlindDeblurProblem`).
    """
    return BlindDeblurProblem(size if size is not None else (16 if small else 64), kernels,
                              kernel_size=kernel_size if kernel_size is not None else (5 if small else 15),
                              noise_std=noise_std, source=source if source is not None else (
                                  "phantoms" if small else "train"), dtype=dtype, seed=seed)


def problem_config(prob: BlindDeblurProblem) -> dict:
    return prob.config()


def _from_algorithm(prob, n_layers, tied, options):
    o = {**OPTIONS, **options}
    return DUBLID.from_algorithm(check_n_layers(n_layers), lam=o["lam"], zeta=o["zeta"], eta=o["eta"], eps=o["eps"],
                                 kernel_size=prob.kernel_size, lam_start=o.get("lam_start"),
                                 kernel_solve=o["kernel_solve"], tied=tied)


def _solver(prob, inputs, max_iter, tol, callback, options):
    """HQS (10)-(11) at the untrained net's weights; estimates packed as ``(x, k)`` like the net's output pairs."""
    o = {**OPTIONS, **options}
    return hqs_blind_deblur(inputs, lam=o["lam"], zeta=o["zeta"], eta=o["eta"], eps=o["eps"],
                            kernel_size=prob.kernel_size, lam_start=o.get("lam_start"),
                            kernel_solve=o["kernel_solve"], max_iter=max_iter, tol=tol, callback=callback)


def _continuation(prob, inputs, max_iter, tol, callback, options):
    """HQS with the continuation on lambda of :func:`~unrolled.imaging.hqs.hqs_blind_deblur`'s defaults."""
    o = {**OPTIONS, **options}
    return hqs_blind_deblur(inputs, lam=o["lam"], zeta=o["zeta"], eta=o["eta"], eps=o["eps"],
                            kernel_size=prob.kernel_size, lam_start=DEFAULTS["lam_start"], decay=DEFAULTS["decay"],
                            kernel_solve=o["kernel_solve"], max_iter=max_iter, tol=tol, callback=callback)


def _psnr_metric(prediction, target) -> float:
    """Mean shift-corrected PSNR; ``prediction`` is a net's pair ``(x, k)`` or a solver's packed estimate."""
    x0, k0 = target
    if isinstance(prediction, torch.Tensor):
        prediction = unpack(prediction, tuple(x0.shape[-2:]), k0.shape[-1])
    x, _ = prediction
    return float(shift_corrected_psnr(x, x0, k0.shape[-1] // 2).mean())


register_net(NetSpec(
    name="dublid", family="imaging", cls=DUBLID, problem=problem, from_algorithm=_from_algorithm, solver=_solver,
    loss=deblur_loss, metric=_psnr_metric, metric_name="shift-corrected PSNR (dB)", input_name="y",
    problem_config=problem_config, options=dict(OPTIONS),
    baselines={"HQS (fixed lambda)": _solver, "HQS (continuation on lambda)": _continuation}, default_layers=10,
    notes="Inputs are blurred images y (B, H, W); outputs and targets are pairs (x, k) of image and kernel. The "
          "loss and the metric are translation invariant (best integer shift within half the kernel support), as "
          "blind deconvolution recovers (x, k) only up to a shift. Each layer owns an eta (the image retrieval (11) "
          "it would use as the last layer); the output is the last layer's. The untrained net equals HQS at fixed "
          "lambda; option lam_start=... initialises untied layers to the continuation schedule instead.",
))


def _reproduce(out_dir, **kwargs):
    from unrolled.experiments.imaging_deblur import reproduce_deblur

    return reproduce_deblur(out_dir, **kwargs)


def _demo(out_dir, **kwargs):
    from unrolled.experiments.imaging_deblur import run_deblur_demo

    return run_deblur_demo(out_dir, **kwargs)


def _table2(out_dir, **kwargs):
    from unrolled.experiments.imaging_deblur import measure_table2

    return measure_table2(out_dir, **kwargs)


register_experiment(Experiment(
    "imaging-deblur", "Algorithm-unrolling review, DUBLID box (eqs. 6-11) and Table II",
    "blind deblurring of held-out image patches with held-out Gaussian and motion kernels at two noise levels: "
    "shift-corrected PSNR and kernel error of the blurred input, HQS run to convergence, DUBLID (L = 10) and a "
    "CNN baseline, with time per image side by side and parameter counts",
    _reproduce,
), "imaging")
register_demo_part(DemoPart("deblur", "imaging", 65, _demo))

from unrolled.experiments.review_table2 import Table2Row, register_table2_row  # noqa: E402

register_table2_row(Table2Row("DUBLID", "imaging", _table2))
