"""Segmentation: mean-field inference of the fully connected CRF and the unrolled CRF-RNN (review, box CRF-RNN).

* :func:`mean_field` — the classic solver (eqs. (19)-(20)), exact or fast filtering
  (:mod:`unrolled.segmentation.filtering`), through :func:`unrolled.core.solve`;
* :class:`CRFRNN` — K mean-field layers with learned kernel weights, compatibility and optionally widths;
* :class:`ShapesSegmentationProblem` — simulated random-shapes images and label maps;
* :class:`UnaryFCN`, :class:`PlainCNN`, :class:`UnaryCRF` — the unary network, the deeper CNN baseline and
  FCN + CRF-RNN trained end to end.
"""

from unrolled.segmentation.data import ShapesSegmentationProblem
from unrolled.segmentation.filtering import Filtering
from unrolled.segmentation.inputs import GaussianKernels, potts
from unrolled.segmentation.iteration import MeanFieldIteration
from unrolled.segmentation.metrics import mean_iou, pixel_accuracy, scores
from unrolled.segmentation.nets import CRFRNN
from unrolled.segmentation.solvers import mean_field, segment
from unrolled.segmentation.unary import PlainCNN, UnaryCRF, UnaryFCN

__all__ = ["CRFRNN", "Filtering", "GaussianKernels", "MeanFieldIteration", "PlainCNN", "ShapesSegmentationProblem",
           "UnaryCRF", "UnaryFCN", "mean_field", "mean_iou", "pixel_accuracy", "potts", "scores", "segment"]
