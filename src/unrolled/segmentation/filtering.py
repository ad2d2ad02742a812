r"""Message passing of the fully connected CRF: Gaussian filtering of the marginals (review, eq. (19)).

Two kernels, as in the CRF-RNN of Zheng et al. (the review's box "Unrolling CRF into RNN") and the dense CRF of
Krähenbühl and Koltun it unrolls, on pixel positions :math:`p` (in pixels) and colours :math:`I`:

.. math::
    G^{1}(f_i, f_j) = \exp\Big(-\frac{\|p_i - p_j\|^2}{2\gamma^2}\Big) \quad\text{(spatial)},\qquad
    G^{2}(f_i, f_j) = \exp\Big(-\frac{\|p_i - p_j\|^2}{2\alpha^2} - \frac{\|I_i - I_j\|^2}{2\beta^2}\Big)
    \quad\text{(bilateral)}.

Message passing (19) is :math:`\tilde Q^m_i(l) = \sum_{j \ne i} G^m(f_i, f_j) Q_j(l)`. Since
:math:`G^m(f_i, f_i) = 1`, it is computed as the full sum minus :math:`Q_i(l)`.

Two ways to filter
------------------
``'exact'``
    Dense kernel matrices, :math:`O(N^2)` per label for :math:`N` pixels (small images).
``'fast'``
    *Spatial kernel*: separable Gaussian (a 1-D convolution along rows, then columns, zero padded, so the sum runs
    over the pixels of the image exactly like the dense one); the taps are cut at ``truncate * gamma`` pixels, and
    when that radius covers the image the result equals the dense one to rounding.
    *Bilateral kernel*: a down-sampled approximation. The sum over the sources :math:`j` is replaced by the
    quadrature :math:`\sum_j G(f_i,f_j)Q_j \approx s^2 \sum_{j \in \Lambda_s} G(f_i, f_j) Q_j` over the pixels
    :math:`\Lambda_s` of the grid of stride ``s`` (every ``s``-th row and column), at full resolution for the
    targets :math:`i`, so the colours are never averaged across an edge; the cost falls by :math:`s^2`. It is
    accurate when the spatial width :math:`\alpha` is several times ``s`` (the kernel varies slowly over one grid
    cell away from colour edges); its error against the exact filter is measured by :func:`relative_error` and
    reported by ``unrolled reproduce crf-rnn``. (The permutohedral lattice of the dense-CRF paper is the
    asymptotically faster alternative, :math:`O(N)`; it is not implemented.)

Every function is differentiable in the widths, so a net can learn them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

METHODS = ("exact", "fast")


@dataclass(frozen=True)
class Filtering:
    """How message passing is computed.

    Attributes
    ----------
    method : {'exact', 'fast'}
        Dense kernel matrices, or separable spatial + down-sampled bilateral filtering (module docstring).
    stride : int
        Source grid stride ``s`` of the down-sampled bilateral filter (``'fast'`` only; 1 is exact).
    truncate : float
        Radius of the separable spatial filter in widths ``gamma`` (``'fast'`` only).
    """

    method: str = "exact"
    stride: int = 2
    truncate: float = 4.0

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"filtering must be one of {METHODS}, got {self.method!r}")
        if isinstance(self.stride, bool) or not isinstance(self.stride, int) or self.stride < 1:
            raise ValueError(f"stride must be an int >= 1, got {self.stride!r}")
        if not (isinstance(self.truncate, (int, float)) and math.isfinite(self.truncate) and self.truncate > 0):
            raise ValueError(f"truncate must be a finite number > 0, got {self.truncate!r}")


def pixel_positions(height: int, width: int, *, dtype: torch.dtype, device) -> Tensor:
    """``(N, 2)`` (row, column) positions of the pixels in row-major order, ``N = height * width``."""
    rows = torch.arange(height, dtype=dtype, device=device)
    cols = torch.arange(width, dtype=dtype, device=device)
    return torch.cartesian_prod(rows, cols)


def _squared_distances(a: Tensor, b: Tensor) -> Tensor:
    """``|a_i - b_j|^2`` for batches ``a (..., N, d)``, ``b (..., M, d)`` (expanded form, clamped at 0)."""
    d2 = (a * a).sum(-1)[..., :, None] + (b * b).sum(-1)[..., None, :] - 2.0 * a @ b.transpose(-1, -2)
    return d2.clamp_min(0.0)


def _source_index(height: int, width: int, stride: int, device) -> Tensor:
    """Row-major indices of the pixels on the grid of stride ``stride``."""
    rows = torch.arange(0, height, stride, device=device)
    cols = torch.arange(0, width, stride, device=device)
    return (rows[:, None] * width + cols[None, :]).reshape(-1)


def spatial_matrix(height: int, width: int, gamma: Tensor, *, dtype: torch.dtype, device) -> Tensor:
    """Dense spatial kernel ``(N, N)``, :math:`G^1(f_i, f_j)` including the diagonal (ones)."""
    pos = pixel_positions(height, width, dtype=dtype, device=device)
    return torch.exp(-_squared_distances(pos, pos) / (2.0 * gamma**2))


def bilateral_matrix(image: Tensor, alpha: Tensor, beta: Tensor, *, stride: int = 1) -> Tensor:
    """Bilateral kernel ``(B, N, N_s)`` from every pixel to the sources on the stride-``stride`` grid.

    ``image`` is ``(B, C, H, W)``; with ``stride=1`` this is the dense ``(B, N, N)`` matrix (ones on the diagonal).
    """
    B, C, H, W = image.shape
    pos = pixel_positions(H, W, dtype=image.dtype, device=image.device)
    src = _source_index(H, W, stride, image.device)
    colours = image.reshape(B, C, H * W).transpose(1, 2)  # (B, N, C)
    d_pos = _squared_distances(pos, pos[src])  # (N, N_s), shared by the batch
    d_col = _squared_distances(colours, colours[:, src])  # (B, N, N_s)
    return torch.exp(-d_pos / (2.0 * alpha**2) - d_col / (2.0 * beta**2))


def _apply(matrix: Tensor, Q: Tensor, src: Tensor | None, scale: float) -> Tensor:
    """``scale * sum_j matrix_ij Q_j`` over the sources ``src`` (all pixels when ``None``), minus the self term."""
    B, L, H, W = Q.shape
    flat = Q.reshape(B, L, H * W)
    sources = flat if src is None else flat[..., src]
    if matrix.dim() == 2:
        summed = sources @ matrix.transpose(0, 1)
    else:
        summed = sources @ matrix.transpose(1, 2)
    return (scale * summed - flat).reshape(B, L, H, W)


def gaussian_taps(gamma: Tensor, radius: int) -> Tensor:
    """1-D Gaussian taps :math:`\\exp(-d^2 / 2\\gamma^2)`, ``d = -radius..radius`` (not normalised: ``G(f_i, f_i) = 1``)."""
    d = torch.arange(-radius, radius + 1, dtype=gamma.dtype, device=gamma.device)
    return torch.exp(-d * d / (2.0 * gamma**2))


def separable_spatial(Q: Tensor, gamma: Tensor, truncate: float = 4.0) -> Tensor:
    """Spatial message passing by two 1-D convolutions, :math:`\\sum_{j \\ne i} G^1 Q_j` (taps cut at ``truncate * gamma``)."""
    B, L, H, W = Q.shape
    radius = int(min(math.ceil(truncate * float(gamma)), max(H, W) - 1))
    taps = gaussian_taps(gamma, radius)
    x = Q.reshape(B * L, 1, H, W)
    x = F.conv2d(x, taps.reshape(1, 1, -1, 1), padding=(radius, 0))
    x = F.conv2d(x, taps.reshape(1, 1, 1, -1), padding=(0, radius))
    return x.reshape(B, L, H, W) - Q


def kernel_cache(image: Tensor, widths: Tensor, filtering: Filtering) -> dict[str, Tensor]:
    """The kernel matrices message passing reuses at every iteration when the widths are fixed.

    ``widths = (gamma, alpha, beta)``. Returns ``{'bilateral': (B, N, N_s)}`` and, for exact filtering,
    ``'spatial': (N, N)``.
    """
    gamma, alpha, beta = widths.unbind(-1)
    _, _, H, W = image.shape
    stride = filtering.stride if filtering.method == "fast" else 1
    cache = {"bilateral": bilateral_matrix(image, alpha, beta, stride=stride)}
    if filtering.method == "exact":
        cache["spatial"] = spatial_matrix(H, W, gamma, dtype=image.dtype, device=image.device)
    return cache


def messages(Q: Tensor, image: Tensor, widths: Tensor, filtering: Filtering,
             cache: dict[str, Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """Message passing (19) for both kernels: ``(spatial, bilateral)``, each ``(B, L, H, W)``.

    Parameters
    ----------
    Q : Tensor
        ``(B, L, H, W)`` marginals.
    image : Tensor
        ``(B, C, H, W)`` colours (the bilateral features).
    widths : Tensor
        ``(3,)`` positive ``(gamma, alpha, beta)``: spatial width, bilateral position and colour widths.
    filtering : Filtering
    cache : dict, optional
        Matrices from :func:`kernel_cache` for these widths (recomputed from ``widths`` when absent).
    """
    cache = {} if cache is None else cache
    gamma, alpha, beta = widths.unbind(-1)
    _, _, H, W = Q.shape
    fast = filtering.method == "fast"
    stride = filtering.stride if fast else 1
    bil = cache.get("bilateral")
    if bil is None:
        bil = bilateral_matrix(image, alpha, beta, stride=stride)
    src = None if stride == 1 else _source_index(H, W, stride, Q.device)
    bilateral = _apply(bil, Q, src, float(stride * stride))
    if fast:
        spatial = separable_spatial(Q, gamma, filtering.truncate)
    else:
        sp = cache.get("spatial")
        if sp is None:
            sp = spatial_matrix(H, W, gamma, dtype=Q.dtype, device=Q.device)
        spatial = _apply(sp, Q, None, 1.0)
    return spatial, bilateral


def relative_error(approx: Tensor, exact: Tensor) -> float:
    """``||approx - exact||_F / ||exact||_F`` over the whole batch."""
    return float(torch.linalg.vector_norm(approx - exact) / torch.linalg.vector_norm(exact).clamp_min(1e-300))
