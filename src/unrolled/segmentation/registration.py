"""Registers the segmentation family with :mod:`unrolled.core.registry` (entry point ``segmentation`` in ``pyproject.toml``).

One net: ``crf-rnn`` (:class:`~unrolled.segmentation.nets.CRFRNN`) on the random-shapes data model
(:class:`~unrolled.segmentation.data.ShapesSegmentationProblem`); its inputs are the pairs ``(unary, image)`` of
``sample(n, generator)`` (the closed-form per-pixel unary), its targets the label maps. End-to-end training with a
unary network is in ``unrolled reproduce crf-rnn``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unrolled.core.registry import Family, NetSpec, register_family, register_net
from unrolled.core.unrolled_net import check_n_layers, dtype_from_name
from unrolled.segmentation.data import ShapesSegmentationProblem
from unrolled.segmentation.nets import CRFRNN
from unrolled.segmentation.solvers import mean_field

FAMILY = register_family(Family("segmentation", "unrolled.segmentation",
                                "dense CRF mean-field inference on images and CRF-RNN", ("mean_field",)))

#: Algorithm settings of the untrained net and its solver.
OPTIONS = {"kernels": [1.0, 3.0, 0.3], "weights": [0.8, 1.2], "filtering": "exact", "stride": 2}


def problem(seed: int = 0, small: bool = False, *, height: int | None = None, width: int | None = None,
            n_classes: int | None = None, noise_std: float = 0.2, blur: float = 1.0,
            dtype: str = "float64") -> ShapesSegmentationProblem:
    """Random shapes, 32 x 32 pixels and 4 classes (6 x 7 and 3 classes when ``small``)."""
    return ShapesSegmentationProblem(
        height=height if height is not None else (6 if small else 32),
        width=width if width is not None else (7 if small else 32),
        n_classes=n_classes if n_classes is not None else (3 if small else 4),
        n_shapes=(1, 2) if small else (2, 5), noise_std=noise_std, blur=blur, dtype=dtype_from_name(dtype), seed=seed)


def problem_config(prob: ShapesSegmentationProblem) -> dict:
    c = prob.config()
    return {k: c[k] for k in ("height", "width", "n_classes", "noise_std", "blur", "dtype")}


def _from_algorithm(prob, n_layers, tied, options):
    o = {**OPTIONS, **options}
    return CRFRNN.from_algorithm(prob.n_classes, check_n_layers(n_layers), kernels=o["kernels"], weights=o["weights"],
                                 tied=tied, filtering=o["filtering"], stride=o["stride"])


def _solver(prob, inputs, max_iter, tol, callback, options):
    """Mean-field inference with the settings the untrained net holds (Potts compatibility)."""
    o = {**OPTIONS, **options}
    unary, image = inputs
    return mean_field(unary, image, kernels=o["kernels"], weights=o["weights"], max_iter=max_iter, tol=tol,
                      callback=callback, filtering=o["filtering"], stride=o["stride"])


def marginal_nll(Q: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the marginals ``Q (B, L, H, W)`` against the labels ``(B, H, W)``."""
    return F.nll_loss(torch.log(Q.clamp_min(torch.finfo(Q.dtype).tiny)), labels)


def _pixel_accuracy(Q, labels) -> float:
    return float((Q.argmax(dim=-3) == labels).double().mean())


register_net(NetSpec(
    name="crf-rnn", family="segmentation", cls=CRFRNN, problem=problem, from_algorithm=_from_algorithm,
    solver=_solver, loss=marginal_nll, metric=_pixel_accuracy, metric_name="pixel accuracy", input_name="unary",
    problem_config=problem_config, options=dict(OPTIONS), default_layers=5,
    notes="Inputs are pairs (unary, image): a unary network's scores (here the data model's per-pixel Gaussian "
          "colour classifier) and the image; outputs the marginals Q. A layer is one mean-field iteration "
          "(19)-(20) with learned kernel weights and Potts-initialised compatibility (and optionally widths). "
          "End-to-end training with a unary FCN is in `unrolled reproduce crf-rnn`.",
))

import unrolled.experiments.crf_registry  # noqa: E402,F401  (its experiment and demo part register)
