r"""Per-frame circular convolutions: the PSF operators :math:`H_1, H_2` and the filters :math:`P_1..P_6` of (17)-(18).

A movie is a tensor ``(..., T, H, W)`` (frames of ``H x W`` pixels); its Casorati matrix (the review's
:math:`D \in \mathbb C^{m\times n}`, one column per frame) is ``(..., H*W, T)``, see :func:`casorati`.
Every operator here acts on each frame alike (a 2-D kernel ``(k, k)``, ``k`` odd) with **circular** boundary
conditions. That choice makes the algebra exact: :math:`H^H H` and :math:`H_1^H H_2` are again circular
convolutions, with the kernels of :func:`compose_kernels`, so the ISTA step of (16) is *exactly* a layer (17)-(18)
whose filters are :func:`algorithm_filters`, and the Lipschitz constant of the data term is the maximum over the
2-D DFT frequencies of :math:`|\hat h_1|^2 + |\hat h_2|^2` (:func:`lipschitz`).

All kernels are applied as cross-correlations (:func:`torch.nn.functional.conv2d`): with centre ``c``,
:math:`(Hx)[p] = \sum_q h[q]\,x[p + q - c]`; the adjoint is the cross-correlation with the flipped, conjugated
kernel (:func:`adjoint_kernel`). Complex data go through complex convolutions (PyTorch's ``conv2d`` accepts
complex tensors).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["casorati", "uncasorati", "blur", "adjoint_kernel", "compose_kernels", "pad_kernel", "delta_kernel",
           "lipschitz", "algorithm_filters", "mix", "FILTER_NAMES"]

#: The six filters of one layer, in the order of (17)-(18): P1, P2 act on D, P3, P4 on S and L across, P5, P6 on self.
FILTER_NAMES = ("P1", "P2", "P3", "P4", "P5", "P6")


def casorati(movie: Tensor) -> Tensor:
    """``(..., T, H, W)`` movie -> ``(..., H*W, T)`` Casorati matrix (a view: pixels are rows, frames columns)."""
    return movie.flatten(-2).transpose(-1, -2)


def uncasorati(matrix: Tensor, height: int, width: int) -> Tensor:
    """Inverse of :func:`casorati`."""
    return matrix.transpose(-1, -2).unflatten(-1, (height, width))


def _frames(x: Tensor) -> tuple[Tensor, tuple[int, ...]]:
    lead = x.shape[:-2]
    return x.reshape(-1, 1, *x.shape[-2:]), lead


def blur(x: Tensor, h: Tensor | None) -> Tensor:
    """Apply the per-frame circular cross-correlation with kernel ``h`` ``(k, k)`` to ``x`` ``(..., H, W)``.

    ``h = None`` is the identity.
    """
    if h is None:
        return x
    k = h.shape[-1]
    if k == 1:
        return x * h.reshape(())
    frames, lead = _frames(x)
    p = k // 2
    out = F.conv2d(F.pad(frames, (p, p, p, p), mode="circular"), h.to(x.dtype).reshape(1, 1, k, k))
    return out.reshape(*lead, *x.shape[-2:])


def adjoint_kernel(h: Tensor | None) -> Tensor | None:
    """Kernel of :math:`H^H`: ``h`` flipped in both directions and conjugated."""
    return None if h is None else h.flip(-1, -2).conj()


def delta_kernel(k: int, dtype: torch.dtype, device=None) -> Tensor:
    """The ``(k, k)`` identity kernel (1 at the centre)."""
    d = torch.zeros(k, k, dtype=dtype, device=device)
    d[k // 2, k // 2] = 1
    return d


def pad_kernel(h: Tensor, k: int) -> Tensor:
    """``h`` ``(j, j)`` zero-padded symmetrically to ``(k, k)``, ``k >= j`` (same centre, same operator)."""
    j = h.shape[-1]
    if j > k:
        raise ValueError(f"a {j}x{j} kernel does not fit a {k}x{k} filter: kernel_size must be >= {j}")
    p = (k - j) // 2
    return F.pad(h, (p, p, p, p))


def compose_kernels(first: Tensor | None, second: Tensor | None) -> Tensor | None:
    """Kernel of ``second o first`` (apply ``first``, then ``second``): their full 2-D convolution."""
    if first is None:
        return second
    if second is None:
        return first
    ka, kb = first.shape[-1], second.shape[-1]
    dtype = torch.promote_types(first.dtype, second.dtype)
    a = F.pad(first.to(dtype), (kb - 1,) * 4).reshape(1, 1, ka + 2 * kb - 2, ka + 2 * kb - 2)
    return F.conv2d(a, second.to(dtype).flip(-1, -2).reshape(1, 1, kb, kb)).reshape(ka + kb - 1, ka + kb - 1)


def _spectrum(h: Tensor | None, height: int, width: int, like: Tensor) -> Tensor:
    """:math:`|\\hat h|^2` on the ``height x width`` DFT grid of the circular operator."""
    if h is None:
        return torch.ones(height, width, dtype=like.real.dtype if like.is_complex() else like.dtype,
                          device=like.device)
    k = h.shape[-1]
    if k > min(height, width):
        raise ValueError(f"a {k}x{k} PSF does not fit {height}x{width} frames")
    full = torch.zeros(height, width, dtype=torch.promote_types(h.dtype, torch.complex64), device=h.device)
    full[:k, :k] = h
    full = torch.roll(full, shifts=(-(k // 2), -(k // 2)), dims=(0, 1))
    return torch.fft.fft2(full).abs() ** 2


def lipschitz(H1: Tensor | None, H2: Tensor | None, height: int, width: int, like: Tensor) -> float:
    r"""Lipschitz constant :math:`\|[H_1\ H_2]\|_2^2` of the gradient of the data term of (16) (2 for ``H = I``)."""
    return float((_spectrum(H1, height, width, like) + _spectrum(H2, height, width, like)).max())


def algorithm_filters(H1: Tensor | None, H2: Tensor | None, mu: float, kernel_size: int | None = None, *,
                      dtype: torch.dtype, device=None) -> dict[str, Tensor]:
    r"""The filters that make a layer (17)-(18) one ISTA step of (16) with step :math:`1/\mu`.

    .. math::
        P_5 = I - \tfrac1\mu H_1^H H_1,\ P_3 = -\tfrac1\mu H_1^H H_2,\ P_1 = \tfrac1\mu H_1^H,\qquad
        P_6 = I - \tfrac1\mu H_2^H H_2,\ P_4 = -\tfrac1\mu H_2^H H_1,\ P_2 = \tfrac1\mu H_2^H

    (the review prints the ISTA step without the :math:`1/\mu` on the last two terms of each line; a gradient
    step on (16) has it). All are ``(k, k)`` complex kernels, ``k = kernel_size`` or the smallest size holding
    them (1 when ``H1 = H2 = I``).
    """
    a1, a2 = adjoint_kernel(H1), adjoint_kernel(H2)
    raw = {
        "P1": a1, "P2": a2,
        "P3": compose_kernels(H2, a1), "P4": compose_kernels(H1, a2),
        "P5": compose_kernels(H1, a1), "P6": compose_kernels(H2, a2),
    }
    sizes = [h.shape[-1] for h in raw.values() if h is not None]
    k = max(sizes, default=1) if kernel_size is None else int(kernel_size)
    out = {}
    for name, h in raw.items():
        kern = delta_kernel(1, dtype, device) if h is None else h.to(dtype=dtype, device=device)
        kern = pad_kernel(kern, k)
        if name in ("P5", "P6"):
            out[name] = delta_kernel(k, dtype, device) - kern / mu
        elif name in ("P3", "P4"):
            out[name] = -kern / mu
        else:
            out[name] = kern / mu
    return out


def mix(L: Tensor, S: Tensor, D: Tensor, P: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    r"""The linear parts of (17)-(18): :math:`(P_5 * L + P_3 * S + P_1 * D,\ P_6 * S + P_4 * L + P_2 * D)`.

    ``L, S, D`` are ``(B, T, H, W)`` movies; ``P`` maps :data:`FILTER_NAMES` to ``(k, k)`` kernels of the movies'
    dtype (``k`` odd). ``k = 1`` is a multiply-add. Otherwise one real ``conv2d`` with circular padding: a complex
    filter bank ``(2, 3, k, k)`` acts on the real and imaginary parts as the real ``(4, 6, k, k)`` bank
    :math:`\begin{pmatrix}\Re P & -\Im P\\ \Im P & \Re P\end{pmatrix}` (the same operator, and about twice as fast
    in the backward pass as PyTorch's complex convolution, which runs three real ones).
    """
    k = P["P1"].shape[-1]
    if k == 1:
        c = {name: P[name].reshape(()) for name in FILTER_NAMES}
        return c["P5"] * L + c["P3"] * S + c["P1"] * D, c["P6"] * S + c["P4"] * L + c["P2"] * D
    B, T, H, W = L.shape
    weight = torch.stack([torch.stack([P["P5"], P["P3"], P["P1"]]), torch.stack([P["P4"], P["P6"], P["P2"]])])
    x = torch.stack([L, S, D], dim=2)  # (B, T, 3, H, W)
    p = k // 2
    if not x.is_complex():
        out = F.conv2d(F.pad(x.reshape(B * T, 3, H, W), (p, p, p, p), mode="circular"), weight.to(x.dtype))
        out = out.reshape(B, T, 2, H, W)
        return out[:, :, 0], out[:, :, 1]
    weight = weight.to(x.dtype)
    wr, wi = weight.real, weight.imag
    block = torch.stack([torch.stack([wr, -wi], dim=2), torch.stack([wi, wr], dim=2)], dim=1)  # (2, re/im, 3, re/im)
    xr = torch.view_as_real(x).permute(0, 1, 2, 5, 3, 4).reshape(B * T, 6, H, W)
    out = F.conv2d(F.pad(xr, (p, p, p, p), mode="circular"), block.reshape(4, 6, k, k)).reshape(B, T, 2, 2, H, W)
    out = torch.complex(out[:, :, :, 0], out[:, :, :, 1])
    return out[:, :, 0], out[:, :, 1]
