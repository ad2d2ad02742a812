"""The classic solver: mean-field inference of the fully connected CRF (review, eqs. (19)-(20))."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from unrolled.core.result import SolverResult
from unrolled.core.solve import solve
from unrolled.core.validation import check_int, check_positive
from unrolled.segmentation.filtering import Filtering, kernel_cache
from unrolled.segmentation.inputs import (GaussianKernels, as_compatibility, as_kernels, as_weights,
                                          check_unary_image)
from unrolled.segmentation.iteration import MeanFieldIteration


def mean_field_setup(unary, image, *, kernels=GaussianKernels(), weights=(1.0, 1.0), compatibility="potts",
                     filtering: str = "exact", stride: int = 2, truncate: float = 4.0):
    """Validate the arguments of :func:`mean_field`; returns ``(iteration, data, params, unbatched)``.

    The kernel matrices are built once here (the widths are fixed) and reused by every iteration.
    """
    unary, image, unbatched = check_unary_image(unary, image)
    k = as_kernels(kernels)
    opts = {"dtype": unary.dtype, "device": unary.device}
    params = {"weights": as_weights(weights, **opts),
              "compatibility": as_compatibility(compatibility, unary.shape[1], **opts),
              "widths": torch.tensor(k.as_tuple(), **opts)}
    filt = Filtering(filtering, stride, truncate)
    data = {"unary": unary, "image": image, **kernel_cache(image, params["widths"], filt)}
    return MeanFieldIteration(filt), data, params, unbatched


def mean_field(unary, image, *, kernels=GaussianKernels(), weights=(1.0, 1.0), compatibility="potts",
               max_iter: int | None = None, n_iter: int | None = None, tol: float = 0.0,
               filtering: str = "exact", stride: int = 2, truncate: float = 4.0,
               callback: Callable[[int, Tensor], None] | None = None, track: bool | None = None) -> SolverResult:
    r"""Mean-field inference for the fully connected CRF with a spatial and a bilateral Gaussian kernel.

    Runs the parallel update of eqs. (19)-(20) (message passing, compatibility transform, unary addition,
    normalisation; :mod:`unrolled.segmentation.iteration`) from :math:`Q^0 = \mathrm{softmax}(U)` through
    :func:`unrolled.core.solve`, batched, each image stopping on its own criterion.

    Parameters
    ----------
    unary : Tensor or ndarray
        ``(B, L, H, W)`` (or ``(L, H, W)``) unary scores :math:`U = -\phi` (e.g. a network's logits), float32/64.
    image : Tensor or ndarray
        ``(B, C, H, W)`` (or ``(C, H, W)``) colours, the bilateral features; same dtype and device.
    kernels : GaussianKernels, dict or (gamma, alpha, beta)
        Widths of the spatial kernel (:math:`\gamma`, pixels) and of the bilateral one (:math:`\alpha` pixels,
        :math:`\beta` colour units).
    weights : (w_spatial, w_bilateral)
        Kernel weights :math:`w^m > 0`.
    compatibility : 'potts' or array
        :math:`\mu`, ``(L, L)`` shared by both kernels or ``(2, L, L)`` per kernel; ``'potts'`` is
        :math:`[l \ne l']`.
    max_iter : int, default 10
        Iteration cap (``n_iter`` is an alias).
    tol : float, default 0
        A problem stops when :math:`\max_{i,l}|Q^{k} - Q^{k-1}| <` ``tol``; ``0`` runs ``max_iter`` iterations.
    filtering : {'exact', 'fast'}
        Dense kernel matrices, or separable spatial + down-sampled bilateral filtering (stride ``stride``,
        spatial taps cut at ``truncate`` widths); see :mod:`unrolled.segmentation.filtering`.
    callback : callable, optional
        ``callback(k, Q)`` after iteration ``k`` (1-based).
    track : bool, optional
        Record the criterion and the free energy (objective) at every iteration (default: only when ``tol > 0``).

    Returns
    -------
    SolverResult
        ``x``: the marginals :math:`Q` ``(B, L, H, W)`` (unbatched input: ``(L, H, W)``); ``history['objective']``
        the batch mean of the free energy :math:`F(Q)`; ``state['logits']``.

    Notes
    -----
    With Potts compatibility, exact filtering and :math:`w^1 + w^2 \le 2`, the free energy does not increase
    (proof in :mod:`unrolled.segmentation.iteration`).
    """
    if n_iter is not None and max_iter is not None:
        raise ValueError("give max_iter or n_iter (its alias), not both")
    max_iter = 10 if max_iter is None and n_iter is None else (n_iter if max_iter is None else max_iter)
    name = "n_iter" if n_iter is not None else "max_iter"
    check_int(name, max_iter, minimum=1)
    check_positive("tol", tol, allow_zero=True)
    iteration, data, params, unbatched = mean_field_setup(
        unary, image, kernels=kernels, weights=weights, compatibility=compatibility, filtering=filtering,
        stride=stride, truncate=truncate)
    result = solve(iteration, data, params, max_iter=max_iter, tol=tol, callback=callback, track=track)
    if unbatched:
        result.x = result.x.squeeze(0)
    return result


def segment(marginals: Tensor) -> Tensor:
    """Labels ``argmax_l Q(l)`` of marginals ``(..., L, H, W)``: ``(..., H, W)`` int64."""
    return marginals.argmax(dim=-3)
