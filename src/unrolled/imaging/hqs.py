r"""Blind deblurring by half-quadratic splitting (review, DUBLID box, eqs. (6)-(11)).

Model (6): :math:`y = k * x + n` with an unknown kernel :math:`k \ge 0,\ \|k\|_1 = 1` on a ``(s, s)`` support.
Problem (8) looks for sparse filtered images :math:`g_i \approx f_i * x` (``f_i`` = :math:`D_x, D_y` gives the
TV problem (7)); its half-quadratic surrogate (9) adds auxiliary :math:`z_i` and is minimised block by block.
One iteration :math:`l \to l + 1` of :class:`HQSBlindDeblurIteration` is (10):

.. math::
    g_i^{l+1} &= \mathcal F^{-1}\Big\{\frac{\zeta_i \hat k^{l*}\odot\hat f_i\odot\hat y + \hat z_i^l}
                 {\zeta_i|\hat k^l|^2 + 1}\Big\}, \qquad
    z_i^{l+1} = \mathcal S_{\lambda_i\zeta_i}\{g_i^{l+1}\}, \\
    k^{l+1} &= \mathcal N_1\Big[\mathcal P_s\,\mathcal F^{-1}\Big\{\frac{\sum_i \hat z_i^{l+1*}\odot\hat f_i
               \odot\hat y}{\sum_i|\hat z_i^{l+1}|^2 + \epsilon}\Big\}\Big]_+ ,

followed by the image retrieval (11) from :math:`g^{l+1}, k^{l+1}`:

.. math:: \tilde x = \mathcal F^{-1}\Big\{\frac{\hat k^* \odot \hat y + \sum_i \eta_i \hat f_i^*\odot\hat g_i}
                     {|\hat k|^2 + \sum_i \eta_i |\hat f_i|^2}\Big\}.

:math:`g` and :math:`z` steps are the exact minimisers of (9) in those blocks. The kernel step solves the least
squares problem of (9) with :math:`z_i` in place of :math:`g_i` (the box's choice: the thresholded, sparser
edges drive the kernel) in the Fourier domain, then restricts it to the support (:math:`\mathcal P_s`, the
``(s, s)`` window around the origin), applies the ReLU and normalises to unit sum (:math:`\mathcal N_1`); when
the ReLU leaves nothing, the previous kernel is kept. All convolutions are circular (FFT), the origin of a kernel
or filter being its centre pixel (:func:`~unrolled.imaging.operators.kernel_spectrum`).

The iteration starts from the identity kernel :math:`k^0 = \delta`, :math:`z_i^0 = g_i^0 = f_i * y` and
:math:`\tilde x^0 = y`. Each step also computes (11), so every iterate (solver) or layer (DUBLID) has an image
estimate; with per-layer parameters (DUBLID) step ``l`` uses that layer's :math:`f_i^l, \lambda_i^l, \zeta_i^l`
and :math:`\eta_i^l`, and the net's output is the last layer's, i.e. (11) with :math:`f^L` as in the box.
:func:`hqs_blind_deblur` runs the iteration with fixed parameters through :func:`unrolled.core.solve.solve`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from unrolled.core.iteration import Data, Iteration, Param, State
from unrolled.core.result import SolverResult
from unrolled.core.solve import solve
from unrolled.core.validation import check_positive, check_tensor, from_numpy
from unrolled.imaging.kernels import image_to_kernel
from unrolled.imaging.operators import FiniteDifference, kernel_spectrum

__all__ = ["HQSBlindDeblurIteration", "BlindDeblurResult", "hqs_blind_deblur", "hqs_setup", "lam_schedule",
           "check_blurred", "check_filters", "check_kernel_size", "derivative_filters", "pack", "unpack",
           "soft_threshold", "g_step", "z_step", "kernel_step", "kernel_least_squares", "retrieve_image",
           "surrogate_objective", "DEFAULTS"]

#: Default settings of :func:`hqs_blind_deblur` (images in [0, 1]); see the module docstring for their roles.
DEFAULTS = {"lam": 0.01, "zeta": 3.0, "eta": 1.0, "eps": 10.0, "kernel_size": 15, "lam_start": 0.05, "decay": 0.95}


def derivative_filters(dtype: torch.dtype = torch.float64, device=None) -> Tensor:
    """The TV filters :math:`(D_x, D_y)` of (7) as a ``(2, 3, 3)`` bank (circular forward differences)."""
    return FiniteDifference.kernels(dtype, device)


def soft_threshold(x: Tensor, threshold: Tensor) -> Tensor:
    r""":math:`\mathcal S_\theta(x) = \mathrm{sign}(x)\max(|x| - \theta, 0)` (review, eq. (4))."""
    return torch.sign(x) * torch.relu(x.abs() - threshold)


def _fft(x: Tensor) -> Tensor:
    return torch.fft.fft2(x)


def _ifft(x: Tensor) -> Tensor:
    return torch.fft.ifft2(x).real


def _channel(v: Tensor) -> Tensor:
    """A per-filter value ``(C,)`` as ``(C, 1, 1)`` to broadcast over ``(B, C, H, W)``."""
    return v.reshape(-1, 1, 1)


def g_step(fy_hat: Tensor, k_hat: Tensor, z: Tensor, zeta: Tensor) -> Tensor:
    r"""The :math:`g` update of (10).

    The minimiser of :math:`\tfrac12\|f_i*y - k*g_i\|^2 + \tfrac1{2\zeta_i}\|g_i - z_i\|^2`.

    ``fy_hat (B, C, H, W)`` is :math:`\hat f_i\odot\hat y`, ``k_hat (B, H, W)``, ``z (B, C, H, W)``, ``zeta (C,)``.
    """
    zt, kh = _channel(zeta), k_hat.unsqueeze(1)
    return _ifft((zt * kh.conj() * fy_hat + _fft(z)) / (zt * (kh.abs() ** 2) + 1))


def z_step(g: Tensor, lam: Tensor, zeta: Tensor) -> Tensor:
    r"""The :math:`z` update of (10): :math:`\mathcal S_{\lambda_i\zeta_i}(g_i)`, the minimiser of
    :math:`\lambda_i\|z_i\|_1 + \tfrac1{2\zeta_i}\|g_i - z_i\|^2`."""
    return soft_threshold(g, _channel(lam * zeta))


def _window_offsets(size: int, shape: tuple[int, int], device) -> tuple[Tensor, Tensor]:
    """Flat indices into ``(H, W)`` of the differences ``d - d'`` of two support offsets, ``(s s, s s)``."""
    c = size // 2
    r = torch.arange(size, device=device) - c
    rows, cols = torch.meshgrid(r, r, indexing="ij")
    rows, cols = rows.reshape(-1), cols.reshape(-1)
    H, W = shape
    return ((rows[:, None] - rows[None, :]) % H) * W + (cols[:, None] - cols[None, :]) % W


