"""Tests of the SBL data models and the batched SBL solver, against math and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import ARDRegression

from unrolled.sbl.data import CorrelatedSparseProblem, DOAProblem, correlated_dictionary, sparse_codes
from unrolled.sbl.metrics import top_d_support
from unrolled.sbl.solvers import posterior, sbl, sbl_objective
from unrolled.sparse_coding.data import gaussian_dictionary

DT = torch.float64


# --------------------------------------------------------------------------- data
def test_correlated_dictionary_structure():
    g = torch.Generator().manual_seed(0)
    phi = correlated_dictionary(20, 100, generator=g)
    assert phi.shape == (20, 100)
    torch.testing.assert_close(torch.linalg.vector_norm(phi, dim=0), torch.ones(100, dtype=DT))
    # columns are strongly correlated, unlike a Gaussian dictionary's
    gauss = gaussian_dictionary(20, 100, generator=torch.Generator().manual_seed(0))
    coh = lambda a: (a.T @ a - torch.eye(100, dtype=DT)).abs().mean()
    assert coh(phi) > 2 * coh(gauss)
    # rebuilt by hand from the same random numbers: sum_i i^-2 u_i v_i^T
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(20, 20, generator=g, dtype=DT), torch.randn(100, 20, generator=g, dtype=DT)
    ref = sum((1.0 / i**2) * torch.outer(u[:, i - 1], v[:, i - 1]) for i in range(1, 21))
    torch.testing.assert_close(phi, ref / ref.norm(dim=0))


def test_sparse_codes_and_problem():
    x = sparse_codes(500, 100, 7, generator=torch.Generator().manual_seed(1))
    assert ((x != 0).sum(1) == 7).all()
    nz = x[x != 0].abs()
    assert nz.min() >= 0.1 and nz.max() <= 0.5
    xr = sparse_codes(500, 100, (4, 10), generator=torch.Generator().manual_seed(1))
    counts = (xr != 0).sum(1)
    assert counts.min() == 4 and counts.max() == 10
    prob = CorrelatedSparseProblem(d=5, noise_std=0.0)
    y, x = prob.sample(16, torch.Generator().manual_seed(2))
    torch.testing.assert_close(y, x @ prob.Phi.T)
    y2, _ = prob.sample(16, torch.Generator().manual_seed(2))
    assert torch.equal(y, y2)  # online sampling is reproducible from the generator
    # a float32 problem has the same dictionary (nets train in float32, solvers run in float64)
    prob32 = CorrelatedSparseProblem(d=5, noise_std=0.0, dtype=torch.float32)
    torch.testing.assert_close(prob32.Phi, prob.Phi.float())


def test_sparse_codes_d_weights_set_the_frequencies_of_d():
    n_rows = 20000
    counts = (sparse_codes(n_rows, 100, (4, 6), d_weights=(1, 0, 3),
                           generator=torch.Generator().manual_seed(3)) != 0).sum(1)
    assert set(counts.tolist()) == {4, 6}  # a zero weight never draws its d
    share6 = float((counts == 6).double().mean())
    assert abs(share6 - 0.75) < 4 * math.sqrt(0.75 * 0.25 / n_rows)  # 4 standard errors of a binomial share
    prob = CorrelatedSparseProblem(d=(4, 6), d_weights=[0, 0, 2], noise_std=0.0)
    assert prob.config()["d_weights"] == [0.0, 0.0, 2.0]
    assert "d_weights" not in CorrelatedSparseProblem(d=(4, 6), noise_std=0.0).config()
    _, x = prob.sample(64, torch.Generator().manual_seed(4))
    assert ((x != 0).sum(1) == 6).all()


@pytest.mark.parametrize("d, weights, match", [((4, 6), (1, 1), "one weight per d"), ((4, 6), (1, -1, 1), "non-negative"),
                                               ((4, 6), (0, 0, 0), "not all zero"), ((4, 6), (1, math.nan, 1), "finite"),
                                               (5, (1,), "range of d")])
def test_bad_d_weights_are_rejected(d, weights, match):
    with pytest.raises(ValueError, match=match):
        sparse_codes(8, 100, d, d_weights=weights)
    with pytest.raises(ValueError, match=match):
        CorrelatedSparseProblem(d=d, d_weights=weights)


def test_doa_problem():
    prob = DOAProblem(n_sensors=10, resolution=2.0, n_sources=4, snr_db=None)
    assert prob.Phi.shape == (10, 90) and prob.Phi.is_complex()
    torch.testing.assert_close(prob.Phi.abs(), torch.full((10, 90), 1 / math.sqrt(10), dtype=DT))
    y, x = prob.sample(32, torch.Generator().manual_seed(0))
    assert ((x != 0).sum(1) == 4).all()
    assert set(x[x != 0].real.unique().tolist()) <= {-1.0, 1.0}
    torch.testing.assert_close(y, x @ prob.Phi.T)
    noisy = DOAProblem(snr_db=10.0)
    yn, xn = noisy.sample(2000, torch.Generator().manual_seed(0))
    clean = xn @ noisy.Phi.T
    snr = 10 * torch.log10(clean.abs().pow(2).sum() / (yn - clean).abs().pow(2).sum())
    assert abs(float(snr) - 10.0) < 0.3


@pytest.mark.parametrize("kwargs, match", [
    ({"d": 21}, "larger than n"),
    ({"noise_std": -1.0}, "noise_std"),
])
def test_problem_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CorrelatedSparseProblem(**kwargs)


# --------------------------------------------------------------------------- solver
@pytest.fixture(scope="module")
def easy():
    """Noiseless, Gaussian 20 x 40 dictionary, 3 non-zeros: an easy problem."""
    prob = CorrelatedSparseProblem(n=20, m=40, d=3, noise_std=0.0, correlated=False, seed=3)
    y, x = prob.sample(20, torch.Generator().manual_seed(4))
    return prob.Phi, y, x


@pytest.mark.parametrize("update", ["em", "mackay", "lstm"])
def test_exact_support_noiseless(easy, update):
    Phi, y, x = easy
    res = sbl(y, Phi, 1e-8, update=update, max_iter=3000, tol=1e-7)
    assert res.converged.all()
    assert (res.n_iter >= 1).all() and (res.n_iter < 3000).all()
    truth = x != 0
    assert torch.equal(top_d_support(res.gamma, 3), truth)
    # off-support hyperparameters collapse: gamma is (numerically) sparse with the right support
    assert (res.gamma[~truth] < 1e-4 * res.gamma[truth].min()).all()
    torch.testing.assert_close(res.x, x, atol=1e-3, rtol=0)


def test_em_fixed_point_and_monotone_cost(easy):
    """EM never increases (5); at SBL's fixed point the gradient of (5) vanishes (KKT on gamma >= 0)."""
    Phi, y, _ = easy
    y = y[:4] + 0.01 * torch.randn(y[:4].shape, generator=torch.Generator().manual_seed(0), dtype=DT)
    lam = 1e-4
    costs = []
    res = sbl(y, Phi, lam, update="em", max_iter=200, tol=0.0,
              callback=lambda k, g: costs.append(sbl_objective(y, Phi, g, lam)))
    c = torch.stack(costs)
    assert (c[1:] <= c[:-1] + 1e-9 * c[:-1].abs()).all()
    assert (c[-1] < c[0]).all()
    # EM creeps (tiny steps) near the optimum; the MacKay update reaches the same stationary point fast
    res = sbl(y, Phi, lam, update="mackay", max_iter=5000, tol=1e-10)
    assert res.converged.all()
    # stationarity of (5), by autograd: gamma_i * dL/dgamma_i = 0 (KKT with gamma >= 0)
    gamma = res.gamma.clone().requires_grad_(True)
    sbl_objective(y, Phi, gamma, lam).sum().backward()
    g0 = torch.rand(res.gamma.shape, generator=torch.Generator().manual_seed(2), dtype=DT).requires_grad_(True)
    sbl_objective(y, Phi, g0, lam).sum().backward()
    assert float((res.gamma * gamma.grad).abs().amax()) < 1e-6 * float((g0.detach() * g0.grad).abs().amax())
    mean, _, _ = posterior(y, Phi, res.gamma, lam)
    torch.testing.assert_close(mean, res.x)


