"""The working-set Lasso: KKT conditions, agreement with scikit-learn, edge cases, input errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from unrolled.sparse_coding import lasso
from unrolled.sparse_coding.data import SparseCodingProblem
from unrolled.sparse_coding.solvers import lasso_objective


def _kkt(y, A, x, lam):
    """Independent KKT check of eq. (kkt): g = A^T(y - Ax) computed from A, not from the Gram."""
    g = (y - x @ A.T) @ A
    on = x != 0
    on_err = torch.where(on, (g - lam * torch.sign(x)).abs(), torch.zeros_like(g)).amax(-1)
    off_err = torch.where(on, torch.zeros_like(g), torch.relu(g.abs() - lam)).amax(-1)
    return on_err / lam, off_err / lam


def _sklearn(y, A, lam):
    from sklearn.linear_model import Lasso

    m = A.shape[0]
    A_np = np.asfortranarray(A.double().numpy())
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for row in y.double().numpy():
            out.append(Lasso(alpha=lam / m, fit_intercept=False, tol=1e-12, max_iter=200_000).fit(A_np, row).coef_)
    return torch.tensor(np.array(out))


@pytest.mark.parametrize("m,n,B,lam", [(30, 60, 8, 0.05), (60, 40, 5, 0.02), (50, 200, 6, 0.1)])
def test_kkt_and_sklearn_agreement(m, n, B, lam):
    prob = SparseCodingProblem(m=m, n=n, p=0.15, snr_db=30.0, seed=m + n)
    y, _ = prob.sample(B, torch.Generator().manual_seed(1))
    A = prob.A
    res = lasso(y, A, lam, tol=1e-9)
    assert res.converged.all() and res.x.shape == (B, n) and res.n_iter.shape == (B,)
    on_err, off_err = _kkt(y, A, res.x, lam)
    assert on_err.max() < 1e-7 and off_err.max() < 1e-7
    # sklearn minimises F / m (its objective is 1/(2 n_samples) ||y - Ax||^2 + alpha |x|_1)
    x_sk = _sklearn(y, A, lam)
    F, F_sk = lasso_objective(y, A, res.x, lam), lasso_objective(y, A, x_sk, lam)
    assert torch.all((F - F_sk) / F_sk < 1e-9)
    if m >= n:  # strictly convex: the solution is unique
        torch.testing.assert_close(res.x, x_sk, atol=1e-6, rtol=0)
    # history: one entry per outer iteration, batch max criterion ends below tol
    assert len(res.history["criterion"]) == int(res.n_iter.max()) and res.history["criterion"][-1] < 1e-9
    assert len(res.history["objective"]) == len(res.history["criterion"])


def test_lam_above_lam_max_gives_zero_without_iterations():
    prob = SparseCodingProblem(m=20, n=30, p=0.2, seed=1)
    y, _ = prob.sample(4, torch.Generator().manual_seed(0))
    lam_max = (y @ prob.A).abs().amax(1)
    res = lasso(y, prob.A, float(lam_max.max()) * 1.01)
    assert torch.equal(res.x, torch.zeros_like(res.x))
    assert res.converged.all() and torch.equal(res.n_iter, torch.zeros(4, dtype=torch.int64))
    # mixed batch: lam between the problems' lam_max values, zero exactly where lam >= lam_max_b
    lam = float(lam_max.median())
    res = lasso(y, prob.A, lam)
    assert torch.equal((res.x == 0).all(1), lam_max <= lam)


def test_duplicated_columns():
    prob = SparseCodingProblem(m=30, n=40, p=0.15, snr_db=30.0, seed=3)
    A = torch.cat([prob.A, prob.A[:, :10]], dim=1)  # columns 40..49 duplicate 0..9: G_SS can be singular
    y, _ = prob.sample(6, torch.Generator().manual_seed(2))
    lam = 0.05
    res = lasso(y, A, lam, tol=1e-8)
    assert res.converged.all()
    on_err, off_err = _kkt(y, A, res.x, lam)
    assert on_err.max() < 1e-6 and off_err.max() < 1e-6
    F_sk = lasso_objective(y, A, _sklearn(y, A, lam), lam)
    assert torch.all((lasso_objective(y, A, res.x, lam) - F_sk) / F_sk < 1e-8)
    # the merged weights of a duplicated pair match the solution without duplicates
    ref = lasso(y, prob.A, lam, tol=1e-10).x
    merged = res.x[:, :40].clone()
    merged[:, :10] += res.x[:, 40:]
    torch.testing.assert_close(merged, ref, atol=1e-6, rtol=0)


def test_single_and_unbatched_problems_agree_with_the_batch():
    prob = SparseCodingProblem(m=40, n=80, p=0.1, snr_db=30.0, seed=4)
    y, _ = prob.sample(5, torch.Generator().manual_seed(3))
    batch = lasso(y, prob.A, 0.05, tol=1e-10)
    one = lasso(y[2:3], prob.A, 0.05, tol=1e-10)
    single = lasso(y[2], prob.A, 0.05, tol=1e-10)
    assert one.x.shape == (1, 80) and single.x.shape == (80,)
    assert single.n_iter.dim() == 0 and single.converged.dim() == 0 and bool(single.converged)
    torch.testing.assert_close(single.x, batch.x[2], atol=1e-9, rtol=0)
    torch.testing.assert_close(one.x[0], batch.x[2], atol=1e-9, rtol=0)


def test_float32():
    prob = SparseCodingProblem(m=50, n=100, p=0.1, snr_db=30.0, seed=5)
    y, _ = prob.sample(8, torch.Generator().manual_seed(4))
    res = lasso(y.float(), prob.A.float(), 0.05, tol=1e-4)
    assert res.x.dtype == torch.float32 and res.converged.all()
    ref = lasso(y, prob.A, 0.05, tol=1e-10).x
    F, F_ref = lasso_objective(y, prob.A, res.x.double(), 0.05), lasso_objective(y, prob.A, ref, 0.05)
    assert torch.all((F - F_ref) / F_ref < 1e-5)


def test_max_iter_cap_reports_not_converged():
    prob = SparseCodingProblem(m=50, n=200, p=0.2, snr_db=30.0, seed=6)
    y, _ = prob.sample(4, torch.Generator().manual_seed(5))
    res = lasso(y, prob.A, 0.01, max_iter=1, ws_size=2, inner_max_iter=1, polish=False, tol=1e-12)
    assert not res.converged.any() and torch.equal(res.n_iter, torch.ones(4, dtype=torch.int64))


@pytest.mark.parametrize("kwargs,name", [
    (dict(lam=0.0), "lam"), (dict(lam=-1.0), "lam"), (dict(max_iter=0), "max_iter"), (dict(tol=-1.0), "tol"),
    (dict(ws_size=0), "ws_size"), (dict(inner_max_iter=0), "inner_max_iter"), (dict(check_every=0), "check_every"),
    (dict(polish=1), "polish"), (dict(bucket=0), "bucket"),
])
def test_bad_arguments_name_themselves(kwargs, name):
    A = torch.randn(5, 8, dtype=torch.float64)
    y = torch.randn(3, 5, dtype=torch.float64)
    args = dict(lam=0.1)
    args.update(kwargs)
    lam = args.pop("lam")
    with pytest.raises(ValueError, match=name):
        lasso(y, A, lam, **args)


def test_bad_tensors_name_themselves():
    A = torch.randn(5, 8, dtype=torch.float64)
    y = torch.randn(3, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match="y"):
        lasso(torch.randn(3, 6, dtype=torch.float64), A, 0.1)
    with pytest.raises(ValueError, match="A"):
        lasso(y, A[0], 0.1)
    with pytest.raises(ValueError, match="dtype"):
        lasso(y.float(), A, 0.1)
    bad = A.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="A"):
        lasso(y, bad, 0.1)
    with pytest.raises(ValueError, match="y"):
        lasso(y.numpy(), A, 0.1)
