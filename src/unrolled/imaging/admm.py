r"""ADMM for compressive sensing with a filter bank (review, box ADMM-CSNet, eqs. 12-15), defined once.

The problem (12) with :math:`g = \ell_1` (the modulus for complex images) is

.. math:: \min_x \tfrac12 \|\Phi x - y\|_2^2 + \sum_{i=1}^C \lambda_i \|D_i x\|_1,

with :math:`\Phi` a :class:`~unrolled.imaging.operators.SubsampledFourier` (or any Fourier-diagonal
operator) and :math:`D_i` circular filters (finite differences: anisotropic TV; or a learned bank). ADMM on the
split (13) with the scaled dual :math:`\alpha_i` of (14) iterates (15):

.. math::
    x^l &= \Big(\Phi^H\Phi + \sum_i \rho_i D_i^T D_i\Big)^{-1}
           \Big[\Phi^H y + \sum_i \rho_i D_i^T (z_i^{l-1} - \alpha_i^{l-1})\Big] \\
    z_i^l &= \mathcal P_g\{D_i x^l + \alpha_i^{l-1};\ \lambda_i/\rho_i\} \\
    \alpha_i^l &= \alpha_i^{l-1} + \eta_i (D_i x^l - z_i^l).

The x-step is exact, one FFT pair (:meth:`~unrolled.imaging.operators.LinearOperator.solve_normal`).
:class:`ADMMCS` is the *generalised* step of ADMM-CSNet: the filters, ``lam``, ``rho``, ``eta`` are parameters,
and ``P_g`` is either the soft-threshold (the algorithm) or the learned piecewise-linear shrinkage
:func:`piecewise_linear_shrink`, which equals the soft-threshold at its initial control values
(:func:`soft_threshold_controls`). :func:`admm_cs` runs it to convergence with ``eta = 1``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from unrolled.core.iteration import Iteration, Param
from unrolled.core.result import SolverResult
from unrolled.core.solve import solve
from unrolled.core.validation import check_positive, check_tensor, from_numpy
from unrolled.imaging.operators import (FiniteDifference, Filters, FourierDiagonal, LinearOperator,
                                        SubsampledFourier, complex_dtype, real_dtype)

__all__ = ["ADMMCS", "admm_cs", "admm_cs_setup", "soft_threshold", "piecewise_linear_shrink",
           "soft_threshold_controls", "dct_filters", "filter_bank", "SHRINK_STEP"]

#: Spacing of the shrinkage's control points, in units of the threshold lam / rho (the kink of the
#: soft-threshold, at 1, is a control point, so the initial shrinkage is exactly the soft-threshold).
SHRINK_STEP = 0.25


def soft_threshold(v: Tensor, t: Tensor) -> Tensor:
    r"""Prox of :math:`t|\cdot|`: :math:`v \max(1 - t/|v|, 0)` (complex: shrinks the modulus, keeps the phase)."""
    mag = v.abs()
    return v * torch.clamp(1 - t / mag.clamp_min(torch.finfo(mag.dtype).tiny), min=0)


def soft_threshold_controls(n_points: int = 16, step: float = SHRINK_STEP, dtype=torch.float64) -> Tensor:
    """Control values ``q_j = max(j * step - 1, 0)``, ``j = 1..n_points``: the soft-threshold in units of t."""
    s = step * torch.arange(1, n_points + 1, dtype=dtype)
    return torch.clamp(s - 1, min=0)


def piecewise_linear_shrink(v: Tensor, t: Tensor, controls: Tensor, step: float = SHRINK_STEP) -> Tensor:
    r"""Learned shrinkage :math:`v\,\varphi(|v|/t)/(|v|/t)`, :math:`\varphi` piecewise linear.

    :math:`\varphi` interpolates the values ``(0, q_1, ..., q_P)`` at ``0, step, ..., P step`` and extends the
    last segment linearly beyond; with :func:`soft_threshold_controls` it is :math:`\max(s - 1, 0)`, so the
    map is the soft-threshold at ``t``. The original ADMM-CSNet learns control points the same way; measuring
    them in units of ``t = lambda / rho`` keeps the equivalence with the algorithm exact.
    """
    n = controls.shape[-1]
    s = v.abs() / t
    pos = s / step
    idx = torch.clamp(pos.detach().floor(), max=n - 1).long()
    frac = pos - idx.to(pos.dtype)
    q = torch.cat([controls.new_zeros(1), controls])
    phi = q[idx] + frac * (q[idx + 1] - q[idx])
    return v * (phi / s.clamp_min(torch.finfo(s.dtype).tiny))


def dct_filters(size: int = 3, dtype=torch.float64) -> Tensor:
    """The ``size**2 - 1`` non-constant 2-D DCT-II basis filters ``(size**2 - 1, size, size)``, orthonormal
    (ADMM-Net's initial bank; their squared spectra sum to a constant minus the DC filter's)."""
    n = torch.arange(size, dtype=dtype)
    basis = torch.stack([torch.cos(math.pi * (n + 0.5) * k / size) for k in range(size)])  # (k, n)
    basis = basis / torch.linalg.vector_norm(basis, dim=1, keepdim=True)
    filters = basis[:, None, :, None] * basis[None, :, None, :]  # (u, v, a, b)
    return filters.reshape(size * size, size, size)[1:].contiguous()


def filter_bank(transforms, dtype=torch.float64) -> Tensor:
    """Filters ``(C, h, w)`` for ``'tv'`` (finite differences), ``'dct3'`` / ``'dct5'`` or a given tensor."""
    if isinstance(transforms, str):
        if transforms == "tv":
            return FiniteDifference.kernels(dtype)
        if transforms in ("dct3", "dct5"):
            return dct_filters(int(transforms[-1]), dtype)
        raise ValueError(f"transforms must be 'tv', 'dct3', 'dct5' or a (C, h, w) filter tensor, got {transforms!r}")
    return check_tensor("transforms", torch.as_tensor(transforms, dtype=dtype), ndim=3)


def _bank(filters) -> FourierDiagonal:
    return filters if isinstance(filters, LinearOperator) else Filters(filters)


def _per_channel(value, C: int, like: Tensor) -> Tensor:
    v = torch.as_tensor(value, dtype=real_dtype(like.dtype), device=like.device)
    return v.expand(C) if v.dim() == 0 else v


class ADMMCS(Iteration):
    """One stage of (15) (see the module docstring). State: ``x (B, H, W)``, ``z, alpha (B, C, H, W)``, complex.

    Data: ``y`` (k-space on the full grid, zero off the mask, ``(B, H, W)`` complex), ``Aty = Phi^H y`` and
    ``op`` (the measurement operator, shared). Parameters: ``filters`` (``(C, h, w)`` or a Fourier-diagonal
    operator), ``lam``, ``rho``, ``eta`` (``(C,)`` or scalars) and ``shrink`` (control values, or ``None`` for
    the exact soft-threshold).
    """

    params = (
        Param("filters", doc="(C, h, w) filter bank D_i"),
        Param("lam", "positive", doc="(C,) l1 weights lambda_i"),
        Param("rho", "positive", doc="(C,) ADMM penalties rho_i"),
        Param("eta", "positive", doc="(C,) dual step eta_i"),
        Param("shrink", doc="(P,) control values of the learned shrinkage (units of lambda_i / rho_i)"),
    )
    batched = ("y", "Aty")

    def init(self, data, params):
        x = data["Aty"]
        D = _bank(params["filters"])
        B, (H, W) = x.shape[0], x.shape[-2:]
        zeros = x.new_zeros(B, D.channels, H, W)
        return {"x": x, "z": zeros, "alpha": zeros}

    def step(self, k, state, data, params):
        D = _bank(params["filters"])
        C = D.channels
        rho = _per_channel(params["rho"], C, state["x"])
        lam = _per_channel(params["lam"], C, state["x"])
        eta = _per_channel(params["eta"], C, state["x"])
        z, alpha = state["z"], state["alpha"]
        rhs = data["Aty"] + D.adjoint(rho[:, None, None] * (z - alpha))
        x = data["op"].solve_normal(rhs, [(rho, D)])
        Dx = D.forward(x)
        v = Dx + alpha
        t = (lam / rho)[:, None, None]
        shrink = params.get("shrink")
        z_new = soft_threshold(v, t) if shrink is None else piecewise_linear_shrink(v, t, shrink)
        return {"x": x, "z": z_new, "alpha": alpha + eta[:, None, None] * (Dx - z_new)}

    def readout(self, state, data):
        return state["x"]

    def criterion(self, new, old, data, params):
        """``max`` of the relative primal residual ``||Dx - z|| / max(||Dx||, ||z||)`` and the relative dual
        residual ``||D^T rho (z - z_old)|| / ||D^T rho alpha||`` (Boyd et al., Sec. 3.3)."""
        D = _bank(params["filters"])
        rho = _per_channel(params["rho"], D.channels, new["x"])[:, None, None]
        Dx = D.forward(new["x"])
        flat = lambda t: torch.linalg.vector_norm(t.reshape(t.shape[0], -1), dim=-1)  # noqa: E731
        tiny = torch.finfo(real_dtype(Dx.dtype)).tiny
        primal = flat(Dx - new["z"]) / torch.maximum(flat(Dx), flat(new["z"])).clamp_min(tiny)
        dual = flat(D.adjoint(rho * (new["z"] - old["z"]))) / flat(D.adjoint(rho * new["alpha"])).clamp_min(tiny)
        return torch.maximum(primal, dual)

    def objective(self, state, data, params):
        """(12): ``1/2 ||Phi x - y||^2 + sum_i lam_i ||D_i x||_1`` per problem."""
        D = _bank(params["filters"])
        x = state["x"]
        lam = _per_channel(params["lam"], D.channels, x)
        fit = (data["op"].forward(x) - data["y"]).abs().square().sum((-2, -1))
        return 0.5 * fit + (lam[:, None, None] * D.forward(x).abs()).sum((-3, -2, -1))


def check_kspace(y, mask: Tensor, name: str = "y") -> tuple[Tensor, bool]:
    """``y`` as a complex batch ``(B, H, W)`` matching ``mask``; returns ``(y, unbatched)``."""
    y = from_numpy(y)
    if not isinstance(y, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or numpy array, got {type(y).__name__}")
    check_tensor(name, y, ndim=(2, 3))
    if tuple(y.shape[-2:]) != tuple(mask.shape):
        raise ValueError(f"{name} must be k-space of the mask's size {tuple(mask.shape)}, got shape {tuple(y.shape)}")
    unbatched = y.dim() == 2
    y = y.unsqueeze(0) if unbatched else y
    if y.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch")
    if not y.is_complex():
        y = y.to(complex_dtype(y.dtype))
    return y, unbatched


def admm_cs_setup(y, mask, *, lam=1e-3, rho=1e-2, transforms="tv") -> tuple[ADMMCS, dict, dict, bool]:
    """Validated ``(iteration, data, params, unbatched)`` of :func:`admm_cs` (for nets and the contract)."""
    mask = torch.as_tensor(mask)
    op = SubsampledFourier(mask)
    y, unbatched = check_kspace(y, op.mask)
    lam_t, rho_t = (torch.as_tensor(v, dtype=real_dtype(y.dtype)) for v in (lam, rho))
    for name, v in (("lam", lam_t), ("rho", rho_t)):
        if v.dim() > 1 or not bool(torch.isfinite(v).all()) or not bool((v > 0).all()):
            raise ValueError(f"{name} must be positive and finite (a float or one per filter), got {v.tolist()}")
    filters = FiniteDifference() if isinstance(transforms, str) and transforms == "tv" else \
        Filters(filter_bank(transforms, real_dtype(y.dtype)).to(y.device))  # one object: spectra cached
    C = _bank(filters).channels
    for name, v in (("lam", lam_t), ("rho", rho_t)):
        if v.dim() == 1 and v.shape[0] != C:
            raise ValueError(f"{name} must have one value per filter ({C}), got {v.shape[0]}")
    data = {"y": y, "Aty": op.adjoint(y), "op": op}
    params = {"filters": filters, "lam": lam_t.to(y.device), "rho": rho_t.to(y.device), "eta": 1.0, "shrink": None}
    return ADMMCS(), data, params, unbatched


def admm_cs(y, mask, lam=1e-3, rho=1e-2, *, transforms="tv", max_iter: int = 500, tol: float = 1e-4,
            callback=None) -> SolverResult:
    r"""ADMM (15) for (12) with :math:`g = \ell_1`: compressive MRI reconstruction.

    Parameters
    ----------
    y : Tensor
        k-space ``(B, H, W)`` or ``(H, W)`` on the full grid, zero off the mask (``SubsampledFourier(mask)(x)``
        plus noise); real input is taken as complex.
    mask : Tensor
        ``(H, W)`` 0/1 sampling mask in FFT layout (:mod:`unrolled.imaging.masks`).
    lam : float or Tensor
        :math:`\lambda_i > 0`: one value, or one per filter ``(C,)``.
    rho : float or Tensor
        ADMM penalties :math:`\rho_i > 0`, the same way.
    transforms : {'tv', 'dct3', 'dct5'} or Tensor
        The :math:`D_i`: finite differences (anisotropic TV, applied by rolls), a DCT bank, or ``(C, h, w)``.
    max_iter, tol, callback
        As in :func:`unrolled.core.solve.solve`; a problem stops when both relative residuals
        (:meth:`ADMMCS.criterion`) are below ``tol``.

    Returns
    -------
    SolverResult
        ``x (B, H, W)`` complex; ``state`` also holds ``z`` and ``alpha``.
    """
    check_positive("tol", tol, allow_zero=True)
    iteration, data, params, unbatched = admm_cs_setup(y, mask, lam=lam, rho=rho, transforms=transforms)
    result = solve(iteration, data, params, max_iter=max_iter, tol=tol, callback=callback)
    if unbatched:
        result.x = result.x[0]
    return result
