r"""Ultrasound-like movies :math:`D = H_1L + H_2S + N` (review, box CORONA), simulated as the CORONA work does.

:class:`UltrasoundMovieProblem` draws complex (demodulated, IQ) movies of ``frames`` frames of
``height x width`` pixels:

* **tissue** :math:`L`: ``rank`` components, each a smooth complex spatial map (white complex noise low-passed
  by a Gaussian in the 2-D Fourier domain, correlation length ``tissue_scale`` pixels) times a slowly varying
  temporal signature (a slow Doppler phase of at most ``tissue_doppler`` cycles/frame and a 20 % amplitude
  modulation), with energies falling by 6 dB per component: its Casorati matrix has rank ``rank``;
* **blood / contrast agents** :math:`S`: ``bubbles`` point scatterers per vessel, moving along ``vessels`` random
  curved vessels (quadratic Bezier curves across the field of view) at 0.5-1.5 pixels/frame, each with a random
  complex amplitude and a fast Doppler phase (0.1-0.4 cycles/frame), imaged by the point spread function;
  only pixels near a vessel are ever non-zero, so the rows (pixels) of :math:`S` are sparse;
* **noise** :math:`N`: circular complex Gaussian at ``snr_db`` below the signal :math:`H_1L + H_2S`.

The blood is ``tbr_db`` below the tissue (tissue-to-blood ratio, in energy). Every movie is scaled so that its
noisy data have unit mean power per entry (``D``, ``L`` and ``S`` by the same factor).

The point spread function (PSF) is a complex Gaussian :math:`e^{-z^2/2\sigma_z^2 - x^2/2\sigma_x^2}
e^{i2\pi f_0 z}` (axial ``z`` = rows) cut to zero beyond 3 widths (so pixels away from the vessels are exactly 0), whose widths and residual modulation :math:`f_0` are fixed by ``seed``
(one probe per problem). With ``operator='identity'`` (default, :math:`H_1 = H_2 = I`) the targets are the
imaged tissue and blood (the bubbles rendered with the PSF at their sub-pixel positions); with
``operator='psf'``, :math:`H_1 = H_2 = H` is the PSF as a 5x5 circular convolution (:attr:`H`) and the targets
are the unblurred tissue and the bubbles as points (bilinear on the pixel grid).

``dtype`` names the precision (``'float64'``: complex128 movies, ``'float32'``: complex64), as the other families'
data models do. ``sample(n, generator) -> (D (n, T, H, W), targets (n, 2, T, H, W))`` with ``targets[:, 0] = L`` and
``targets[:, 1] = S``; random numbers are drawn on the CPU from ``generator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from unrolled.core.validation import check_int, check_positive
from unrolled.lowrank.operators import blur

__all__ = ["UltrasoundMovieProblem"]

_DTYPES = {"float64": torch.complex128, "float32": torch.complex64}  # precision -> complex movie dtype
PSF_SIZE = 5


@dataclass
class UltrasoundMovieProblem:
    """Simulated ultrasound movies (see the module docstring); defaults: 32 x 32 pixels x 20 frames."""

    height: int = 32
    width: int = 32
    frames: int = 20
    rank: int = 3
    vessels: int = 2
    bubbles: int = 6
    tbr_db: float = 10.0
    snr_db: float = 25.0
    tissue_scale: float = 4.0
    tissue_doppler: float = 0.05
    operator: str = "identity"
    dtype: str = "float64"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("height", "width"):
            check_int(name, getattr(self, name), minimum=PSF_SIZE)
        check_int("frames", self.frames, minimum=2)
        check_int("rank", self.rank, minimum=1)
        if self.rank > min(self.frames, self.height * self.width):
            raise ValueError(f"rank must be <= min(frames, height * width) = "
                             f"{min(self.frames, self.height * self.width)}, got {self.rank}")
        check_int("vessels", self.vessels, minimum=1)
        check_int("bubbles", self.bubbles, minimum=1)
        for name in ("tbr_db", "snr_db"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number (dB), got {v!r}")
        check_positive("tissue_scale", self.tissue_scale)
        check_positive("tissue_doppler", self.tissue_doppler, allow_zero=True)
        if self.operator not in ("identity", "psf"):
            raise ValueError(f"operator must be 'identity' or 'psf', got {self.operator!r}")
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")
        check_int("seed", self.seed)
        g = torch.Generator().manual_seed(self.seed)
        u = torch.rand(3, generator=g, dtype=torch.float64)
        self.psf_sigma = (0.6 + 0.4 * float(u[0]), 0.8 + 0.5 * float(u[1]))  # axial, lateral (pixels)
        self.psf_f0 = 0.1 + 0.2 * float(u[2])  # residual axial modulation (cycles/pixel)

    @property
    def complex_dtype(self) -> torch.dtype:
        return _DTYPES[self.dtype]

    def psf(self, dz: Tensor, dx: Tensor) -> Tensor:
        """The complex PSF at axial / lateral offsets ``dz``, ``dx`` (pixels), float64 -> complex128."""
        sz, sx = self.psf_sigma
        r2 = (dz / sz) ** 2 + (dx / sx) ** 2
        env = torch.where(r2 <= 9.0, torch.exp(-0.5 * r2), torch.zeros_like(r2))  # cut at 3 widths: finite support
        return torch.polar(env, 2 * math.pi * self.psf_f0 * dz)

    @property
    def H(self) -> Tensor | None:
        """The ``(5, 5)`` PSF kernel of :math:`H_1 = H_2` for ``operator='psf'`` (unit l2 norm), else ``None``."""
        if self.operator == "identity":
            return None
        r = torch.arange(PSF_SIZE, dtype=torch.float64) - PSF_SIZE // 2
        h = self.psf(r[:, None], r[None, :])
        return (h / torch.linalg.vector_norm(h)).to(self.complex_dtype)

    # ------------------------------------------------------------------ components
    def _tissue(self, n: int, g: torch.Generator) -> Tensor:
        H, W, T, r = self.height, self.width, self.frames, self.rank
        white = torch.randn(n, r, H, W, 2, generator=g, dtype=torch.float64)
        fz, fx = torch.fft.fftfreq(H, dtype=torch.float64), torch.fft.fftfreq(W, dtype=torch.float64)
        lowpass = torch.exp(-2 * (math.pi * self.tissue_scale) ** 2 * (fz[:, None] ** 2 + fx[None, :] ** 2))
        maps = torch.fft.ifft2(torch.fft.fft2(torch.view_as_complex(white)) * lowpass)
        maps = maps / maps.abs().pow(2).mean((-2, -1), keepdim=True).sqrt()
        t = torch.arange(T, dtype=torch.float64)
        f = self.tissue_doppler * (2 * torch.rand(n, r, 1, generator=g, dtype=torch.float64) - 1)
        phase = 2 * math.pi * (f * t + torch.rand(n, r, 1, generator=g, dtype=torch.float64))
        slow = torch.rand(n, r, 1, generator=g, dtype=torch.float64) / T  # at most one cycle per movie
        amp = 1 + 0.2 * torch.sin(2 * math.pi * (slow * t + torch.rand(n, r, 1, generator=g, dtype=torch.float64)))
        energy = 0.5 ** torch.arange(r, dtype=torch.float64).reshape(1, r, 1)  # -6 dB per component
        temporal = torch.polar(amp * energy.sqrt(), phase)  # (n, r, T)
        return torch.einsum("nrt,nrhw->nthw", temporal, maps)

    def _bubble_paths(self, n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        """Positions ``(n, V*nb, T, 2)`` (z, x in pixels) and complex amplitudes ``(n, V*nb, T)`` of the bubbles."""
        H, W, T, V, nb = self.height, self.width, self.frames, self.vessels, self.bubbles
        size = torch.tensor([H - 1, W - 1], dtype=torch.float64)
        # a curve enters on one side and leaves on the opposite one; the control point bends it
        u = torch.rand(n, V, 3, generator=g, dtype=torch.float64)
        axial = torch.rand(n, V, 1, generator=g, dtype=torch.float64) < 0.5
        p0 = torch.where(axial, torch.stack([torch.zeros_like(u[..., 0]), u[..., 0]], -1),
                         torch.stack([u[..., 0], torch.zeros_like(u[..., 0])], -1))
        p2 = torch.where(axial, torch.stack([torch.ones_like(u[..., 1]), u[..., 1]], -1),
                         torch.stack([u[..., 1], torch.ones_like(u[..., 1])], -1))
        p1 = 0.15 + 0.7 * torch.rand(n, V, 2, generator=g, dtype=torch.float64)
        p0, p1, p2 = p0 * size, p1 * size, p2 * size
        length = (p2 - p0).norm(dim=-1).clamp_min(1.0)  # (n, V), about the curve's length in pixels
        speed = (0.5 + torch.rand(n, V, nb, generator=g, dtype=torch.float64)) / length.unsqueeze(-1)
        s0 = torch.rand(n, V, nb, generator=g, dtype=torch.float64)
        t = torch.arange(T, dtype=torch.float64)
        s = torch.remainder(s0.unsqueeze(-1) + speed.unsqueeze(-1) * t, 1.0)  # (n, V, nb, T), periodic inflow
        s_ = s.unsqueeze(-1)
        pos = ((1 - s_) ** 2 * p0[:, :, None, None] + 2 * (1 - s_) * s_ * p1[:, :, None, None]
               + s_ ** 2 * p2[:, :, None, None])  # (n, V, nb, T, 2)
        mag = torch.sqrt(-torch.log(torch.rand(n, V, nb, 1, generator=g, dtype=torch.float64).clamp_min(1e-12)))
        doppler = 0.1 + 0.3 * torch.rand(n, V, 1, 1, generator=g, dtype=torch.float64)
        phase = 2 * math.pi * (torch.rand(n, V, nb, 1, generator=g, dtype=torch.float64) + doppler * t)
        amp = torch.polar(mag.expand(-1, -1, -1, T), phase)
        return pos.reshape(n, V * nb, T, 2), amp.reshape(n, V * nb, T)

    def _render(self, pos: Tensor, amp: Tensor) -> Tensor:
        """Bubbles on the pixel grid ``(n, T, H, W)``: through the PSF, or bilinear points (``operator='psf'``)."""
        z = torch.arange(self.height, dtype=torch.float64).reshape(1, 1, 1, -1, 1)
        x = torch.arange(self.width, dtype=torch.float64).reshape(1, 1, 1, 1, -1)
        dz = z - pos[..., 0, None, None]
        dx = x - pos[..., 1, None, None]
        if self.operator == "identity":
            kernel = self.psf(dz, dx)
        else:
            kernel = (torch.relu(1 - dz.abs()) * torch.relu(1 - dx.abs())).to(torch.complex128)
        return torch.einsum("nbt,nbthw->nthw", amp, kernel)

    # ------------------------------------------------------------------ the model
    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw ``n`` movies: ``(D (n, T, H, W), targets (n, 2, T, H, W) = [L, S])`` (see the module docstring)."""
        check_int("n", n, minimum=1)
        g = generator if generator is not None else torch.Generator().manual_seed(torch.seed() % 2**63)
        L = self._tissue(n, g)
        S = self._render(*self._bubble_paths(n, g))
        H = self.H
        HL, HS = blur(L, None if H is None else H.to(torch.complex128)), blur(S, None if H is None else
                                                                             H.to(torch.complex128))
        p_tissue = HL.abs().pow(2).flatten(1).mean(-1)
        p_blood = HS.abs().pow(2).flatten(1).mean(-1).clamp_min(1e-300)
        gain = torch.sqrt(p_tissue / p_blood * 10 ** (-self.tbr_db / 10)).reshape(n, 1, 1, 1)
        S, HS = S * gain, HS * gain
        signal = HL + HS
        p_signal = signal.abs().pow(2).flatten(1).mean(-1)
        noise = torch.view_as_complex(torch.randn(*signal.shape, 2, generator=g, dtype=torch.float64))
        noise = noise * torch.sqrt(p_signal * 10 ** (-self.snr_db / 10) / 2).reshape(n, 1, 1, 1)
        D = signal + noise
        scale = D.abs().pow(2).flatten(1).mean(-1).sqrt().reshape(n, 1, 1, 1)
        dt = self.complex_dtype
        return (D / scale).to(dt), torch.stack([L / scale, S / scale], dim=1).to(dt)

    def config(self) -> dict:
        """The constructor arguments (JSON)."""
        return {k: getattr(self, k) for k in ("height", "width", "frames", "rank", "vessels", "bubbles", "tbr_db",
                                              "snr_db", "tissue_scale", "tissue_doppler", "operator", "dtype",
                                              "seed")}
