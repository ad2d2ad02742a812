r"""Single-channel speech enhancement data: shipped speech, simulated rooms and non-speech noise.

A mixture is :math:`x = h_s * s + h_n * n` at a random SNR, where :math:`s` is an utterance of the split
(:mod:`unrolled.nmf.corpus`), :math:`h_s, h_n` are room impulse responses from two positions of one room
simulated by ``pyroomacoustics`` (image source method; room size, RT60 and positions random), and :math:`n` is
one of three noise models:

* ``'coloured'``: Gaussian noise with a :math:`1/f^\alpha` spectrum (:math:`\alpha \in [0, 2]`), amplitude
  modulated at 0.3-3 Hz (non-stationary);
* ``'babble'``: 3-5 other utterances of the same split, summed;
* ``'machine'``: a harmonic tone (60-250 Hz fundamental, slowly drifting, 6-16 harmonics) switched on and off
  at 1-4 Hz, over a weak broadband floor.

The enhancement target is the reverberant speech :math:`h_s * s` (noise removal, as in the CHiME-2 task
Hershey et al. trained deep NMF on); SNRs are measured against it. Train, validation and test differ in
utterances and voices (the shipped splits) and in rooms (the room bank is drawn from ``seed`` and the
split). Random numbers come from the ``torch.Generator`` passed to ``sample``; the room bank from
``numpy.random.default_rng`` seeded by ``(seed, split)``.

Magnitude spectrograms are ``|torch.stft|`` with a Hann window (:func:`stft`, :func:`magnitude`); the
enhanced waveform is the inverse STFT of the estimated magnitude with the noisy phase (:func:`resynthesise`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from unrolled.core.unrolled_net import dtype_from_name
from unrolled.nmf import corpus

NOISES = ("coloured", "babble", "machine")
_SPLIT_SEED = {"train": 11, "val": 23, "test": 37}


# ------------------------------------------------------------------ STFT
def stft(x: Tensor, n_fft: int, hop: int) -> Tensor:
    """Complex STFT ``(B, n_fft // 2 + 1, frames)`` of ``(B, N)`` waveforms (Hann window, centred)."""
    window = torch.hann_window(n_fft, dtype=x.dtype, device=x.device)
    return torch.stft(x, n_fft, hop, window=window, center=True, return_complex=True)


def magnitude(x: Tensor, n_fft: int, hop: int) -> Tensor:
    """Magnitude spectrogram ``|STFT(x)|``."""
    return stft(x, n_fft, hop).abs().contiguous()


def resynthesise(S_hat: Tensor, noisy: Tensor, n_fft: int, hop: int) -> Tensor:
    """Waveforms ``(B, N)`` from estimated magnitudes ``(B, F, T)`` and the phase of the noisy waveforms."""
    X = stft(noisy, n_fft, hop)
    phase = X / X.abs().clamp_min(torch.finfo(noisy.dtype).tiny)
    window = torch.hann_window(n_fft, dtype=noisy.dtype, device=noisy.device)
    return torch.istft(S_hat.to(noisy.dtype) * phase, n_fft, hop, window=window, center=True,
                       length=noisy.shape[-1])


def fft_convolve(x: Tensor, h: Tensor) -> Tensor:
    """Linear convolution of ``(..., N)`` signals with ``(..., K)`` filters, truncated to ``N`` samples."""
    n = x.shape[-1] + h.shape[-1] - 1
    size = 1 << (n - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(x, size) * torch.fft.rfft(h, size), size)
    return y[..., : x.shape[-1]]


# ------------------------------------------------------------------ rooms
@lru_cache(maxsize=16)
def room_bank(split: str, seed: int, n_rooms: int, fs: int, max_order: int = 25) -> tuple[dict, ...]:
    """``n_rooms`` simulated rooms, each ``{'speech_rir', 'noise_rir', 'rt60', 'dims'}`` (numpy float64).

    Shoebox rooms 3-8 m x 3-7 m x 2.5-3.5 m, target RT60 0.2-0.6 s (``pyroomacoustics.inverse_sabine``,
    image-source order capped at ``max_order``); microphone, speech and noise source at random positions at least
    0.5 m from the walls, sources 1-3 m from the microphone.
    """
    import pyroomacoustics as pra

    rng = np.random.default_rng([seed, _SPLIT_SEED[split]])
    rooms = []
    while len(rooms) < n_rooms:
        dims = rng.uniform([3.0, 3.0, 2.5], [8.0, 7.0, 3.5])
        rt60 = float(rng.uniform(0.2, 0.6))
        absorption, order = pra.inverse_sabine(rt60, dims)
        inside = lambda: rng.uniform(0.5, dims - 0.5)  # noqa: E731
        mic, src, noi = inside(), inside(), inside()
        if not (1.0 <= np.linalg.norm(src - mic) <= 3.0 and 1.0 <= np.linalg.norm(noi - mic) <= 3.0):
            continue
        room = pra.ShoeBox(dims, fs=fs, materials=pra.Material(absorption), max_order=min(order, max_order))
        room.add_source(src)
        room.add_source(noi)
        room.add_microphone(mic)
        room.compute_rir()
        rirs = [np.asarray(room.rir[0][i], dtype=np.float64) for i in range(2)]
        rooms.append({"speech_rir": rirs[0], "noise_rir": rirs[1], "rt60": rt60, "dims": dims.tolist()})
    return tuple(rooms)


# ------------------------------------------------------------------ noise models
def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=g, dtype=torch.float64))