def kernel_least_squares(fy_hat: Tensor, z: Tensor, eps: float, kernel_size: int, solve: str = "support") -> Tensor:
    r"""The minimiser of :math:`\sum_i \tfrac12\|f_i*y - k*z_i\|^2 + \tfrac\epsilon2\|k\|^2` before ReLU, ``(B, s, s)``.

    ``solve='fourier'``: the box's closed form (10) over all :math:`H W` pixels, then the ``(s, s)`` window
    around the origin. ``solve='support'``: the exact minimiser over kernels supported on the window, from the
    normal equations :math:`(R + \epsilon I) k = r` with :math:`R_{dd'} = \sum_i (z_i \star z_i)[d - d']` and
    :math:`r_d = \sum_i (z_i \star f_i*y)[d]` (circular correlations by FFT; :math:`s^2` unknowns instead of
    :math:`HW`, so the noise is not fitted).
    """
    z_hat = _fft(z)
    num = (z_hat.conj() * fy_hat).sum(1)
    power = (z_hat.abs() ** 2).sum(1)
    if solve == "fourier":
        return image_to_kernel(_ifft(num / (power + eps)), kernel_size)
    B, (H, W), s = z.shape[0], z.shape[-2:], kernel_size
    rhs = image_to_kernel(_ifft(num), s).reshape(B, s * s, 1)
    gram = _ifft(power).reshape(B, H * W)[:, _window_offsets(s, (H, W), z.device)]
    gram = gram + eps * torch.eye(s * s, dtype=z.dtype, device=z.device)
    return torch.cholesky_solve(rhs, torch.linalg.cholesky(gram)).reshape(B, s, s)  # R + eps I is SPD