def test_lstm_form_monotone_cell_update_and_cost(easy):
    """Definition 2 / eq. (12): each cell update lowers the weighted-l1 majoriser; (5) decreases."""
    Phi, y, _ = easy
    y = y + 0.01 * torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=DT)
    lam = 1e-3
    mu = 1.0 / float(torch.linalg.matrix_norm(Phi, ord=2) ** 2)
    gammas = [torch.ones(y.shape[0], Phi.shape[1], dtype=DT)]
    sbl(y, Phi, lam, update="lstm", max_iter=60, tol=0.0, callback=lambda k, g: gammas.append(g.clone()))
    costs = torch.stack([sbl_objective(y, Phi, g, lam) for g in gammas])
    assert (costs[1:] <= costs[:-1] + 1e-9 * costs[:-1].abs()).all()
    for g_old, g_new in zip(gammas[:-1], gammas[1:]):
        u, q, _ = posterior(y, Phi, g_old, lam)
        w = q.sqrt()
        x_new = g_new * w  # |x^{t+1}| = w gamma^{t+1} (eq. 11); its sign is that of nu
        nu = u + mu * (y - u @ Phi.T) @ Phi
        x_new = x_new * torch.sign(nu)
        f = lambda v: ((y - v @ Phi.T) ** 2).sum(-1) + 2 * lam * (w * v.abs()).sum(-1)
        assert (f(x_new) <= f(u) + 1e-12).all()


