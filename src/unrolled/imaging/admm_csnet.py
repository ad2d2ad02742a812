r"""ADMM-CSNet (review, box ADMM-CSNet, Fig. 10): K stages of (15) with learned filters, weights and shrinkage.

Stage ``l`` is :class:`~unrolled.imaging.admm.ADMMCS` with its own (untied) or shared (tied) parameters:

* ``filters`` :math:`D_i^l`: ``C`` circular filters ``(C, h, w)`` (``C = 8`` of ``3 x 3`` initialised to the
  non-constant DCT basis, or finite differences for the TV initialisation);
* ``lam`` :math:`\lambda_i^l`, ``rho`` :math:`\rho_i^l`, ``eta`` :math:`\eta_i^l`: ``(C,)``, positive by the
  exponential reparametrisation;
* ``shrink``: the ``P`` control values of the piecewise-linear shrinkage that replaces the prox of the
  :math:`\ell_1` norm (:func:`~unrolled.imaging.admm.piecewise_linear_shrink`), initialised to the
  soft-threshold.

:meth:`ADMMCSNet.from_algorithm` holds :func:`~unrolled.imaging.admm.admm_cs`'s values (``eta = 1``), so the
untrained net is ``K`` ADMM iterations (the contract suite and ``tests/imaging`` check it). Input: k-space ``y``
``(B, H, W)`` complex (zero off the mask); output: the complex image ``x^K`` ``(B, H, W)`` in ``y``'s dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor

from unrolled.core.io import register_model
from unrolled.core.unrolled_net import UnrolledNet, check_n_layers, dtype_from_name, dtype_name
from unrolled.imaging.admm import ADMMCS, check_kspace, filter_bank, soft_threshold_controls
from unrolled.imaging.operators import SubsampledFourier

__all__ = ["ADMMCSNet", "nrmse_loss"]


@register_model
class ADMMCSNet(UnrolledNet):
    """K stages of ADMM (15) with per-stage filters, ``lam``, ``rho``, ``eta`` and a learned shrinkage.

    Parameters
    ----------
    shape : (int, int)
        Image size ``(H, W)`` (the mask's); the mask itself is a buffer set by :meth:`from_algorithm`.
    n_layers : int
        Number of stages ``K``.
    n_filters, filter_size : int
        Filter bank ``(C, h, h)``.
    n_shrink : int
        Number of learned control points of the shrinkage (spacing :data:`~unrolled.imaging.admm.SHRINK_STEP`
        thresholds).
    tied : bool
        One set of parameters for every stage.
    dtype : {'float64', 'float32'}
        Real dtype of the parameters.
    """

    def __init__(self, shape, n_layers: int, n_filters: int = 8, filter_size: int = 3, n_shrink: int = 16,
                 tied: bool = False, dtype: str = "float64"):
        super().__init__(n_layers)
        H, W = (int(s) for s in shape)
        for name, value in (("n_filters", n_filters), ("filter_size", filter_size), ("n_shrink", n_shrink)):
            check_n_layers(value, name)
        if filter_size > min(H, W):
            raise ValueError(f"filter_size {filter_size} is larger than the image {(H, W)}")
        self.shape, self.n_filters, self.filter_size, self.n_shrink = (H, W), n_filters, filter_size, n_shrink
        self.tied = bool(tied)
        real = dtype_from_name(dtype)
        self.iteration = it = ADMMCS()
        self.register_buffer("mask", torch.ones(H, W, dtype=torch.bool))
        ones = torch.ones(n_filters, dtype=real)
        self.filters = it.layer_parameter("filters", torch.zeros(n_filters, filter_size, filter_size, dtype=real),
                                          n_layers, tied=tied)
        self.lam = it.layer_parameter("lam", 1e-3 * ones, n_layers, tied=tied)
        self.rho = it.layer_parameter("rho", 1e-2 * ones, n_layers, tied=tied)
        self.eta = it.layer_parameter("eta", ones, n_layers, tied=tied)
        self.shrink = it.layer_parameter("shrink", soft_threshold_controls(n_shrink, dtype=real), n_layers, tied=tied)

    @classmethod
    def from_algorithm(cls, mask, n_layers: int, lam=1e-3, rho=1e-2, *, transforms="dct3", n_shrink: int = 16,
                       tied: bool = False, dtype: str | torch.dtype = "float64") -> "ADMMCSNet":
        """The net equal to ``n_layers`` iterations of ``admm_cs(y, mask, lam, rho, transforms=transforms)``.

        ``lam``, ``rho``: one value or one per filter; ``transforms``: ``'dct3'``, ``'dct5'``, ``'tv'`` or a
        ``(C, h, h)`` filter tensor.
        """
        real = dtype_from_name(dtype)
        mask = SubsampledFourier(mask).mask
        bank = filter_bank(transforms, real)
        C, h, w = bank.shape
        if h != w:
            raise ValueError(f"transforms must hold square filters, got {h} x {w}")
        net = cls(tuple(mask.shape), n_layers, C, h, n_shrink, tied, dtype_name(real))
        per = lambda v: torch.as_tensor(v, dtype=real).expand(C).clone()  # noqa: E731
        net.set_algorithm_values(filters=bank, lam=per(lam), rho=per(rho), eta=per(1.0), mask=mask)
        return net

    def prepare(self, y):
        y, unbatched = check_kspace(y, self.mask, "y")
        if y.device != self.mask.device:
            raise ValueError(f"y is on {y.device} but the net is on {self.mask.device}")
        op = SubsampledFourier(self.mask)
        return {"y": y, "Aty": op.adjoint(y), "op": op}, unbatched

    def config(self) -> dict:
        return {"shape": list(self.shape), "n_layers": self.n_layers, "n_filters": self.n_filters,
                "filter_size": self.filter_size, "n_shrink": self.n_shrink, "tied": self.tied,
                "dtype": dtype_name(self.dtype)}


def nrmse_loss(estimate: Tensor, target: Tensor) -> Tensor:
    """Mean over the batch of ``||x - x_true|| / ||x_true||`` (the normalised RMSE ADMM-CSNet trains on);
    complex estimates are compared with the real target as complex numbers (the imaginary part is error)."""
    diff = (estimate - target).reshape(estimate.shape[0] if estimate.dim() == 3 else 1, -1)
    ref = target.reshape(diff.shape[0], -1)
    return (torch.linalg.vector_norm(diff, dim=-1) / torch.linalg.vector_norm(ref, dim=-1).clamp_min(1e-12)).mean()
