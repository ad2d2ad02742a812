r"""Photometric stereo as sparse regression (He et al. 2017, Sec. 4.3; Ikehata et al. 2012), on a rendered scene.

A pixel seen under ``r`` distant lights (unit directions, the rows of ``L`` ``(r, 3)``) has intensities

.. math:: o = L x + e, \qquad x = \rho\, n \in \mathbb R^3,

where ``n`` is the unit surface normal, ``rho`` the albedo and ``e`` a sparse corruption: the Lambertian part
``max(0, L x)`` differs from ``L x`` exactly where the pixel is in attached shadow (``e = -(L x) > 0`` there),
and specular highlights add positive spikes. With ``Q`` ``(r, r-3)`` an orthonormal basis of the left null
space of ``L`` (``Q^T L = 0``), the projected intensities ``y = Q^T o = Q^T e`` are a sparse-regression problem
``y = Phi e`` with the dictionary ``Phi = Q^T`` ``(r-3, r)`` (:func:`nullspace_dictionary`). Once ``e`` is
estimated, ``x = L^+ (o - e)`` and the normal is ``x / ||x||`` (:func:`normals_from_corruption`).

The paper's 32-bit HDR images (Bunny, Caesar) are not available offline, so :func:`render_sphere` renders a
synthetic scene instead: a sphere with a smoothly varying albedo, Lambertian shading with attached shadows,
Blinn-Phong specular spots and Gaussian sensor noise. The learned nets never see it in training: as in the
paper they train on codes with random supports and Gaussian magnitudes (:class:`PhotometricCorruptionProblem`).
A net gives atom scores but not the number of corrupted images, so :func:`residual_decode` keeps the
smallest top-``k`` set whose least-squares fit explains ``y`` down to the noise level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from unrolled.core.validation import check_int, check_positive, check_tensor

__all__ = ["light_directions", "PhotometricScene", "render_sphere", "nullspace_dictionary", "normals_from_corruption",
           "angular_error", "residual_decode", "PhotometricCorruptionProblem"]


def light_directions(r: int, *, max_polar_deg: float = 60.0, generator: torch.Generator | None = None) -> Tensor:
    """``(r, 3)`` float64 unit light directions on the camera side (``z > 0``), polar angle uniform in
    ``[0, max_polar_deg]`` degrees from the viewing axis and azimuth uniform."""
    check_int("r", r, minimum=4)
    if not 0.0 < max_polar_deg < 90.0:
        raise ValueError(f"max_polar_deg must be in (0, 90), got {max_polar_deg}")
    polar = torch.rand(r, generator=generator, dtype=torch.float64) * math.radians(max_polar_deg)
    azimuth = torch.rand(r, generator=generator, dtype=torch.float64) * 2 * math.pi
    return torch.stack([polar.sin() * azimuth.cos(), polar.sin() * azimuth.sin(), polar.cos()], dim=-1)


def _check_lights(lights: Tensor) -> Tensor:
    check_tensor("lights", lights, ndim=2)
    if lights.shape[1] != 3 or lights.shape[0] < 4:
        raise ValueError(f"lights must be (r, 3) with r >= 4 (r - 3 projected measurements), got {tuple(lights.shape)}")
    if torch.linalg.matrix_rank(lights.to(torch.float64)) < 3:
        raise ValueError("lights must span 3-D space (rank 3) to determine a normal")
    return lights


@dataclass
class PhotometricScene:
    """A rendered scene: ``images`` ``(r, P)`` over the ``P`` object pixels (``mask`` ``(H, W)``), the true unit
    ``normals`` ``(P, 3)``, ``albedo`` ``(P,)``, the ``lights`` ``(r, 3)``, the true corruption
    ``corruption = o - L x`` without the noise ``(r, P)``, and the noise level ``noise_std``."""

    images: Tensor
    normals: Tensor
    albedo: Tensor
    lights: Tensor
    mask: Tensor
    corruption: Tensor
    noise_std: float

    @property
    def n_pixels(self) -> int:
        return self.images.shape[1]

    def corrupted_fraction(self) -> float:
        """Share of the ``r x P`` measurements that carry a corruption (shadow or specular spot)."""
        return float((self.corruption != 0).double().mean())


def render_sphere(lights: Tensor, size: int = 64, *, specular: float = 0.5, shininess: float = 50.0,
                  noise_std: float = 1e-3, generator: torch.Generator | None = None) -> PhotometricScene:
    """Render an orthographic view of a unit sphere under each light (the synthetic stand-in for Sec. 4.3's HDR data).

    Parameters
    ----------
    lights : Tensor
        ``(r, 3)`` unit light directions (``r >= 4``).
    size : int
        Image side in pixels; the sphere's silhouette is the inscribed disc.
    specular, shininess : float
        Blinn-Phong highlight ``specular * (n . h)^shininess`` with ``h`` the half vector of the light and the
        view direction ``(0, 0, 1)``; values below ``1e-2`` are dropped so highlights stay spots.
    noise_std : float
        Standard deviation of additive Gaussian sensor noise.
    generator : torch.Generator, optional
        Source of the noise.

    Returns
    -------
    PhotometricScene
        Albedo ``0.6 + 0.3 sin(3 u) cos(2 v)`` over image coordinates ``u, v`` in ``[-1, 1]``.
    """
    _check_lights(lights)
    check_int("size", size, minimum=4)
    check_positive("specular", specular, allow_zero=True)
    check_positive("shininess", shininess)
    check_positive("noise_std", noise_std, allow_zero=True)
    L = lights.to(torch.float64)
    L = L / torch.linalg.vector_norm(L, dim=-1, keepdim=True)
    coords = (torch.arange(size, dtype=torch.float64) + 0.5) / size * 2 - 1
    v, u = torch.meshgrid(-coords, coords, indexing="ij")  # u to the right, v up
    inside = u ** 2 + v ** 2 < 0.9  # keep away from the grazing rim (normals up to 72 deg from the view axis)
    u, v = u[inside], v[inside]
    normals = torch.stack([u, v, (1 - u ** 2 - v ** 2).sqrt()], dim=-1)
    albedo = 0.6 + 0.3 * torch.sin(3 * u) * torch.cos(2 * v)
    shading = L @ (albedo[:, None] * normals).T  # (r, P): L x
    half = L + torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    half = half / torch.linalg.vector_norm(half, dim=-1, keepdim=True)
    spec = specular * (half @ normals.T).clamp_min(0) ** shininess * (shading > 0)
    spec = torch.where(spec > 1e-2, spec, torch.zeros_like(spec))
    clean = shading.clamp_min(0) + spec
    noise = noise_std * torch.randn(clean.shape, generator=generator, dtype=torch.float64) if noise_std > 0 else 0.0
    return PhotometricScene(images=clean + noise, normals=normals, albedo=albedo, lights=L, mask=inside,
                            corruption=clean - shading, noise_std=float(noise_std))


def nullspace_dictionary(lights: Tensor) -> Tensor:
    """``Phi = Q^T`` ``(r - 3, r)``: ``Q`` an orthonormal basis of the left null space of ``lights`` (``Phi L = 0``,
    ``Phi Phi^T = I``), so ``Phi o = Phi e`` for ``o = L x + e``."""
    _check_lights(lights)
    U = torch.linalg.svd(lights.to(torch.float64), full_matrices=True).U
    return U[:, 3:].T.contiguous()


def normals_from_corruption(images: Tensor, lights: Tensor, corruption: Tensor | None = None) -> Tensor:
    """Unit normals ``(P, 3)`` from ``x = L^+ (o - e)`` per pixel (``corruption`` ``e`` ``(r, P)``; ``None``: plain
    least squares, ``e = 0``)."""
    _check_lights(lights)
    check_tensor("images", images, ndim=2)
    if images.shape[0] != lights.shape[0]:
        raise ValueError(f"images has {images.shape[0]} rows but there are {lights.shape[0]} lights")
    o = images if corruption is None else images - corruption
    x = torch.linalg.pinv(lights.to(o.dtype)) @ o  # (3, P)
    return (x / torch.linalg.vector_norm(x, dim=0, keepdim=True).clamp_min(1e-12)).T


def angular_error(est: Tensor, true: Tensor) -> Tensor:
    """Angle in degrees between unit normals ``est`` and ``true`` ``(P, 3)``, per pixel."""
    if est.shape != true.shape or est.shape[-1] != 3:
        raise ValueError(f"est and true must both be (P, 3), got {tuple(est.shape)} and {tuple(true.shape)}")
    cos = (est * true).sum(-1).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.arccos(cos))


def residual_decode(y: Tensor, Phi: Tensor, scores: Tensor, tol: float | Tensor) -> Tensor:
    """Sparse codes ``(B, m)`` from atom scores: the least-squares fit on the top-``k`` atoms for the smallest ``k``
    in ``0, ..., n-1`` whose residual ``||y - Phi x||`` is at most ``tol`` (else ``k = n - 1``).

    The nets rank the atoms but do not say how many are active; this is the stopping rule of greedy pursuits
    (stop once the residual is at the noise level), applied to the net's ranking. All ``k`` are scored at once:
    with ``A = Q R`` the QR factorisation of the ranked columns, the residual of the top-``k`` fit is
    ``||y||^2 - sum_{i <= k} |q_i^H y|^2`` and its coefficients solve ``R_k x = (Q^H y)_k``.
    """
    check_tensor("y", y, ndim=2)
    check_tensor("scores", scores, ndim=2)
    n, m = Phi.shape
    if y.shape[1] != n or scores.shape != (y.shape[0], m):
        raise ValueError(f"y must be (B, {n}) and scores (B, {m}), got {tuple(y.shape)} and {tuple(scores.shape)}")
    B, K = y.shape[0], min(n - 1, m)
    x = torch.zeros(B, m, dtype=y.dtype, device=y.device)
    if K == 0:
        return x
    tol = torch.as_tensor(tol, dtype=y.real.dtype, device=y.device).expand(B)
    order = torch.sort(scores, dim=-1, descending=True, stable=True).indices[:, :K]  # (B, K), best first
    Q, R = torch.linalg.qr(Phi.T[order].mT)  # ranked columns (B, n, K) = Q R
    c = (Q.mH @ y.unsqueeze(-1)).squeeze(-1)  # (B, K)
    energy = torch.linalg.vector_norm(y, dim=-1, keepdim=True) ** 2
    residual2 = torch.cat([energy, energy - torch.cumsum(c.abs() ** 2, dim=-1)], dim=-1)  # k = 0 .. K
    fits = residual2.clamp_min(0).sqrt() <= tol.unsqueeze(-1)
    k = torch.where(fits.any(-1), fits.int().argmax(-1), torch.full_like(fits[:, 0], K, dtype=torch.long))
    keep = torch.arange(K, device=y.device) < k.unsqueeze(-1)  # (B, K): the first k ranked atoms
    block = keep.unsqueeze(-1) & keep.unsqueeze(-2)
    R_k = torch.where(block, R, torch.zeros_like(R)) + torch.diag_embed((~keep).to(R.dtype))  # [[R_k, 0], [0, I]]
    coef = torch.linalg.solve_triangular(R_k, (c * keep).unsqueeze(-1), upper=True).squeeze(-1)
    return x.scatter(1, order, coef)


@dataclass
class PhotometricCorruptionProblem:
    """Online training data for the photometric-stereo nets: ``y = Phi e + eps`` with ``Phi = Q^T`` of ``lights``.

    ``e`` has a uniformly random support of ``d`` entries (``d`` drawn per sample in ``[d_min, d_max]``) and
    magnitudes ``|N(mean, std)|`` (positive, as shadows and highlights are), the paper's weak supervision
    "nonzero magnitudes drawn from a Gaussian, with mean and variance loosely tuned to the data"; ``eps`` is
    white noise of standard deviation ``noise_std`` (the projected sensor noise). ``sample`` follows the
    other SBL problems: ``(y, e)`` drawn from the CPU generator.
    """

    lights: Tensor
    d: tuple[int, int] = (1, 4)
    mean: float = 0.1
    std: float = 0.15
    noise_std: float = 1e-3
    dtype: torch.dtype = torch.float32
    device: str = "cpu"
    Phi: Tensor = field(init=False, repr=False)
    _phi64: Tensor = field(init=False, repr=False)  # float64 CPU copy the samples are drawn with

    def __post_init__(self) -> None:
        _check_lights(self.lights)
        self.lights = self.lights.to(torch.float64).cpu()
        r = self.lights.shape[0]
        d_min, d_max = int(self.d[0]), int(self.d[1])
        if not 1 <= d_min <= d_max <= r - 4:
            raise ValueError(f"d must satisfy 1 <= d_min <= d_max <= r - 4 = {r - 4} "
                             f"(fewer than the {r - 3} measurements), got {self.d}")
        self.d = (d_min, d_max)
        check_positive("std", self.std)
        check_positive("noise_std", self.noise_std, allow_zero=True)
        self._phi64 = nullspace_dictionary(self.lights)
        self.Phi = self._phi64.to(self.dtype).to(self.device)

    @property
    def n(self) -> int:
        return self.Phi.shape[0]

    @property
    def m(self) -> int:
        return self.Phi.shape[1]

    def sample(self, n_samples: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw ``(y, e)`` of shapes ``(n_samples, r - 3)`` and ``(n_samples, r)``."""
        check_int("n_samples", n_samples, minimum=1)
        m = self.m
        ranks = torch.rand(n_samples, m, generator=generator).argsort(dim=1).argsort(dim=1)
        dd = torch.randint(self.d[0], self.d[1] + 1, (n_samples, 1), generator=generator)
        mag = (self.mean + self.std * torch.randn(n_samples, m, generator=generator, dtype=torch.float64)).abs()
        e = mag.clamp_min(1e-3) * (ranks < dd)
        y = e @ self._phi64.T
        if self.noise_std > 0:
            y = y + self.noise_std * torch.randn(y.shape, generator=generator, dtype=torch.float64)
        return y.to(self.dtype).to(self.device), e.to(self.dtype).to(self.device)

    def config(self) -> dict:
        """JSON-serialisable description that rebuilds the same problem."""
        return {"lights": self.lights.tolist(), "d": list(self.d), "mean": self.mean, "std": self.std,
                "noise_std": self.noise_std, "dtype": str(self.dtype).replace("torch.", "")}
