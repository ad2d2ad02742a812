"""Data model of the source-separation family (LPALM paper, Sec. 3 and appendix B).

A mixture is ``X = A S + N`` with ``X`` of shape ``(m, t)``, the mixing matrix
``A`` ``(m, n)`` whose columns are emission spectra (unit l2 norm) and the
sources ``S`` ``(n, t)``. Batches are batch-first: ``X`` is ``(B, m, t)``.

* :func:`load_spectra` / :func:`mixing_matrices`: the paper's 65-channel X-ray
  spectra (synchrotron, thermal, two iron lines), one of each kind per column.
* :func:`gennorm_sources`: i.i.d. generalised-Gaussian sources (shape 0.3),
  rows normalised (Sec. 3.1).
* :func:`synthetic_experiment`: the 750 / 150 split of Sec. 3.1, seeded.

The realistic sources of Sec. 3.2 live in :mod:`unrolled.separation.realistic`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from unrolled.core.validation import check_int, check_positive

#: Keys of the spectra file, in the column order of every mixing matrix.
SPECTRA_KINDS = ("sync", "therm", "fe1", "fe2")
SPECTRA_FILE = "lpalm_spectra.npz"
REAL_SOURCES_FILE = "lpalm_real_sources.npz"


def load_packaged_npz(name: str) -> dict[str, np.ndarray]:
    """Arrays of a ``.npz`` file shipped in ``unrolled/data`` (loaded without pickle), as float64."""
    blob = resources.files("unrolled").joinpath("data", name).read_bytes()
    with np.load(io.BytesIO(blob), allow_pickle=False) as f:
        return {k: np.asarray(f[k], dtype=np.float64) for k in f.files}


def load_spectra() -> dict[str, np.ndarray]:
    """The paper's spectra: ``{kind: (n_kind, 65)}`` with unit-norm rows (renormalised in float64)."""
    spectra = load_packaged_npz(SPECTRA_FILE)
    return {k: v / np.linalg.norm(v, axis=1, keepdims=True) for k, v in spectra.items()}


def mixing_matrices(n_matrices: int = 900) -> Tensor:
    """The ``(n_matrices, 65, 4)`` mixing matrices of the paper, float64.

    Matrix ``i`` has as columns the ``i``-th synchrotron, thermal and the two
    iron-line spectra, in the order :data:`SPECTRA_KINDS` (the thermal file
    has 1000 spectra; the first 900 are used, like the other kinds).
    """
    spectra = load_spectra()
    available = min(v.shape[0] for v in spectra.values())
    n_matrices = check_int("n_matrices", n_matrices, minimum=1)
    if n_matrices > available:
        raise ValueError(f"n_matrices must be <= {available}, got {n_matrices}")
    cols = [spectra[k][:n_matrices] for k in SPECTRA_KINDS]
    return torch.from_numpy(np.stack(cols, axis=-1))


def gennorm_sources(n_samples: int, n: int, t: int, *, beta: float = 0.3, seed: int = 0) -> Tensor:
    """I.i.d. generalised-Gaussian sources ``(n_samples, n, t)`` with unit-norm rows, float64.

    Drawn with ``scipy.stats.gennorm(beta)`` from ``numpy.random.default_rng(seed)``.
    """
    for name, v in (("n_samples", n_samples), ("n", n), ("t", t)):
        check_int(name, v, minimum=1)
    beta = check_positive("beta", beta)
    rng = np.random.default_rng(seed)
    s = stats.gennorm.rvs(beta, size=(n_samples, n, t), random_state=rng)
    return normalise_rows(torch.from_numpy(s))


def normalise_rows(S: Tensor) -> Tensor:
    """Scale every source (row of each ``(n, t)`` matrix) to unit l2 norm; all-zero rows are refused."""
    norms = torch.linalg.vector_norm(S, dim=-1, keepdim=True)
    if not torch.all(norms > 0):
        raise ValueError("a source is identically zero and cannot be normalised")
    return S / norms


def add_noise(clean: Tensor, snr_db: float | None, *, seed: int = 0) -> Tensor:
    """Add white Gaussian noise at ``snr_db`` per mixture: ``||AS||_F^2 / E||N||_F^2 = 10^(snr/10)``."""
    if snr_db is None:
        return clean.clone()
    g = torch.Generator().manual_seed(int(seed))
    power = clean.pow(2).mean(dim=(-2, -1), keepdim=True)
    sigma = torch.sqrt(power / 10.0 ** (float(snr_db) / 10.0))
    noise = torch.randn(clean.shape, generator=g, dtype=clean.dtype)
    return clean + sigma * noise.to(clean.device)


@dataclass
class SeparationData:
    """A set of mixtures with their ground truth, batch-first.

    Attributes
    ----------
    X : Tensor
        ``(B, m, t)`` mixtures.
    A : Tensor
        ``(B, m, n)`` mixing matrices.
    S : Tensor
        ``(B, n, t)`` sources.
    """

    X: Tensor
    A: Tensor
    S: Tensor

    def __post_init__(self) -> None:
        if self.X.dim() != 3 or self.A.dim() != 3 or self.S.dim() != 3:
            raise ValueError("X, A and S must be batch-first 3-d tensors")
        B, m, t = self.X.shape
        if self.A.shape[:2] != (B, m) or self.S.shape[0] != B or self.S.shape[2] != t or self.S.shape[1] != self.A.shape[2]:
            raise ValueError(f"inconsistent shapes X {tuple(self.X.shape)}, A {tuple(self.A.shape)}, S {tuple(self.S.shape)}")

    def __len__(self) -> int:
        return self.X.shape[0]

    @property
    def pair(self) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        """``(inputs, targets)`` for the Trainer: ``X`` and ``(A, S, X)``."""
        return self.X, (self.A, self.S, self.X)

    def subset(self, idx) -> "SeparationData":
        """The mixtures ``idx`` (index tensor, list or slice)."""
        return SeparationData(self.X[idx], self.A[idx], self.S[idx])

    def to(self, dtype: torch.dtype | None = None, device: str | torch.device | None = None) -> "SeparationData":
        """A copy in another dtype and/or on another device."""
        return SeparationData(*(t.to(dtype=dtype, device=device) for t in (self.X, self.A, self.S)))


