r"""CRF-RNN: K mean-field iterations of the dense CRF as the layers of a recurrent net (review, Fig. 12).

Each layer is :class:`~unrolled.segmentation.iteration.MeanFieldIteration` (eqs. (19)-(20)) with learned kernel
weights :math:`w^m` (positive, exponential reparametrisation), a learned label compatibility :math:`\mu` (an
``L x L`` 1x1 convolution, free; initialised with Potts) and, optionally, learned kernel widths
:math:`(\gamma, \alpha, \beta)` (positive). ``tied=True`` shares them across the layers: the recurrent net of
Zheng et al.; ``tied=False`` gives each layer its own. The net takes the pair ``(unary, image)`` — a segmentation
network's scores and the image — and outputs the marginals :math:`Q` ``(B, L, H, W)``, so it is trained end to end
behind any unary network (:class:`~unrolled.segmentation.unary.UnaryCRF`).

With fixed widths the kernel matrices are built once per forward pass and shared by the layers (as the solver
does); with learned widths every layer builds them from its own widths.
"""

from __future__ import annotations

import torch
from torch import Tensor

from unrolled.core.io import register_model
from unrolled.core.unrolled_net import UnrolledNet, check_n_layers, dtype_from_name, dtype_name
from unrolled.core.validation import check_int
from unrolled.segmentation.filtering import Filtering, kernel_cache
from unrolled.segmentation.inputs import (GaussianKernels, as_compatibility, as_kernels, as_weights,
                                          check_unary_image)
from unrolled.segmentation.iteration import MeanFieldIteration


@register_model
class CRFRNN(UnrolledNet):
    """K mean-field layers of the fully connected CRF with learned ``w^m``, ``mu`` and (optionally) widths.

    Parameters
    ----------
    n_classes : int
        Number of labels ``L``.
    n_layers : int
        Mean-field iterations ``K``.
    kernels : GaussianKernels, dict or (gamma, alpha, beta)
        Initial (or fixed) kernel widths.
    weights : (w_spatial, w_bilateral)
        Initial kernel weights.
    tied : bool, default True
        One set of parameters for all layers (the RNN) or one per layer.
    learn_widths : bool, default False
        Learn :math:`(\\gamma, \\alpha, \\beta)` too (else they are a buffer).
    filtering : {'exact', 'fast'}, stride, truncate
        Message passing (:mod:`unrolled.segmentation.filtering`).
    dtype : {'float64', 'float32'}
    """

    def __init__(self, n_classes: int, n_layers: int = 5, kernels=GaussianKernels(), weights=(1.0, 1.0),
                 tied: bool = True, learn_widths: bool = False, filtering: str = "fast", stride: int = 2,
                 truncate: float = 4.0, dtype: str = "float64"):
        super().__init__(check_n_layers(n_layers))
        self.n_classes = check_int("n_classes", n_classes, minimum=2)
        self.kernels = as_kernels(kernels)
        self.tied, self.learn_widths = bool(tied), bool(learn_widths)
        self.filtering = Filtering(filtering, stride, float(truncate))
        self.iteration = it = MeanFieldIteration(self.filtering)
        dt = dtype_from_name(dtype)
        self._init_weights = [float(v) for v in as_weights(weights, dtype=dt, device="cpu")]
        self.weights = it.layer_parameter("weights", torch.tensor(self._init_weights, dtype=dt), n_layers, tied=tied)
        self.compatibility = it.layer_parameter("compatibility", as_compatibility("potts", n_classes, dtype=dt,
                                                                                  device="cpu"), n_layers, tied=tied)
        widths = torch.tensor(self.kernels.as_tuple(), dtype=dt)
        if self.learn_widths:
            self.widths = it.layer_parameter("widths", widths, n_layers, tied=tied)
        else:
            self.register_buffer("fixed_widths", widths)

    @classmethod
    def from_algorithm(cls, n_classes: int, n_layers: int = 5, *, kernels=GaussianKernels(), weights=(1.0, 1.0),
                       compatibility="potts", tied: bool = True, learn_widths: bool = False,
                       filtering: str = "fast", stride: int = 2, truncate: float = 4.0,
                       dtype: str = "float64") -> "CRFRNN":
        """The untrained net equal to ``mean_field(..., max_iter=n_layers)`` with the same settings.

        ``compatibility`` is ``'potts'`` or an ``(L, L)`` matrix (the net learns one :math:`\\mu` for both kernels).
        """
        net = cls(n_classes, n_layers, kernels, weights, tied, learn_widths, filtering, stride, truncate, dtype)
        mu = as_compatibility(compatibility, n_classes, dtype=dtype_from_name(dtype), device="cpu")
        if mu.dim() != 2:
            raise ValueError("compatibility of a CRFRNN is one (L, L) matrix shared by both kernels")
        return net.set_algorithm_values(compatibility=mu)

    @property
    def param_names(self) -> tuple[str, ...]:
        return ("weights", "compatibility", "widths") if self.learn_widths else ("weights", "compatibility")

    def layer_constants(self, k: int) -> dict:
        return {} if self.learn_widths else {"widths": self.fixed_widths}

    def prepare(self, inputs) -> tuple[dict, bool]:
        """Validate ``inputs = (unary, image)``; with fixed widths, build the kernel matrices once."""
        if not (isinstance(inputs, (tuple, list)) and len(inputs) == 2):
            raise ValueError(f"inputs must be a pair (unary, image), got {type(inputs).__name__}")
        unary, image, unbatched = check_unary_image(*inputs, n_classes=self.n_classes)
        if unary.is_floating_point() and unary.dtype != self.dtype:
            raise ValueError(f"unary has dtype {unary.dtype} but the network is {self.dtype}; convert one of them")
        device = self.compatibility.raw[0].device
        if unary.device != device:
            raise ValueError(f"unary is on {unary.device} but the network is on {device}")
        data = {"unary": unary, "image": image}
        if not self.learn_widths:
            data.update(kernel_cache(image, self.fixed_widths, self.filtering))
        return data, unbatched

    def log_marginals(self, inputs) -> Tensor:
        """``log Q`` of the last active layer (a numerically safe input to the cross-entropy loss)."""
        for state, data, unbatched in self.iterate(inputs):
            pass
        return self.finish(torch.log_softmax(state["logits"], dim=1), unbatched)

    def config(self) -> dict:
        return {"n_classes": self.n_classes, "n_layers": self.n_layers, "kernels": list(self.kernels.as_tuple()),
                "weights": self._init_weights, "tied": self.tied, "learn_widths": self.learn_widths,
                "filtering": self.filtering.method, "stride": self.filtering.stride,
                "truncate": self.filtering.truncate, "dtype": dtype_name(self.dtype)}
