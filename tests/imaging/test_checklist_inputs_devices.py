"""The imaging family's remaining bad-input cases (each a ValueError naming the argument) and device handling:
CPU always; CUDA (skipped without a GPU) against the CPU result."""

from __future__ import annotations

import pytest
import torch

from unrolled.core.io import load_model, save_model
from unrolled.imaging.admm import admm_cs
from unrolled.imaging.admm_csnet import ADMMCSNet
from unrolled.imaging.csmri import CSMRIProblem
from unrolled.imaging.deblur import BlindDeblurProblem
from unrolled.imaging.dublid import DUBLID
from unrolled.imaging.hqs import hqs_blind_deblur
from unrolled.imaging.operators import Blur, Filters, FiniteDifference, SubsampledFourier

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def test_csmri_problem_refuses_nan_and_wrong_sized_images():
    prob = CSMRIProblem(8, 0.5)
    with pytest.raises(ValueError, match=r"\bx\b"):
        prob.measure(torch.full((2, 8, 8), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\bx\b"):
        prob.measure(torch.ones(2, 8, 7, dtype=torch.float64))  # not the mask's size


def test_nets_refuse_nan_wrong_mask_size_and_non_square_filters():
    prob = CSMRIProblem(8, 0.5)
    net = ADMMCSNet.from_algorithm(prob.mask, 2)
    with pytest.raises(ValueError, match=r"\by\b.*NaN"):
        net(torch.full((2, 8, 8), float("nan"), dtype=torch.complex128))
    with pytest.raises(ValueError, match=r"\by\b"):
        net(torch.ones(2, 6, 6, dtype=torch.complex128))  # k-space of another mask size
    with pytest.raises(ValueError, match="transforms"):
        ADMMCSNet.from_algorithm(prob.mask, 2, transforms=torch.ones(2, 3, 5))
    with pytest.raises(ValueError, match="filter_size"):
        ADMMCSNet((4, 4), 2, filter_size=5)  # filters larger than the image
    dublid = DUBLID.from_algorithm(2, kernel_size=5)
    with pytest.raises(ValueError, match=r"\by\b.*NaN"):
        dublid(torch.full((2, 16, 16), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="mask"):
        admm_cs(torch.zeros(8, 8, dtype=torch.complex128), torch.ones(8, 7))  # y and mask of different sizes


def test_deblur_problem_refuses_an_array_of_kernels_by_name():
    with pytest.raises(ValueError, match="kernels"):
        BlindDeblurProblem(16, torch.ones(2, 3, 5) / 15, source="phantoms")
    with pytest.raises(ValueError, match="kernel_size"):
        BlindDeblurProblem(16, kernel_size=17, source="phantoms")  # kernel larger than the image


def _operators(mask):
    gen = torch.Generator().manual_seed(0)
    return [Blur(torch.rand(3, 3, 5, generator=gen, dtype=torch.float64)),
            Filters(torch.randn(4, 3, 3, generator=gen, dtype=torch.float64)), FiniteDifference(),
            SubsampledFourier(mask)]


def test_operators_follow_the_device_of_their_input_on_cpu():
    mask = torch.rand(8, 8, generator=torch.Generator().manual_seed(1)) < 0.5
    mask[0, 0] = True
    x = torch.randn(3, 8, 8, dtype=torch.float64)
    for op in _operators(mask):
        y = op.forward(x)
        assert y.device == x.device and op.adjoint(y).device == x.device


@CUDA
def test_operators_on_cuda_match_cpu():
    mask = torch.rand(8, 8, generator=torch.Generator().manual_seed(1)) < 0.5
    mask[0, 0] = True
    x = torch.randn(3, 2, 8, 8, dtype=torch.float64)
    for op in _operators(mask):
        y = op.forward(x)
        yc = op.forward(x.cuda())
        assert yc.device.type == "cuda"
        torch.testing.assert_close(yc.cpu(), y, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(op.adjoint(yc).cpu(), op.adjoint(y), rtol=1e-10, atol=1e-10)
    blur, fd = Blur(torch.rand(3, 3, 3, dtype=torch.float64)), FiniteDifference()
    ref = blur.solve_normal(x, [(0.5, fd)], shift=1e-3)
    torch.testing.assert_close(blur.solve_normal(x.cuda(), [(0.5, fd)], shift=1e-3).cpu(), ref)


@CUDA
def test_solvers_and_nets_on_cuda_match_cpu(tmp_path):
    prob = CSMRIProblem(12, 0.4, mask="radial", seed=0)
    y, _ = prob.sample(2, torch.Generator().manual_seed(0))
    ref = admm_cs(y, prob.mask, 3e-3, 0.3, max_iter=30, tol=0.0).x
    got = admm_cs(y.cuda(), prob.mask, 3e-3, 0.3, max_iter=30, tol=0.0).x
    assert got.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), ref, rtol=1e-8, atol=1e-8)
    net = ADMMCSNet.from_algorithm(prob.mask, 3)
    with torch.no_grad():
        ref = net(y)
        net_gpu = net.cuda()
        out = net_gpu(y.cuda())
        torch.testing.assert_close(out.cpu(), ref, rtol=1e-8, atol=1e-8)
        with pytest.raises(ValueError, match="device|cuda|cpu"):
            net_gpu(y)  # input left on the CPU
    save_model(net_gpu, tmp_path / "csnet")
    with torch.no_grad():
        torch.testing.assert_close(load_model(tmp_path / "csnet")(y), ref, rtol=1e-8, atol=1e-8)

    deb = BlindDeblurProblem(16, kernel_size=5, source="phantoms", seed=0)
    yb, _ = deb.sample(2, torch.Generator().manual_seed(0))
    ref = hqs_blind_deblur(yb, kernel_size=5, max_iter=5, tol=0.0)
    got = hqs_blind_deblur(yb.cuda(), kernel_size=5, max_iter=5, tol=0.0)
    torch.testing.assert_close(got.image.cpu(), ref.image, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(got.kernel.cpu(), ref.kernel, rtol=1e-6, atol=1e-6)
    dublid = DUBLID.from_algorithm(3, kernel_size=5)
    with torch.no_grad():
        xr, kr = dublid(yb)
        xg, kg = dublid.cuda()(yb.cuda())
    torch.testing.assert_close(xg.cpu(), xr, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(kg.cpu(), kr, rtol=1e-6, atol=1e-6)
    save_model(dublid, tmp_path / "dublid")
    with torch.no_grad():
        torch.testing.assert_close(load_model(tmp_path / "dublid")(yb)[0], xr, rtol=1e-6, atol=1e-6)
