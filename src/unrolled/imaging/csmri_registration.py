"""Registers ``admm-csnet`` (compressive MRI, review box ADMM-CSNet) with :mod:`unrolled.core.registry`.

Inputs are k-space ``y (B, H, W)`` (complex, zero off the mask) of :class:`~unrolled.imaging.csmri.CSMRIProblem`,
targets the real images; the net's output is the complex image. The untrained net is ``K`` iterations of
:func:`~unrolled.imaging.admm.admm_cs` with the DCT filter bank (``transforms='dct3'``).
"""

from __future__ import annotations

import torch

from unrolled.core.registry import NetSpec, register_net
from unrolled.core.solve import solve
from unrolled.core.unrolled_net import check_n_layers, dtype_from_name
from unrolled.imaging.admm import admm_cs_setup
from unrolled.imaging.admm_csnet import ADMMCSNet, nrmse_loss
from unrolled.imaging.csmri import CSMRIProblem
from unrolled.imaging.metrics import psnr

#: Algorithm settings of the untrained net (``unrolled train --option KEY=VALUE`` overrides them).
OPTIONS = {"lam": 3e-3, "rho": 0.1, "transforms": "dct3"}


def problem(seed: int = 0, small: bool = False, *, size: int | None = None, sampling_ratio: float = 0.2,
            mask: str = "radial", noise_std: float = 0.01, source="phantoms", dtype: str = "float64") -> CSMRIProblem:
    """Compressive MRI of random ellipse phantoms (32 x 32, 20 % radial; 12 x 12 at 40 % when ``small``)."""
    return CSMRIProblem(size if size is not None else (12 if small else 32), 0.4 if small else sampling_ratio,
                        mask=mask, noise_std=noise_std, source=source, seed=seed, dtype=dtype_from_name(dtype))


def problem_config(prob: CSMRIProblem) -> dict:
    return prob.config()


def _from_algorithm(prob, n_layers, tied, options):
    o = {**OPTIONS, **options}
    return ADMMCSNet.from_algorithm(prob.mask, check_n_layers(n_layers), o["lam"], o["rho"],
                                    transforms=o["transforms"], tied=tied, dtype=prob.dtype)


def _solver(prob, inputs, max_iter, tol, callback, options):
    """ADMM (15) with the net's filter bank, soft-threshold prox and ``eta = 1``."""
    o = {**OPTIONS, **options}
    iteration, data, params, _ = admm_cs_setup(inputs, prob.mask, lam=o["lam"], rho=o["rho"],
                                               transforms=o["transforms"])
    return solve(iteration, data, params, max_iter=max_iter, tol=tol, callback=callback)


def _tv_solver(prob, inputs, max_iter, tol, callback, options):
    """ADMM-TV: the same ADMM with finite differences (anisotropic TV)."""
    o = {**OPTIONS, **options}
    iteration, data, params, _ = admm_cs_setup(inputs, prob.mask, lam=o["lam"], rho=o["rho"], transforms="tv")
    return solve(iteration, data, params, max_iter=max_iter, tol=tol, callback=callback)


def psnr_metric(estimate: torch.Tensor, target: torch.Tensor) -> float:
    """Mean PSNR (dB) of the magnitude image against the target (data range 1)."""
    return float(psnr(estimate, target).mean())


register_net(NetSpec(
    name="admm-csnet", family="imaging", cls=ADMMCSNet, problem=problem, from_algorithm=_from_algorithm,
    solver=_solver, loss=nrmse_loss, metric=psnr_metric, metric_name="PSNR (dB)", input_name="y",
    problem_config=problem_config, options=dict(OPTIONS),
    baselines={"ADMM (DCT filters)": _solver, "ADMM-TV": _tv_solver}, default_layers=10, equivalence_atol=1e-9,
    notes="Input: complex k-space on the full grid (zero off the mask); output: the complex image (metrics on its "
          "magnitude). The solver uses the exact soft-threshold, the net the piecewise-linear shrinkage at its "
          "soft-threshold control values: equal up to rounding (equivalence_atol 1e-9). The x-step is one FFT pair.",
))

import unrolled.experiments.imaging_registry  # noqa: E402,F401  (imaging-csmri, its Table II row, the csmri demo part)
