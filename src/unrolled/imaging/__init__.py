"""Imaging: matrix-free linear operators, compressive MRI by ADMM and ADMM-CSNet, blind deblurring by HQS and DUBLID (review, boxes ADMM-CSNet and DUBLID)."""

from unrolled.imaging.images import (OFFLINE_IMAGES, SPLITS, EllipsePhantoms, FixedImages, PatchSource, load_image,
                                     make_source, shepp_logan)
from unrolled.imaging.metrics import psnr, ssim
from unrolled.imaging.operators import (Blur, Filters, FiniteDifference, FourierDiagonal, Identity, LinearOperator,
                                        MatrixOperator, SubsampledFourier, kernel_spectrum)

# blind deblurring (HQS and DUBLID), helper B
from unrolled.imaging.deblur import BlindDeblurProblem  # noqa: E402
from unrolled.imaging.deblur_cnn import DeblurCNN  # noqa: E402
from unrolled.imaging.deblur_metrics import deblur_loss, kernel_error, shift_corrected_psnr  # noqa: E402
from unrolled.imaging.dublid import DUBLID  # noqa: E402
from unrolled.imaging.hqs import BlindDeblurResult, HQSBlindDeblurIteration, hqs_blind_deblur  # noqa: E402
from unrolled.imaging.kernels import KernelSource, disk_kernels, gaussian_kernels, motion_kernels  # noqa: E402