def test_complex_posterior_matches_dense_formulas():
    """Batched complex posterior mean (4), q = diag(Phi^H Sigma_y^-1 Phi) and cost (5) equal the dense
    formulas with conjugate transposes, problem by problem."""
    prob = DOAProblem(n_sensors=10, resolution=4.0, n_sources=3, snr_db=None)
    y, x = prob.sample(10, torch.Generator().manual_seed(5))
    gamma = torch.rand(10, prob.m, generator=torch.Generator().manual_seed(6), dtype=DT) + 0.1
    lam = 0.05
    mean, q, cost = posterior(y, prob.Phi, gamma, lam)
    for b in range(3):
        G = torch.diag(gamma[b]).to(prob.Phi.dtype)
        Sy = lam * torch.eye(10, dtype=prob.Phi.dtype) + prob.Phi @ G @ prob.Phi.mH
        ref = G @ prob.Phi.mH @ torch.linalg.solve(Sy, y[b])
        torch.testing.assert_close(mean[b], ref)
        ref_q = torch.diagonal(prob.Phi.mH @ torch.linalg.solve(Sy, prob.Phi)).real
        torch.testing.assert_close(q[b], ref_q)
        ref_cost = (y[b].conj() @ torch.linalg.solve(Sy, y[b])).real + torch.linalg.slogdet(Sy)[1]
        torch.testing.assert_close(cost[b], ref_cost)


def test_complex_doa_noiseless_recovery():
    prob = DOAProblem(n_sensors=10, resolution=4.0, n_sources=3, snr_db=None)
    y, x = prob.sample(8, torch.Generator().manual_seed(7))
    res = sbl(y, prob.Phi, 1e-6, update="mackay", max_iter=3000, tol=1e-7)
    assert torch.equal(top_d_support(res.gamma, 3), x != 0)
    torch.testing.assert_close(res.x, x, atol=1e-2, rtol=0)


