r"""The conventional deep network the review compares deep NMF with: a BLSTM mask estimator.

As in Hershey et al. (2014) / Weninger et al. (2014), a bidirectional LSTM reads the log-magnitude frames of the
noisy spectrogram (standardised per frequency with statistics of the training set) and outputs a mask in
(0, 1) per time-frequency bin; the estimate is :math:`\hat S = \mathrm{mask} \odot M`, trained with the same
loss and data as deep NMF. It has no model of the signal, only more parameters.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from unrolled.core.io import register_model
from unrolled.core.unrolled_net import dtype_from_name, dtype_name
from unrolled.core.validation import check_int, check_tensor, from_numpy


@register_model
class MaskBLSTM(nn.Module):
    """BLSTM mask estimation on noisy magnitudes ``M`` ``(B, F, T)`` -> speech estimate ``(B, F, T)``.

    Parameters
    ----------
    n_freq : int
        Frequencies ``F``.
    hidden : int, default 96
        LSTM units per direction.
    n_lstm : int, default 2
        Stacked BLSTM layers.
    dtype : {'float64', 'float32'}
    """

    def __init__(self, n_freq: int, hidden: int = 96, n_lstm: int = 2, dtype: str = "float32"):
        super().__init__()
        self.n_freq = check_int("n_freq", n_freq, minimum=1)
        self.hidden, self.n_lstm = check_int("hidden", hidden, minimum=1), check_int("n_lstm", n_lstm, minimum=1)
        dt = dtype_from_name(dtype)
        self.lstm = nn.LSTM(n_freq, hidden, n_lstm, batch_first=True, bidirectional=True, dtype=dt)
        self.out = nn.Linear(2 * hidden, n_freq, dtype=dt)
        self.register_buffer("mean", torch.zeros(n_freq, dtype=dt))
        self.register_buffer("std", torch.ones(n_freq, dtype=dt))

    @staticmethod
    def features(M: Tensor) -> Tensor:
        """``log(M + 1e-4 * mean(M))`` per spectrogram: a level-relative log magnitude ``(B, F, T)``."""
        return torch.log(M + 1e-4 * M.mean(dim=(-2, -1), keepdim=True) + torch.finfo(M.dtype).tiny)

    @torch.no_grad()
    def fit_normalisation(self, M: Tensor) -> "MaskBLSTM":
        """Set the per-frequency standardisation from training spectrograms ``(B, F, T)``."""
        f = self.features(M.to(self.mean.dtype))
        self.mean.copy_(f.mean(dim=(0, 2)))
        self.std.copy_(f.std(dim=(0, 2)).clamp_min(1e-6))
        return self

    def forward(self, M) -> Tensor:
        M = check_tensor("M", from_numpy(M), ndim=(2, 3))
        if M.dtype != self.mean.dtype or M.shape[-2] != self.n_freq or bool((M < 0).any()):
            raise ValueError(f"M must be a non-negative {self.mean.dtype} spectrogram with {self.n_freq} rows, "
                             f"got {M.dtype} {tuple(M.shape)}")
        unbatched = M.dim() == 2
        M = M.unsqueeze(0) if unbatched else M
        z = (self.features(M) - self.mean[:, None]) / self.std[:, None]
        h, _ = self.lstm(z.transpose(1, 2))
        mask = torch.sigmoid(self.out(h)).transpose(1, 2)
        out = mask * M
        return out[0] if unbatched else out

    def config(self) -> dict:
        return {"n_freq": self.n_freq, "hidden": self.hidden, "n_lstm": self.n_lstm,
                "dtype": dtype_name(self.mean.dtype)}
