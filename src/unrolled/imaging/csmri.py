"""Compressive MRI data model: ``y = M * (F x + noise)`` for images ``x`` from a source (review, box ADMM-CSNet).

:class:`CSMRIProblem` fixes one k-space mask (drawn from ``seed``: Cartesian lines or radial spokes at a
sampling ratio) and draws images from a source of :mod:`unrolled.imaging.images` (random ellipse phantoms by
default, patches of a split of the sample images, or Shepp-Logan). ``sample(n, generator)`` returns
``(y, x)``: k-space ``y (n, H, W)`` complex on the full grid (zero off the mask, complex white noise of
standard deviation ``noise_std`` per sampled coefficient) and the real images ``x (n, H, W)`` in ``[0, 1]``.
The FFT is orthonormal, so ``noise_std`` is also the noise level per pixel of the zero-filled image.
"""

from __future__ import annotations

import torch
from torch import Tensor

from unrolled.imaging.images import make_source
from unrolled.imaging.masks import MASKS, check_sampling_ratio, make_mask
from unrolled.imaging.operators import SubsampledFourier, complex_dtype

__all__ = ["CSMRIProblem", "zero_filled"]


class CSMRIProblem:
    """Compressive MRI problems of one size, mask and image source.

    Parameters
    ----------
    size : int
        Images are ``size x size``.
    sampling_ratio : float
        Fraction of k-space sampled, in ``(0, 1]``.
    mask : {'cartesian', 'radial'}
        Sampling pattern (:mod:`unrolled.imaging.masks`).
    noise_std : float
        Standard deviation of the complex noise per sampled coefficient (``>= 0``).
    source : str, dict or source object
        Where the images come from (:func:`unrolled.imaging.images.make_source`): ``'phantoms'``, ``'train'``,
        ``'val'``, ``'test'``, ``'shepp_logan'``.
    seed : int
        Draws the mask.
    dtype : torch.dtype
        Real dtype of the targets (``y`` is the matching complex dtype).
    """

    def __init__(self, size: int, sampling_ratio: float, mask: str = "cartesian", noise_std: float = 0.0,
                 source="phantoms", seed: int = 0, dtype: torch.dtype = torch.float64):
        if isinstance(size, bool) or not isinstance(size, int) or size < 4:
            raise ValueError(f"size must be an int >= 4, got {size!r}")
        self.size = size
        self.sampling_ratio = check_sampling_ratio(sampling_ratio)
        if mask not in MASKS:
            raise ValueError(f"mask must be one of {MASKS}, got {mask!r}")
        if not (isinstance(noise_std, (int, float)) and 0 <= noise_std < float("inf")):
            raise ValueError(f"noise_std must be a finite number >= 0, got {noise_std!r}")
        self.mask_kind, self.noise_std, self.seed, self.dtype = mask, float(noise_std), int(seed), dtype
        self.source = make_source(source, size)
        self.mask = make_mask(mask, size, self.sampling_ratio, generator=torch.Generator().manual_seed(seed))
        self.operator = SubsampledFourier(self.mask)

    @property
    def actual_ratio(self) -> float:
        """The sampled fraction of this problem's mask."""
        return self.operator.sampling_ratio

    def measure(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """k-space of images ``x (n, H, W)`` with this problem's mask and noise (noise drawn on the CPU)."""
        y = self.operator.forward(x)
        if self.noise_std > 0:
            shape = (2, *y.shape)
            noise = torch.randn(shape, generator=generator, dtype=x.real.dtype).to(x.device)
            y = y + self.operator._mask(y) * self.noise_std / 2**0.5 * torch.complex(noise[0], noise[1])
        return y

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``(y, x)``: k-space ``(n, H, W)`` (complex) and the images ``(n, H, W)`` (real)."""
        x = self.source.sample(n, generator, dtype=torch.float64)
        y = self.measure(x, generator)
        return y.to(complex_dtype(self.dtype)), x.to(self.dtype)

    def config(self) -> dict:
        return {"size": self.size, "sampling_ratio": self.sampling_ratio, "mask": self.mask_kind,
                "noise_std": self.noise_std, "source": self.source.config(), "seed": self.seed,
                "dtype": str(self.dtype).replace("torch.", "")}


def zero_filled(y: Tensor) -> Tensor:
    """The zero-filled reconstruction ``F^H y`` (complex, ``(..., H, W)``) of full-grid k-space ``y``."""
    return torch.fft.ifft2(y, norm="ortho")
