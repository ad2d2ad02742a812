r"""Classic solver of the lowrank family: (F)ISTA for the convolutional robust PCA problem (16).

:func:`rpca_ista` is a thin wrapper: the step is :class:`~unrolled.lowrank.iteration.RPCAIteration` at the
algorithm's filters :math:`P_5 = I - H_1^HH_1/\mu`, ... (:func:`~unrolled.lowrank.operators.algorithm_filters`)
and thresholds :math:`\lambda_i/\mu`, and the loop is :func:`unrolled.core.solve.solve` (batched over movies,
each movie frozen when its relative optimality residual drops below ``tol``). With ``H1 = H2 = I`` the filters
are 1x1 and a step is two multiply-adds, one batched SVD and one row shrinkage.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from unrolled.core.result import SolverResult
from unrolled.core.solve import Callback, solve
from unrolled.core.validation import check_positive, check_tensor
from unrolled.lowrank.iteration import RPCAIteration
from unrolled.lowrank.operators import algorithm_filters, lipschitz

__all__ = ["RPCAResult", "rpca_ista", "check_movie", "check_kernel", "rpca_setup"]


@dataclass
class RPCAResult(SolverResult):
    """:class:`~unrolled.core.result.SolverResult` of :func:`rpca_ista`: ``x`` is ``(B, 2, T, H, W)``.

    ``L`` (low rank, tissue) and ``S`` (row sparse, blood) are ``x[:, 0]`` and ``x[:, 1]``; ``history`` has
    ``'objective'`` (batch mean of (16)) and ``'criterion'`` (batch maximum of the relative optimality residual).
    """

    @property
    def L(self) -> Tensor:
        return self.x[..., 0, :, :, :]

    @property
    def S(self) -> Tensor:
        return self.x[..., 1, :, :, :]


def check_movie(name: str, D, *, complex_only: bool = False) -> tuple[Tensor, bool]:
    """Validate a movie ``(T, H, W)`` or a batch ``(B, T, H, W)``; returns the batch and whether it was single."""
    if not isinstance(D, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor movie (B, T, H, W) or (T, H, W), got {type(D).__name__}")
    if D.dim() not in (3, 4):
        raise ValueError(f"{name} must be a movie (B, T, H, W) or (T, H, W) (frames of H x W pixels), "
                         f"got shape {tuple(D.shape)}")
    if complex_only and not D.is_complex():
        raise ValueError(f"{name} must be a complex movie (IQ data), got dtype {D.dtype}")
    check_tensor(name, D)
    single = D.dim() == 3
    if single:
        D = D.unsqueeze(0)
    if D.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (0 movies)")
    if min(D.shape[1:]) < 1:
        raise ValueError(f"{name} has an empty frame axis or frame (shape {tuple(D.shape)})")
    return D, single


def check_kernel(name: str, h, D: Tensor) -> Tensor | None:
    """Validate a PSF kernel ``(k, k)`` (``k`` odd, at most the frame size) for movies ``D``; ``None`` passes."""
    if h is None:
        return None
    if not isinstance(h, Tensor):
        h = torch.as_tensor(h)
    check_tensor(name, h, ndim=2)
    k = h.shape[-1]
    if h.shape[0] != k or k % 2 == 0:
        raise ValueError(f"{name} must be a square kernel of odd size (k, k), got shape {tuple(h.shape)}")
    if 2 * k - 1 > min(D.shape[-2:]):
        raise ValueError(f"{name} ({k}x{k}) is too large for {D.shape[-2]}x{D.shape[-1]} frames "
                         f"(H^H H spans {2 * k - 1}x{2 * k - 1})")
    if h.is_complex() and not D.is_complex():
        raise ValueError(f"{name} is complex but the movie is real; pass a complex movie")
    return h.to(dtype=D.dtype, device=D.device)


def rpca_setup(D, lam1, lam2, *, H1=None, H2=None, mu: float | None = None, fast: bool = True):
    """Validate the arguments of :func:`rpca_ista`; returns ``(iteration, data, params, single)`` for ``solve``."""
    D, single = check_movie("D", D)
    lam1 = check_positive("lam1", lam1, allow_zero=True)
    lam2 = check_positive("lam2", lam2, allow_zero=True)
    H1, H2 = check_kernel("H1", H1, D), check_kernel("H2", H2, D)
    L = lipschitz(H1, H2, D.shape[-2], D.shape[-1], D)
    if mu is None:
        mu = L
    else:
        mu = check_positive("mu", mu)
        if mu < L * (1 - 1e-12):
            raise ValueError(f"mu must be >= the Lipschitz constant {L:.6g} of the data term, got {mu}")
    iteration = RPCAIteration(fast=fast, lam1=lam1, lam2=lam2, mu=mu)
    params = algorithm_filters(H1, H2, mu, dtype=D.dtype, device=D.device)
    params.update(lam1=lam1 / mu, lam2=lam2 / mu)
    return iteration, {"D": D, "H1": H1, "H2": H2}, params, single


def rpca_ista(D, lam1: float, lam2: float, *, H1=None, H2=None, mu: float | None = None, max_iter: int = 2000,
              tol: float = 1e-6, fast: bool = True, callback: Callback | None = None) -> RPCAResult:
    r"""Solve (16) by ISTA (``fast=False``) or FISTA (``fast=True``), batched over movies.

    Parameters
    ----------
    D : Tensor or ndarray
        Movies ``(B, T, H, W)`` or one movie ``(T, H, W)``, complex (IQ) or real.
    lam1, lam2 : float
        Penalties :math:`\lambda_1` (nuclear norm of the Casorati matrix of ``L``) and :math:`\lambda_2`
        (mixed l1,2 norm: the sum over pixels of the l2 norm of each pixel's time series in ``S``), ``>= 0``.
    H1, H2 : Tensor, optional
        PSF kernels ``(k, k)`` (``k`` odd) of the measurement operators, applied to every frame by circular
        convolution (see :mod:`unrolled.lowrank.operators`); ``None`` is the identity.
    mu : float, optional
        Step constant (step :math:`1/\mu`); default and minimum: the Lipschitz constant
        :math:`\|[H_1\ H_2]\|^2` (2 for identities).
    max_iter, tol : int, float
        Iteration cap and tolerance on the relative optimality residual
        (:meth:`~unrolled.lowrank.iteration.RPCAIteration.criterion`).
    fast : bool, default True
        FISTA (``True``) or ISTA (``False``, the iteration the CORONA net unrolls).
    callback : callable, optional
        ``callback(k, estimate)`` with the ``(B, 2, T, H, W)`` estimate after each iteration.

    Returns
    -------
    RPCAResult
        ``x`` ``(B, 2, T, H, W)`` (``(2, T, H, W)`` for one movie), with ``.L`` and ``.S``.
    """
    from unrolled.core.validation import from_numpy

    iteration, data, params, single = rpca_setup(from_numpy(D), lam1, lam2, H1=H1, H2=H2, mu=mu, fast=fast)
    res = solve(iteration, data, params, max_iter=max_iter, tol=tol, callback=callback)
    out = RPCAResult(x=res.x, n_iter=res.n_iter, converged=res.converged, history=res.history, state=res.state)
    if single:
        out.x, out.n_iter, out.converged = out.x[0], out.n_iter[0], out.converged[0]
    return out
