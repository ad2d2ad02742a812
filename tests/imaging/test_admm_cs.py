"""ADMM for (12): against cvxpy, a closed form, and its own optimality conditions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unrolled.imaging.admm import (ADMMCS, admm_cs, dct_filters, piecewise_linear_shrink, soft_threshold,
                                   soft_threshold_controls)
from unrolled.imaging.csmri import CSMRIProblem, zero_filled
from unrolled.imaging.operators import Filters, FiniteDifference, SubsampledFourier


def _objective_np(x, A, D, y, lam):
    return 0.5 * np.sum(np.abs(A @ x - y) ** 2) + lam * np.sum(np.abs(D @ x))


@pytest.mark.parametrize("transforms, rho", [("tv", 0.3)])
def test_admm_matches_cvxpy_on_12x12(transforms, rho):
    cp = pytest.importorskip("cvxpy")
    prob = CSMRIProblem(12, 0.4, mask="radial", noise_std=0.02, seed=1)
    y, x_true = prob.sample(1, torch.Generator().manual_seed(0))
    lam = 0.02
    res = admm_cs(y, prob.mask, lam, rho=rho, transforms=transforms, max_iter=3000, tol=1e-7)
    assert bool(res.converged.all())
    op = SubsampledFourier(prob.mask)
    A = op.dense().numpy()
    bank = FiniteDifference() if transforms == "tv" else Filters(dct_filters(3))
    D = bank.dense((12, 12)).numpy()
    if transforms == "tv":
        assert np.allclose(D.imag, 0)
    yv = y[0].reshape(-1).numpy()
    xv = cp.Variable(144, complex=True)
    cost = 0.5 * cp.sum_squares(A @ xv - yv) + lam * cp.sum(cp.abs(D.real @ xv))
    cp.Problem(cp.Minimize(cost)).solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    ours = _objective_np(res.x[0].reshape(-1).numpy(), A, D.real, yv, lam)
    ref = _objective_np(xv.value, A, D.real, yv, lam)
    assert abs(ours - ref) <= 1e-6 * abs(ref), (ours, ref)
    assert ours <= ref * (1 + 1e-6)
    assert np.abs(res.x[0].reshape(-1).numpy() - xv.value).max() < 1e-3
    # the solver's own objective agrees with this one
    assert res.history["objective"][-1] == pytest.approx(ours, rel=1e-10)


def test_closed_form_full_sampling_identity_filter():
    """Full k-space and D = I: min 1/2||x - F^H y||^2 + lam||x||_1 is the soft-threshold of F^H y."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(3, 9, 10, generator=gen, dtype=torch.complex128)
    mask = torch.ones(9, 10, dtype=torch.bool)
    y = SubsampledFourier(mask).forward(x)
    delta = torch.zeros(1, 1, 1, dtype=torch.float64)
    delta[0, 0, 0] = 1.0
    lam = 0.4
    res = admm_cs(y, mask, lam, rho=1.0, transforms=delta, max_iter=3000, tol=1e-12)
    expected = soft_threshold(x, torch.tensor(lam, dtype=torch.float64))
    assert torch.allclose(res.x, expected, atol=1e-9)
    assert (expected == 0).any() and (expected != 0).any()


@pytest.mark.parametrize("transforms, rho", [("tv", 0.3)])
def test_optimality_conditions_and_batch_freezing(transforms, rho):
    """Subgradient condition of (12): Phi^H(Phi x - y) + D^T(lam w) = 0 with |w| <= 1 and w = Dx/|Dx| where
    Dx != 0; the scaled dual gives lam w = rho alpha."""
    prob = CSMRIProblem(12, 0.35, noise_std=0.05, seed=0)
    y, _ = prob.sample(3, torch.Generator().manual_seed(3))
    lam = 0.01
    res = admm_cs(y, prob.mask, lam, rho, transforms=transforms, max_iter=1500, tol=1e-4)
    assert bool(res.converged.all()) and res.n_iter.min() < res.n_iter.max()
    w = rho * res.state["alpha"] / lam
    op = prob.operator
    D = FiniteDifference() if transforms == "tv" else Filters(dct_filters(3))
    grad = op.adjoint(op.forward(res.x) - y) + lam * D.adjoint(w)
    assert grad.abs().max() < 1e-4 * op.adjoint(y).abs().max()
    assert w.abs().max() <= 1 + 1e-6
    Dx = D.forward(res.x)
    on = Dx.abs() > 1e-2
    assert on.float().mean() > 0.05
    assert torch.allclose(w[on], Dx[on] / Dx[on].abs(), atol=1e-2)
    # the objective decreases overall, and the unbatched call gives the same image
    assert res.history["objective"][-1] < res.history["objective"][0]
    single = admm_cs(y[1], prob.mask, lam, rho, transforms=transforms, max_iter=1500, tol=1e-4)
    assert single.x.shape == (12, 12) and torch.allclose(single.x, res.x[1], atol=1e-10)


