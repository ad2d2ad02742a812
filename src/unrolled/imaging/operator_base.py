"""The operator interface of :mod:`unrolled.imaging.operators`: :class:`LinearOperator`, :class:`FourierDiagonal`
and the FFT helpers (read that module's docstring for shapes, conventions and ``solve_normal``)."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

__all__ = ["LinearOperator", "FourierDiagonal", "kernel_spectrum", "weighted_gain", "complex_dtype", "real_dtype",
           "Shape"]

Shape = tuple[int, int]


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """The complex dtype of a real (or complex) dtype: float32 -> complex64, float64 -> complex128."""
    return {torch.float32: torch.complex64, torch.float64: torch.complex128}.get(dtype, dtype)


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    """The real dtype of a complex (or real) dtype."""
    return {torch.complex64: torch.float32, torch.complex128: torch.float64}.get(dtype, dtype)


def _image_shape(name: str, x: Tensor, shape: Shape | None = None) -> Shape:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"{name} must be an image (..., H, W), got shape {tuple(x.shape)}")
    hw = (int(x.shape[-2]), int(x.shape[-1]))
    if shape is not None and hw != tuple(shape):
        raise ValueError(f"{name} must have image size {tuple(shape)}, got shape {tuple(x.shape)}")
    return hw


def _per_image(t: Tensor, n_core: int, ndim: int, name: str, shape: tuple[int, ...]) -> Tensor:
    """View ``t`` so its optional leading problem-batch dimension lines up with dim 0 of a ``ndim``-dim tensor.

    ``t`` is ``(*core)`` (``n_core`` dims, broadcast from the right as usual) or ``(B, *core)``: one entry per
    image of a batch ``x (B, ..., H, W)``. The batch is moved to dim 0 by inserting singleton dimensions after
    it, so it is never broadcast against channels or other inner dimensions. ``B`` must equal ``shape[0]``
    (``name``'s batch) or be 1; ``name`` must have a batch dimension at all.
    """
    if t.dim() <= n_core:
        return t
    if t.dim() != n_core + 1:
        raise ValueError(f"per-image values must have one batch dimension, got shape {tuple(t.shape)}")
    B = int(t.shape[0])
    if ndim < t.dim() or (B != 1 and int(shape[0]) != B):
        raise ValueError(f"{name} must be a batch (B, ..., H, W) with B = {B} (one per kernel / weight), "
                         f"got shape {tuple(shape)}")
    return t.reshape(B, *([1] * (ndim - t.dim())), *t.shape[1:])


def kernel_spectrum(kernel: Tensor, shape: Shape) -> Tensor:
    """Transfer function ``(..., H, W)`` of the circular convolution with ``kernel (..., h, w)``.

    The kernel is zero-padded to ``shape`` with its centre ``(h // 2, w // 2)`` moved to ``[0, 0]``, then
    transformed by the (unnormalised) 2-D FFT, so ``ifft2(fft2(x) * kernel_spectrum(k, x.shape[-2:]))`` is
    the convolution described in the module docstring. Differentiable in ``kernel``.
    """
    h, w = kernel.shape[-2:]
    H, W = shape
    if h > H or w > W:
        raise ValueError(f"kernel of size {(h, w)} is larger than the image {(H, W)}")
    padded = kernel.new_zeros(*kernel.shape[:-2], H, W)
    padded[..., :h, :w] = kernel
    padded = torch.roll(padded, shifts=(-(h // 2), -(w // 2)), dims=(-2, -1))
    return torch.fft.fft2(padded)


def weighted_gain(power: Tensor, weights=None) -> Tensor:
    """``sum_c w_c power_c``: the Fourier diagonal ``(H, W)`` or ``(B, H, W)`` of ``A^H diag(w) A``.

    ``power`` is ``(C, H, W)`` or ``(B, C, H, W)`` (per-image kernels); ``weights`` is ``None``, ``()``,
    ``(C,)`` (or ``(1,)``) or ``(B, C)`` / ``(B, 1)`` (per problem). A batch, if any, is the first dimension of
    the result, to be aligned with dim 0 of the images (:meth:`LinearOperator.solve_normal`).
    """
    if weights is None:
        return power.sum(-3)
    w = torch.as_tensor(weights, dtype=power.dtype, device=power.device)
    if w.dim() == 0:
        return w * power.sum(-3)
    C = int(power.shape[-3])
    if w.dim() > 2 or int(w.shape[-1]) not in (1, C):
        raise ValueError(f"weights must be a scalar, (C,), (B, C) or (B, 1) with C = {C}, got shape {tuple(w.shape)}")
    if w.dim() == 2 and power.dim() == 4 and 1 not in (int(w.shape[0]), int(power.shape[0])) \
            and int(w.shape[0]) != int(power.shape[0]):
        raise ValueError(f"weights have {int(w.shape[0])} problems but the kernels {int(power.shape[0])}")
    return (w[..., :, None, None] * power).sum(-3)


class LinearOperator:
    """A linear map between image spaces, applied without forming its matrix (see the module docstring).

    Subclasses implement :meth:`forward` and :meth:`adjoint`; Fourier-diagonal ones also :meth:`gain`.

    Attributes
    ----------
    normal_is_real : bool
        ``A^H A`` maps real images to real images (so :meth:`solve_normal` of a real right-hand side is real).
    shape_in : tuple or None
        The input image size when the operator fixes it (a mask, a matrix), else ``None``.
    """

    normal_is_real: bool = True
    shape_in: tuple[int, ...] | None = None

    def forward(self, x: Tensor) -> Tensor:
        """``A x``."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward (a LinearOperator subclass must)")

    def adjoint(self, y: Tensor) -> Tensor:
        """``A^H y``."""
        raise NotImplementedError(f"{type(self).__name__} does not define adjoint (a LinearOperator subclass must)")

    def __call__(self, x: Tensor) -> Tensor:
        return self.forward(x)

    def normal(self, x: Tensor) -> Tensor:
        """``A^H A x``."""
        return self.adjoint(self.forward(x))

    def gain(self, shape: Shape, *, dtype: torch.dtype = torch.float64, device=None, weights=None) -> Tensor:
        """The Fourier diagonal of ``A^H A`` (real, ``>= 0``, ``(..., H, W)``), for Fourier-diagonal operators.

        ``weights`` (``()``, ``(C,)`` or ``(B, C)``) weight the channels of a multi-channel operator:
        the diagonal of ``A^H diag(weights) A``.
        """
        raise NotImplementedError(f"{type(self).__name__} is not diagonal in Fourier space")

    def solve_normal(self, rhs: Tensor, terms: Sequence[tuple[object, "LinearOperator"]] = (), *,
                     shift: float = 0.0) -> Tensor:
        r"""``(A^H A + sum_i rho_i D_i^H D_i + shift I)^{-1} rhs`` (see the module docstring).

        Parameters
        ----------
        rhs : Tensor
            ``(..., H, W)`` right-hand side, real or complex.
        terms : sequence of (rho, operator)
            The weights :math:`\rho_i` (float or tensor) and Fourier-diagonal operators :math:`D_i`.
        shift : float
            Multiple of the identity added to the system.
        """
        shape = _image_shape("rhs", rhs, self.shape_in)
        rdtype = real_dtype(rhs.dtype)
        denom = self.gain(shape, dtype=rdtype, device=rhs.device)
        for rho, op in terms:
            denom = denom + op.gain(shape, dtype=rdtype, device=rhs.device, weights=rho)
        if shift:
            denom = denom + shift
        denom = _per_image(denom, 2, rhs.dim(), "rhs", tuple(rhs.shape))
        out = torch.fft.ifft2(torch.fft.fft2(rhs) / denom)
        real = not rhs.is_complex() and self.normal_is_real and all(op.normal_is_real for _, op in terms)
        return out.real if real else out

    # ------------------------------------------------------------ dense forms (tests, small sizes)
    def _check_shape(self, shape) -> tuple[int, ...]:
        shape = self.shape_in if shape is None else tuple(int(s) for s in shape)
        if shape is None:
            raise ValueError(f"{type(self).__name__} needs the image shape (H, W)")
        return shape

    def dense(self, shape: Shape | None = None, dtype: torch.dtype = torch.complex128, device=None) -> Tensor:
        """The matrix of the operator on flattened ``shape`` inputs: ``(numel(out), numel(in))``."""
        shape = self._check_shape(shape)
        n = math.prod(shape)
        basis = torch.eye(n, dtype=dtype, device=device).reshape(n, *shape)
        return self.forward(basis).reshape(n, -1).to(dtype).T

    def norm(self, shape: Shape | None = None, *, n_iter: int = 1000, tol: float = 1e-12,
             generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64) -> float:
        """Spectral norm ``||A||_2`` by power iteration on ``A^H A`` (from a random start drawn on the CPU)."""
        shape = self._check_shape(shape)
        x = torch.randn(*shape, generator=generator, dtype=real_dtype(dtype)).to(dtype)
        x = x / torch.linalg.vector_norm(x)
        value = 0.0
        for _ in range(n_iter):
            z = self.normal(x)
            new = float(torch.linalg.vector_norm(z))
            if new == 0.0:
                return 0.0
            x = z / new
            if abs(new - value) <= tol * new:
                value = new
                break
            value = new
        return math.sqrt(value)


class FourierDiagonal(LinearOperator):
    """An operator ``x -> ifft2(s_c * fft2(x))`` for ``c = 1..C``: convolutions, finite differences, filters.

    Subclasses implement ``_spectra`` (what :meth:`spectra` returns and caches); ``channels`` is ``None`` for one
    output image ``(..., H, W)`` or
    ``C`` for ``(..., C, H, W)``.
    """

    channels: int | None = None

    def spectra(self, shape: Shape, dtype: torch.dtype, device) -> Tensor:
        """Transfer functions ``(*kernel_batch, C, H, W)`` (complex; ``C = 1`` when ``channels`` is None).

        Cached per (shape, dtype, device) for fixed filters (finite differences, identity, a filter bank that
        does not require grad; never for :class:`Blur`, whose kernel changes in blind deblurring), so the
        filters of a cached operator must not be modified in place.
        """
        if not self._cacheable():
            return self._spectra(shape, dtype, device)
        cache = self.__dict__.setdefault("_spectra_cache", {})
        key = (tuple(shape), dtype, str(device))
        if key not in cache:
            cache[key] = self._spectra(shape, dtype, device)
        return cache[key]

    def _cacheable(self) -> bool:
        return True

    def _spectra(self, shape: Shape, dtype: torch.dtype, device) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not define _spectra (a FourierDiagonal subclass must)")

    def forward(self, x: Tensor) -> Tensor:
        shape = _image_shape("x", x)
        s = self.spectra(shape, complex_dtype(x.dtype), x.device)
        xf = torch.fft.fft2(x).unsqueeze(-3)
        out = torch.fft.ifft2(xf * _per_image(s, 3, xf.dim(), "x", tuple(x.shape)))
        out = out.real if not x.is_complex() and self.normal_is_real else out
        return out.squeeze(-3) if self.channels is None else out

    def adjoint(self, y: Tensor) -> Tensor:
        if self.channels is None:
            shape = _image_shape("y", y)
            y = y.unsqueeze(-3)
        else:
            if y.dim() < 3 or y.shape[-3] != self.channels:
                raise ValueError(f"y must be (..., {self.channels}, H, W) for {type(self).__name__}, "
                                 f"got shape {tuple(y.shape)}")
            shape = _image_shape("y", y)
        s = self.spectra(shape, complex_dtype(y.dtype), y.device)
        yf = torch.fft.fft2(y)
        out = torch.fft.ifft2((yf * _per_image(s, 3, yf.dim(), "y", tuple(y.shape)).conj()).sum(-3))
        return out.real if not y.is_complex() and self.normal_is_real else out

    def gain(self, shape: Shape, *, dtype: torch.dtype = torch.float64, device=None, weights=None) -> Tensor:
        return weighted_gain(self.spectra(shape, complex_dtype(dtype), device).abs().square(), weights)

    def norm(self, shape: Shape | None = None, **kwargs) -> float:
        """Exact spectral norm ``sqrt(max gain)`` (``shape`` needed unless the operator fixes it)."""
        shape = self._check_shape(shape)
        return math.sqrt(float(self.gain(shape).max()))
