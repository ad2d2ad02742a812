"""Tests of the proximal operators and projections against their definitions."""

import itertools
import math

import numpy as np
import pytest
import torch

from unrolled.core.prox import (
    hard_threshold,
    project_columns_unit_ball,
    project_columns_unit_sphere,
    soft_threshold,
    support_selection_threshold,
)

# --------------------------------------------------------------------------
# soft_threshold
# --------------------------------------------------------------------------


def _prox_l1_bruteforce(x: float, theta: float, step: float = 1e-4) -> float:
    """argmin_z 0.5 (z - x)^2 + theta |z| on a fine grid containing 0."""
    z = np.arange(-6.0, 6.0 + step / 2, step)
    obj = 0.5 * (z - x) ** 2 + theta * np.abs(z)
    return float(z[np.argmin(obj)])


@pytest.mark.parametrize("theta", [0.0, 0.3, 1.0, 2.5])
def test_soft_threshold_matches_bruteforce_prox(theta):
    xs = np.array([-4.2, -2.5, -1.0, -0.7, -0.29, 0.0, 0.1, 0.31, 1.0, 1.7, 3.9])
    out = soft_threshold(torch.tensor(xs, dtype=torch.float64), theta).numpy()
    ref = np.array([_prox_l1_bruteforce(x, theta) for x in xs])
    np.testing.assert_allclose(out, ref, atol=1.5e-4)


def test_soft_threshold_satisfies_optimality_condition():
    # 0 in (z - x) + theta * d|z|: z != 0 -> z - x + theta sign(z) = 0, z == 0 -> |x| <= theta.
    g = torch.Generator().manual_seed(0)
    x = 3 * torch.randn(500, dtype=torch.float64, generator=g)
    theta = torch.rand(500, dtype=torch.float64, generator=g) * 2
    z = soft_threshold(x, theta)
    nz = z != 0
    torch.testing.assert_close(
        (z - x + theta * torch.sign(z))[nz], torch.zeros(int(nz.sum()), dtype=torch.float64), rtol=0, atol=1e-14
    )
    assert torch.all(x[~nz].abs() <= theta[~nz])
    assert nz.any() and (~nz).any()
    # the shrinkage never flips signs and never increases magnitudes
    assert torch.all(z * x >= 0)
    assert torch.all(z.abs() <= x.abs())


def test_soft_threshold_zero_theta_is_identity_and_shape_kept():
    x = torch.randn(3, 4, 5, dtype=torch.float64)
    out = soft_threshold(x, 0.0)
    assert out.shape == x.shape
    torch.testing.assert_close(out, x, rtol=0, atol=0)


def test_soft_threshold_broadcasts_per_row_and_per_coordinate_theta():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 6, dtype=torch.float64, generator=g)
    theta_row = torch.tensor([[0.0], [0.2], [0.7], [5.0]], dtype=torch.float64)
    out = soft_threshold(x, theta_row)
    assert out.shape == x.shape
    for b in range(4):
        torch.testing.assert_close(out[b], soft_threshold(x[b], float(theta_row[b, 0])), rtol=0, atol=0)
    assert torch.all(out[3] == 0)  # threshold larger than every entry

    theta_col = torch.linspace(0, 1, 6, dtype=torch.float64)
    out = soft_threshold(x, theta_col)
    for j in range(6):
        torch.testing.assert_close(out[:, j], soft_threshold(x[:, j], float(theta_col[j])), rtol=0, atol=0)


