r"""Matrix-free linear operators on batches of images (the review's :math:`A` and :math:`D_i`).

Shapes and types
----------------
Images are ``(..., H, W)`` tensors: any leading (batch) dimensions, real or complex. Every operator acts on
the last two dimensions and broadcasts over the others.

.. list-table::
   :header-rows: 1

   * - operator
     - ``forward(x)`` for x ``(..., H, W)``
     - ``adjoint(y)``
     - A^H A diagonal in FFT
   * - :class:`Identity`
     - ``(..., H, W)``
     - ``(..., H, W)``
     - yes (gain 1)
   * - :class:`Blur`
     - ``(..., H, W)`` circular conv
     - ``(..., H, W)`` (correlation)
     - yes (``|k^|^2``)
   * - :class:`FiniteDifference`
     - ``(..., 2, H, W)``: D_x, D_y
     - ``(..., 2, H, W) -> (..., H, W)``
     - yes
   * - :class:`Filters`
     - ``(..., C, H, W)``
     - ``(..., C, H, W) -> (..., H, W)``
     - yes
   * - :class:`SubsampledFourier`
     - ``(..., H, W)`` complex k-space, zero off the mask
     - ``(..., H, W)`` complex
     - yes (the mask)
   * - :class:`MatrixOperator`
     - ``(..., m)`` (x flattened)
     - ``(..., m) -> (..., *in_shape)``
     - no (dense solve)

* Convolutions are **circular** with the kernel's centre at index ``(h // 2, w // 2)`` (``'same'`` size), so
  ``Blur(k).forward(x)[i, j] = sum_{a, b} k[a, b] x[i - a + h//2, j - b + w//2]`` (indices mod ``H, W``).
  Kernels are ``(h, w)`` (shared by every image) or ``(B, h, w)`` (one per image: ``x`` must then be a batch
  ``(B, ..., H, W)`` and kernel ``b`` blurs every channel of image ``x[b]``; ``B = 1`` is shared); filter banks
  are ``(C, h, w)``; ``h <= H`` and ``w <= W``. Per-problem weights ``rho`` ``(B, C)`` in :meth:`solve_normal`
  refer to dim 0 of ``rhs`` in the same way.
* ``FiniteDifference``: ``(D_x x)[i, j] = x[i, j+1] - x[i, j]`` (along the width), ``(D_y x)[i, j] =
  x[i+1, j] - x[i, j]`` (along the height), both circular, stacked as channel 0 and 1.
* ``SubsampledFourier(mask)``: ``y = M * F x`` with ``F`` the **orthonormal** 2-D FFT (``norm='ortho'``) and
  ``M`` a ``(H, W)`` 0/1 mask in FFT layout (DC at ``[0, 0]``; use :func:`torch.fft.fftshift` to display it).
  Measurements are stored on the full grid, zero where not sampled; the output is always complex.
* Real input and real kernels give real output; complex input gives complex output. Inner products are
  :math:`\langle u, v\rangle = \sum \bar u v`, so ``adjoint`` is the conjugate transpose.

Solving with the normal operator
--------------------------------
``op.solve_normal(rhs, terms=((rho_1, D_1), (rho_2, D_2), ...), shift=0.0)`` returns

.. math:: \Big(A^H A + \sum_i \rho_i D_i^H D_i + \mathrm{shift}\, I\Big)^{-1}\, \mathrm{rhs},

the x-step of ADMM (review, eq. 15) and of half-quadratic splitting. Where ``A`` and all ``D_i`` are diagonal
in Fourier space (every operator above except :class:`MatrixOperator`) this is one FFT, a division by the sum
of their :meth:`~LinearOperator.gain` and one inverse FFT (exact, differentiable in the kernels and ``rho``).
``rho_i`` is a float or a tensor: ``()``, ``(C,)`` (one weight per channel of a multi-channel ``D_i``), or
``(B, C)`` / ``(B, 1)`` (per problem). The system must be invertible (e.g. finite differences vanish at DC,
so ``A`` must see the DC coefficient, or ``shift > 0``). ``rhs`` is ``(..., H, W)``; the result is real when
``rhs`` is real and every operator's normal map is real (:attr:`~LinearOperator.normal_is_real`).

``op.norm()`` is the spectral norm (largest singular value) by power iteration on ``A^H A``; Fourier-diagonal
operators override it with the exact ``sqrt(max gain)``. ``op.dense(shape)`` forms the matrix (tests only).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from unrolled.imaging.operator_base import (FourierDiagonal, LinearOperator, Shape, _image_shape, complex_dtype,
                                            kernel_spectrum, real_dtype, weighted_gain)

__all__ = ["LinearOperator", "FourierDiagonal", "Identity", "Blur", "Filters", "FiniteDifference",
           "SubsampledFourier", "MatrixOperator", "kernel_spectrum", "complex_dtype", "real_dtype"]

class Identity(FourierDiagonal):
    """``I x = x``."""

    def _spectra(self, shape: Shape, dtype: torch.dtype, device) -> Tensor:
        return torch.ones(1, *shape, dtype=dtype, device=device)

    def forward(self, x: Tensor) -> Tensor:
        _image_shape("x", x)
        return x

    def adjoint(self, y: Tensor) -> Tensor:
        _image_shape("y", y)
        return y


def _check_kernel(name: str, kernel, ndim: tuple[int, ...]) -> Tensor:
    kernel = torch.as_tensor(kernel)
    if not kernel.is_floating_point() and not kernel.is_complex():
        raise ValueError(f"{name} must be floating point, got {kernel.dtype}")
    if kernel.dim() not in ndim:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndim))} dimensions, got shape {tuple(kernel.shape)}")
    if kernel.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(kernel.shape)})")
    if not kernel.requires_grad and not bool(torch.isfinite(kernel).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return kernel


class _Convolutions(FourierDiagonal):
    """Shared part of :class:`Blur` and :class:`Filters`: circular convolution with stored kernels."""

    _kernels: Tensor

    def _cacheable(self) -> bool:
        return not self._kernels.requires_grad

    def _kernel_spectra(self, kernels: Tensor, shape: Shape, dtype: torch.dtype) -> Tensor:
        h, w = kernels.shape[-2:]
        if h > shape[0] or w > shape[1]:
            raise ValueError(f"kernel of size {(h, w)} is larger than the image {tuple(shape)}")
        return kernel_spectrum(kernels.to(dtype), shape)


class Blur(_Convolutions):
    """Circular convolution ``k * x`` with a blur kernel (computed with :mod:`torch.fft`).

    Parameters
    ----------
    kernel : Tensor
        ``(h, w)`` shared by every image, or ``(B, h, w)`` one per image: ``x`` is then ``(B, ..., H, W)`` and
        kernel ``b`` blurs every channel of ``x[b]`` (``B = 1``: shared).
        Real or complex; may require grad (the operator is differentiable in it).
    """

    def __init__(self, kernel):
        self.kernel = self._kernels = _check_kernel("kernel", kernel, (2, 3))
        self.normal_is_real = not self.kernel.is_complex()

    def _cacheable(self) -> bool:
        return False

    def _spectra(self, shape: Shape, dtype: torch.dtype, device) -> Tensor:
        return self._kernel_spectra(self.kernel.to(device), shape, dtype).unsqueeze(-3)


class Filters(_Convolutions):
    """A bank of ``C`` 2-D filters as circular convolutions: ``x (..., H, W) -> (..., C, H, W)``.

    Parameters
    ----------
    filters : Tensor
        ``(C, h, w)``, fixed or learnable (a tensor that requires grad; gradients flow through every method).
    """

    def __init__(self, filters):
        self.filters = self._kernels = _check_kernel("filters", filters, (3,))
        self.channels = int(self.filters.shape[0])
        self.normal_is_real = not self.filters.is_complex()

    def _spectra(self, shape: Shape, dtype: torch.dtype, device) -> Tensor:
        return self._kernel_spectra(self.filters.to(device), shape, dtype)


class FiniteDifference(FourierDiagonal):
    """Circular forward differences ``(D_x x, D_y x)``: ``x (..., H, W) -> (..., 2, H, W)``.

    ``D_x`` differences along the width, ``D_y`` along the height (module docstring); applied with
    :func:`torch.roll` (exact), with :meth:`spectra` for :meth:`solve_normal`. :meth:`kernels` gives the
    same operator as a ``(2, 3, 3)`` filter bank for :class:`Filters`.
    """

    channels = 2

    @staticmethod
    def kernels(dtype: torch.dtype = torch.float64, device=None) -> Tensor:
        """``(2, 3, 3)`` kernels with ``Filters(kernels) == FiniteDifference()`` (centre at ``[1, 1]``)."""
        k = torch.zeros(2, 3, 3, dtype=dtype, device=device)
        k[0, 1, 0], k[0, 1, 1] = 1.0, -1.0  # x[i, j+1] - x[i, j]
        k[1, 0, 1], k[1, 1, 1] = 1.0, -1.0  # x[i+1, j] - x[i, j]
        return k

    def forward(self, x: Tensor) -> Tensor:
        _image_shape("x", x)
        return torch.stack([torch.roll(x, -1, dims=-1) - x, torch.roll(x, -1, dims=-2) - x], dim=-3)

    def adjoint(self, y: Tensor) -> Tensor:
        if y.dim() < 3 or y.shape[-3] != 2:
            raise ValueError(f"y must be (..., 2, H, W) for FiniteDifference, got shape {tuple(y.shape)}")
        gx, gy = y[..., 0, :, :], y[..., 1, :, :]
        return torch.roll(gx, 1, dims=-1) - gx + torch.roll(gy, 1, dims=-2) - gy

    def _spectra(self, shape: Shape, dtype: torch.dtype, device) -> Tensor:
        return kernel_spectrum(self.kernels(real_dtype(dtype), device).to(dtype), shape)


class SubsampledFourier(LinearOperator):
    """Compressive MRI: orthonormal 2-D FFT followed by a k-space mask, ``y = M * F x``.

    Parameters
    ----------
    mask : Tensor
        ``(H, W)`` boolean or 0/1, in FFT layout (DC at ``[0, 0]``); see :mod:`unrolled.imaging.masks`.
    """

    normal_is_real = False

    def __init__(self, mask):
        mask = torch.as_tensor(mask)
        if mask.dim() != 2 or mask.numel() == 0:
            raise ValueError(f"mask must be a non-empty (H, W) array, got shape {tuple(mask.shape)}")
        if mask.dtype != torch.bool:
            if mask.is_complex() or not bool(((mask == 0) | (mask == 1)).all()):
                raise ValueError("mask must hold only 0 and 1 (or booleans)")
            mask = mask != 0
        self.mask = mask
        self.shape_in = (int(mask.shape[0]), int(mask.shape[1]))

    @property
    def sampling_ratio(self) -> float:
        """Fraction of k-space sampled."""
        return float(self.mask.float().mean())

    def _mask(self, x: Tensor) -> Tensor:
        return self.mask.to(device=x.device, dtype=real_dtype(x.dtype))

    def forward(self, x: Tensor) -> Tensor:
        _image_shape("x", x, self.shape_in)
        return self._mask(x) * torch.fft.fft2(x, norm="ortho")

    def adjoint(self, y: Tensor) -> Tensor:
        _image_shape("y", y, self.shape_in)
        return torch.fft.ifft2(self._mask(y) * y, norm="ortho")

    def normal(self, x: Tensor) -> Tensor:
        _image_shape("x", x, self.shape_in)
        return torch.fft.ifft2(self._mask(x) * torch.fft.fft2(x, norm="ortho"), norm="ortho")

    def gain(self, shape: Shape, *, dtype: torch.dtype = torch.float64, device=None, weights=None) -> Tensor:
        if tuple(shape) != self.shape_in:
            raise ValueError(f"shape {tuple(shape)} does not match the mask {self.shape_in}")
        return weighted_gain(self.mask.to(device=device, dtype=dtype).unsqueeze(0), weights)

    def norm(self, shape: Shape | None = None, **kwargs) -> float:
        """Exactly 1 when anything is sampled (orthonormal FFT), else 0."""
        return 1.0 if bool(self.mask.any()) else 0.0


class MatrixOperator(LinearOperator):
    """An explicit matrix acting on flattened images: ``x (..., *in_shape) -> A @ vec(x)``, ``(..., m)``.

    Parameters
    ----------
    A : Tensor
        ``(m, n)`` with ``n = prod(in_shape)``, real or complex.
    in_shape : tuple of int
        The input's shape (e.g. ``(H, W)``); default ``(n,)``.
    """

    def __init__(self, A, in_shape: Sequence[int] | None = None):
        A = _check_kernel("A", A, (2,))
        self.A = A
        self.shape_in = (int(A.shape[1]),) if in_shape is None else tuple(int(s) for s in in_shape)
        if math.prod(self.shape_in) != A.shape[1]:
            raise ValueError(f"in_shape {self.shape_in} has {math.prod(self.shape_in)} entries but A has "
                             f"{A.shape[1]} columns")
        self.normal_is_real = not A.is_complex()

    def _matrix(self, t: Tensor) -> Tensor:
        dtype = t.dtype if (t.is_complex() or not self.A.is_complex()) else complex_dtype(t.dtype)
        return self.A.to(device=t.device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        d = len(self.shape_in)
        if tuple(x.shape[x.dim() - d:]) != self.shape_in:
            raise ValueError(f"x must end with shape {self.shape_in}, got {tuple(x.shape)}")
        A = self._matrix(x)
        return x.to(A.dtype).reshape(*x.shape[:x.dim() - d], -1) @ A.T

    def adjoint(self, y: Tensor) -> Tensor:
        if y.dim() < 1 or y.shape[-1] != self.A.shape[0]:
            raise ValueError(f"y must end with {self.A.shape[0]} entries, got shape {tuple(y.shape)}")
        A = self._matrix(y)
        return (y.to(A.dtype) @ A.conj()).reshape(*y.shape[:-1], *self.shape_in)

    def solve_normal(self, rhs: Tensor, terms: Sequence[tuple[object, LinearOperator]] = (), *,
                     shift: float = 0.0) -> Tensor:
        """Dense solve of ``(A^H A + sum_i rho_i D_i^H D_i + shift I) x = rhs`` (scalar ``rho_i`` only)."""
        d = len(self.shape_in)
        if tuple(rhs.shape[rhs.dim() - d:]) != self.shape_in:
            raise ValueError(f"rhs must end with shape {self.shape_in}, got {tuple(rhs.shape)}")
        A = self._matrix(rhs)
        system = A.conj().T @ A
        for rho, op in terms:
            if torch.as_tensor(rho).numel() != 1:
                raise ValueError(f"rho must be a scalar for MatrixOperator.solve_normal, got shape "
                                 f"{tuple(torch.as_tensor(rho).shape)}")
            D = op.dense(self.shape_in, dtype=A.dtype if A.is_complex() else complex_dtype(A.dtype),
                         device=rhs.device)
            DtD = D.conj().T @ D
            system = system + float(rho) * (DtD if A.is_complex() else DtD.real)
        system = system + shift * torch.eye(system.shape[0], dtype=system.dtype, device=system.device)
        flat = rhs.to(system.dtype).reshape(*rhs.shape[:rhs.dim() - d], -1)
        out = torch.linalg.solve(system, flat.unsqueeze(-1)).squeeze(-1)
        return out.reshape(rhs.shape)