def kernel_step(fy_hat: Tensor, z: Tensor, eps: float, kernel_size: int, previous: Tensor,
                solve: str = "support") -> Tensor:
    r"""The :math:`k` update of (10): least squares (:func:`kernel_least_squares`), ReLU, unit sum; ``(B, s, s)``.

    Falls back to ``previous`` for a problem whose kernel the ReLU leaves all zero.
    """
    k = torch.relu(kernel_least_squares(fy_hat, z, eps, kernel_size, solve))
    total = k.sum(dim=(-2, -1), keepdim=True)
    ok = total > torch.finfo(k.dtype).tiny
    return torch.where(ok, k / torch.where(ok, total, torch.ones_like(total)), previous)


def retrieve_image(y_hat: Tensor, k_hat: Tensor, g: Tensor, f_hat: Tensor, eta: Tensor) -> Tensor:
    r"""Image retrieval (11): the minimiser of :math:`\tfrac12\|y - k*x\|^2 + \sum_i\tfrac{\eta_i}2\|f_i*x - g_i\|^2`.

    ``y_hat, k_hat (B, H, W)``, ``g (B, C, H, W)``, ``f_hat (C, H, W)``, ``eta (C,)``. The denominator is at least
    :math:`|\hat k(0)|^2 = 1` at DC for a unit-sum kernel.
    """
    et = _channel(eta)
    num = k_hat.conj() * y_hat + (et * f_hat.conj() * _fft(g)).sum(1)
    den = k_hat.abs() ** 2 + (et * f_hat.abs() ** 2).sum(0)
    return _ifft(num / den)


def surrogate_objective(y: Tensor, g: Tensor, z: Tensor, k: Tensor, filters: Tensor, lam: Tensor, zeta: Tensor,
                        eps: float) -> Tensor:
    """The objective of (9) per problem ``(B,)`` (each term summed over pixels)."""
    shape = y.shape[-2:]
    f_hat = kernel_spectrum(filters, shape)
    fy = _ifft(f_hat * _fft(y).unsqueeze(1))
    kg = _ifft(kernel_spectrum(k, shape).unsqueeze(1) * _fft(g))
    fit = 0.5 * ((fy - kg) ** 2).sum(dim=(-2, -1))
    reg = lam * z.abs().sum(dim=(-2, -1))
    split = ((g - z) ** 2).sum(dim=(-2, -1)) / (2 * zeta)
    return (fit + reg + split).sum(-1) + 0.5 * eps * (k**2).sum(dim=(-2, -1))


def pack(x: Tensor, k: Tensor) -> Tensor:
    """``(B, H W + s s)``: image and kernel flattened side by side (the one tensor a solver freezes)."""
    B = x.shape[0]
    return torch.cat([x.reshape(B, -1), k.reshape(B, -1)], dim=-1)


