"""The blind-deblurring data model, the translation-invariant metrics (against brute force over shifts and
skimage's PSNR), the quick reproduction and the demo part."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from unrolled.imaging.deblur import BlindDeblurProblem
from unrolled.imaging.deblur_metrics import (
    best_shift,
    deblur_loss,
    kernel_error,
    shift_corrected_psnr,
    shifted_mse,
)
from unrolled.imaging.kernels import KernelSource, check_kernel
from unrolled.imaging.operators import Blur


def test_problem_blurs_each_image_with_its_own_kernel_and_adds_noise():
    prob = BlindDeblurProblem(24, ("gaussian", "motion"), kernel_size=7, noise_std=0.02, source="phantoms", seed=3)
    y, (x, k) = prob.sample(6, torch.Generator().manual_seed(0))
    assert y.shape == x.shape == (6, 24, 24) and k.shape == (6, 7, 7) and y.dtype == torch.float64
    check_kernel("k", k)
    noise = y - Blur(k).forward(x)
    assert abs(float(noise.std()) - 0.02) < 0.002  # 3456 samples: the std is within ~2.5 % of 0.02
    # one kernel per image: blurring with another image's kernel does not explain the data
    wrong = y - Blur(k.roll(1, 0)).forward(x)
    assert float(wrong.std()) > 1.5 * float(noise.std())
    again = BlindDeblurProblem(**prob.config()).sample(6, torch.Generator().manual_seed(0))
    assert torch.equal(again[0], y) and torch.equal(again[1][1], k)
    other = BlindDeblurProblem(**{**prob.config(), "seed": 4}).sample(6, torch.Generator().manual_seed(0))
    assert torch.equal(other[1][0], x) and not torch.allclose(other[1][1], k)  # held-out kernels, same images
    y32, _ = BlindDeblurProblem(24, kernel_size=7, source="phantoms", dtype="float32").sample(2)
    assert y32.dtype == torch.float32


@pytest.mark.parametrize("kwargs, match", [
    (dict(size=16, kernel_size=17), "kernel_size"), (dict(size=16, noise_std=-0.1), "noise_std"),
    (dict(size=16, kernels="blur"), "kinds"), (dict(size=16, source="nowhere"), "source"),
    (dict(size=16, dtype="float16"), "dtype"),
])
def test_problem_refuses_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BlindDeblurProblem(**{"source": "phantoms", **kwargs})


def _brute_force_mse(a, b, m):
    best = []
    for ai, bi in zip(a, b):
        best.append(min(float(((torch.roll(ai, (r, c), (0, 1)) - bi) ** 2).mean())
                        for r in range(-m, m + 1) for c in range(-m, m + 1)))
    return torch.tensor(best, dtype=torch.float64)


def test_shifted_mse_and_best_shift_match_brute_force():
    g = torch.Generator().manual_seed(0)
    b = torch.rand(3, 12, 15, generator=g, dtype=torch.float64)
    a = torch.stack([torch.roll(b[0], (2, -3), (0, 1)), torch.roll(b[1], (-1, 0), (0, 1)), b[2]])
    a = a + 0.05 * torch.randn(a.shape, generator=g, dtype=torch.float64)
    torch.testing.assert_close(shifted_mse(a, b, 4), _brute_force_mse(a, b, 4), rtol=0, atol=1e-12)
    # rolling a by the best shift undoes the displacement
    assert best_shift(a, b, 4).tolist() == [[-2, 3], [1, 0], [0, 0]]
    with pytest.raises(ValueError, match="max_shift"):
        shifted_mse(a, b, 7)


def test_shift_corrected_psnr_is_skimage_psnr_at_the_best_shift():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 16, 16, generator=g, dtype=torch.float64)
    est = torch.roll(x, (1, 2), (-2, -1)) + 0.03 * torch.randn(x.shape, generator=g, dtype=torch.float64)
    ours = shift_corrected_psnr(est, x, 3)
    ref = [peak_signal_noise_ratio(x[i].numpy(), torch.roll(est[i], (-1, -2), (0, 1)).numpy(), data_range=1.0)
           for i in range(2)]
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-10)
    assert float(shift_corrected_psnr(est, x, 0).max()) < float(ours.min()) - 5  # the shift matters


def test_kernel_error_is_shift_invariant_with_zero_fill():
    k = KernelSource("motion", 9).sample(2, torch.Generator().manual_seed(0))
    k = torch.nn.functional.pad(k[:, 2:-2, 2:-2], (2, 2, 2, 2))  # compact kernels well inside the support
    k = k / k.sum((-2, -1), keepdim=True)
    moved = torch.roll(k, (1, -2), (-2, -1))
    torch.testing.assert_close(kernel_error(moved, k), torch.zeros(2, dtype=torch.float64), rtol=0, atol=1e-7)
    assert float(kernel_error(moved, k, max_shift=0).min()) > 0.1
    # wrapping around is not a shift of a kernel: mass moved to the other side of the support counts as error
    wrapped = torch.roll(k, (0, 5), (-2, -1))
    assert float(kernel_error(wrapped, k).min()) > 0


def test_deblur_loss_is_translation_invariant_and_differentiable():
    prob = BlindDeblurProblem(16, kernel_size=5, source="phantoms")
    y, (x, k) = prob.sample(2, torch.Generator().manual_seed(0))
    k = torch.nn.functional.pad(k[:, 1:-1, 1:-1], (1, 1, 1, 1))  # zero border: a roll by one is a shift
    k = k / k.sum((-2, -1), keepdim=True)
    moved = (torch.roll(x, (1, 1), (-2, -1)), torch.roll(k, (1, -1), (-2, -1)))
    assert float(deblur_loss((x, k), (x, k))) == pytest.approx(0.0, abs=1e-12)
    assert float(deblur_loss(moved, (x, k))) < 1e-3 * float(deblur_loss((y, k * 0), (x, k)))
    xr = y.clone().requires_grad_(True)
    deblur_loss((xr, k), (x, k)).backward()
    assert xr.grad is not None and float(xr.grad.abs().max()) > 0


def test_quick_reproduction_writes_its_report(tmp_path):
    from unrolled.core.registry import EXPERIMENTS

    payload = EXPERIMENTS["imaging-deblur"].run(tmp_path, quick=True, seed=0)
    for name in ("results.json", "results.md", "examples.png"):
        assert (tmp_path / name).exists(), name
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["threads"] >= 1 and len(saved["results"]) == 4
    md = (tmp_path / "results.md").read_text()
    assert "1462.90" in md and "DeblurGAN" in md and "DUBLID" in md
    row = next(iter(payload["results"].values()))
    assert row["blurred input"]["kernel_error"] > 0.9  # the identity is far from every test kernel
    assert payload["params"]["CNN"] > payload["params"]["DUBLID"] > 0
    for method in row.values():
        assert method["time_s"] > 0 and np.isfinite(method["psnr"])


def test_demo_part_writes_a_picture(tmp_path):
    from unrolled.core.registry import DEMO_PARTS

    part = DEMO_PARTS["deblur"]
    assert part.family == "imaging" and part.order == 65
    numbers = part.run(tmp_path, seed=0)
    assert (tmp_path / "deblur.png").exists()
    assert numbers["HQS kernel error"] < 1.0 and np.isfinite(numbers["DUBLID-10 (untrained) PSNR (dB)"])
