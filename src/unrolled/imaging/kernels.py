r"""Blur kernels for blind deblurring (review, DUBLID box, eq. (6)): Gaussian, motion and disk.

Every kernel is a non-negative ``(size, size)`` array of unit sum (the constraint set of (7)-(9):
:math:`k \ge 0,\ \|k\|_1 = 1`) on a fixed odd support whose centre pixel ``(size // 2, size // 2)`` is the
kernel's origin. Three families, each with random shape parameters, drawn on the CPU from a
:class:`torch.Generator` (the same seed gives the same kernels on every device) and vectorised over the batch:

* :func:`gaussian_kernels`: anisotropic Gaussians, two random widths and a random orientation;
* :func:`motion_kernels`: camera-shake trajectories, a random walk of random length with a velocity that turns
  a little at every step (the usual simulation of Schuler et al. / Chakrabarti), rasterised by bilinear splatting;
* :func:`disk_kernels`: defocus disks of random radius, anti-aliased by supersampling.

:class:`KernelSource` draws from one family or a mixture of them (``sample(n, generator)``, ``config()``), which is
what :class:`~unrolled.imaging.deblur.BlindDeblurProblem` takes. :func:`check_kernel` validates user kernels and
:func:`kernel_to_image` / :func:`image_to_kernel` move a kernel between its support and a circular ``(H, W)``
image with the origin at pixel ``(0, 0)``, the layout of FFT-based convolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from unrolled.core.validation import check_int, check_tensor

__all__ = ["KERNEL_KINDS", "KernelSource", "check_kernel", "disk_kernels", "gaussian_kernels", "image_to_kernel",
           "kernel_to_image", "motion_kernels"]

KERNEL_KINDS = ("gaussian", "motion", "disk")


def _check_size(size) -> int:
    size = check_int("size", size, minimum=3)
    if size % 2 == 0:
        raise ValueError(f"size must be odd (the kernel's origin is its centre pixel), got {size}")
    return size


def _check_range(name: str, value, low: float, high: float) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (min, max), got {value!r}") from None
    if not (math.isfinite(a) and math.isfinite(b) and low <= a <= b <= high):
        raise ValueError(f"{name} must satisfy {low:g} <= min <= max <= {high:g}, got {value!r}")
    return a, b


def _uniform(n: int, bounds: tuple[float, float], generator, dtype) -> Tensor:
    a, b = bounds
    return a + (b - a) * torch.rand(n, generator=generator, dtype=dtype)


def _normalise(k: Tensor) -> Tensor:
    return k / k.sum(dim=(-2, -1), keepdim=True)


def _grid(size: int, dtype) -> tuple[Tensor, Tensor]:
    """Pixel offsets from the centre: ``(rows, cols)``, each ``(size, size)``."""
    r = torch.arange(size, dtype=dtype) - size // 2
    return torch.meshgrid(r, r, indexing="ij")


def gaussian_kernels(n: int, size: int = 15, *, generator: torch.Generator | None = None,
                     sigma: tuple[float, float] | None = None, dtype: torch.dtype = torch.float64) -> Tensor:
    r"""Anisotropic Gaussian kernels :math:`k(d) \propto \exp(-\tfrac12 d^\top \Sigma^{-1} d)`, ``(n, size, size)``.

    :math:`\Sigma = R_\theta\,\mathrm{diag}(\sigma_1^2, \sigma_2^2)\,R_\theta^\top` with :math:`\sigma_1, \sigma_2`
    drawn independently from ``U[sigma]`` and :math:`\theta` from :math:`U[0, \pi)`.

    Parameters
    ----------
    n : int
        Number of kernels.
    size : int, default 15
        Odd side of the support.
    generator : torch.Generator, optional
        CPU generator the shape parameters are drawn from.
    sigma : (float, float), optional
        Range of the two standard deviations in pixels; default ``(0.5, size / 6)`` (the Gaussian then holds
        more than 99 % of its mass inside the support).
    dtype : torch.dtype, default float64
    """
    n, size = check_int("n", n, minimum=1), _check_size(size)
    sigma = _check_range("sigma", sigma if sigma is not None else (0.5, size / 6), 1e-3, float(size))
    s1, s2 = _uniform(n, sigma, generator, dtype), _uniform(n, sigma, generator, dtype)
    theta = math.pi * torch.rand(n, generator=generator, dtype=dtype)
    rows, cols = _grid(size, dtype)
    c, s = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
    u = c * cols + s * rows  # coordinates along the two principal axes
    v = -s * cols + c * rows
    return _normalise(torch.exp(-0.5 * ((u / s1[:, None, None]) ** 2 + (v / s2[:, None, None]) ** 2)))


def motion_kernels(n: int, size: int = 15, *, generator: torch.Generator | None = None,
                   length: tuple[float, float] | None = None, turn: float = 0.3, jerk: float = 0.05,
                   n_points: int | None = None, dtype: torch.dtype = torch.float64) -> Tensor:
    r"""Camera-shake kernels from random-walk trajectories of random length, ``(n, size, size)``.

    A trajectory of ``n_points`` positions starts in a random direction and moves at constant speed; its heading
    is a random walk, turning by :math:`N(0, \mathrm{turn}^2\,\delta)` radians over a step of :math:`\delta`
    pixels of path, plus a :math:`N(0, 1)` jerk at a rate of ``jerk`` per pixel. Its length (arc length in pixels)
    is drawn from ``U[length]``. The trajectory is
    centred on its mean and shrunk if needed to fit the support, then rasterised: each position spreads unit mass
    over its four neighbouring pixels with bilinear weights (exposure time uniform along the path).

    Parameters
    ----------
    n, size, generator, dtype
        As in :func:`gaussian_kernels`.
    length : (float, float), optional
        Range of trajectory lengths in pixels; default ``(size / 3, 1.5 * size)``.
    turn : float, default 0.3
        Standard deviation of the heading change over one pixel of path (radians).
    jerk : float, default 0.05
        Rate (per pixel of path) of sudden heading changes; ``turn = jerk = 0`` gives straight lines.
    n_points : int, optional
        Positions per trajectory; default ``8 * size`` (several per pixel of path).
    """
    n, size = check_int("n", n, minimum=1), _check_size(size)
    length = _check_range("length", length if length is not None else (size / 3, 1.5 * size), 0.0, 10.0 * size)
    for name, value in (("turn", turn), ("jerk", jerk)):
        if isinstance(value, bool) or not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    T = check_int("n_points", n_points if n_points is not None else 8 * size, minimum=2)
    total = _uniform(n, length, generator, dtype)
    step = (total / (T - 1))[:, None]  # pixels of path per step
    heading0 = 2 * math.pi * torch.rand(n, 1, generator=generator, dtype=dtype)
    dtheta = turn * step.sqrt() * torch.randn(n, T - 1, generator=generator, dtype=dtype)
    jerks = (torch.rand(n, T - 1, generator=generator, dtype=dtype) < jerk * step) * torch.randn(
        n, T - 1, generator=generator, dtype=dtype)
    heading = heading0 + torch.cumsum(dtheta + jerks, dim=1)
    steps = torch.stack([torch.sin(heading), torch.cos(heading)], dim=-1) * step[..., None]  # (n, T-1, 2)
    path = torch.cat([torch.zeros(n, 1, 2, dtype=dtype), torch.cumsum(steps, dim=1)], dim=1)  # (row, col)
    path = path - path.mean(dim=1, keepdim=True)
    half = (size - 1) / 2 - 1e-6  # positions must stay inside [0, size - 1] for the bilinear splat
    extent = path.abs().amax(dim=(1, 2)).clamp_min(1e-12)
    path = path * torch.clamp(half / extent, max=1.0)[:, None, None] + (size - 1) / 2
    base = path.floor().clamp(0, size - 2)
    frac = path - base
    r0, c0 = base[..., 0].long(), base[..., 1].long()
    fr, fc = frac[..., 0], frac[..., 1]
    flat = torch.zeros(n, size * size, dtype=dtype)
    for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        flat.scatter_add_(1, (r0 + dr) * size + (c0 + dc), w)
    return _normalise(flat.reshape(n, size, size))


def disk_kernels(n: int, size: int = 15, *, generator: torch.Generator | None = None,
                 radius: tuple[float, float] | None = None, supersample: int = 8,
                 dtype: torch.dtype = torch.float64) -> Tensor:
    r"""Defocus (pill-box) kernels: the area of each pixel inside a centred disk of random radius, ``(n, size, size)``.

    The radius is drawn from ``U[radius]``; each pixel's value is the fraction of its ``supersample**2``
    sub-pixel samples inside the disk (anti-aliasing), then the kernel is normalised.

    Parameters
    ----------
    n, size, generator, dtype
        As in :func:`gaussian_kernels`.
    radius : (float, float), optional
        Range of radii in pixels; default ``(1, (size - 1) / 2)``.
    supersample : int, default 8
        Sub-pixel samples per pixel side.
    """
    n, size = check_int("n", n, minimum=1), _check_size(size)
    radius = _check_range("radius", radius if radius is not None else (1.0, (size - 1) / 2), 0.5, size / 2)
    m = check_int("supersample", supersample, minimum=1)
    r = _uniform(n, radius, generator, dtype)
    sub = (torch.arange(m, dtype=dtype) + 0.5) / m - 0.5
    rows, cols = _grid(size, dtype)
    yy = rows[..., None, None] + sub[:, None]  # (size, size, m, 1): sub-pixel rows
    xx = cols[..., None, None] + sub[None, :]  # (size, size, 1, m): sub-pixel columns
    inside = (yy**2 + xx**2)[None] <= (r**2)[:, None, None, None, None]
    return _normalise(inside.to(dtype).mean(dim=(-2, -1)))


_SAMPLERS = {"gaussian": gaussian_kernels, "motion": motion_kernels, "disk": disk_kernels}


@dataclass
class KernelSource:
    """A random source of blur kernels: one family or a mixture (each kernel picks a family uniformly).

    Parameters
    ----------
    kinds : str or tuple of str
        ``'gaussian'``, ``'motion'``, ``'disk'`` (see :data:`KERNEL_KINDS`), or several of them.
    size : int, default 15
        Odd side of the support.
    options : dict, optional
        Per family, the keyword arguments of its sampler, e.g. ``{'motion': {'length': (5, 20)}}``.
    """

    kinds: str | tuple[str, ...] = ("gaussian", "motion")
    size: int = 15
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        kinds = (self.kinds,) if isinstance(self.kinds, str) else tuple(self.kinds)
        if not kinds or any(k not in KERNEL_KINDS for k in kinds):
            raise ValueError(f"kinds must be among {KERNEL_KINDS}, got {self.kinds!r}")
        if set(self.options) - set(kinds):
            raise ValueError(f"options has entries for kinds not drawn: {sorted(set(self.options) - set(kinds))}")
        self.kinds = kinds
        self.size = _check_size(self.size)
        self.options = {k: dict(v) for k, v in self.options.items()}

    def sample(self, n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64) -> Tensor:
        """``n`` kernels ``(n, size, size)``: non-negative, unit sum."""
        n = check_int("n", n, minimum=1)
        if len(self.kinds) == 1:
            return _SAMPLERS[self.kinds[0]](n, self.size, generator=generator, dtype=dtype,
                                            **self.options.get(self.kinds[0], {}))
        choice = torch.randint(len(self.kinds), (n,), generator=generator)
        out = torch.empty(n, self.size, self.size, dtype=dtype)
        for i, kind in enumerate(self.kinds):
            idx = torch.nonzero(choice == i).squeeze(-1)
            if idx.numel():
                out[idx] = _SAMPLERS[kind](idx.numel(), self.size, generator=generator, dtype=dtype,
                                           **self.options.get(kind, {}))
        return out

    def config(self) -> dict:
        """JSON-serialisable constructor arguments."""
        return {"kinds": list(self.kinds), "size": self.size,
                "options": {k: {o: list(v) if isinstance(v, tuple) else v for o, v in opts.items()}
                            for k, opts in self.options.items()}}


def check_kernel(name: str, k, image_shape: tuple[int, int] | None = None, *, unit_sum: bool = True) -> Tensor:
    """Validate a kernel or a batch of kernels ``(size, size)`` / ``(B, size, size)``; returns it as a tensor.

    Raises ``ValueError`` naming ``name`` unless the kernel is real floating point, finite, square with an odd
    side, non-negative, of unit sum (when ``unit_sum``; to 1e-6 relative) and, when ``image_shape`` is given,
    no larger than the image.
    """
    if not isinstance(k, Tensor):
        try:
            k = torch.as_tensor(k)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"{name} must be a tensor or an array, got {type(k).__name__}") from None
    check_tensor(name, k, ndim=(2, 3))
    if k.is_complex():
        raise ValueError(f"{name} must be real, got dtype {k.dtype}")
    if k.shape[-1] != k.shape[-2]:
        raise ValueError(f"{name} must be square, got shape {tuple(k.shape)}")
    if k.shape[-1] % 2 == 0:
        raise ValueError(f"{name} must have an odd side (its origin is the centre pixel), got shape {tuple(k.shape)}")
    if image_shape is not None and (k.shape[-1] > image_shape[0] or k.shape[-1] > image_shape[1]):
        raise ValueError(f"{name} of side {k.shape[-1]} is larger than the image {tuple(image_shape)}")
    if bool((k < 0).any()):
        raise ValueError(f"{name} must be non-negative")
    if unit_sum:
        sums = k.sum(dim=(-2, -1))
        if not bool(torch.allclose(sums, torch.ones_like(sums), rtol=0.0, atol=1e-6)):
            raise ValueError(f"{name} must sum to 1, got sums {sums.flatten()[:4].tolist()}")
    return k


def kernel_to_image(k: Tensor, shape: tuple[int, int]) -> Tensor:
    """Zero-pad kernels ``(..., s, s)`` to ``(..., H, W)`` with the centre pixel at ``(0, 0)`` (circularly).

    ``torch.fft.fft2`` of the result is the kernel's transfer function for circular convolution.
    """
    s, (H, W) = k.shape[-1], shape
    c = s // 2
    out = k.new_zeros(k.shape[:-2] + (H, W))
    out[..., :s, :s] = k
    return torch.roll(out, shifts=(-c, -c), dims=(-2, -1))


def image_to_kernel(img: Tensor, size: int) -> Tensor:
    """Inverse of :func:`kernel_to_image`: the ``(size, size)`` window around the origin of ``(..., H, W)``."""
    c = size // 2
    return torch.roll(img, shifts=(c, c), dims=(-2, -1))[..., :size, :size]