def coloured_noise(n: int, fs: int, g: torch.Generator) -> Tensor:
    r""":math:`1/f^\alpha` Gaussian noise, :math:`\alpha \sim U[0, 2]`, amplitude modulated at 0.3-3 Hz."""
    alpha = _uniform(g, 0.0, 2.0)
    spec = torch.fft.rfft(torch.randn(n, generator=g, dtype=torch.float64))
    f = torch.fft.rfftfreq(n, 1.0 / fs, dtype=torch.float64).clamp_min(20.0)
    x = torch.fft.irfft(spec * f ** (-alpha / 2), n)
    t = torch.arange(n, dtype=torch.float64) / fs
    depth, rate, phase = _uniform(g, 0.3, 0.9), _uniform(g, 0.3, 3.0), _uniform(g, 0.0, 2 * math.pi)
    return x * (1.0 + depth * torch.sin(2 * math.pi * rate * t + phase))


def machine_noise(n: int, fs: int, g: torch.Generator) -> Tensor:
    """A drifting harmonic tone gated on and off at 1-4 Hz, over a weak white floor."""
    t = torch.arange(n, dtype=torch.float64) / fs
    f0 = _uniform(g, 60.0, 250.0)
    drift = 1.0 + 0.03 * torch.sin(2 * math.pi * _uniform(g, 0.1, 1.0) * t + _uniform(g, 0, 2 * math.pi))
    phase = 2 * math.pi * torch.cumsum(f0 * drift, 0) / fs
    n_harm = int(torch.randint(6, 17, (), generator=g))
    decay = _uniform(g, 0.5, 1.5)
    x = torch.zeros(n, dtype=torch.float64)
    for k in range(1, n_harm + 1):
        if k * f0 * 1.03 < fs / 2:
            x = x + k ** (-decay) * torch.sin(k * phase + _uniform(g, 0, 2 * math.pi))
    rate, duty = _uniform(g, 1.0, 4.0), _uniform(g, 0.5, 0.9)
    cycle = torch.remainder(rate * t + _uniform(g, 0.0, 1.0), 1.0)
    gate = torch.sigmoid((duty - cycle) * 60.0) * torch.sigmoid(cycle * 60.0)  # smooth on/off
    return x * (0.1 + 0.9 * gate) + 0.02 * x.std() * torch.randn(n, generator=g, dtype=torch.float64)


def babble_noise(n: int, pool: list[Tensor], g: torch.Generator, exclude: int | None = None) -> Tensor:
    """3-5 utterances of ``pool`` (not ``exclude``), each looped to ``n`` samples from a random offset, summed."""
    choices = [i for i in range(len(pool)) if i != exclude]
    count = min(int(torch.randint(3, 6, (), generator=g)), len(choices))
    order = torch.randperm(len(choices), generator=g)[:count].tolist()
    x = torch.zeros(n, dtype=torch.float64)
    for i in order:
        u = pool[choices[i]]
        reps = math.ceil((n + len(u)) / len(u))
        start = int(torch.randint(0, len(u), (), generator=g))
        piece = u.repeat(reps)[start: start + n]
        x = x + piece / piece.std().clamp_min(1e-12)
    return x


