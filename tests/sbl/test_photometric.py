"""Photometric stereo as sparse regression: the rendered scene, the null-space dictionary, normal recovery,
the residual decoding of net scores and the weakly supervised training data."""

from __future__ import annotations

import math

import pytest
import torch

from unrolled.sbl.photometric import (PhotometricCorruptionProblem, angular_error, light_directions,
                                      normals_from_corruption, nullspace_dictionary, render_sphere, residual_decode)
from unrolled.sbl.solvers import sbl


def _scene(r=12, size=24, noise_std=1e-3, seed=0):
    lights = light_directions(r, generator=torch.Generator().manual_seed(seed))
    return render_sphere(lights, size, noise_std=noise_std, generator=torch.Generator().manual_seed(seed + 1))


def test_lights_are_unit_vectors_on_the_camera_side():
    L = light_directions(50, max_polar_deg=40.0, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(torch.linalg.vector_norm(L, dim=-1), torch.ones(50, dtype=torch.float64))
    assert (L[:, 2] >= math.cos(math.radians(40.0)) - 1e-12).all()
    with pytest.raises(ValueError, match="max_polar_deg"):
        light_directions(5, max_polar_deg=95.0)
    with pytest.raises(ValueError, match="r"):
        light_directions(3)


def test_rendering_is_lambertian_plus_a_sparse_positive_corruption():
    sc = _scene(noise_std=0.0)
    L, x = sc.lights, sc.albedo[:, None] * sc.normals
    torch.testing.assert_close(torch.linalg.vector_norm(sc.normals, dim=-1), torch.ones(sc.n_pixels, dtype=torch.float64))
    # o = L x + e exactly (no noise); e >= 0, and e = -(L x) exactly where the pixel is in attached shadow
    torch.testing.assert_close(sc.images, L @ x.T + sc.corruption)
    assert (sc.corruption >= 0).all()
    shadow = (L @ x.T) < 0
    torch.testing.assert_close(sc.corruption[shadow], -(L @ x.T)[shadow])
    assert shadow.any() and ((sc.corruption > 0) & ~shadow).any()  # both shadows and specular spots occur
    assert 0.02 < sc.corrupted_fraction() < 0.5
    assert sc.images.shape == (12, int(sc.mask.sum())) and sc.n_pixels == int(sc.mask.sum())


def test_nullspace_dictionary_removes_the_lambertian_part():
    sc = _scene()
    Phi = nullspace_dictionary(sc.lights)
    assert Phi.shape == (9, 12)
    torch.testing.assert_close(Phi @ sc.lights, torch.zeros(9, 3, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(Phi @ Phi.T, torch.eye(9, dtype=torch.float64))
    sc0 = _scene(noise_std=0.0)
    torch.testing.assert_close(Phi @ sc0.images, Phi @ sc0.corruption, atol=1e-12, rtol=0)  # y = Phi e
    with pytest.raises(ValueError, match="rank 3"):
        nullspace_dictionary(torch.tensor([[0.0, 0.0, 1.0]] * 5))


def test_normals_from_the_true_corruption_are_exact_and_plain_least_squares_is_not():
    sc = _scene(noise_std=0.0)
    exact = normals_from_corruption(sc.images, sc.lights, sc.corruption)
    assert float(angular_error(exact, sc.normals).max()) < 1e-5
    plain = angular_error(normals_from_corruption(sc.images, sc.lights), sc.normals)
    assert float(plain.mean()) > 1.0  # shadows and highlights bias the non-robust estimate
    assert float(angular_error(sc.normals, -sc.normals).min()) == pytest.approx(180.0)
    with pytest.raises(ValueError, match="lights"):
        normals_from_corruption(sc.images[:-1], sc.lights)


def test_sbl_on_the_projected_pixels_beats_least_squares():
    sc = _scene(r=16)
    Phi = nullspace_dictionary(sc.lights)
    y = (Phi @ sc.images).T
    res = sbl(y, Phi, sc.noise_std ** 2, update="mackay", max_iter=1000, tol=1e-6)
    err_sbl = angular_error(normals_from_corruption(sc.images, sc.lights, res.x.T), sc.normals).mean()
    err_ls = angular_error(normals_from_corruption(sc.images, sc.lights), sc.normals).mean()
    assert float(res.converged.double().mean()) > 0.95
    assert float(err_sbl) < 0.6 * float(err_ls)


def test_residual_decode_recovers_the_corruption_from_oracle_scores():
    sc = _scene(r=12, noise_std=0.0)
    Phi = nullspace_dictionary(sc.lights)
    y = (Phi @ sc.images).T
    e = sc.corruption.T
    # scores ranking the true support first (ties among zeros broken at random): the smallest fitting set is it
    oracle = e + 1e-9 * torch.rand(e.shape, generator=torch.Generator().manual_seed(0), dtype=e.dtype)
    dec = residual_decode(y, Phi, oracle, 1e-8)
    ok = (e != 0).sum(-1) <= 8  # identifiable: fewer non-zeros than the r - 3 = 9 measurements
    torch.testing.assert_close(dec[ok], e[ok], atol=1e-8, rtol=0)
    assert ((dec != 0).sum(-1)[ok] == (e != 0).sum(-1)[ok]).all()
    # an uncorrupted pixel decodes to zero; a reversed ranking cannot fit early and ends at k = n - 1
    clean = (e == 0).all(-1)
    assert clean.any() and (dec[clean] == 0).all()
    worst = residual_decode(y[~clean][:5], Phi, -oracle[~clean][:5], 1e-8)
    assert ((worst != 0).sum(-1) <= 8).all()
    with pytest.raises(ValueError, match="scores"):
        residual_decode(y, Phi, oracle[:, :5], 1e-8)


def test_training_problem_draws_positive_sparse_corruptions():
    lights = light_directions(10, generator=torch.Generator().manual_seed(2))
    prob = PhotometricCorruptionProblem(lights, d=(1, 4), noise_std=0.0, dtype=torch.float64)
    y, e = prob.sample(500, torch.Generator().manual_seed(3))
    assert y.shape == (500, 7) and e.shape == (500, 10) and (prob.n, prob.m) == (7, 10)
    k = (e != 0).sum(-1)
    assert k.min() == 1 and k.max() == 4 and (e >= 0).all()
    torch.testing.assert_close(y, e @ prob.Phi.T)
    y2, _ = prob.sample(500, torch.Generator().manual_seed(3))
    torch.testing.assert_close(y, y2)  # a seed gives the same stream
    assert prob.config()["d"] == [1, 4]
    with pytest.raises(ValueError, match="r - 4"):
        PhotometricCorruptionProblem(lights, d=(1, 7))


def test_residual_decode_matches_a_row_by_row_reference():
    """The QR form scores every k at once; a plain loop over rows and k with lstsq must give the same codes."""
    gen = torch.Generator().manual_seed(7)
    lights = light_directions(9, generator=gen)
    Phi = nullspace_dictionary(lights)
    e = torch.zeros(40, 9, dtype=torch.float64)
    for b in range(40):
        e[b, torch.randperm(9, generator=gen)[: b % 5]] = torch.rand(b % 5, generator=gen, dtype=torch.float64) + 0.1
    y = e @ Phi.T + 1e-3 * torch.randn(40, 6, generator=gen, dtype=torch.float64)
    scores = e + 0.3 * torch.rand(40, 9, generator=gen, dtype=torch.float64)  # noisy ranking
    tol = 3e-3
    got = residual_decode(y, Phi, scores, tol)
    for b in range(40):
        order = torch.argsort(scores[b], descending=True, stable=True)
        want = torch.zeros(9, dtype=torch.float64)
        for k in range(0, 6):  # k = 0 .. n - 1 = 5; the last k is taken if nothing fits earlier
            sol = torch.zeros(9, dtype=torch.float64)
            if k:
                sol[order[:k]] = torch.linalg.lstsq(Phi[:, order[:k]], y[b].unsqueeze(-1)).solution.squeeze(-1)
            want = sol
            if torch.linalg.vector_norm(y[b] - Phi @ sol) <= tol:
                break
        torch.testing.assert_close(got[b], want, atol=1e-9, rtol=0)
