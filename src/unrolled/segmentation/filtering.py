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
    *Bilateral kernel*: a down-sampled approximation. The sources :math:`j` are grouped into the ``s x s`` blocks
    :math:`b` of the image (partial blocks at the borders); each block sends its total marginal mass
    :math:`\sum_{j \in b} Q_j` with the features of a down-sampled image (its mean position and mean colour):
    :math:`\sum_j G(f_i, f_j) Q_j \approx \sum_b G(f_i, \bar f_b) \sum_{j\in b} Q_j`. The targets :math:`i`
    stay at full resolution; the cost falls by :math:`s^2`. It is accurate when the spatial width :math:`\alpha` is
    several times ``s`` and the colours vary little within a block; at colour edges a block's mean colour is a
    mixture, which is where its error lies. The error against the exact filter is measured by
    :func:`relative_error` (tests, and ``unrolled reproduce crf-rnn`` on its images). With ``s = 1`` it is exact.
    (The permutohedral lattice of the dense-CRF paper is the asymptotically faster alternative, :math:`O(N)`; it
    is not implemented.)

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
        Block size ``s`` of the down-sampled bilateral filter (``'fast'`` only; 1 is exact).
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


def _block_sum(x: Tensor, stride: int) -> Tensor:
    """Sums over the ``stride x stride`` blocks of ``x (B, C, H, W)`` (partial blocks at the borders): ``(B, C, N_b)``."""
    summed = F.avg_pool2d(x, stride, stride, ceil_mode=True, divisor_override=1)
    return summed.flatten(2)


def block_features(image: Tensor, stride: int) -> tuple[Tensor, Tensor]:
    """Mean positions ``(N_b, 2)`` and mean colours ``(B, N_b, C)`` of the ``stride x stride`` blocks of ``image``."""
    B, C, H, W = image.shape
    pos = pixel_positions(H, W, dtype=image.dtype, device=image.device).T.reshape(1, 2, H, W)
    ones = torch.ones(1, 1, H, W, dtype=image.dtype, device=image.device)
    count = _block_sum(ones, stride)  # (1, 1, N_b)
    mean_pos = (_block_sum(pos, stride) / count)[0].T
    mean_col = (_block_sum(image, stride) / count).transpose(1, 2)
    return mean_pos, mean_col


def spatial_matrix(height: int, width: int, gamma: Tensor, *, dtype: torch.dtype, device) -> Tensor:
    """Dense spatial kernel ``(N, N)``, :math:`G^1(f_i, f_j)` including the diagonal (ones)."""
    pos = pixel_positions(height, width, dtype=dtype, device=device)
    return torch.exp(-_squared_distances(pos, pos) / (2.0 * gamma**2))


def bilateral_matrix(image: Tensor, alpha: Tensor, beta: Tensor, *, stride: int = 1) -> Tensor:
    """Bilateral kernel ``(B, N, N_b)`` from every pixel to the ``stride x stride`` blocks (their mean features).

    ``image`` is ``(B, C, H, W)``; with ``stride=1`` this is the dense ``(B, N, N)`` matrix (ones on the diagonal).
    """
    B, C, H, W = image.shape
    pos = pixel_positions(H, W, dtype=image.dtype, device=image.device)
    colours = image.reshape(B, C, H * W).transpose(1, 2)  # (B, N, C)
    if stride == 1:
        src_pos, src_col = pos, colours
    else:
        src_pos, src_col = block_features(image, stride)
    d_pos = _squared_distances(pos, src_pos)  # (N, N_b), shared by the batch
    d_col = _squared_distances(colours, src_col)  # (B, N, N_b)
    return torch.exp(-d_pos / (2.0 * alpha**2) - d_col / (2.0 * beta**2))


def _apply(matrix: Tensor, Q: Tensor, stride: int) -> Tensor:
    """``sum_b matrix_ib (sum_{j in b} Q_j)`` over the blocks of ``stride`` (pixels when 1), minus the self term."""
    B, L, H, W = Q.shape
    flat = Q.reshape(B, L, H * W)
    sources = flat if stride == 1 else _block_sum(Q, stride)
    if matrix.dim() == 2:
        summed = sources @ matrix.transpose(0, 1)
    else:
        summed = sources @ matrix.transpose(1, 2)
    return (summed - flat).reshape(B, L, H, W)


def gaussian_taps(gamma: Tensor, radius: int) -> Tensor:
    """1-D Gaussian taps :math:`\\exp(-d^2 / 2\\gamma^2)`, ``d = -radius..radius`` (not normalised: ``G(f_i, f_i) = 1``)."""
    d = torch.arange(-radius, radius + 1, dtype=gamma.dtype, device=gamma.device)
    return torch.exp(-d * d / (2.0 * gamma**2))


def separable_spatial(Q: Tensor, gamma: Tensor, truncate: float = 4.0) -> Tensor:
    """Spatial message passing by two 1-D convolutions, :math:`\\sum_{j \\ne i} G^1 Q_j` (taps cut at ``truncate * gamma``)."""
    B, L, H, W = Q.shape
    radius = int(min(math.ceil(truncate * float(gamma.detach())), max(H, W) - 1))
    taps = gaussian_taps(gamma, radius)
    x = Q.reshape(B * L, 1, H, W)
    x = F.conv2d(x, taps.reshape(1, 1, -1, 1), padding=(radius, 0))
    x = F.conv2d(x, taps.reshape(1, 1, 1, -1), padding=(0, radius))
    return x.reshape(B, L, H, W) - Q


def kernel_cache(image: Tensor, widths: Tensor, filtering: Filtering) -> dict[str, Tensor]:
    """The kernel matrices message passing reuses at every iteration when the widths are fixed.

    ``widths = (gamma, alpha, beta)``. Returns ``{'bilateral': (B, N, N_b)}`` and, for exact filtering,
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
    bilateral = _apply(bil, Q, stride)
    if fast:
        spatial = separable_spatial(Q, gamma, filtering.truncate)
    else:
        sp = cache.get("spatial")
        if sp is None:
            sp = spatial_matrix(H, W, gamma, dtype=Q.dtype, device=Q.device)
        spatial = _apply(sp, Q, 1)
    return spatial, bilateral


def relative_error(approx: Tensor, exact: Tensor) -> float:
    """``||approx - exact||_F / ||exact||_F`` over the whole batch."""
    return float(torch.linalg.vector_norm(approx - exact) / torch.linalg.vector_norm(exact).clamp_min(1e-300))
