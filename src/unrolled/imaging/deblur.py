r"""The blind-deblurring data model (review, DUBLID box, eq. (6)): :math:`y = k * x + n`.

:class:`BlindDeblurProblem` draws sharp images from an image source (:mod:`unrolled.imaging.images`: patches of
disjoint train / val / test images, or random ellipse phantoms), blur kernels from a
:class:`~unrolled.imaging.kernels.KernelSource`, blurs each image with its own kernel by circular convolution
(:class:`~unrolled.imaging.operators.Blur`) and adds white Gaussian noise of standard deviation ``noise_std``.
``sample(n, generator)`` returns ``(y, (x, k))``: the blurred images, what
:class:`~unrolled.imaging.dublid.DUBLID` and :func:`~unrolled.imaging.hqs.hqs_blind_deblur` take, and the
targets (sharp images and kernels) the translation-invariant loss compares with.
"""

from __future__ import annotations

import torch
from torch import Tensor

from unrolled.core.validation import check_int, check_positive
from unrolled.imaging.images import make_source
from unrolled.imaging.kernels import KernelSource
from unrolled.imaging.operators import Blur

__all__ = ["BlindDeblurProblem"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class BlindDeblurProblem:
    """Blurred, noisy images with their sharp originals and kernels.

    Parameters
    ----------
    size : int
        Image side ``H = W``.
    kernels : KernelSource, str, tuple of str or dict, default ('gaussian', 'motion')
        The kernel source, kernel kinds (see :data:`~unrolled.imaging.kernels.KERNEL_KINDS`), or a
        :meth:`KernelSource.config` dict.
    kernel_size : int, default 15
        Odd support side (used when ``kernels`` is not a source); at most ``size``.
    noise_std : float, default 0.01
        Standard deviation of the additive Gaussian noise (images are in ``[0, 1]``).
    source : str, dict or source object, default 'train'
        Sharp images (:func:`~unrolled.imaging.images.make_source`: ``'train'``, ``'val'``, ``'test'`` patches,
        ``'phantoms'``, ``'shepp_logan'``).
    dtype : {'float64', 'float32'} or torch.dtype, default 'float64'
    seed : int, optional
        ``None``: kernels are drawn from the generator passed to :meth:`sample`, like the images and the noise.
        An int: kernels come from a private stream seeded once with it (the problem's own sequence of kernels,
        independent of the images' generator), so problems of different seeds blur with different kernels
        (held-out kernels) while the same seed and generator reproduce the same data.
    """

    def __init__(self, size: int, kernels=("gaussian", "motion"), *, kernel_size: int = 15, noise_std: float = 0.01,
                 source="train", dtype="float64", seed: int | None = None):
        self.size = check_int("size", size, minimum=4)
        if isinstance(kernels, KernelSource):
            self.kernels = kernels
        elif isinstance(kernels, dict):
            self.kernels = KernelSource(**kernels)
        else:
            self.kernels = KernelSource(kernels, kernel_size)
        if self.kernels.size > self.size:
            raise ValueError(f"kernel_size {self.kernels.size} is larger than the image size {self.size}")
        self.noise_std = check_positive("noise_std", noise_std, allow_zero=True)
        self.source = make_source(source, self.size)
        if getattr(self.source, "size", self.size) != self.size:
            raise ValueError(f"source has image size {self.source.size}, expected {self.size}")
        if isinstance(dtype, torch.dtype):
            dtype = str(dtype).replace("torch.", "")
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        self.dtype = _DTYPES[dtype]
        self.seed = None if seed is None else check_int("seed", seed)
        self._kernel_stream = None if seed is None else torch.Generator().manual_seed(self.seed)

    @property
    def kernel_size(self) -> int:
        return self.kernels.size

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """``n`` problems: ``(y (n, H, W), (x (n, H, W), k (n, s, s)))`` (CPU tensors of :attr:`dtype`)."""
        n = check_int("n", n, minimum=1)
        x = self.source.sample(n, generator, dtype=torch.float64)
        k = self.kernels.sample(n, generator if self._kernel_stream is None else self._kernel_stream,
                                dtype=torch.float64)
        y = Blur(k).forward(x)
        if self.noise_std > 0:
            y = y + self.noise_std * torch.randn(y.shape, generator=generator, dtype=torch.float64)
        return y.to(self.dtype), (x.to(self.dtype), k.to(self.dtype))

    def config(self) -> dict:
        """JSON constructor arguments (rebuilds the same problem)."""
        return {"size": self.size, "kernels": self.kernels.config(), "noise_std": self.noise_std,
                "source": self.source.config(), "dtype": str(self.dtype).replace("torch.", ""), "seed": self.seed}

    def __repr__(self) -> str:
        return (f"BlindDeblurProblem(size={self.size}, kernels={self.kernels.kinds}, kernel_size={self.kernel_size}, "
                f"noise_std={self.noise_std}, source={self.source.config()})")
