"""Data models of the SBL family (He, Xin, Wipf et al., NIPS 2017, Secs. 3.3, 4.1, 4.2).

* :class:`CorrelatedSparseProblem`: ``y = Phi x* + eps`` with the correlated dictionary of
  Sec. 4.1 (``Phi = sum_i (1/i^2) u_i v_i^T``, unit-norm columns) or an uncorrelated Gaussian
  one, ``x*`` with ``d`` non-zeros uniform in ``[-0.5, -0.1] U [0.1, 0.5]`` on a random support.
* :class:`DOAProblem`: a complex uniform linear array (``n`` sensors, half-wavelength spacing),
  a dictionary of steering vectors over a grid of angles across a half circle, ``d`` sources
  with coefficients in ``{+-1 +- i}`` and complex Gaussian noise at a given SNR.

``sample(n, generator)`` draws fresh pairs ``(y, x*)`` (online sampling, Sec. 3.3); all random
numbers come from the CPU generator so a seed gives the same data on every device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from unrolled.core.validation import check_int, check_positive
from unrolled.sparse_coding.data import gaussian_dictionary

__all__ = ["correlated_dictionary", "uncorrelated_dictionary", "sparse_codes", "check_d_weights",
           "CorrelatedSparseProblem", "steering_matrix", "DOAProblem"]


def correlated_dictionary(n: int, m: int, *, generator: torch.Generator | None = None,
                          dtype: torch.dtype = torch.float64) -> Tensor:
    """``Phi = sum_{i=1}^n i^{-2} u_i v_i^T`` with unit-norm columns (Sec. 4.1).

    Parameters
    ----------
    n, m : int
        Rows (measurements) and columns (atoms).
    generator : torch.Generator, optional
        Source of the i.i.d. standard normal ``u_i`` (``n``) and ``v_i`` (``m``).
    dtype : torch.dtype
        Real floating dtype.

    Returns
    -------
    Tensor
        ``(n, m)`` dictionary whose singular values decay like ``1/i^2`` before normalisation,
        so its columns are strongly correlated.
    """
    check_int("n", n, minimum=1)
    check_int("m", m, minimum=1)
    u = torch.randn(n, n, generator=generator, dtype=dtype)  # column i is u_i
    v = torch.randn(m, n, generator=generator, dtype=dtype)  # column i is v_i
    scale = 1.0 / torch.arange(1, n + 1, dtype=dtype) ** 2
    phi = (u * scale) @ v.T
    return phi / torch.linalg.vector_norm(phi, dim=0, keepdim=True)


def uncorrelated_dictionary(n: int, m: int, *, generator: torch.Generator | None = None,
                            dtype: torch.dtype = torch.float64) -> Tensor:
    """i.i.d. Gaussian ``(n, m)`` dictionary with unit-norm columns (the sparse-coding family's)."""
    return gaussian_dictionary(n, m, generator=generator, dtype=dtype)


def sparse_codes(batch: int, m: int, d: int | tuple[int, int], *, low: float = 0.1, high: float = 0.5,
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64,
                 d_weights: tuple[float, ...] | None = None) -> Tensor:
    """``(batch, m)`` codes with ``d`` non-zeros on a uniformly random support.

    Amplitudes are uniform on ``[-high, -low] U [low, high]``. ``d`` may be a pair ``(d_min, d_max)``:
    each row then draws its own ``d`` in that range (inclusive), uniformly, or with probabilities proportional
    to ``d_weights`` (one non-negative weight per value ``d_min, ..., d_max``; see :func:`check_d_weights`).
    """
    check_int("batch", batch, minimum=1)
    d_min, d_max = (d, d) if isinstance(d, int) else (int(d[0]), int(d[1]))
    if not 1 <= d_min <= d_max <= m:
        raise ValueError(f"d must satisfy 1 <= d <= m={m}, got {d}")
    if not 0 <= low < high:
        raise ValueError(f"need 0 <= low < high, got low={low}, high={high}")
    ranks = torch.rand(batch, m, generator=generator).argsort(dim=1).argsort(dim=1)  # random permutation ranks
    if d_weights is None:
        dd = torch.randint(d_min, d_max + 1, (batch, 1), generator=generator)
    else:
        w = torch.tensor(check_d_weights(d_weights, d), dtype=torch.float64)
        dd = d_min + torch.multinomial(w, batch, replacement=True, generator=generator).unsqueeze(1)
    support = ranks < dd
    mag = low + (high - low) * torch.rand(batch, m, generator=generator, dtype=dtype)
    sign = torch.where(torch.rand(batch, m, generator=generator) < 0.5, -1.0, 1.0).to(dtype)
    return mag * sign * support


def check_d_weights(d_weights, d: int | tuple[int, int]) -> tuple[float, ...]:
    """Validated ``d_weights`` for the range ``d`` (a pair ``(d_min, d_max)``) as a tuple of floats.

    One finite, non-negative weight per value ``d_min, ..., d_max``, not all zero; they need not sum to one.
    """
    if isinstance(d, int):
        raise ValueError("d_weights needs a range of d, a pair (d_min, d_max); got a single d")
    d_min, d_max = int(d[0]), int(d[1])
    w = tuple(float(v) for v in d_weights)
    if len(w) != d_max - d_min + 1:
        raise ValueError(f"d_weights needs one weight per d in {d_min}..{d_max} ({d_max - d_min + 1}), got {len(w)}")
    if not all(math.isfinite(v) and v >= 0 for v in w) or sum(w) <= 0:
        raise ValueError(f"d_weights must be finite, non-negative and not all zero, got {w}")
    return w


@dataclass
class CorrelatedSparseProblem:
    """``y = Phi x* + eps`` with a correlated (Sec. 4.1) or Gaussian dictionary.

    Parameters
    ----------
    n, m : int
        Measurements and atoms (paper: 20 and 100).
    d : int or (int, int)
        Non-zeros per code, or a range drawn per sample (used to train one net for several ``d``).
    d_weights : tuple of float, optional
        With a range ``d``: relative probabilities of ``d_min, ..., d_max`` (default: uniform).
    noise_std : float
        Standard deviation of the white Gaussian noise ``eps`` (0 for noiseless).
    correlated : bool
        Sec. 4.1's correlated dictionary (default) or an i.i.d. Gaussian one.
    seed : int
        Seed of the dictionary.
    dtype, device
        Of ``Phi`` and the samples.
    """

    n: int = 20
    m: int = 100
    d: int | tuple[int, int] = 8
    noise_std: float = 0.01
    correlated: bool = True
    seed: int = 0
    dtype: torch.dtype = torch.float64
    device: str = "cpu"
    d_weights: tuple[float, ...] | None = None
    Phi: Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_int("n", self.n, minimum=1)
        check_int("m", self.m, minimum=1)
        d_max = self.d if isinstance(self.d, int) else max(self.d)
        if isinstance(self.d, int):
            check_int("d", self.d, minimum=1)
        if d_max > self.n:
            raise ValueError(f"d={self.d} is larger than n={self.n}: the support cannot be identified")
        if self.d_weights is not None:
            self.d_weights = check_d_weights(self.d_weights, self.d)
        check_positive("noise_std", self.noise_std, allow_zero=True)
        g = torch.Generator().manual_seed(int(self.seed))
        make = correlated_dictionary if self.correlated else uncorrelated_dictionary
        # drawn in float64 whatever the dtype, so a float32 problem has the float64 one's dictionary
        self.Phi = make(self.n, self.m, generator=g, dtype=torch.float64).to(self.dtype).to(self.device)

    def sample(self, n_samples: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw ``(y, x*)`` of shapes ``(n_samples, n)`` and ``(n_samples, m)``."""
        check_int("n_samples", n_samples, minimum=1)
        x = sparse_codes(n_samples, self.m, self.d, generator=generator, dtype=self.dtype,
                         d_weights=self.d_weights)
        y = x @ self.Phi.cpu().T
        if self.noise_std > 0:
            y = y + self.noise_std * torch.randn(y.shape, generator=generator, dtype=self.dtype)
        return y.to(self.device), x.to(self.device)

    def config(self) -> dict:
        """JSON-serialisable description that rebuilds the same problem."""
        return {"n": self.n, "m": self.m, "d": self.d if isinstance(self.d, int) else list(self.d),
                "noise_std": self.noise_std, "correlated": self.correlated, "seed": self.seed,
                "dtype": str(self.dtype).replace("torch.", ""),
                **({} if self.d_weights is None else {"d_weights": list(self.d_weights)})}


def steering_matrix(n_sensors: int, angles_deg: Tensor, *, spacing: float = 0.5,
                    dtype: torch.dtype = torch.complex128) -> Tensor:
    """Steering vectors of a uniform linear array, one column per angle.

    ``Phi[k, j] = exp(-2 pi i * spacing * k * sin(theta_j)) / sqrt(n)``, sensor ``k = 0..n-1``,
    ``spacing`` in wavelengths (0.5: half-wavelength, no grating lobes). Columns have unit norm.
    """
    check_int("n_sensors", n_sensors, minimum=1)
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    k = torch.arange(n_sensors, dtype=real).unsqueeze(1)
    s = torch.sin(torch.deg2rad(angles_deg.to(real))).unsqueeze(0)
    phase = -2.0 * math.pi * spacing * k * s
    return torch.polar(torch.ones_like(phase), phase).to(dtype) / math.sqrt(n_sensors)


@dataclass
class DOAProblem:
    """Direction-of-arrival estimation as complex sparse regression (Sec. 4.2).

    Parameters
    ----------
    n_sensors : int
        Uniform linear array size (paper: 10).
    resolution : float
        Grid spacing in degrees; the grid covers ``[-90, 90)`` (a half circle).
    n_sources : int
        Sources per snapshot (paper: 4), at distinct random grid angles with coefficients ``+-1 +- i``.
    snr_db : float, (float, float) or None
        Per-sample SNR ``||Phi x||^2 / E||eps||^2`` in dB; a pair draws each sample's SNR uniformly in
        that range (training over a range of noise levels); ``None`` is noiseless.
    dtype, device
        Complex dtype of ``Phi`` and samples.
    """

    n_sensors: int = 10
    resolution: float = 2.0
    n_sources: int = 4
    snr_db: float | tuple[float, float] | None = 20.0
    dtype: torch.dtype = torch.complex128
    device: str = "cpu"
    angles: Tensor = field(init=False, repr=False)
    Phi: Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_int("n_sensors", self.n_sensors, minimum=2)
        check_positive("resolution", self.resolution)
        check_int("n_sources", self.n_sources, minimum=1)
        if self.n_sources > self.n_sensors:
            raise ValueError(f"n_sources={self.n_sources} is larger than n_sensors={self.n_sensors}")
        if self.dtype not in (torch.complex64, torch.complex128):
            raise ValueError(f"dtype must be complex64 or complex128, got {self.dtype}")
        if isinstance(self.snr_db, (tuple, list)):
            if len(self.snr_db) != 2 or not self.snr_db[0] <= self.snr_db[1]:
                raise ValueError(f"snr_db range must be (low, high) with low <= high, got {self.snr_db}")
        elif self.snr_db is not None and not math.isfinite(float(self.snr_db)):
            raise ValueError(f"snr_db must be finite or None, got {self.snr_db}")
        real = torch.float64 if self.dtype == torch.complex128 else torch.float32
        self.angles = torch.arange(-90.0, 90.0, self.resolution, dtype=real)
        self.Phi = steering_matrix(self.n_sensors, self.angles, dtype=self.dtype).to(self.device)

    @property
    def m(self) -> int:
        """Number of grid angles (atoms)."""
        return int(self.angles.numel())

    def sample(self, n_samples: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw complex ``(y, x*)`` of shapes ``(n_samples, n_sensors)`` and ``(n_samples, m)``."""
        check_int("n_samples", n_samples, minimum=1)
        real = self.angles.dtype
        ranks = torch.rand(n_samples, self.m, generator=generator).argsort(1).argsort(1)
        support = (ranks < self.n_sources).to(real)
        re = torch.where(torch.rand(n_samples, self.m, generator=generator) < 0.5, -1.0, 1.0).to(real)
        im = torch.where(torch.rand(n_samples, self.m, generator=generator) < 0.5, -1.0, 1.0).to(real)
        x = torch.complex(re * support, im * support)
        clean = x @ self.Phi.cpu().T
        if self.snr_db is not None:
            power = clean.abs().pow(2).mean(dim=-1, keepdim=True)
            if isinstance(self.snr_db, (tuple, list)):
                lo, hi = float(self.snr_db[0]), float(self.snr_db[1])
                snr = lo + (hi - lo) * torch.rand(n_samples, 1, generator=generator, dtype=real)
            else:
                snr = torch.tensor(float(self.snr_db), dtype=real)
            sigma = torch.sqrt(power / 10.0 ** (snr / 10.0) / 2.0)  # per real/imag part
            noise = torch.complex(torch.randn(clean.shape, generator=generator, dtype=real),
                                  torch.randn(clean.shape, generator=generator, dtype=real))
            clean = clean + sigma * noise
        return clean.to(self.device), x.to(self.device)

    def config(self) -> dict:
        """JSON-serialisable description that rebuilds the same problem."""
        return {"n_sensors": self.n_sensors, "resolution": self.resolution, "n_sources": self.n_sources,
                "snr_db": list(self.snr_db) if isinstance(self.snr_db, (tuple, list)) else self.snr_db, "dtype": str(self.dtype).replace("torch.", "")}
