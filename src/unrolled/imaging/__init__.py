"""Imaging: matrix-free linear operators, compressive MRI by ADMM and ADMM-CSNet, blind deblurring by HQS and DUBLID (review, boxes ADMM-CSNet and DUBLID)."""

from unrolled.imaging.images import (OFFLINE_IMAGES, SPLITS, EllipsePhantoms, FixedImages, PatchSource, load_image,
                                     make_source, shepp_logan)
from unrolled.imaging.metrics import psnr, ssim
from unrolled.imaging.operators import (Blur, Filters, FiniteDifference, FourierDiagonal, Identity, LinearOperator,
                                        MatrixOperator, SubsampledFourier, kernel_spectrum)