def test_soft_threshold_gradients_wrt_x_and_theta():
    x = torch.tensor([-2.0, -0.5, 0.2, 1.5, 3.0], dtype=torch.float64, requires_grad=True)
    theta = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    soft_threshold(x, theta).sum().backward()
    active = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(x.grad, active)
    # d/dtheta sum_i sign(x_i)(|x_i| - theta)_+ = -sum_{active} sign(x_i)
    assert theta.grad.item() == pytest.approx(-(-1.0 + 1.0 + 1.0))

    # finite-difference check away from the kinks, per-row theta
    xs = torch.tensor([[-2.0, 0.9, 1.3], [0.1, -3.0, 2.2]], dtype=torch.float64, requires_grad=True)
    th = torch.tensor([[0.4], [0.6]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(soft_threshold, (xs, th))


# --------------------------------------------------------------------------
# hard_threshold
# --------------------------------------------------------------------------


def _best_k_sparse_distance(x: np.ndarray, k: int) -> float:
    """min over supports S of size k of ||x - x_S||^2 (brute-force enumeration)."""
    n = x.shape[0]
    best = math.inf
    for support in itertools.combinations(range(n), k):
        z = np.zeros_like(x)
        z[list(support)] = x[list(support)]
        best = min(best, float(np.sum((x - z) ** 2)))
    return best


@pytest.mark.parametrize("k", [0, 1, 2, 3, 5, 6])
def test_hard_threshold_is_projection_onto_k_sparse(k):
    g = torch.Generator().manual_seed(10 + k)
    x = torch.randn(8, 6, dtype=torch.float64, generator=g)
    out = hard_threshold(x, k)
    assert out.shape == x.shape
    for b in range(x.shape[0]):
        row, z = x[b].numpy(), out[b].numpy()
        # exactly k nonzeros (random data: no zeros, no ties)
        assert np.count_nonzero(z) == k
        # kept entries are unchanged, others are zero
        kept = z != 0
        np.testing.assert_array_equal(z[kept], row[kept])
        # the kept ones are the k largest magnitudes
        if 0 < k < 6:
            assert np.abs(row[kept]).min() > np.abs(row[~kept]).max()
        # and z is a Euclidean projection onto {k-sparse}
        assert np.sum((row - z) ** 2) == pytest.approx(_best_k_sparse_distance(row, k), abs=1e-12)


def test_hard_threshold_batched_and_edge_k():
    x = torch.randn(2, 3, 5, dtype=torch.float64)
    out = hard_threshold(x, 2)
    assert out.shape == x.shape
    assert torch.all((out != 0).sum(-1) == 2)
    assert torch.all(hard_threshold(x, 0) == 0)
    full = hard_threshold(x, 5)
    torch.testing.assert_close(full, x, rtol=0, atol=0)
    full[0, 0, 0] = 123.0  # must be a copy, not the input itself
    assert x[0, 0, 0] != 123.0


def test_hard_threshold_keeps_largest_magnitude_regardless_of_sign():
    x = torch.tensor([[0.5, -4.0, 1.0, 3.0, -0.1]])
    torch.testing.assert_close(hard_threshold(x, 2), torch.tensor([[0.0, -4.0, 0.0, 3.0, 0.0]]))


@pytest.mark.parametrize("k", [-1, 6, 100])
def test_hard_threshold_rejects_bad_k(k):
    with pytest.raises(ValueError):
        hard_threshold(torch.randn(3, 5), k)


# --------------------------------------------------------------------------
# support_selection_threshold
# --------------------------------------------------------------------------


def _ss_reference(x: np.ndarray, theta: float, fraction: float) -> np.ndarray:
    n = x.shape[0]
    k = math.ceil(fraction * n)
    trusted = set(np.argsort(-np.abs(x))[:k].tolist())
    out = np.zeros_like(x)
    for i, v in enumerate(x):
        if abs(v) <= theta:
            out[i] = 0.0
        elif i in trusted:
            out[i] = v
        else:
            out[i] = np.sign(v) * (abs(v) - theta)
    return out


def test_support_selection_fraction_zero_equals_soft_threshold():
    x = torch.randn(5, 7, dtype=torch.float64)
    theta = torch.rand(5, 1, dtype=torch.float64)
    torch.testing.assert_close(support_selection_threshold(x, theta, 0.0), soft_threshold(x, theta), rtol=0, atol=0)


def test_support_selection_hand_built():
    x = torch.tensor([[3.0, -2.0, 0.5, -0.1, 1.5]], dtype=torch.float64)
    # fraction 0.4 of n=5 -> 2 trusted entries: 3 and -2 pass, 1.5 shrinks, the rest vanish
    out = support_selection_threshold(x, 1.0, 0.4)
    torch.testing.assert_close(out, torch.tensor([[3.0, -2.0, 0.0, 0.0, 0.5]], dtype=torch.float64))
    # fraction 1: all entries trusted -> hard thresholding at theta
    out = support_selection_threshold(x, 1.0, 1.0)
    torch.testing.assert_close(out, torch.tensor([[3.0, -2.0, 0.0, 0.0, 1.5]], dtype=torch.float64))
    # trusted entries below the threshold are still zeroed
    out = support_selection_threshold(x, 2.5, 0.4)
    torch.testing.assert_close(out, torch.tensor([[3.0, 0.0, 0.0, 0.0, 0.0]], dtype=torch.float64))
    # an entry exactly at the threshold is zero
    out = support_selection_threshold(x, 2.0, 0.4)
    torch.testing.assert_close(out, torch.tensor([[3.0, 0.0, 0.0, 0.0, 0.0]], dtype=torch.float64))


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.5, 0.75, 1.0])
def test_support_selection_matches_reference_rules(fraction):
    g = torch.Generator().manual_seed(3)
    x = 2 * torch.randn(6, 8, dtype=torch.float64, generator=g)
    theta = torch.tensor([[0.0], [0.3], [0.8], [1.2], [2.0], [10.0]], dtype=torch.float64)
    out = support_selection_threshold(x, theta, fraction)
    assert out.shape == x.shape
    for b in range(6):
        ref = _ss_reference(x[b].numpy(), float(theta[b, 0]), fraction)
        np.testing.assert_allclose(out[b].numpy(), ref, rtol=0, atol=1e-15)


