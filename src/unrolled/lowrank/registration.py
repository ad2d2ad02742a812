"""Registers the lowrank family with :mod:`unrolled.core.registry` (entry point ``lowrank`` in ``pyproject.toml``).

One net: ``corona`` (:class:`~unrolled.lowrank.nets.CORONA`) on simulated ultrasound movies
(:class:`~unrolled.lowrank.data.UltrasoundMovieProblem`); its input is the complex movie ``D``, its output and
targets the stacked ``[L, S]`` ``(B, 2, T, H, W)``.
"""

from __future__ import annotations

import torch

from unrolled.core.registry import Family, NetSpec, register_family, register_net
from unrolled.core.solve import solve
from unrolled.core.unrolled_net import check_n_layers
from unrolled.lowrank.data import UltrasoundMovieProblem
from unrolled.lowrank.nets import CORONA
from unrolled.lowrank.prox import abs2
from unrolled.lowrank.solvers import rpca_setup

FAMILY = register_family(Family(
    "lowrank", "unrolled.lowrank",
    "low rank + sparse movies D = H1 L + H2 S + N: robust PCA by ISTA/FISTA and CORONA", ("rpca_ista",),
))

#: Algorithm settings of the untrained net: the penalties of (16) for unit-power movies, and the filter size.
OPTIONS = {"lam1": 2.0, "lam2": 0.2, "kernel_size": 3}


def problem(seed: int = 0, small: bool = False, **options) -> UltrasoundMovieProblem:
    """Simulated ultrasound movies: 32 x 32 pixels x 20 frames, rank 3 (8 x 8 x 6, rank 2 when ``small``)."""
    if small:
        options = {"height": 8, "width": 8, "frames": 6, "rank": 2, "vessels": 1, "bubbles": 3, **options}
    return UltrasoundMovieProblem(seed=seed, **options)


def problem_config(prob: UltrasoundMovieProblem) -> dict:
    return prob.config()


def _from_algorithm(prob, n_layers, tied, options):
    o = {**OPTIONS, **options}
    H = prob.H
    k = o["kernel_size"] if H is None else max(o["kernel_size"], 2 * H.shape[-1] - 1)
    return CORONA.from_algorithm(check_n_layers(n_layers), o["lam1"], o["lam2"], H1=H, H2=H,
                                 frame_shape=(prob.height, prob.width), kernel_size=k, dtype=prob.dtype, tied=tied)


def _run(prob, inputs, max_iter, tol, callback, options, fast):
    o = {**OPTIONS, **options}
    iteration, data, params, _ = rpca_setup(inputs, o["lam1"], o["lam2"], H1=prob.H, H2=prob.H, fast=fast)
    return solve(iteration, data, params, max_iter=max_iter, tol=tol, callback=callback)


def _ista(prob, inputs, max_iter, tol, callback, options):
    """ISTA on (16) (``rpca_ista(fast=False)``), the iteration the untrained CORONA equals."""
    return _run(prob, inputs, max_iter, tol, callback, options, fast=False)


def _fista(prob, inputs, max_iter, tol, callback, options):
    """FISTA on (16) (``rpca_ista(fast=True)``)."""
    return _run(prob, inputs, max_iter, tol, callback, options, fast=True)


def rpca_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""MSE losses on ``L`` and ``S``, each normalised by its target energy (the review: "MSE losses are imposed on
    L and S"; normalised so that the weak blood counts as much as the strong tissue)."""
    dims = tuple(range(target.dim() - 4)) + tuple(range(target.dim() - 3, target.dim()))
    err = abs2(prediction - target).sum(dims)
    ref = abs2(target).sum(dims).clamp_min(torch.finfo(err.dtype).tiny)
    return (err / ref).sum()


def _s_nmse_db(prediction, target) -> float:
    from unrolled.lowrank.metrics import nmse_db

    return nmse_db(prediction[..., 1, :, :, :], target[..., 1, :, :, :])


register_net(NetSpec(
    name="corona", family="lowrank", cls=CORONA, problem=problem, from_algorithm=_from_algorithm, solver=_ista,
    loss=rpca_loss, metric=_s_nmse_db, metric_name="NMSE of S (dB)", input_name="D", problem_config=problem_config,
    options=dict(OPTIONS), baselines={"ISTA-RPCA": _ista, "FISTA-RPCA": _fista}, default_layers=10,
    notes="Input: complex movies D (B, T, H, W); output and targets: [L, S] stacked as (B, 2, T, H, W). The "
          "filters are complex (k, k) kernels stored as real (k, k, 2) parameters; the untrained net is ISTA "
          "(fast=False) with delta kernels (H = I) or the PSF's kernels (operator='psf', kernel_size >= 9).",
))

import unrolled.experiments.corona_registry  # noqa: E402,F401  (its experiment, Table II row and demo part register)
