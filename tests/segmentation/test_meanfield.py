"""Mean-field inference of the dense CRF against a naive numpy implementation, its energy, and its input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unrolled.segmentation.inputs import potts
from unrolled.segmentation.iteration import MeanFieldIteration
from unrolled.segmentation.solvers import mean_field, mean_field_setup

WIDTHS = (1.3, 2.2, 0.45)


def _problem(B=2, L=3, H=4, W=5, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    unary = scale * torch.randn(B, L, H, W, generator=g, dtype=torch.float64)
    image = torch.rand(B, 3, H, W, generator=g, dtype=torch.float64)
    return unary, image


def _iterates(unary, image, n, **kw):
    its = []
    mean_field(unary, image, max_iter=n, callback=lambda k, q: its.append(q.clone()), **kw)
    return its


@pytest.mark.parametrize("mu_kind", ["potts", "general", "per-kernel"])
def test_exact_mean_field_equals_naive_numpy(mu_kind, naive):
    unary, image = _problem()
    L = unary.shape[1]
    g = torch.Generator().manual_seed(5)
    mu = {"potts": potts(L), "general": torch.randn(L, L, generator=g, dtype=torch.float64),
          "per-kernel": torch.randn(2, L, L, generator=g, dtype=torch.float64)}[mu_kind]
    its = _iterates(unary, image, 4, kernels=WIDTHS, weights=(0.7, 1.9), compatibility=mu)
    for b in range(unary.shape[0]):
        ref = naive.mean_field(unary[b].numpy(), image[b].numpy(), *WIDTHS, (0.7, 1.9), mu.numpy(), 4)
        for k in range(4):
            np.testing.assert_allclose(its[k][b].numpy(), ref[k], rtol=0, atol=1e-10)


def test_fast_filtering_without_approximation_equals_naive(naive):
    """stride 1 and taps covering the image: the separable spatial and the bilateral filters are exact."""
    unary, image = _problem(seed=3)
    its = _iterates(unary, image, 3, kernels=WIDTHS, weights=(1.1, 0.6), filtering="fast", stride=1, truncate=50.0)
    ref = naive.mean_field(unary[1].numpy(), image[1].numpy(), *WIDTHS, (1.1, 0.6), potts(3).numpy(), 3)
    np.testing.assert_allclose(its[-1][1].numpy(), ref[-1], rtol=0, atol=1e-10)


def test_unbatched_equals_batch_row_and_marginals_normalised():
    unary, image = _problem(B=3)
    batched = mean_field(unary, image, kernels=WIDTHS, max_iter=5).x
    single = mean_field(unary[2], image[2], kernels=WIDTHS, max_iter=5).x
    assert single.shape == unary.shape[1:]
    torch.testing.assert_close(single, batched[2], rtol=0, atol=1e-13)
    torch.testing.assert_close(batched.sum(1), torch.ones_like(batched[:, 0]), rtol=0, atol=1e-12)


def test_numpy_and_float32_inputs():
    unary, image = _problem()
    a = mean_field(unary.numpy(), image.numpy(), kernels=WIDTHS, max_iter=3).x
    torch.testing.assert_close(a, mean_field(unary, image, kernels=WIDTHS, max_iter=3).x, rtol=0, atol=0)
    b = mean_field(unary.float(), image.float(), kernels=WIDTHS, max_iter=3).x
    assert b.dtype == torch.float32
    torch.testing.assert_close(b.double(), a, rtol=0, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_free_energy_does_not_increase_with_potts(seed):
    """w1 + w2 = 2 (the bound of the proof in iteration.py), exact filtering: F(Q^k) is non-increasing."""
    unary, image = _problem(B=3, L=4, H=5, W=5, seed=seed, scale=1.0)
    res = mean_field(unary, image, kernels=(1.5, 3.0, 0.5), weights=(0.9, 1.1), max_iter=25, track=True)
    energy = res.history["objective"]
    assert len(energy) == 25
    assert all(b <= a + 1e-10 for a, b in zip(energy, energy[1:])), energy
    assert energy[-1] < energy[0] - 1e-3  # it does move


def test_objective_is_the_free_energy(naive):
    unary, image = _problem(B=1, seed=4)
    it, data, params, _ = mean_field_setup(unary, image, kernels=WIDTHS, weights=(0.8, 1.3))
    state = it.step(0, it.init(data, params), data, params)
    Q = it.readout(state, data)[0].numpy()
    ref = naive.free_energy(Q, unary[0].numpy(), image[0].numpy(), *WIDTHS, (0.8, 1.3), potts(3).numpy())
    assert float(it.objective(state, data, params)[0]) == pytest.approx(ref, abs=1e-10)


def test_converged_marginals_are_a_mean_field_fixed_point():
    unary, image = _problem(seed=6, scale=1.0)
    res = mean_field(unary, image, kernels=WIDTHS, weights=(0.5, 0.5), max_iter=200, tol=1e-12)
    assert res.all_converged and int(res.n_iter.max()) < 200
    it, data, params, _ = mean_field_setup(unary, image, kernels=WIDTHS, weights=(0.5, 0.5))
    again = torch.softmax(unary - it.pairwise(res.x, data, params), dim=1)
    torch.testing.assert_close(again, res.x, rtol=0, atol=1e-11)


def test_pairwise_term_smooths_a_noisy_unary():
    """A constant image with one flipped pixel: the CRF relabels it as its neighbours (the sign of mu matters)."""
    unary = torch.zeros(1, 2, 5, 5, dtype=torch.float64)
    unary[0, 0] = 1.0
    unary[0, :, 2, 2] = torch.tensor([0.0, 1.0], dtype=torch.float64)
    image = torch.full((1, 3, 5, 5), 0.5, dtype=torch.float64)
    Q = mean_field(unary, image, kernels=(1.0, 2.0, 0.5), weights=(1.0, 1.0), max_iter=10).x
    assert Q[0].argmax(0).eq(0).all()
    assert unary[0].argmax(0)[2, 2] == 1


def test_n_iter_alias_and_default():
    unary, image = _problem()
    assert int(mean_field(unary, image, n_iter=3).n_iter.max()) == 3
    assert int(mean_field(unary, image).n_iter.max()) == 10
    with pytest.raises(ValueError, match="max_iter or n_iter"):
        mean_field(unary, image, n_iter=3, max_iter=3)


@pytest.mark.parametrize("kwargs, name", [
    ({"unary": "u"}, "unary"),
    ({"image": None}, "image"),
    ({"unary_nan": True}, "unary"),
    ({"image_inf": True}, "image"),
    ({"image_size": True}, "image"),
    ({"image_batch": True}, "image"),
    ({"unary_int": True}, "unary"),
    ({"image_f32": True}, "image"),
    ({"weights": (1.0, -1.0)}, "weights"),
    ({"weights": (1.0,)}, "weights"),
    ({"kernels": (1.0, 0.0, 1.0)}, "bilateral_spatial"),
    ({"compatibility": "ising"}, "compatibility"),
    ({"compatibility": torch.ones(2, 2, dtype=torch.float64)}, "compatibility"),
    ({"max_iter": 0}, "max_iter"),
    ({"tol": -1.0}, "tol"),
    ({"filtering": "lattice"}, "filtering"),
    ({"stride": 0}, "stride"),
])
def test_bad_input_names_the_argument(kwargs, name):
    unary, image = _problem()
    args = {"unary": unary, "image": image}
    flags = {k for k in ("unary_nan", "image_inf", "image_size", "image_batch", "unary_int", "image_f32")
             if kwargs.get(k)}
    kwargs = {k: v for k, v in kwargs.items() if k not in flags}
    if "unary_nan" in flags:
        args["unary"] = unary.clone().index_put_((torch.tensor(0),) * 4, torch.tensor(float("nan"),
                                                                                     dtype=torch.float64))
    if "image_inf" in flags:
        args["image"] = image.clone()
        args["image"][0, 0, 0, 0] = float("inf")
    if "image_size" in flags:
        args["image"] = image[..., :-1]
    if "image_batch" in flags:
        args["image"] = image[:1]
    if "unary_int" in flags:
        args["unary"] = unary.long()
    if "image_f32" in flags:
        args["image"] = image.float()
    for key in ("unary", "image"):
        if key in kwargs:
            args[key] = kwargs.pop(key)
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        mean_field(args["unary"], args["image"], **kwargs)


def test_iteration_declares_its_parameters():
    it = MeanFieldIteration()
    assert it.param_names == ("weights", "compatibility", "widths")
    assert it.param("weights").constraint == "positive" and it.param("widths").constraint == "positive"


def test_energy_can_rise_above_the_weight_bound():
    """The monotonicity above is not vacuous: with w1 + w2 = 8 the parallel update raises F on this problem."""
    g = torch.Generator().manual_seed(1)
    unary = torch.randn(2, 4, 5, 5, generator=g, dtype=torch.float64)
    image = torch.rand(2, 3, 5, 5, generator=g, dtype=torch.float64)
    energy = mean_field(unary, image, kernels=(1.5, 3.0, 0.5), weights=(3.0, 5.0), max_iter=25,
                        track=True).history["objective"]
    assert max(b - a for a, b in zip(energy, energy[1:])) > 1e-2