def unpack(packed: Tensor, shape: tuple[int, int], kernel_size: int) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`pack`: ``x (B, H, W)`` and ``k (B, s, s)``."""
    H, W = shape
    B = packed.shape[0]
    return packed[:, : H * W].reshape(B, H, W), packed[:, H * W:].reshape(B, kernel_size, kernel_size)


class HQSBlindDeblurIteration(Iteration):
    """One HQS iteration (10) plus the retrieval (11) (see the module docstring).

    Parameters
    ----------
    kernel_size : int
        Odd side ``s`` of the kernel's support.
    eps : float
        The fixed :math:`\\epsilon > 0` of (8)-(10).
    kernel_solve : {'support', 'fourier'}, default 'support'
        How the kernel's least squares is solved (:func:`kernel_least_squares`).

    Notes
    -----
    ``data``: ``y`` ``(B, H, W)`` and ``y_hat`` its FFT (batch-first). State: ``g``, ``z`` ``(B, C, H, W)``,
    ``k`` ``(B, s, s)``, ``x`` ``(B, H, W)``. Parameters: ``filters`` ``(C, s_f, s_f)``, ``lam``, ``zeta``,
    ``eta`` ``(C,)``. The readout is ``pack(x, k)``; the stopping criterion is the relative change of the
    image and of the kernel, ``max(|dx| / |x|, |dk| / |k|)``.
    """

    batched = ("y", "y_hat")
    params = (
        Param("filters", doc="(C, s_f, s_f) filters f_i (D_x, D_y for the TV problem (7))"),
        Param("lam", "positive", doc="(C,) sparsity weights lambda_i of (8)"),
        Param("zeta", "positive", doc="(C,) splitting weights zeta_i of (9)"),
        Param("eta", "positive", doc="(C,) weights eta_i of the image retrieval (11)"),
    )

    def __init__(self, kernel_size: int, eps: float, kernel_solve: str = "support"):
        if kernel_solve not in ("support", "fourier"):
            raise ValueError(f"kernel_solve must be 'support' or 'fourier', got {kernel_solve!r}")
        self.kernel_size = int(kernel_size)
        self.eps = float(eps)
        self.kernel_solve = kernel_solve

    def init(self, data: Data, params: Mapping[str, Any]) -> State:
        y, y_hat = data["y"], data["y_hat"]
        B, (H, W), s = y.shape[0], y.shape[-2:], self.kernel_size
        fy = _ifft(kernel_spectrum(params["filters"], (H, W)) * y_hat.unsqueeze(1))
        k = y.new_zeros(B, s, s)
        k[:, s // 2, s // 2] = 1.0
        return {"g": fy, "z": fy, "k": k, "x": y}

    def step(self, k: int, state: State, data: Data, params: Mapping[str, Any]) -> State:
        y_hat, shape = data["y_hat"], data["y"].shape[-2:]
        filters, lam, zeta, eta = params["filters"], params["lam"], params["zeta"], params["eta"]
        f_hat = kernel_spectrum(filters, shape)
        fy_hat = f_hat * y_hat.unsqueeze(1)
        g = g_step(fy_hat, kernel_spectrum(state["k"], shape), state["z"], zeta)
        z = z_step(g, lam, zeta)
        kern = kernel_step(fy_hat, z, self.eps, self.kernel_size, state["k"], self.kernel_solve)
        x = retrieve_image(y_hat, kernel_spectrum(kern, shape), g, f_hat, eta)
        return {"g": g, "z": z, "k": kern, "x": x}

    def readout(self, state: State, data: Data) -> Tensor:
        return pack(state["x"], state["k"])

    def criterion(self, new: State, old: State, data: Data, params: Mapping[str, Any]) -> Tensor:
        if params.get("continuing", False):  # lam still decreasing (hqs_blind_deblur's continuation): no stop
            return new["x"].new_full(new["x"].shape[:1], float("inf"))
        tiny = torch.finfo(new["x"].dtype).tiny
        dims = (-2, -1)
        dx = torch.linalg.vector_norm(new["x"] - old["x"], dim=dims) / torch.linalg.vector_norm(
            old["x"], dim=dims).clamp_min(tiny)
        dk = torch.linalg.vector_norm(new["k"] - old["k"], dim=dims) / torch.linalg.vector_norm(
            old["k"], dim=dims).clamp_min(tiny)
        return torch.maximum(dx, dk)

    def objective(self, state: State, data: Data, params: Mapping[str, Any]) -> Tensor:
        return surrogate_objective(data["y"], state["g"], state["z"], state["k"], params["filters"], params["lam"],
                                   params["zeta"], self.eps)


@dataclass
class BlindDeblurResult(SolverResult):
    """Output of :func:`hqs_blind_deblur`: ``image`` ``(B, H, W)`` and ``kernel`` ``(B, s, s)``.

    ``x`` is :func:`pack` of the two (what :func:`~unrolled.core.solve.solve` freezes per problem); ``history``
    has ``'criterion'`` (relative change) and ``'objective'`` (the surrogate (9)). Unbatched input gives
    unbatched ``image`` and ``kernel``.
    """

    image: Tensor | None = None
    kernel: Tensor | None = None


def check_blurred(name: str, y) -> tuple[Tensor, bool]:
    """Validate blurred images ``(B, H, W)`` or ``(H, W)`` (real, finite, H, W >= 3); returns ``(batch, unbatched)``."""
    y = check_tensor(name, from_numpy(y), ndim=(2, 3))
    if y.is_complex():
        raise ValueError(f"{name} must be real, got dtype {y.dtype}")
    if y.dim() == 3 and y.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch, shape {tuple(y.shape)}")
    if min(y.shape[-2:]) < 3:
        raise ValueError(f"{name} must be images of at least 3 x 3 pixels, got shape {tuple(y.shape)}")
    return (y.unsqueeze(0), True) if y.dim() == 2 else (y, False)


def check_filters(name: str, filters, shape: tuple[int, int]) -> Tensor:
    """Validate a filter bank ``(C, s_f, s_f)`` (real, finite, square, odd side, no larger than ``shape``)."""
    f = check_tensor(name, from_numpy(filters) if not isinstance(filters, Tensor) else filters, ndim=3)
    if f.is_complex() or f.shape[0] == 0:
        raise ValueError(f"{name} must be a real bank of at least one filter, got {tuple(f.shape)} {f.dtype}")
    if f.shape[-1] != f.shape[-2] or f.shape[-1] % 2 == 0:
        raise ValueError(f"{name} must be square with an odd side, got shape {tuple(f.shape)}")
    if f.shape[-1] > min(shape):
        raise ValueError(f"{name} of side {f.shape[-1]} is larger than the image {tuple(shape)}")
    return f


def check_kernel_size(kernel_size, shape: tuple[int, int]) -> int:
    """``kernel_size`` must be an odd int >= 3, no larger than the image."""
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 3 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be an odd int >= 3, got {kernel_size!r}")
    if kernel_size > min(shape):
        raise ValueError(f"kernel_size {kernel_size} is larger than the image {tuple(shape)}")
    return kernel_size


def _per_filter(name: str, value, C: int, like: Tensor) -> Tensor:
    v = torch.as_tensor(value if not isinstance(value, Tensor) else value.detach(), dtype=like.dtype)
    if v.dim() == 0:
        v = v.expand(C)
    if v.shape != (C,):
        raise ValueError(f"{name} must be a number or one value per filter ({C},), got shape {tuple(v.shape)}")
    for item in v.tolist():
        check_positive(name, item)
    return v.to(like.device).clone()


def hqs_setup(y, *, filters=None, lam=DEFAULTS["lam"], zeta=DEFAULTS["zeta"], eta=DEFAULTS["eta"],
              eps=DEFAULTS["eps"], kernel_size=DEFAULTS["kernel_size"], kernel_solve="support"):
    """Validate the arguments of :func:`hqs_blind_deblur`; returns ``(iteration, data, params, unbatched)``."""
    y, unbatched = check_blurred("y", y)
    shape = tuple(y.shape[-2:])
    kernel_size = check_kernel_size(kernel_size, shape)
    f = derivative_filters(y.dtype, y.device) if filters is None else check_filters("filters", filters, shape)
    f = f.to(dtype=y.dtype, device=y.device)
    C = f.shape[0]
    params = {"filters": f, "lam": _per_filter("lam", lam, C, y), "zeta": _per_filter("zeta", zeta, C, y),
              "eta": _per_filter("eta", eta, C, y)}
    eps = check_positive("eps", eps)
    iteration = HQSBlindDeblurIteration(kernel_size, eps, kernel_solve)
    return iteration, {"y": y, "y_hat": _fft(y)}, params, unbatched


def lam_schedule(params: Mapping[str, Any], lam_start, decay: float):
    r"""Continuation on :math:`\lambda`: ``k -> params`` with :math:`\lambda^k = \max(\lambda, \lambda_0 d^k)`.

    ``lam_start`` (:math:`\lambda_0`, a number or ``(C,)``) above ``params['lam']`` starts with only the strongest
    edges kept by the threshold :math:`\lambda\zeta` and admits weaker ones as the kernel sharpens (the usual
    coarse-to-fine guard against the no-blur solution). ``params['continuing']`` is true while
    :math:`\lambda^k > \lambda`, so the stopping test waits for the schedule to end.
    """
    lam = params["lam"]
    start = _per_filter("lam_start", lam_start, lam.shape[0], lam)
    decay = check_positive("decay", decay)
    if not decay < 1:
        raise ValueError(f"decay must be in (0, 1), got {decay}")

    def at(k: int) -> dict:
        value = torch.maximum(lam, start * decay**k)
        return {**params, "lam": value, "continuing": bool((value > lam).any())}

    return at


def hqs_blind_deblur(y, *, filters: Tensor | None = None, lam: float | Sequence[float] = DEFAULTS["lam"],
                     zeta: float | Sequence[float] = DEFAULTS["zeta"], eta: float | Sequence[float] = DEFAULTS["eta"],
                     eps: float = DEFAULTS["eps"], kernel_size: int = DEFAULTS["kernel_size"],
                     lam_start: float | Sequence[float] | None = DEFAULTS["lam_start"],
                     decay: float = DEFAULTS["decay"],
                     kernel_solve: str = "support", max_iter: int = 300, tol: float = 1e-4,
                     callback=None) -> BlindDeblurResult:
    r"""Blind deblurring by half-quadratic splitting: iterations (10) for (9), image retrieval (11).

    Parameters
    ----------
    y : Tensor or ndarray
        Blurred images ``(B, H, W)`` or one ``(H, W)``, real (float32 / float64), values of order 1.
    filters : Tensor, optional
        ``(C, s_f, s_f)`` filters :math:`f_i` (odd side); default :func:`derivative_filters`, the TV problem (7).
    lam, zeta, eta : float or sequence of C floats
        :math:`\lambda_i` of (8), :math:`\zeta_i` of (9), :math:`\eta_i` of (11), all positive.
    eps : float
        :math:`\epsilon > 0` of (8).
    kernel_size : int
        Odd side of the kernel's support, at most the image size.
    lam_start, decay : float, optional
        Continuation (:func:`lam_schedule`): :math:`\lambda` starts at ``lam_start`` and decreases by the factor
        ``decay`` per iteration down to ``lam``; ``lam_start=None`` keeps :math:`\lambda` fixed.
    kernel_solve : {'support', 'fourier'}, default 'support'
        Kernel least squares over the support (exact) or the box's Fourier closed form, then windowed
        (:func:`kernel_least_squares`).
    max_iter : int
        Iteration cap (the issue's ``n_iter``; with ``tol=0`` exactly this many iterations run).
    tol : float
        Stop a problem when the relative change of its image and kernel is below ``tol``.
    callback : callable, optional
        ``callback(k, packed)`` after iteration ``k`` with :func:`pack` ``(image, kernel)`` of the whole batch.

    Returns
    -------
    BlindDeblurResult
        ``image``, ``kernel`` (unbatched for unbatched ``y``), ``n_iter``, ``converged``, ``history``.
    """
    iteration, data, params, unbatched = hqs_setup(y, filters=filters, lam=lam, zeta=zeta, eta=eta, eps=eps,
                                                   kernel_size=kernel_size, kernel_solve=kernel_solve)
    schedule = params if lam_start is None else lam_schedule(params, lam_start, decay)
    result = solve(iteration, data, schedule, max_iter=max_iter, tol=tol, callback=callback)
    image, kernel = unpack(result.x, tuple(data["y"].shape[-2:]), iteration.kernel_size)
    if unbatched:
        image, kernel = image[0], kernel[0]
    return BlindDeblurResult(x=result.x, n_iter=result.n_iter, converged=result.converged, history=result.history,
                             state=result.state, image=image, kernel=kernel)
