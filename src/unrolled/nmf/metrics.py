"""Enhancement metrics and losses: spectral SNR (training), SDR / SI-SDR (``fast_bss_eval``), STOI (``pystoi``)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def spectral_snr_db(estimate: Tensor, target: Tensor) -> Tensor:
    r"""Per spectrogram :math:`10\log_{10}(\|S\|_F^2 / \|S - \hat S\|_F^2)`, ``(B,)`` for ``(B, F, T)``."""
    err = (estimate - target).pow(2).sum(dim=(-2, -1))
    ref = target.pow(2).sum(dim=(-2, -1))
    tiny = torch.finfo(target.dtype).tiny
    return 10 * torch.log10(ref.clamp_min(tiny) / err.clamp_min(tiny))


def spectral_snr_loss(estimate: Tensor, target: Tensor) -> Tensor:
    """Negative :func:`spectral_snr_db` averaged over the batch (the SNR objective of Hershey et al.)."""
    return -spectral_snr_db(estimate, target).mean()


def sdr_si_sdr(reference: Tensor, estimate: Tensor) -> tuple[Tensor, Tensor]:
    """``(SDR, SI-SDR)`` in dB per waveform ``(B,)`` (``fast_bss_eval``, single source, 512-tap distortion filter).

    fast_bss_eval's SDR is BSS Eval v4's (the time-invariant distortion filter of mir_eval's ``bss_eval_sources``).
    """
    import fast_bss_eval

    ref, est = reference.double()[:, None], estimate.double()[:, None]
    sdr = fast_bss_eval.sdr(ref, est, filter_length=512, clamp_db=60)[:, 0]
    si = fast_bss_eval.si_sdr(ref, est, clamp_db=60)[:, 0]
    return sdr, si


def stoi(reference: Tensor, estimate: Tensor, fs: int) -> np.ndarray:
    """STOI per waveform (``pystoi``, classic, not extended), ``(B,)`` numpy array."""
    from pystoi import stoi as _stoi

    ref, est = reference.detach().cpu().double().numpy(), estimate.detach().cpu().double().numpy()
    return np.array([_stoi(r, e, fs, extended=False) for r, e in zip(ref, est)])
