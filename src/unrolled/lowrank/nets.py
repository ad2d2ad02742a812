r"""CORONA (Solomon et al.; review, box CORONA, (17)-(18)) and the ResNet-style CNN baseline it is compared with.

:class:`CORONA` runs :class:`~unrolled.lowrank.iteration.RPCAIteration` (the step of the classic solver
:func:`~unrolled.lowrank.solvers.rpca_ista` with ``fast=False``) for ``n_layers`` layers, each with its own
complex convolution filters :math:`P_1^l..P_6^l` ``(k, k)`` and positive thresholds :math:`\lambda_1^l,
\lambda_2^l`.

* **Complex data**: the movies are complex and the filters are complex convolutions (each stored as a real
  ``(k, k, 2)`` parameter, real and imaginary parts, so that ``net.to(torch.float32)``, optimisers and
  safetensors see real tensors; :func:`torch.view_as_complex` turns it into the kernel). A complex filter is
  equivariant to the arbitrary global phase of demodulated data, as the SVT and l1,2 shrinkage are.
* **Positive thresholds**: exponential reparametrisation (:class:`~unrolled.core.params.LayerParameter`).
* **Stable SVD gradients**: the SVT of each layer has the closed-form, bounded backward pass of
  :func:`unrolled.lowrank.prox.svt` (divided differences of the thresholding function instead of autograd's
  :math:`1/(\sigma_i^2 - \sigma_j^2)`), finite for repeated and zero singular values, e.g. rank-deficient movies.
* **Untrained = ISTA**: :meth:`CORONA.from_algorithm` sets the filters to the (delta, for :math:`H = I`) kernels of
  :func:`~unrolled.lowrank.operators.algorithm_filters` and the thresholds to :math:`\lambda_i/\mu`.

:class:`ResNetRPCA` is the generic baseline of the comparison (the review's Table II: a ResNet with about 4.6x the
parameters): complex movies as two real channels, 3-D (time x space) convolutions, residual blocks, and a
residual output :math:`\hat L = D + \Delta_L`, :math:`\hat S = \Delta_S`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unrolled.core.io import register_model
from unrolled.core.unrolled_net import UnrolledNet, check_n_layers, dtype_from_name, dtype_name
from unrolled.core.validation import check_int, check_positive, from_numpy
from unrolled.lowrank.iteration import RPCAIteration, stack_estimate
from unrolled.lowrank.operators import FILTER_NAMES, algorithm_filters, lipschitz, pad_kernel
from unrolled.lowrank.solvers import check_kernel, check_movie

__all__ = ["CORONA", "ResNetRPCA"]

_COMPLEX = {torch.float32: torch.complex64, torch.float64: torch.complex128}


def _check_net_input(net: nn.Module, D, min_size: int) -> tuple[Tensor, bool]:
    D, single = check_movie("D", from_numpy(D), complex_only=True)
    want = _COMPLEX[net.dtype]
    if D.dtype != want:
        raise ValueError(f"D has dtype {D.dtype} but the network is {net.dtype} (it takes {want}); convert one of them")
    device = next(net.parameters()).device
    if D.device != device:
        raise ValueError(f"D is on {D.device} but the network is on {device}")
    if min(D.shape[-2:]) < min_size:
        raise ValueError(f"D has {D.shape[-2]}x{D.shape[-1]} frames, smaller than the {min_size}x{min_size} filters")
    return D, single


@register_model
class CORONA(UnrolledNet):
    """Convolutional robust PCA: ``n_layers`` layers (17)-(18) mapping a movie ``D`` to ``[L, S]``.

    Parameters
    ----------
    n_layers : int
        Number of layers (the review's CORONA: 10).
    kernel_size : int, default 3
        Odd size ``k`` of the ``(k, k)`` filters :math:`P_i^l`.
    dtype : {'float64', 'float32'}
        Precision of the parameters; the net takes complex movies of the matching precision.
    tied : bool, default False
        One set of filters and thresholds for all layers.

    Notes
    -----
    Input ``D`` ``(B, T, H, W)`` or ``(T, H, W)`` complex; output ``(B, 2, T, H, W)`` (``[:, 0]`` = ``L``,
    ``[:, 1]`` = ``S``), ``(2, T, H, W)`` for one movie.
    """

    def __init__(self, n_layers: int, kernel_size: int = 3, dtype: str = "float64", tied: bool = False):
        super().__init__(check_n_layers(n_layers))
        k = check_int("kernel_size", kernel_size, minimum=1)
        if k % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {k}")
        self.kernel_size, self.tied = k, bool(tied)
        self.iteration = it = RPCAIteration(fast=False)
        dt = dtype_from_name(dtype)
        for name in FILTER_NAMES:
            setattr(self, name, it.layer_parameter(name, torch.zeros(k, k, 2, dtype=dt), self.n_layers, tied=tied))
        self.lam1 = it.layer_parameter("lam1", torch.tensor(1.0, dtype=dt), self.n_layers, tied=tied)
        self.lam2 = it.layer_parameter("lam2", torch.tensor(0.1, dtype=dt), self.n_layers, tied=tied)

    @classmethod
    def from_algorithm(cls, n_layers: int, lam1: float, lam2: float, *, H1=None, H2=None, mu: float | None = None,
                       frame_shape: tuple[int, int] | None = None, kernel_size: int = 3, dtype: str = "float64",
                       tied: bool = False) -> "CORONA":
        """The untrained net equal to ``n_layers`` iterations of ``rpca_ista(D, lam1, lam2, H1=H1, H2=H2, mu=mu,
        fast=False)``: filters :func:`~unrolled.lowrank.operators.algorithm_filters`, thresholds ``lam / mu``.

        ``frame_shape`` ``(H, W)`` is needed with a PSF (the Lipschitz constant of circular convolutions depends
        on the frame size); ``kernel_size`` must hold the filters (``2k - 1`` for ``k x k`` PSFs).
        """
        net = cls(n_layers, kernel_size, dtype, tied)
        dt = dtype_from_name(dtype)
        lam1, lam2 = check_positive("lam1", lam1), check_positive("lam2", lam2)
        if (H1 is not None or H2 is not None) and frame_shape is None:
            raise ValueError("frame_shape (H, W) is needed to set the step of an ISTA with a PSF")
        ref = torch.zeros(1, 1, *(frame_shape or (1, 1)), dtype=_COMPLEX[dt])
        H1, H2 = check_kernel("H1", H1, ref), check_kernel("H2", H2, ref)
        L = lipschitz(H1, H2, ref.shape[-2], ref.shape[-1], ref)
        mu = L if mu is None else check_positive("mu", mu)
        if mu < L * (1 - 1e-12):
            raise ValueError(f"mu must be >= the Lipschitz constant {L:.6g}, got {mu}")
        filters = algorithm_filters(H1, H2, mu, dtype=_COMPLEX[dt])
        values = {name: torch.view_as_real(pad_kernel(h, net.kernel_size)).contiguous() for name, h in filters.items()}
        return net.set_algorithm_values(**values, lam1=torch.tensor(lam1 / mu, dtype=dt),
                                        lam2=torch.tensor(lam2 / mu, dtype=dt))

    def layer_values(self, k: int) -> dict:
        values = {name: torch.view_as_complex(getattr(self, name)[k]) for name in FILTER_NAMES}
        values.update(lam1=self.lam1[k], lam2=self.lam2[k])
        return values

    def prepare(self, D) -> tuple[dict, bool]:
        D, single = _check_net_input(self, D, self.kernel_size)
        return {"D": D}, single

    def config(self) -> dict:
        return {"n_layers": self.n_layers, "kernel_size": self.kernel_size, "dtype": dtype_name(self.dtype),
                "tied": self.tied}


class _Residual(nn.Module):
    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv3d(channels, channels, kernel, padding=kernel // 2)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


@register_model
class ResNetRPCA(nn.Module):
    """ResNet-style CNN baseline: ``D`` ``(B, T, H, W)`` complex -> ``(B, 2, T, H, W)`` ``[L, S]``.

    Parameters
    ----------
    channels : int, default 8
        Feature channels (8 with 2 blocks of 3x3x3 convolutions: 8,252 parameters).
    blocks : int, default 2
        Residual blocks (two convolutions each).
    kernel_size : int, default 3
        Odd size of the ``k x k x k`` (time x space) kernels.
    dtype : {'float64', 'float32'}
    """

    def __init__(self, channels: int = 8, blocks: int = 2, kernel_size: int = 3, dtype: str = "float32"):
        super().__init__()
        self.channels = check_int("channels", channels, minimum=1)
        self.blocks = check_int("blocks", blocks, minimum=0)
        self.kernel_size = check_int("kernel_size", kernel_size, minimum=1)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        k = kernel_size
        self.head = nn.Conv3d(2, channels, k, padding=k // 2)
        self.body = nn.Sequential(*[_Residual(channels, k) for _ in range(blocks)])
        self.tail = nn.Conv3d(channels, 4, k, padding=k // 2)
        self.to(dtype_from_name(dtype))

    @property
    def dtype(self) -> torch.dtype:
        return self.head.weight.dtype

    def forward(self, D) -> Tensor:
        D, single = _check_net_input(self, D, 1)
        x = torch.view_as_real(D).permute(0, 4, 1, 2, 3)  # (B, 2, T, H, W): real and imaginary channels
        out = self.tail(self.body(F.relu(self.head(x))))
        dL = torch.complex(out[:, 0], out[:, 1])
        S = torch.complex(out[:, 2], out[:, 3])
        LS = stack_estimate(D + dL, S)
        return LS[0] if single else LS

    def config(self) -> dict:
        return {"channels": self.channels, "blocks": self.blocks, "kernel_size": self.kernel_size,
                "dtype": dtype_name(self.dtype)}