@pytest.mark.parametrize("method", ["torch", "numba"])
def test_matches_sklearn_ard(method):
    """SBL with the MacKay update equals scikit-learn's ARDRegression on an overdetermined problem.

    How the two models are matched: ARD's weight precisions lambda_i are 1/gamma_i; its noise precision
    alpha is pinned to 1/lam by a Gamma hyperprior with huge shape and rate (alpha_1 = C,
    alpha_2 = C * lam, C = 1e12, so the update (N - sum g + 2C) / (sse + 2C lam) = 1/lam to ~1e-11);
    the weight hyperpriors are negligible (lambda_1 = lambda_2 = 1e-16; they cap the
    precisions near 1e16, so pruned coefficients are ~1e-7 instead of 0 in ARD); no intercept; pruning
    threshold far beyond reach (1e13). Both then run MacKay's fixed-point update to convergence and must
    reach the same coefficients (N=60 > m=15 keeps the optimum unique enough to be reached by both).
    """
    g = torch.Generator().manual_seed(0)
    Phi = torch.randn(60, 15, generator=g, dtype=DT)
    x = torch.zeros(15, dtype=DT)
    x[[1, 6, 11]] = torch.tensor([1.5, -2.0, 0.8], dtype=DT)
    y = Phi @ x + 0.1 * torch.randn(60, generator=g, dtype=DT)
    lam = 0.01
    res = sbl(y, Phi, lam, update="mackay", max_iter=20000, tol=1e-12, method=method)
    assert bool(res.converged)
    C = 1e12
    ard = ARDRegression(fit_intercept=False, alpha_1=C, alpha_2=C * lam, lambda_1=1e-16, lambda_2=1e-16,
                        threshold_lambda=1e13, tol=1e-14, max_iter=20000)
    ard.fit(Phi.numpy(), y.numpy())
    assert abs(ard.alpha_ * lam - 1) < 1e-8
    np.testing.assert_allclose(res.x.numpy(), ard.coef_, atol=1e-5)
    on = x != 0
    np.testing.assert_allclose(res.gamma[on].numpy(), 1.0 / ard.lambda_[on.numpy()], rtol=1e-4)


def test_batched_equals_one_by_one(easy):
    Phi, y, _ = easy
    res = sbl(y[:4], Phi, 1e-4, update="mackay", max_iter=500, tol=1e-8)
    for b in range(4):
        one = sbl(y[b], Phi, 1e-4, update="mackay", max_iter=500, tol=1e-8)
        assert int(one.n_iter) == int(res.n_iter[b])
        torch.testing.assert_close(one.gamma, res.gamma[b])
        torch.testing.assert_close(one.x, res.x[b])


def test_float32_and_max_iter(easy):
    Phi, y, _ = easy
    res = sbl(y.float(), Phi.float(), 1e-3, update="em", max_iter=5, tol=1e-12)
    assert res.x.dtype == torch.float32 and res.gamma.dtype == torch.float32
    assert (res.n_iter == 5).all() and not res.converged.any()


@pytest.mark.parametrize("case, match", [
    ("zero_column", "all-zero columns"),
    ("wrong_length", "last dimension"),
    ("nan", "NaN or inf"),
    ("inf_phi", "NaN or inf"),
    ("lam", "lam"),
    ("update", "update"),
    ("dtype", "dtype"),
])
def test_bad_input(easy, case, match):
    Phi, y, _ = easy
    lam, update = 1e-3, "em"
    if case == "zero_column":
        Phi = Phi.clone(); Phi[:, 5] = 0
    elif case == "wrong_length":
        y = y[:, :-1]
    elif case == "nan":
        y = y.clone(); y[0, 0] = float("nan")
    elif case == "inf_phi":
        Phi = Phi.clone(); Phi[0, 0] = float("inf")
    elif case == "lam":
        lam = 0.0
    elif case == "update":
        update = "newton"
    elif case == "dtype":
        y = y.float()
    with pytest.raises(ValueError, match=match):
        sbl(y, Phi, lam, update=update)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_sources": 11}, "larger than n_sensors"),
    ({"snr_db": float("nan")}, "snr_db"),
    ({"snr_db": (20.0, 10.0)}, "snr_db range"),
    ({"dtype": torch.float64}, "complex"),
])
def test_doa_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DOAProblem(**kwargs)