def mix(A: Tensor, S: Tensor, snr_db: float | None, *, seed: int = 0) -> SeparationData:
    """``X = A S + N`` at ``snr_db`` for a batch of mixing matrices and sources."""
    return SeparationData(add_noise(A @ S, snr_db, seed=seed), A, S)


@dataclass(frozen=True)
class SyntheticConfig:
    """The synthetic experiment of Sec. 3.1 (defaults: the paper's)."""

    n_matrices: int = 900
    n_train: int = 750
    t: int = 500
    beta: float = 0.3
    snr_db: float = 30.0


def synthetic_experiment(cfg: SyntheticConfig = SyntheticConfig(), *, seed: int = 0) -> tuple[SeparationData, SeparationData]:
    """The train and test sets of Sec. 3.1, float64.

    The ``n_matrices`` mixing matrices are shuffled with ``seed`` and split
    into ``n_train`` train and the rest test; sources are generalised Gaussian
    (``beta``) with unit-norm rows; SNR ``snr_db``. Same seed, same data.
    """
    if not 1 <= cfg.n_train < cfg.n_matrices:
        raise ValueError(f"n_train must be in [1, n_matrices), got {cfg.n_train} of {cfg.n_matrices}")
    A = mixing_matrices(cfg.n_matrices)
    perm = torch.randperm(cfg.n_matrices, generator=torch.Generator().manual_seed(int(seed)))
    A = A[perm]
    S = gennorm_sources(cfg.n_matrices, A.shape[-1], cfg.t, beta=cfg.beta, seed=seed + 1)
    data = mix(A, S, cfg.snr_db, seed=seed + 2)
    return data.subset(slice(0, cfg.n_train)), data.subset(slice(cfg.n_train, None))


class SeparationProblem:
    """The synthetic data model of Sec. 3.1 as a sampler: ``sample(n, generator) -> (X, (A, S, X))``.

    Each mixture takes a mixing matrix drawn from the paper's spectra
    (:func:`mixing_matrices`, shuffled by ``seed``; every ``channel_step``-th
    channel, columns renormalised), generalised-Gaussian sources (``beta``,
    unit-norm rows) and noise at ``snr_db``. :attr:`A_ref`, :attr:`S_ref` are
    a fixed training pair of the problem (LPALM's initialisation reads one).

    Parameters
    ----------
    t : int
        Samples per mixture.
    n_matrices : int
        Size of the pool of mixing matrices.
    channel_step : int
        Keep every ``channel_step``-th of the 65 channels.
    beta, snr_db : float
        Source shape and noise level.
    seed : int
        Shuffles the pool and salts the source draws.
    dtype : torch.dtype
    """

    def __init__(self, t: int = 500, *, n_matrices: int = 900, channel_step: int = 1, beta: float = 0.3,
                 snr_db: float | None = 30.0, seed: int = 0, dtype: torch.dtype = torch.float64):
        self.t = check_int("t", t, minimum=1)
        self.n_matrices = check_int("n_matrices", n_matrices, minimum=1)
        self.channel_step = check_int("channel_step", channel_step, minimum=1)
        self.beta = check_positive("beta", beta)
        self.snr_db = None if snr_db is None else float(snr_db)
        self.seed = check_int("seed", seed)
        self.dtype = dtype
        A = mixing_matrices(self.n_matrices)[:, ::self.channel_step]
        A = A / torch.linalg.vector_norm(A, dim=1, keepdim=True)
        perm = torch.randperm(self.n_matrices, generator=torch.Generator().manual_seed(self.seed))
        self.pool = A[perm].to(dtype)
        self.m, self.n = self.pool.shape[1:]
        self.A_ref = self.pool[0]
        self.S_ref = gennorm_sources(1, self.n, self.t, beta=self.beta, seed=self.seed)[0].to(dtype)

    def sample(self, n_samples: int, generator: torch.Generator) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        """``n_samples`` mixtures ``X`` ``(B, m, t)`` and the targets ``(A, S, X)`` (the Trainer's form)."""
        n_samples = check_int("n_samples", n_samples, minimum=1)
        idx = torch.randint(self.n_matrices, (n_samples,), generator=generator)
        draw = int(torch.randint(2**31 - 1, (1,), generator=generator))
        salt = (self.seed * 1_000_003 + draw) % (2**63)
        A = self.pool[idx]
        S = gennorm_sources(n_samples, self.n, self.t, beta=self.beta, seed=salt).to(self.dtype)
        d = mix(A, S, self.snr_db, seed=salt + 1)
        return d.X, (d.A, d.S, d.X)

    def config(self) -> dict:
        return {"t": self.t, "n_matrices": self.n_matrices, "channel_step": self.channel_step, "beta": self.beta,
                "snr_db": self.snr_db, "seed": self.seed, "dtype": str(self.dtype).replace("torch.", "")}