def test_support_selection_gradients_exist():
    x = torch.tensor([[3.0, -2.0, 0.5, 1.5]], dtype=torch.float64, requires_grad=True)
    theta = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    support_selection_threshold(x, theta, 0.25).sum().backward()
    # entry 0 trusted (identity), 1 and 3 shrunk, 2 zeroed
    torch.testing.assert_close(x.grad, torch.tensor([[1.0, 1.0, 0.0, 1.0]], dtype=torch.float64))
    assert theta.grad.item() == pytest.approx(-(-1.0 + 1.0))


@pytest.mark.parametrize("fraction", [-0.1, 1.0001, 2.0])
def test_support_selection_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError):
        support_selection_threshold(torch.randn(2, 4), 0.1, fraction)


# --------------------------------------------------------------------------
# column projections
# --------------------------------------------------------------------------


def _mixed_columns(seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(5, 8, dtype=torch.float64, generator=g)
    scales = torch.tensor([0.05, 0.3, 0.9, 1.0, 1.5, 3.0, 10.0, 0.0], dtype=torch.float64)
    a = a / torch.linalg.vector_norm(a, dim=0, keepdim=True) * scales
    return a, scales


def test_project_unit_ball_basic_properties():
    a, scales = _mixed_columns()
    p = project_columns_unit_ball(a)
    norms = torch.linalg.vector_norm(p, dim=0)
    assert torch.all(norms <= 1 + 1e-14)
    inside = scales <= 1
    torch.testing.assert_close(p[:, inside], a[:, inside], rtol=0, atol=0)  # inside: unchanged
    torch.testing.assert_close(norms[~inside], torch.ones(int((~inside).sum()), dtype=torch.float64))
    # outside columns keep their direction
    cos = (p[:, ~inside] * a[:, ~inside]).sum(0) / (norms[~inside] * scales[~inside])
    torch.testing.assert_close(cos, torch.ones_like(cos))
    # idempotent
    torch.testing.assert_close(project_columns_unit_ball(p), p, rtol=0, atol=1e-15)


def test_project_unit_ball_is_euclidean_projection():
    a, _ = _mixed_columns(1)
    p = project_columns_unit_ball(a)
    g = torch.Generator().manual_seed(2)
    m = a.shape[0]
    # random points of the ball: directions times radius^(1/m), plus some on the sphere
    d = torch.randn(m, 2000, dtype=torch.float64, generator=g)
    d = d / torch.linalg.vector_norm(d, dim=0, keepdim=True)
    r = torch.rand(2000, dtype=torch.float64, generator=g) ** (1 / m)
    r[:500] = 1.0
    b = d * r
    for j in range(a.shape[1]):
        dist_p = torch.linalg.vector_norm(a[:, j] - p[:, j])
        dist_b = torch.linalg.vector_norm(a[:, j : j + 1] - b, dim=0)
        assert torch.all(dist_p <= dist_b + 1e-12)
        # variational inequality of a projection onto a convex set
        assert torch.all((a[:, j] - p[:, j]) @ (b - p[:, j : j + 1]) <= 1e-12)


def test_project_unit_ball_batched_leading_dims():
    a = 3 * torch.randn(2, 3, 4, 5, dtype=torch.float64)
    p = project_columns_unit_ball(a)
    assert p.shape == a.shape
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(p[i, j], project_columns_unit_ball(a[i, j]))


def test_project_unit_sphere_gives_unit_columns():
    a, scales = _mixed_columns(4)
    s = project_columns_unit_sphere(a)
    norms = torch.linalg.vector_norm(s, dim=0)
    nonzero = scales > 0
    torch.testing.assert_close(norms[nonzero], torch.ones(int(nonzero.sum()), dtype=torch.float64))
    # same direction as the input
    cos = (s[:, nonzero] * a[:, nonzero]).sum(0) / scales[nonzero]
    torch.testing.assert_close(cos, torch.ones_like(cos))
    # an all-zero column stays finite (zero)
    assert torch.all(torch.isfinite(s))
    assert torch.all(s[:, ~nonzero] == 0)
    torch.testing.assert_close(project_columns_unit_sphere(s), s)
