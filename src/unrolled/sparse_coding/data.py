"""Data model of the sparse-coding family (LISTA-CPSS paper, Sec. 5).

``x`` is Bernoulli(p) x N(0, 1), ``A`` has i.i.d. N(0, 1/m) entries with unit-norm
columns, and ``y = A x + w`` with ``w`` white Gaussian noise at a given SNR (or
none).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from unrolled.core.validation import check_int


def gaussian_dictionary(
    m: int,
    n: int,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> Tensor:
    """Draw ``A`` of shape ``(m, n)`` with i.i.d. N(0, 1/m) entries, then normalise its columns."""
    check_int("m", m, minimum=1)
    check_int("n", n, minimum=1)
    a = torch.randn(m, n, generator=generator, dtype=dtype, device=device) / m**0.5
    return a / torch.linalg.vector_norm(a, dim=0, keepdim=True)


def bernoulli_gaussian(
    batch: int,
    n: int,
    p: float,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> Tensor:
    """Draw ``(batch, n)`` sparse codes: each entry non-zero with probability ``p``, then N(0, 1)."""
    support = torch.rand(batch, n, generator=generator, dtype=dtype, device=device) < p
    values = torch.randn(batch, n, generator=generator, dtype=dtype, device=device)
    return values * support


def add_noise(
    clean: Tensor, snr_db: float | None, *, generator: torch.Generator | None = None
) -> Tensor:
    """Add white Gaussian noise at ``snr_db`` (per sample: ``||clean_b||^2 / E||w_b||^2``).

    ``snr_db=None`` (or ``inf``) returns ``clean`` unchanged.
    """
    if snr_db is None or snr_db == float("inf"):
        return clean
    power = clean.pow(2).mean(dim=-1, keepdim=True)
    sigma = torch.sqrt(power / 10.0 ** (snr_db / 10.0))
    noise = torch.randn(clean.shape, generator=generator, dtype=clean.dtype, device=clean.device)
    return clean + sigma * noise


@dataclass
class SparseCodingProblem:
    """A sparse linear inverse problem ``y = A x + w`` with a fixed dictionary.

    Parameters
    ----------
    m, n : int
        Measurements and code size; ``A`` is ``(m, n)``.
    p : float
        Probability that an entry of ``x`` is non-zero.
    snr_db : float or None
        Measurement SNR in dB; ``None`` is noiseless.
    seed : int
        Seed of the dictionary ``A`` (the codes use the generator passed to
        :meth:`sample`).
    dtype, device
        Of ``A`` and of the samples.

    Examples
    --------
    >>> prob = SparseCodingProblem(m=250, n=500, p=0.1, snr_db=40.0, seed=0)
    >>> y, x = prob.sample(64, torch.Generator().manual_seed(1))
    >>> y.shape, x.shape
    (torch.Size([64, 250]), torch.Size([64, 500]))
    """

    m: int = 250
    n: int = 500
    p: float = 0.1
    snr_db: float | None = None
    seed: int = 0
    dtype: torch.dtype = torch.float64
    device: str = "cpu"
    A: Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_int("m", self.m, minimum=1)
        check_int("n", self.n, minimum=1)
        if not 0.0 < float(self.p) <= 1.0:
            raise ValueError(f"p must be in (0, 1], got {self.p}")
        if self.snr_db is not None:
            if not isinstance(self.snr_db, (int, float)) or self.snr_db != self.snr_db:
                raise ValueError(f"snr_db must be a number or None, got {self.snr_db!r}")
        g = torch.Generator(device="cpu").manual_seed(int(self.seed))
        self.A = gaussian_dictionary(self.m, self.n, generator=g, dtype=self.dtype).to(self.device)

    def sample(self, n_samples: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw ``n_samples`` pairs: returns ``(y, x)`` of shapes ``(n_samples, m)`` and ``(n_samples, n)``.

        Random numbers are drawn on the CPU from ``generator`` (so a seed gives
        the same data on every device) and moved to ``device``.
        """
        check_int("n_samples", n_samples, minimum=1)
        x = bernoulli_gaussian(n_samples, self.n, self.p, generator=generator, dtype=self.dtype)
        A = self.A.cpu()
        y = add_noise(x @ A.T, self.snr_db, generator=generator)
        return y.to(self.device), x.to(self.device)

    def config(self) -> dict:
        """JSON-serialisable description that rebuilds the same problem."""
        return {
            "m": self.m,
            "n": self.n,
            "p": self.p,
            "snr_db": self.snr_db,
            "seed": self.seed,
            "dtype": str(self.dtype).replace("torch.", ""),
        }


def lipschitz_constant(A: Tensor) -> float:
    """``L = ||A||_2^2``, the Lipschitz constant of the Lasso data-fit gradient."""
    return float(torch.linalg.matrix_norm(A, ord=2) ** 2)
