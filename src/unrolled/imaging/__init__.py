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

# blind deblurring (HQS and DUBLID)
from unrolled.imaging.deblur import BlindDeblurProblem
from unrolled.imaging.deblur_cnn import DeblurCNN
from unrolled.imaging.deblur_metrics import deblur_loss, kernel_error, shift_corrected_psnr
from unrolled.imaging.dublid import DUBLID
from unrolled.imaging.hqs import BlindDeblurResult, HQSBlindDeblurIteration, hqs_blind_deblur
from unrolled.imaging.kernels import KernelSource, disk_kernels, gaussian_kernels, motion_kernels

__all__ = [
    "admm_cs",
    "ADMMCS",
    "ADMMCSNet",
    "BlindDeblurProblem",
    "BlindDeblurResult",
    "Blur",
    "cartesian_mask",
    "CSMRICNN",
    "CSMRIProblem",
    "dct_filters",
    "deblur_loss",
    "DeblurCNN",
    "disk_kernels",
    "DUBLID",
    "EllipsePhantoms",
    "Filters",
    "FiniteDifference",
    "FixedImages",
    "FourierDiagonal",
    "gaussian_kernels",
    "hqs_blind_deblur",
    "HQSBlindDeblurIteration",
    "Identity",
    "kernel_error",
    "kernel_spectrum",
    "KernelSource",
    "LinearOperator",
    "load_image",
    "make_source",
    "MatrixOperator",
    "MixtureSource",
    "motion_kernels",
    "nrmse_loss",
    "OFFLINE_IMAGES",
    "PatchSource",
    "piecewise_linear_shrink",
    "psnr",
    "radial_mask",
    "shepp_logan",
    "shift_corrected_psnr",
    "soft_threshold",
    "SPLITS",
    "ssim",
    "SubsampledFourier",
    "zero_filled",
]