# ------------------------------------------------------------------ the problem
@dataclass(frozen=True)
class SpeechEnhancementProblem:
    """Noisy reverberant speech -> reverberant speech, as magnitude spectrograms (see the module docstring).

    Parameters
    ----------
    split : {'train', 'val', 'test'}
    seed : int
        Seeds the room bank (different seeds: different rooms).
    n_rooms : int
        Rooms in the bank.
    duration : float
        Seconds per mixture (a random crop of the utterance, zero padded when shorter).
    n_fft, hop : int
        STFT size and hop (``F = n_fft // 2 + 1`` frequencies).
    snr_db : (float, float)
        SNR range (uniform), in dB against the reverberant speech.
    noises : tuple of str
        Noise models drawn from (uniformly).
    dtype : {'float64', 'float32'}
    """

    split: str = "train"
    seed: int = 0
    n_rooms: int = 6
    duration: float = 2.0
    n_fft: int = 256
    hop: int = 64
    snr_db: tuple[float, float] = (-5.0, 5.0)
    noises: tuple[str, ...] = NOISES
    dtype: str = "float64"

    def __post_init__(self):
        if self.split not in corpus.SPLITS:
            raise ValueError(f"split must be one of {corpus.SPLITS}, got {self.split!r}")
        if not set(self.noises) <= set(NOISES) or not self.noises:
            raise ValueError(f"noises must be a non-empty subset of {NOISES}, got {self.noises!r}")
        if not (self.duration > 0 and self.n_fft >= 8 and 1 <= self.hop <= self.n_fft and self.n_rooms >= 1):
            raise ValueError("duration must be > 0, n_fft >= 8, 1 <= hop <= n_fft and n_rooms >= 1")
        if not self.snr_db[0] <= self.snr_db[1]:
            raise ValueError(f"snr_db must be a (low, high) range, got {self.snr_db!r}")
        dtype_from_name(self.dtype)
        object.__setattr__(self, "snr_db", tuple(float(v) for v in self.snr_db))
        object.__setattr__(self, "noises", tuple(self.noises))

    fs = corpus.SAMPLE_RATE

    @property
    def n_freq(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def n_samples(self) -> int:
        return int(round(self.duration * self.fs))

    def config(self) -> dict:
        out = asdict(self)
        out["snr_db"], out["noises"] = list(self.snr_db), list(self.noises)
        return out

    def rooms(self) -> tuple[dict, ...]:
        return room_bank(self.split, self.seed, self.n_rooms, self.fs)

    def noise(self, kind: str, n: int, g: torch.Generator, exclude: int | None = None) -> Tensor:
        """A dry noise waveform of ``n`` samples from model ``kind``."""
        if kind == "coloured":
            return coloured_noise(n, self.fs, g)
        if kind == "machine":
            return machine_noise(n, self.fs, g)
        return babble_noise(n, corpus.utterances(self.split), g, exclude)

    def sample_waveforms(self, n: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """``n`` mixtures: ``{'noisy', 'speech', 'noise'}`` waveforms ``(n, N)`` (``noisy = speech + noise``)."""
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        pool, rooms, N = corpus.utterances(self.split), self.rooms(), self.n_samples
        speech, noise = [], []
        for _ in range(n):
            u = int(torch.randint(len(pool), (), generator=g))
            room = rooms[int(torch.randint(len(rooms), (), generator=g))]
            kind = self.noises[int(torch.randint(len(self.noises), (), generator=g))]
            snr = _uniform(g, *self.snr_db)
            utt = pool[u]
            if len(utt) >= N:
                start = int(torch.randint(len(utt) - N + 1, (), generator=g))
                dry = utt[start: start + N]
            else:
                dry = torch.nn.functional.pad(utt, (0, N - len(utt)))
            s = fft_convolve(dry, torch.from_numpy(room["speech_rir"]))
            v = fft_convolve(self.noise(kind, N, g, exclude=u), torch.from_numpy(room["noise_rir"]))
            v = v * torch.sqrt((s.pow(2).sum() / v.pow(2).sum().clamp_min(1e-20)) * 10 ** (-snr / 10))
            speech.append(s)
            noise.append(v)
        dt = dtype_from_name(self.dtype)
        s, v = torch.stack(speech).to(dt), torch.stack(noise).to(dt)
        return {"noisy": s + v, "speech": s, "noise": v}

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``(|STFT(noisy)|, |STFT(speech)|)``, each ``(n, F, T)``: the net's input and target."""
        w = self.sample_waveforms(n, generator)
        return magnitude(w["noisy"], self.n_fft, self.hop), magnitude(w["speech"], self.n_fft, self.hop)

    def source_spectrograms(self, n_noise: int = 12, seed: int = 0) -> tuple[list[Tensor], list[Tensor]]:
        """Training material for per-source bases: each utterance of the split reverberated in a room of the
        bank (whole utterance), and ``n_noise`` reverberated noise clips of ``duration`` seconds (models in
        turn); magnitude spectrograms ``(F, T_i)``."""
        g = torch.Generator().manual_seed(seed)
        rooms, dt = self.rooms(), dtype_from_name(self.dtype)
        speech = [fft_convolve(u, torch.from_numpy(rooms[i % len(rooms)]["speech_rir"]))
                  for i, u in enumerate(corpus.utterances(self.split))]
        noise = [fft_convolve(self.noise(self.noises[i % len(self.noises)], self.n_samples, g),
                              torch.from_numpy(rooms[i % len(rooms)]["noise_rir"])) for i in range(n_noise)]
        spec = lambda x: magnitude(x.to(dt)[None], self.n_fft, self.hop)[0]  # noqa: E731
        return [spec(x) for x in speech], [spec(x) for x in noise]
