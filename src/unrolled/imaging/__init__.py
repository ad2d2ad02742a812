"""Imaging: matrix-free linear operators, compressive MRI by ADMM and ADMM-CSNet, blind deblurring by HQS and DUBLID (review, boxes ADMM-CSNet and DUBLID)."""

from unrolled.imaging.admm import ADMMCS, admm_cs, dct_filters, piecewise_linear_shrink, soft_threshold
from unrolled.imaging.admm_csnet import ADMMCSNet, nrmse_loss
from unrolled.imaging.csmri import CSMRIProblem, zero_filled
from unrolled.imaging.csmri_cnn import CSMRICNN
from unrolled.imaging.images import (OFFLINE_IMAGES, SPLITS, EllipsePhantoms, FixedImages, MixtureSource, PatchSource,
                                     load_image, make_source, shepp_logan)
from unrolled.imaging.masks import cartesian_mask, radial_mask
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
