"""The working-set Lasso (both methods): KKT conditions, agreement with scikit-learn, edge cases, input errors."""

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


METHODS = ["numba", "torch"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("m,n,B,lam", [(30, 60, 8, 0.05), (60, 40, 5, 0.02), (50, 200, 6, 0.1), (40, 90, 1, 0.05)])
def test_kkt_and_sklearn_agreement(m, n, B, lam, method):
    prob = SparseCodingProblem(m=m, n=n, p=0.15, snr_db=30.0, seed=m + n)
    y, _ = prob.sample(B, torch.Generator().manual_seed(1))
    A = prob.A
    res = lasso(y, A, lam, tol=1e-9, method=method)
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


@pytest.mark.parametrize("method", METHODS)
def test_lam_above_lam_max_gives_zero_without_iterations(method):
    prob = SparseCodingProblem(m=20, n=30, p=0.2, seed=1)
    y, _ = prob.sample(4, torch.Generator().manual_seed(0))
    lam_max = (y @ prob.A).abs().amax(1)
    res = lasso(y, prob.A, float(lam_max.max()) * 1.01, method=method)
    assert torch.equal(res.x, torch.zeros_like(res.x))
    assert res.converged.all() and torch.equal(res.n_iter, torch.zeros(4, dtype=torch.int64))
    # mixed batch: lam between the problems' lam_max values, zero exactly where lam >= lam_max_b
    lam = float(lam_max.median())
    res = lasso(y, prob.A, lam, method=method)
    assert torch.equal((res.x == 0).all(1), lam_max <= lam)


@pytest.mark.parametrize("method", METHODS)
def test_duplicated_columns(method):
    prob = SparseCodingProblem(m=30, n=40, p=0.15, snr_db=30.0, seed=3)
    A = torch.cat([prob.A, prob.A[:, :10]], dim=1)  # columns 40..49 duplicate 0..9: G_SS can be singular
    y, _ = prob.sample(6, torch.Generator().manual_seed(2))
    lam = 0.05
    res = lasso(y, A, lam, tol=1e-8, method=method)
    assert res.converged.all()
    on_err, off_err = _kkt(y, A, res.x, lam)
    assert on_err.max() < 1e-6 and off_err.max() < 1e-6
    assert ((res.x[:, :10] != 0) & (res.x[:, 40:] != 0)).any()  # a singular G_SS did occur
    F_sk = lasso_objective(y, A, _sklearn(y, A, lam), lam)
    assert torch.all((lasso_objective(y, A, res.x, lam) - F_sk) / F_sk < 1e-8)
    # the merged weights of a duplicated pair match the solution without duplicates
    ref = lasso(y, prob.A, lam, tol=1e-10, method=method).x
    merged = res.x[:, :40].clone()
    merged[:, :10] += res.x[:, 40:]
    torch.testing.assert_close(merged, ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", METHODS)
def test_single_and_unbatched_problems_agree_with_the_batch(method):
    prob = SparseCodingProblem(m=40, n=80, p=0.1, snr_db=30.0, seed=4)
    y, _ = prob.sample(5, torch.Generator().manual_seed(3))
    batch = lasso(y, prob.A, 0.05, tol=1e-10, method=method)
    one = lasso(y[2:3], prob.A, 0.05, tol=1e-10, method=method)
    single = lasso(y[2], prob.A, 0.05, tol=1e-10, method=method)
    assert one.x.shape == (1, 80) and single.x.shape == (80,)
    assert single.n_iter.dim() == 0 and single.converged.dim() == 0 and bool(single.converged)
    torch.testing.assert_close(single.x, batch.x[2], atol=1e-9, rtol=0)
    torch.testing.assert_close(one.x[0], batch.x[2], atol=1e-9, rtol=0)


@pytest.mark.parametrize("method", METHODS)
def test_float32(method):
    prob = SparseCodingProblem(m=50, n=100, p=0.1, snr_db=30.0, seed=5)
    y, _ = prob.sample(8, torch.Generator().manual_seed(4))
    res = lasso(y.float(), prob.A.float(), 0.05, tol=1e-4, method=method)
    assert res.x.dtype == torch.float32 and res.converged.all()
    ref = _sklearn(y, prob.A, 0.05)
    F, F_ref = lasso_objective(y, prob.A, res.x.double(), 0.05), lasso_objective(y, prob.A, ref, 0.05)
    assert torch.all((F - F_ref) / F_ref < 1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_zero_column(method):
    prob = SparseCodingProblem(m=30, n=50, p=0.15, snr_db=30.0, seed=8)
    A = prob.A.clone()
    A[:, 7] = 0.0
    y, _ = prob.sample(5, torch.Generator().manual_seed(6))
    res = lasso(y, A, 0.05, tol=1e-9, method=method)
    assert res.converged.all() and torch.all(res.x[:, 7] == 0) and torch.isfinite(res.x).all()
    on_err, off_err = _kkt(y, A, res.x, 0.05)
    assert on_err.max() < 1e-7 and off_err.max() < 1e-7
    F_sk = lasso_objective(y, A, _sklearn(y, A, 0.05), 0.05)
    assert torch.all((lasso_objective(y, A, res.x, 0.05) - F_sk) / F_sk < 1e-9)


def test_methods_agree_and_numpy_input():
    prob = SparseCodingProblem(m=60, n=120, p=0.1, snr_db=30.0, seed=9)
    y, _ = prob.sample(20, torch.Generator().manual_seed(7))
    a = lasso(y, prob.A, 0.05, tol=1e-10, method="numba")
    b = lasso(y, prob.A, 0.05, tol=1e-10, method="torch")
    auto = lasso(y, prob.A, 0.05, tol=1e-10)  # CPU tensors: the numba kernel
    assert torch.equal(auto.x, a.x)
    Fa, Fb = lasso_objective(y, prob.A, a.x, 0.05), lasso_objective(y, prob.A, b.x, 0.05)
    assert torch.all((Fa - Fb).abs() / Fb < 1e-12)
    torch.testing.assert_close(a.x, b.x, atol=1e-7, rtol=0)  # unique solution (Gaussian A, general position)
    nb = lasso(y.numpy(), prob.A.numpy(), 0.05, tol=1e-10)
    assert isinstance(nb.x, torch.Tensor) and torch.equal(nb.x, a.x)
    for res in (a, b):  # one history entry per outer iteration, in the same format
        assert set(res.history) == {"objective", "criterion", "ws_size", "inner_iter", "polished"}
        assert all(len(v) == int(res.n_iter.max()) for v in res.history.values())
        assert res.history["criterion"][-1] < 1e-10 and res.history["objective"][-1] == pytest.approx(float(Fa.mean()))


@pytest.mark.parametrize("method", METHODS)
def test_unequal_column_norms_and_what_a_wrong_diagonal_would_give(method):
    """Columns of squared norms 0.25..4: the CD step must threshold at lam / G_ii, not lam.

    A kernel thresholding at ``lam`` (the diagonal scaling forgotten) would converge to the
    weighted-l1 point computed below as ``bug``; the independent KKT check rejects that point,
    so this test fails on that bug.
    """
    prob = SparseCodingProblem(m=40, n=80, p=0.15, snr_db=30.0, seed=10)
    scale = torch.linspace(0.5, 2.0, 80, dtype=torch.float64)
    A = prob.A * scale
    y, _ = prob.sample(6, torch.Generator().manual_seed(8))
    lam = 0.05
    res = lasso(y, A, lam, tol=1e-9, method=method)
    on_err, off_err = _kkt(y, A, res.x, lam)
    assert on_err.max() < 1e-7 and off_err.max() < 1e-7
    F_sk = lasso_objective(y, A, _sklearn(y, A, lam), lam)
    assert torch.all((lasso_objective(y, A, res.x, lam) - F_sk) / F_sk < 1e-9)
    # fixed point of CD with soft(z, lam): min 0.5||y - Ax||^2 + lam sum_i G_ii |x_i|, i.e. a Lasso in
    # x' = d * x over the columns A / d (d = diag G)
    d = (A * A).sum(0)
    bug = lasso(y, A / d, lam, tol=1e-10, method=method).x / d
    assert max(t.max() for t in _kkt(y, A, bug, lam)) > 1e-2


@pytest.mark.parametrize("method", METHODS)
def test_max_iter_cap_reports_not_converged(method):
    prob = SparseCodingProblem(m=50, n=200, p=0.2, snr_db=30.0, seed=6)
    y, _ = prob.sample(4, torch.Generator().manual_seed(5))
    res = lasso(y, prob.A, 0.01, max_iter=1, ws_size=2, inner_max_iter=1, polish=False, tol=1e-12, method=method)
    assert not res.converged.any() and torch.equal(res.n_iter, torch.ones(4, dtype=torch.int64))


@pytest.mark.parametrize("kwargs,name", [
    (dict(lam=0.0), "lam"), (dict(lam=-1.0), "lam"), (dict(max_iter=0), "max_iter"), (dict(tol=-1.0), "tol"),
    (dict(ws_size=0), "ws_size"), (dict(inner_max_iter=0), "inner_max_iter"), (dict(check_every=0), "check_every"),
    (dict(polish=1), "polish"), (dict(bucket=0), "bucket"), (dict(method="cd"), "method"),
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
        lasso(y.numpy().astype(np.int64), A, 0.1)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
def test_numba_polish_is_exact_and_refuses_singular_blocks(dtype, tol):
    """polish=True on the CPU kernel: kept polishes solve eq. (kkt) to rounding; duplicated columns (G_SS singular)."""
    prob = SparseCodingProblem(m=30, n=40, p=0.15, snr_db=30.0, seed=3)
    A = torch.cat([prob.A, prob.A[:, :10]], dim=1)
    y, _ = prob.sample(6, torch.Generator().manual_seed(2))
    res = lasso(y.to(dtype), A.to(dtype), 0.05, tol=tol, method="numba", polish=True)
    assert res.converged.all() and res.x.dtype == dtype and torch.isfinite(res.x).all()
    F = lasso_objective(y, A, res.x.double(), 0.05)
    F_sk = lasso_objective(y, A, _sklearn(y, A, 0.05), 0.05)
    assert torch.all((F - F_sk) / F_sk < (1e-9 if dtype == torch.float64 else 1e-5))
    # on a problem without duplicates the polish is kept and exact to rounding
    y2, _ = prob.sample(6, torch.Generator().manual_seed(3))
    res2 = lasso(y2, prob.A, 0.05, tol=1e-9, method="numba", polish=True)
    assert sum(res2.history["polished"]) > 0
    on_err, off_err = _kkt(y2, prob.A, res2.x, 0.05)
    assert on_err.max() < 1e-11 and off_err.max() < 1e-11


def _coherent_problem(B: int = 24):
    """The SBL family's correlated 20 x 100 dictionary at a small lam: coordinate descent crawls here."""
    from unrolled.sbl.data import CorrelatedSparseProblem

    prob = CorrelatedSparseProblem(d=4, noise_std=1e-4, seed=0)
    y, _ = prob.sample(B, torch.Generator().manual_seed(3))
    return y, prob.Phi, 1e-3


def test_coherent_dictionary_converges_and_matches_sklearn():
    """On a coherent dictionary plain CD stalls (38% of problems unconverged after 50 x 500 epochs before the
    stall polish); with it every problem meets the KKT conditions and the objective is sklearn's or better."""
    y, A, lam = _coherent_problem()
    res = lasso(y, A, lam, tol=1e-6)
    assert bool(res.converged.all())
    on_err, off_err = _kkt(y, A, res.x, lam)
    assert on_err.max() < 1e-5 and off_err.max() < 1e-5
    F = lasso_objective(y, A, res.x, lam)
    F_sk = lasso_objective(y, A, _sklearn(y, A, lam), lam)
    assert ((F - F_sk) / F_sk).max() < 1e-9
    # without the polish the same call leaves problems unconverged (what the stall polish is for)
    plain = lasso(y, A, lam, tol=1e-6, polish=False)
    assert not bool(plain.converged.all())


def test_torch_path_stays_finite_on_a_coherent_dictionary():
    """The restricted FISTA's step comes from an upper bound of ||G_WW||_2 (a power-iteration estimate
    with a 15% margin let it diverge to |x| ~ 1e163 here)."""
    y, A, lam = _coherent_problem(16)
    res = lasso(y, A, lam, tol=1e-6, method="torch", max_iter=20)
    F = lasso_objective(y, A, res.x, lam)
    F0 = 0.5 * (y * y).sum(1)
    assert torch.isfinite(res.x).all() and (F <= F0 + 1e-12).all()
    ref = lasso(y, A, lam, tol=1e-9)
    done = res.converged
    assert done.sum() >= 8
    F_ref = lasso_objective(y, A, ref.x, lam)
    assert (((F - F_ref) / F_ref)[done]).max() < 1e-6


def test_spectral_bound_is_an_upper_bound():
    from unrolled.sparse_coding.lasso_torch import _spectral_bound

    y, A, _ = _coherent_problem(2)
    g = torch.Generator().manual_seed(0)
    blocks = []
    for k in (5, 20, 60):
        for D in (A, torch.randn(30, 100, generator=g, dtype=torch.float64)):
            W = torch.randperm(D.shape[1], generator=g)[:k]
            blocks.append(D[:, W].T @ D[:, W])
    for Gw in blocks:
        L = _spectral_bound(Gw.unsqueeze(0))[0]
        assert L >= torch.linalg.eigvalsh(Gw)[-1] * (1 - 1e-12)


def test_feature_sign_polish_drops_a_coordinate_of_the_wrong_sign():
    """The polish of an iterate whose sign pattern is wrong on one coordinate: the line search zeroes it and
    the result is the exact restricted solution (checked against sklearn on the same block)."""
    from unrolled.sparse_coding.lasso_cd import _polish

    g = torch.Generator().manual_seed(1)
    A = torch.randn(12, 3, generator=g, dtype=torch.float64)
    A[:, 2] = 0.9 * A[:, 0] + 0.45 * torch.randn(12, generator=g, dtype=torch.float64)
    y = A[:, 0] * 2.0 + 0.01 * torch.randn(12, generator=g, dtype=torch.float64)
    lam = 0.5
    Gw, cw = (A.T @ A).numpy().copy(), (A.T @ y).numpy().copy()
    ref = _sklearn(y[None], A, lam)[0].numpy()
    assert ref[2] == 0.0 and ref[0] != 0.0            # the solution leaves the collinear column out
    xw = np.array([1.0, 0.0, 0.8])                     # a non-zero on the wrong coordinate
    gw = cw - Gw @ xw
    n = 3
    ok = _polish(Gw, cw, xw, gw, n, lam, 1e-10, np.zeros(n, np.int64), np.zeros((n, n)), np.zeros(n),
                 np.zeros(n), np.zeros(n))
    assert ok
    assert xw[2] == 0.0
    np.testing.assert_allclose(xw, ref, atol=1e-8)
    np.testing.assert_allclose(gw, cw - Gw @ xw, atol=1e-12)


@pytest.mark.parametrize("ties", [False, True])
def test_working_set_selection_finds_the_kth_largest_score(ties):
    """The quickselect of the working-set step against a sort, with ties and at both ends (k = 1 and k = nv):
    an off-by-one in the target position or a swapped comparison gives another order statistic."""
    from unrolled.sparse_coding.lasso_cd import _kth_largest

    rng = np.random.default_rng(3)
    for _ in range(400):
        nv = int(rng.integers(1, 70))
        a = rng.integers(0, 4, nv).astype(float) if ties else rng.random(nv)
        for kk in {1, nv, int(rng.integers(1, nv + 1))}:
            b = np.concatenate([a, [np.inf, -np.inf]])  # entries past nv must be ignored
            assert _kth_largest(b, nv, kk) == np.sort(a)[::-1][kk - 1]
            np.testing.assert_array_equal(np.sort(b[:nv]), np.sort(a))  # a permutation, nothing lost


def test_numba_working_set_grows_with_the_support():
    """From a first working set of 2, each outer iteration adds max(2, |supp x| // 2) violators (module docstring),
    so supports of 86-124 atoms are reached in about 15 outer iterations (history 2, 4, 6, 9, 13, 19, 28, ...); a
    growth that ignored the support (+2 per iteration) needs about 50 and hits max_iter."""
    prob = SparseCodingProblem(m=250, n=500, p=0.14, snr_db=40.0, seed=4)
    y, _ = prob.sample(4, torch.Generator().manual_seed(5))
    res = lasso(y.double(), prob.A.double(), 0.05, ws_size=2, method="numba")
    assert bool(res.converged.all())
    assert int((res.x != 0).sum(1).min()) >= 80
    assert int(res.n_iter.max()) <= 20
    ws = res.history["ws_size"]
    assert ws[0] == 2
    assert ws[8] >= 40  # +2 per outer iteration would give 18
