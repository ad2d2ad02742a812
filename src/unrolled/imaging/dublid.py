r"""DUBLID: deep unrolling for blind deblurring (review, DUBLID box, eqs. (10)-(11), Fig. 8; Li et al. [15], [40]).

``L`` layers of the HQS iteration (10) with learned per-layer filters :math:`f_i^l` (``C`` filters of
``filter_size x filter_size``), sparsity weights :math:`\lambda_i^l` and splitting weights :math:`\zeta_i^l`,
followed by the image retrieval (11) with learned :math:`\eta_i`. The layer is
:class:`~unrolled.imaging.hqs.HQSBlindDeblurIteration`, the step :func:`~unrolled.imaging.hqs.hqs_blind_deblur`
runs, so a net from :meth:`DUBLID.from_algorithm` (filters :math:`D_x, D_y`, the algorithm's weights) *is* ``L``
HQS iterations. :math:`\lambda, \zeta, \eta` are positive by the exponential reparametrisation of
:class:`~unrolled.core.params.LayerParameter`; :math:`\epsilon` is a fixed constant, as in the box.

Each layer owns an :math:`\eta^l` (the retrieval weights the net would use if it stopped there: layer-wise
training and ``return_layers``); the output is the last layer's, (11) with :math:`f^L, \eta^L`. The net maps
blurred images ``y (B, H, W)`` (or one ``(H, W)``) to the pair ``(x (B, H, W), k (B, s, s))``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from unrolled.core.io import register_model
from unrolled.core.unrolled_net import UnrolledNet, check_n_layers, dtype_from_name, dtype_name
from unrolled.core.validation import check_int, check_positive
from unrolled.imaging.hqs import (
    DEFAULTS,
    HQSBlindDeblurIteration,
    check_blurred,
    check_kernel_size,
    derivative_filters,
    unpack,
)

__all__ = ["DUBLID", "embed_filters"]


def embed_filters(filters: Tensor, size: int) -> Tensor:
    """Zero-pad a ``(C, s_f, s_f)`` bank to ``(C, size, size)`` around the same centre (the same convolutions)."""
    s = filters.shape[-1]
    if size < s or (size - s) % 2:
        raise ValueError(f"filter_size must be odd and at least {s}, got {size}")
    p = (size - s) // 2
    return torch.nn.functional.pad(filters, (p, p, p, p))


@register_model
class DUBLID(UnrolledNet):
    """Deep unrolled blind deblurring: ``y -> (x, k)``.

    Parameters
    ----------
    n_layers : int
        ``L``, the number of unrolled HQS iterations.
    n_filters : int, default 2
        ``C``, filters per layer.
    filter_size : int, default 3
        Odd side of the learned filters.
    kernel_size : int, default 15
        Odd side of the estimated kernel's support.
    eps : float, default ``DEFAULTS['eps']``
        The fixed :math:`\\epsilon` of (10).
    kernel_solve : {'support', 'fourier'}, default 'support'
        Kernel least squares (see :func:`~unrolled.imaging.hqs.kernel_least_squares`).
    dtype : {'float64', 'float32'}
    tied : bool, default False
        One set of filters and weights for all layers.

    Notes
    -----
    The constructor initialises the filters to :math:`D_x, D_y` (and zero filters beyond the first two) and the
    weights to :data:`~unrolled.imaging.hqs.DEFAULTS`; :meth:`from_algorithm` sets any algorithm's values.
    """

    def __init__(self, n_layers: int, n_filters: int = 2, filter_size: int = 3, kernel_size: int = 15,
                 eps: float = DEFAULTS["eps"], kernel_solve: str = "support", dtype: str = "float64",
                 tied: bool = False):
        super().__init__(check_n_layers(n_layers))
        self.n_filters = check_int("n_filters", n_filters, minimum=1)
        if isinstance(filter_size, bool) or not isinstance(filter_size, int) or filter_size < 1 or filter_size % 2 == 0:
            raise ValueError(f"filter_size must be an odd int >= 1, got {filter_size!r}")
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be an odd int >= 3, got {kernel_size!r}")
        self.filter_size, self.kernel_size = filter_size, kernel_size
        self.eps = check_positive("eps", eps)
        self.kernel_solve, self.tied = kernel_solve, bool(tied)
        self.iteration = it = HQSBlindDeblurIteration(kernel_size, self.eps, kernel_solve)
        dt = dtype_from_name(dtype)
        C = self.n_filters
        filters = torch.zeros(C, filter_size, filter_size, dtype=dt)
        if filter_size >= 3:
            d = embed_filters(derivative_filters(dt), filter_size)
            filters[: min(C, 2)] = d[: min(C, 2)]
        self.filters = it.layer_parameter("filters", filters, n_layers, tied=tied)
        for name in ("lam", "zeta", "eta"):
            setattr(self, name, it.layer_parameter(name, torch.full((C,), float(DEFAULTS[name]), dtype=dt), n_layers,
                                                   tied=tied))

    @classmethod
    def from_algorithm(cls, n_layers: int, *, filters: Tensor | None = None, lam=DEFAULTS["lam"],
                       zeta=DEFAULTS["zeta"], eta=DEFAULTS["eta"], eps: float = DEFAULTS["eps"],
                       kernel_size: int = DEFAULTS["kernel_size"], lam_start=None, decay: float = DEFAULTS["decay"],
                       kernel_solve: str = "support", filter_size: int | None = None, dtype: str = "float64",
                       tied: bool = False) -> "DUBLID":
        """The untrained net: ``n_layers`` iterations of :func:`~unrolled.imaging.hqs.hqs_blind_deblur`.

        Same arguments as the solver (``filters`` default :math:`D_x, D_y`; ``lam``, ``zeta``, ``eta`` numbers or
        one per filter). With ``lam_start`` the layers hold the continuation schedule
        (:func:`~unrolled.imaging.hqs.lam_schedule`), layer ``l`` the solver's :math:`\\lambda^l` (untied only).
        ``filter_size`` larger than the filters' zero-pads them (the same convolutions, more to learn).
        """
        n_layers = check_n_layers(n_layers)
        dt = dtype_from_name(dtype)
        f = derivative_filters(dt) if filters is None else torch.as_tensor(filters, dtype=dt)
        if f.dim() != 3 or f.shape[-1] != f.shape[-2] or f.shape[-1] % 2 == 0:
            raise ValueError(f"filters must be (C, s_f, s_f) with an odd side, got shape {tuple(f.shape)}")
        size = f.shape[-1] if filter_size is None else filter_size
        f = embed_filters(f, size)
        net = cls(n_layers, n_filters=f.shape[0], filter_size=size, kernel_size=kernel_size, eps=eps,
                  kernel_solve=kernel_solve, dtype=dtype, tied=tied)
        C = f.shape[0]

        def per_filter(name, value) -> Tensor:
            v = torch.as_tensor(value, dtype=dt)
            v = v.expand(C).clone() if v.dim() == 0 else v
            if v.shape != (C,) or not bool((v > 0).all()):
                raise ValueError(f"{name} must be positive, a number or one per filter ({C},), got {value!r}")
            return v

        lam_v = per_filter("lam", lam)
        if lam_start is not None:
            if tied:
                raise ValueError("lam_start (a schedule over layers) needs tied=False")
            start = per_filter("lam_start", lam_start)
            lam_v = [torch.maximum(lam_v, start * decay**k) for k in range(n_layers)]
        return net.set_algorithm_values(filters=f, lam=lam_v, zeta=per_filter("zeta", zeta),
                                        eta=per_filter("eta", eta))

    # ------------------------------------------------------------ UnrolledNet
    def prepare(self, y):
        y, unbatched = check_blurred("y", y)
        if y.dtype != self.dtype:
            raise ValueError(f"y has dtype {y.dtype} but the net is {self.dtype}; convert one of them (net.to(...))")
        device = self.filters[0].device
        if y.device != device:
            raise ValueError(f"y is on {y.device} but the net is on {device}")
        shape = tuple(y.shape[-2:])
        try:
            check_kernel_size(self.kernel_size, shape)
        except ValueError:
            raise ValueError(f"y of image size {shape} is smaller than the kernel support {self.kernel_size}") from None
        if self.filter_size > min(shape):
            raise ValueError(f"y of image size {shape} is smaller than the filters ({self.filter_size})")
        self._shape = shape
        return {"y": y, "y_hat": torch.fft.fft2(y)}, unbatched

    def finish(self, estimate: Tensor, unbatched: bool):
        x, k = unpack(estimate, self._shape, self.kernel_size)  # _shape: set by prepare() for this input
        return (x[0], k[0]) if unbatched else (x, k)

    def config(self) -> dict:
        return {"n_layers": self.n_layers, "n_filters": self.n_filters, "filter_size": self.filter_size,
                "kernel_size": self.kernel_size, "eps": self.eps, "kernel_solve": self.kernel_solve,
                "dtype": dtype_name(self.dtype), "tied": self.tied}

    def n_parameters(self) -> int:
        """Number of learned scalars."""
        return sum(p.numel() for p in self.parameters())