def test_doa_snr_range_per_sample():
    prob = DOAProblem(snr_db=(0.0, 30.0))
    y, x = prob.sample(400, torch.Generator().manual_seed(0))
    clean = x @ prob.Phi.T
    snr = 10 * torch.log10(clean.abs().pow(2).sum(-1) / (y - clean).abs().pow(2).sum(-1))
    assert snr.min() < 5.0 and snr.max() > 25.0  # each sample draws its own SNR in the range


@pytest.mark.parametrize("update", ["em", "mackay", "lstm"])
def test_callback_and_history_common_format(easy, update):
    """solve()'s format: callback(k, gamma) from k = 1 with converged problems frozen at their final gamma;
    history['objective'][k-1] the batch mean of (5) at the gamma after update k, 'criterion' the batch max of
    the relative change of gamma (converged problems with their last values)."""
    Phi, y, _ = easy
    lam = 1e-3
    seen = []
    res = sbl(y[:6], Phi, lam, update=update, max_iter=400, tol=1e-4, callback=lambda k, g: seen.append((k, g.clone())))
    assert [k for k, _ in seen] == list(range(1, len(seen) + 1)) and len(seen) == int(res.n_iter.max())
    assert len(res.history["objective"]) == len(res.history["criterion"]) == len(seen)
    assert int(res.n_iter.min()) < int(res.n_iter.max())  # some problems freeze before others
    prev = torch.ones_like(res.gamma)
    last = torch.zeros(6, dtype=DT)
    for k, g in seen:
        frozen = res.converged & (res.n_iter <= k)
        torch.testing.assert_close(g[frozen], res.gamma[frozen], rtol=0, atol=0)
        assert res.history["objective"][k - 1] == pytest.approx(float(sbl_objective(y[:6], Phi, g, lam).mean()),
                                                                rel=1e-9)
        live = ~(res.converged & (res.n_iter < k))
        last[live] = ((g - prev).abs().amax(-1) / prev.amax(-1))[live]
        assert res.history["criterion"][k - 1] == pytest.approx(float(last.max()), rel=1e-9)
        prev = g
    torch.testing.assert_close(seen[-1][1], res.gamma, rtol=0, atol=0)
    torch.testing.assert_close(res.x, posterior(y[:6], Phi, res.gamma, lam)[0], rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------- pruning (posterior on active atoms)
@pytest.mark.parametrize("complex_", [False, True])
def test_posterior_active_equals_dense_posterior(complex_):
    """The (k, k) Woodbury/Sylvester form on the atoms with gamma > 0 gives the posterior mean (4), q on the
    active atoms and the cost (5) of the (n, n) form, for a batch mixing active-set sizes 0, small, > n and m."""
    g = torch.Generator().manual_seed(11)
    if complex_:
        prob = DOAProblem(n_sensors=10, resolution=4.0, n_sources=3, snr_db=None)
        Phi = prob.Phi
        y = prob.sample(6, g)[0]
    else:
        Phi = torch.randn(12, 30, generator=g, dtype=DT)
        y = torch.randn(6, 12, generator=g, dtype=DT)
    n, m = Phi.shape
    gamma = torch.rand(6, m, generator=g, dtype=DT) + 0.05
    keep = [0, 3, 9, n - 1, n + 3, m]  # active-set sizes: none, small, <= n, > n, all
    for b, k in enumerate(keep):
        perm = torch.randperm(m, generator=g)
        gamma[b, perm[k:]] = 0.0
    from unrolled.sbl.iteration import posterior_active
    mean, q, cost = posterior(y, Phi, gamma, 0.05)
    mean_a, q_a, cost_a = posterior_active(y, Phi, gamma, 0.05)
    torch.testing.assert_close(mean_a, mean, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(cost_a, cost, rtol=1e-10, atol=0)
    on = gamma > 0
    torch.testing.assert_close(q_a[on], q[on], rtol=1e-8, atol=0)
    assert bool((mean[~on] == 0).all())  # pruned atoms have a zero posterior mean in both forms
    shared = torch.full_like(gamma, 0.7)  # one gamma for the whole batch: the one-factorisation branch
    for got, want in zip(posterior_active(y, Phi, shared, 0.05), posterior(y, Phi, shared, 0.05)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", ["torch", "numba"])
def test_pruned_mackay_matches_sklearn_ard_with_pruning(method):
    """``prune=p`` is ARDRegression's ``threshold_lambda = 1/p``: same coefficients, same pruned atoms.

    Matched as in :func:`test_matches_sklearn_ard` (noise precision pinned to 1/lam), but with a reachable
    threshold; an underdetermined batch (25 x 60) whose posterior runs in the (k, k) form once pruned."""
    prob = CorrelatedSparseProblem(n=25, m=60, d=4, noise_std=1e-2, correlated=False, seed=0)
    y, _ = prob.sample(12, torch.Generator().manual_seed(3))
    lam, prune = 1e-4, 1e-4
    res = sbl(y, prob.Phi, lam, update="mackay", max_iter=5000, tol=1e-12, prune=prune, method=method)
    assert res.converged.all()
    assert bool(((res.gamma == 0) | (res.gamma >= prune)).all())
    C = 1e12
    for b in range(y.shape[0]):
        ard = ARDRegression(fit_intercept=False, alpha_1=C, alpha_2=C * lam, lambda_1=1e-16, lambda_2=1e-16,
                            threshold_lambda=1.0 / prune, tol=1e-14, max_iter=5000)
        ard.fit(prob.Phi.numpy(), y[b].numpy())
        np.testing.assert_allclose(res.x[b].numpy(), ard.coef_, atol=1e-6)
        np.testing.assert_array_equal(res.gamma[b].numpy() > 0, ard.coef_ != 0)


def test_pruned_fixed_point_is_stationary_on_the_active_atoms(easy):
    """At convergence with pruning, gamma_i dL/dgamma_i = 0 on the surviving atoms (the MacKay fixed point of
    (5) restricted to them), x is the posterior mean (4), and without pruning the default result is unchanged
    by the option's existence (prune=None is the plain update)."""
    Phi, y, _ = easy
    y = y[:5] + 0.01 * torch.randn(y[:5].shape, generator=torch.Generator().manual_seed(0), dtype=DT)
    lam = 1e-4
    res = sbl(y, Phi, lam, update="mackay", max_iter=5000, tol=1e-11, prune=1e-6)
    assert res.converged.all()
    gamma = res.gamma.clone().requires_grad_(True)
    sbl_objective(y, Phi, gamma, lam).sum().backward()
    assert float((res.gamma * gamma.grad).abs().amax()) < 1e-6
    torch.testing.assert_close(posterior(y, Phi, res.gamma, lam)[0], res.x)
    plain = sbl(y, Phi, lam, update="mackay", max_iter=300, tol=1e-8)
    again = sbl(y, Phi, lam, update="mackay", max_iter=300, tol=1e-8, prune=None)
    assert torch.equal(plain.gamma, again.gamma)


@pytest.mark.parametrize("kwargs, match", [({"prune": 0.0}, "prune"), ({"prune": float("nan")}, "prune"),
                                           ({"prune": 1e-4, "update": "lstm"}, "prune")])
def test_prune_bad_input(easy, kwargs, match):
    Phi, y, _ = easy
    with pytest.raises(ValueError, match=match):
        sbl(y, Phi, 1e-3, **{"update": "mackay", **kwargs})