def test_admm_tv_beats_zero_filling():
    prob = CSMRIProblem(32, 0.3, noise_std=0.0, seed=0)
    y, x = prob.sample(2, torch.Generator().manual_seed(4))
    res = admm_cs(y, prob.mask, 3e-3, 0.05, max_iter=100, tol=1e-5)
    err = lambda est: float(((est.abs() - x) ** 2).mean())  # noqa: E731
    assert err(res.x) < 0.5 * err(zero_filled(y))


def test_shrinkages():
    v = torch.randn(50, dtype=torch.complex128, generator=torch.Generator().manual_seed(5)) * 3
    t = torch.tensor(0.7, dtype=torch.float64)
    st = soft_threshold(v, t)
    assert torch.allclose(st.abs(), torch.clamp(v.abs() - 0.7, min=0), atol=1e-14)
    on = st.abs() > 0
    assert torch.allclose(st[on] / st[on].abs(), v[on] / v[on].abs())
    plf = piecewise_linear_shrink(v, t, soft_threshold_controls(8))  # grid ends at 2 t: extrapolation tested too
    assert torch.allclose(plf, st, atol=1e-13)
    real = torch.tensor([1.05, -1.05, 0.7 * 1.625], dtype=torch.float64)  # |v| / t = 1.5, 1.5, 1.625
    controls = soft_threshold_controls(16).clone()
    controls[5] += 0.1  # q_6 (s = 1.5): phi(1.5) = 0.6, and phi(1.625) = (0.6 + 0.75) / 2 on the next segment
    out = piecewise_linear_shrink(real, t, controls)
    assert torch.allclose(out, torch.tensor([0.7 * 0.6, -0.7 * 0.6, 0.7 * 0.675], dtype=torch.float64), atol=1e-12)


def test_dct_filters_orthonormal_and_iteration_params():
    f = dct_filters(3).reshape(8, 9)
    assert torch.allclose(f @ f.T, torch.eye(8, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(f.sum(1), torch.zeros(8, dtype=torch.float64), atol=1e-12)  # zero DC response
    assert ADMMCS().param_names == ("filters", "lam", "rho", "eta", "shrink")


@pytest.mark.parametrize("bad, match", [
    (dict(sampling_ratio=0.0), "sampling_ratio"), (dict(sampling_ratio=1.5), "sampling_ratio"),
    (dict(mask="spiral"), "mask"), (dict(noise_std=-1.0), "noise_std"), (dict(size=2), "size"),
])
def test_problem_refuses_bad_settings(bad, match):
    kwargs = dict(size=8, sampling_ratio=0.3)
    kwargs.update(bad)
    with pytest.raises(ValueError, match=match):
        CSMRIProblem(**kwargs)


def test_solver_refuses_bad_input():
    prob = CSMRIProblem(8, 0.5)
    y, _ = prob.sample(2, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="y"):
        admm_cs(y[:, :7], prob.mask)
    bad = y.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="y"):
        admm_cs(bad, prob.mask)
    with pytest.raises(ValueError, match="mask"):
        admm_cs(y, torch.full((8, 8), 0.5))
    with pytest.raises(ValueError, match="lam"):
        admm_cs(y, prob.mask, lam=-1.0)
    with pytest.raises(ValueError, match="rho"):
        admm_cs(y, prob.mask, rho=torch.ones(3))
