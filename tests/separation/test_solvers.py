"""PALM and the separation metrics, checked against optimality conditions and independent references."""

from __future__ import annotations

import itertools

import cvxpy as cp
import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso

from unrolled.separation.data import gennorm_sources, mix, mixing_matrices
from unrolled.separation.metrics import correct_permutation, matching_permutations, separation_nmse
from unrolled.separation.solvers import (
    STEP_FACTOR,
    bss_objective,
    estimate_mixing,
    lipschitz_a,
    lipschitz_s,
    palm,
    pinv_init,
)

DT = torch.float64
LAM = 0.02


@pytest.fixture(scope="module")
def problems():
    """Three small mixtures (m=22 channels, n=4 sources, t=60) and three more whose A serve as starts."""
    A = mixing_matrices(6)[:, ::3]  # 22 channels, keep the spectra's shapes
    A = A / torch.linalg.vector_norm(A, dim=1, keepdim=True)
    S = gennorm_sources(6, 4, 60, seed=3)
    d = mix(A, S, 30.0, seed=4)
    return d.subset(slice(0, 3)), d.subset(slice(3, 6))


@pytest.fixture(scope="module")
def converged(problems):
    data, pool = problems
    A0 = pool.A
    res = palm(data.X, A0, pinv_init(data.X, A0), LAM, max_iter=20000, tol=1e-10, track_objective=True)
    assert res.converged.all(), res.n_iter
    return data, res


def test_fixed_point_of_both_steps(converged):
    """At convergence S is a fixed point of its prox-gradient step and A of its projected-gradient step,
    for any positive step (checked with PALM's and with a different one)."""
    data, res = converged
    X, A, S = data.X, res.A, res.S
    for factor in (STEP_FACTOR, 3.0):
        step_s = 1.0 / (factor * lipschitz_s(A))[:, None, None]
        v = S - step_s * (A.transpose(1, 2) @ (A @ S - X))
        S_next = torch.sign(v) * torch.clamp(v.abs() - LAM * step_s, min=0)  # soft threshold written out
        assert torch.allclose(S_next, S, atol=1e-8)
        step_a = 1.0 / (factor * lipschitz_a(S))[:, None, None]
        W = A - step_a * ((A @ S - X) @ S.transpose(1, 2))
        A_next = W / torch.clamp(torch.linalg.vector_norm(W, dim=1, keepdim=True), min=1.0)
        assert torch.allclose(A_next, A, atol=1e-8)


def test_s_is_the_lasso_solution_for_its_a(converged):
    """For fixed A the S-subproblem is a Lasso per column: scikit-learn gives the same S."""
    data, res = converged
    for b in range(len(data)):
        A, X = res.A[b].numpy(), data.X[b].numpy()
        m = A.shape[0]
        lasso = Lasso(alpha=LAM / m, fit_intercept=False, tol=1e-12, max_iter=100000)
        S_ref = np.stack([lasso.fit(A, X[:, j]).coef_ for j in range(X.shape[1])], axis=1)
        np.testing.assert_allclose(res.S[b].numpy(), S_ref, atol=1e-6)


def test_a_is_the_constrained_least_squares_solution_for_its_s(converged):
    """For fixed S the A-subproblem is a convex QP with unit-ball columns: cvxpy agrees, and so does estimate_mixing."""
    data, res = converged
    b = 0
    S, X = res.S[b].numpy(), data.X[b].numpy()
    A = cp.Variable(res.A.shape[1:])
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(X - A @ S)), [cp.norm(A[:, i]) <= 1 for i in range(S.shape[0])])
    prob.solve()
    np.testing.assert_allclose(res.A[b].numpy(), A.value, atol=2e-5)
    est = estimate_mixing(data.X[:1], res.S[:1], tol=1e-12, max_iter=100000)
    np.testing.assert_allclose(est[0].numpy(), A.value, atol=2e-5)


def test_objective_decreases_monotonically(problems):
    """Per problem (seen through the callback) the objective of (2) never increases; history['objective'] is its
    batch mean per iteration and history['criterion'] the batch max of max(||dS||, ||dA||), as plain floats."""
    data, pool = problems
    A0 = pool.A
    S0 = pinv_init(data.X, A0)
    per_problem, steps = [bss_objective(data.X, A0, S0, LAM)], []
    prev = [(A0, S0)]

    def record(k, est):
        A, S = est
        assert A.shape == A0.shape and S.shape == S0.shape
        per_problem.append(bss_objective(data.X, A, S, LAM))
        dA = torch.linalg.matrix_norm(A - prev[-1][0])
        dS = torch.linalg.matrix_norm(S - prev[-1][1])
        steps.append(torch.maximum(dA, dS))
        prev.append((A.clone(), S.clone()))

    res = palm(data.X, A0, S0, LAM, max_iter=400, tol=1e-9, track_objective=True, callback=record)
    obj = torch.stack(per_problem)
    assert obj.shape == (len(res.history["objective"]) + 1, 3)
    diffs = obj[1:] - obj[:-1]
    assert (diffs <= 1e-12 * obj[:-1].abs()).all()
    assert (obj[-1] < obj[0]).all()
    assert all(isinstance(v, float) for v in res.history["objective"] + res.history["criterion"])
    assert res.history["objective"] == pytest.approx(obj[1:].mean(1).tolist(), rel=1e-12)
    crit = torch.stack(steps).amax(1)  # frozen problems repeat their last step in the stopping measure
    assert res.history["criterion"][0] == pytest.approx(float(crit[0]), rel=1e-12)
    assert res.history["criterion"][-1] >= float(crit[-1]) - 1e-15


def test_callback_sees_every_iterate_and_frozen_problems_stay(problems):
    """callback(k, (A, S)) for k = 1..n_iter gives the iterates keep_iterates keeps, and a converged problem
    keeps its final value in every later callback."""
    data, pool = problems
    seen = []
    res = palm(data.X, pool.A, None, LAM, max_iter=3000, tol=1e-5, keep_iterates=True,
               callback=lambda k, est: seen.append((k, est[0].clone(), est[1].clone())))
    assert [k for k, _, _ in seen] == list(range(1, int(res.n_iter.max()) + 1))
    assert len(res.iterates) == len(seen) == len(res.history["criterion"])
    assert int(res.n_iter.min()) < int(res.n_iter.max())  # the freezing is exercised
    for (_, A, S), (A_it, S_it) in zip(seen, res.iterates):
        assert torch.equal(A, A_it) and torch.equal(S, S_it)
    for b, t in enumerate(res.n_iter.tolist()):
        for _, A, S in seen[t - 1:]:
            assert torch.equal(A[b], res.A[b]) and torch.equal(S[b], res.S[b])
    assert torch.equal(res.x, torch.cat([res.A.flatten(1), res.S.flatten(1)], 1))
    # the Lipschitz constants of every iteration, at A^{k-1} and S^k
    L_S, L_A = res.steps[1]
    assert torch.allclose(L_S, lipschitz_s(res.iterates[0][0])) and torch.allclose(L_A, lipschitz_a(res.iterates[1][1]))


def test_stopping_rule_and_freezing(problems):
    """Each problem stops at the first iteration with ||dS||, ||dA|| < tol and is frozen: the batch run
    equals the problems run one at a time."""
    data, pool = problems
    tol = 1e-6
    batch = palm(data.X, pool.A, None, LAM, max_iter=3000, tol=tol)
    assert batch.converged.all()
    for b in range(len(data)):
        one = palm(data.X[b], pool.A[b], None, LAM, max_iter=3000, tol=tol, keep_iterates=True)
        assert int(one.n_iter[0]) == int(batch.n_iter[b])
        assert torch.allclose(one.A[0], batch.A[b], atol=1e-13) and torch.allclose(one.S[0], batch.S[b], atol=1e-13)
        its = one.iterates
        prev = (pool.A[b], torch.zeros_like(one.S[0])) if len(its) == 1 else its[-2]
        last = its[-1]
        assert torch.linalg.matrix_norm(last[0] - prev[0]) < tol and torch.linalg.matrix_norm(last[1] - prev[1]) < tol
        if len(its) > 2:  # one iteration earlier the criterion was not met
            a, s = its[-2], its[-3]
            assert max(torch.linalg.matrix_norm(a[0] - s[0]), torch.linalg.matrix_norm(a[1] - s[1])) >= tol


def test_tol_zero_runs_max_iter_and_reports(problems):
    data, pool = problems
    res = palm(data.X, pool.A, None, LAM, max_iter=7, tol=0.0)
    assert res.n_iter.tolist() == [7, 7, 7] and not res.converged.any()
    assert res.A.shape == data.A.shape and res.S.shape == data.S.shape
    # the unit-ball constraint holds at every output
    assert (torch.linalg.vector_norm(res.A, dim=1) <= 1 + 1e-12).all()


def test_float32_and_single_problem(problems):
    data, pool = problems
    res = palm(data.X[0].float(), pool.A[0].float(), None, LAM, max_iter=50, tol=0.0)
    assert res.A.dtype == torch.float32 and res.A.shape == (1, *data.A.shape[1:])


def test_bad_input(problems):
    data, pool = problems
    X = data.X.clone()
    with pytest.raises(ValueError, match="NaN or inf"):
        palm(torch.where(torch.arange(X.numel()).view(X.shape) == 5, torch.nan, X), pool.A, lam=LAM)
    with pytest.raises(ValueError, match="inf"):
        palm(X * torch.inf, pool.A, lam=LAM)
    with pytest.raises(ValueError, match="lam"):
        palm(X, pool.A, lam=-1.0)
    with pytest.raises(ValueError, match="A0 must have shape"):
        palm(X, pool.A[:, :-1], lam=LAM)
    with pytest.raises(ValueError, match="A0 must have shape"):
        palm(X, pool.A[:2], lam=LAM)
    with pytest.raises(ValueError, match="S0 must have shape"):
        palm(X, pool.A, torch.zeros(3, 4, 5, dtype=DT), lam=LAM)
    with pytest.raises(ValueError, match="dtype"):
        palm(X, pool.A.float(), lam=LAM)
    with pytest.raises(ValueError, match="A0 or n_sources"):
        palm(X, lam=LAM)
    with pytest.raises(ValueError, match="A0 must not be zero"):
        palm(X, torch.zeros_like(pool.A), lam=LAM)
    with pytest.raises(ValueError, match="fewer observations"):
        pinv_init(X[:, :3], pool.A[:, :3])  # 3 channels, 4 sources
    with pytest.raises(ValueError, match="rows like X"):
        pinv_init(X, pool.A[:, :5])
    # the pseudo-inverse start is the least-squares solution when m >= n
    S0 = pinv_init(X, pool.A)
    assert torch.allclose(S0, torch.linalg.lstsq(pool.A, X).solution, atol=1e-10)


def test_permutation_correction_recovers_truth_exactly():
    """Permuting, rescaling and flipping the true factors is undone exactly, and the product is preserved."""
    g = torch.Generator().manual_seed(0)
    A = torch.randn(5, 30, 4, generator=g, dtype=DT)
    A = A / torch.linalg.vector_norm(A, dim=1, keepdim=True)
    S = torch.randn(5, 4, 50, generator=g, dtype=DT)
    perms = torch.stack([torch.randperm(4, generator=g) for _ in range(5)])
    scale = (torch.rand(5, 4, generator=g, dtype=DT) + 0.2) * torch.where(torch.rand(5, 4, generator=g) < 0.5, -1.0, 1.0)
    A_est = torch.gather(A, 2, perms[:, None, :].expand_as(A)) * scale[:, None, :]
    S_est = torch.gather(S, 1, perms[:, :, None].expand_as(S)) / scale[:, :, None]
    A_c, S_c = correct_permutation(A_est, S_est, A)
    assert torch.allclose(A_c, A, atol=1e-12) and torch.allclose(S_c, S, atol=1e-12)
    assert torch.allclose(A_c @ S_c, A_est @ S_est, atol=1e-12)
    err = separation_nmse(A_est, S_est, A, S)
    assert err["A"].max() < 1e-20 and err["S"].max() < 1e-20
    assert separation_nmse(A_est, S_est, A, S, correct=False)["A"].min() > 1e-3


def test_matching_is_the_brute_force_optimum():
    """The Hungarian matching maximises the total |cosine|: compare with all 5! permutations."""
    g = torch.Generator().manual_seed(1)
    A_true = torch.randn(4, 12, 5, generator=g, dtype=DT)
    A_est = A_true + 0.8 * torch.randn(4, 12, 5, generator=g, dtype=DT)
    perms = matching_permutations(A_est, A_true)
    for b in range(4):
        ue = A_est[b] / A_est[b].norm(dim=0)
        ut = A_true[b] / A_true[b].norm(dim=0)
        cos = (ut.T @ ue).abs()
        best = max(itertools.permutations(range(5)), key=lambda p: sum(float(cos[j, p[j]]) for j in range(5)))
        assert perms[b].tolist() == list(best)


def test_objective_helper():
    A = torch.eye(3, 2, dtype=DT)[None]
    S = torch.tensor([[[1.0, -2.0], [0.0, 3.0]]], dtype=DT)
    X = torch.zeros(1, 3, 2, dtype=DT)
    assert float(bss_objective(X, A, S, 0.5)[0]) == pytest.approx(0.5 * 14 + 0.5 * 6)


def test_lambda_grid_picks_the_best_median_and_matches_direct_runs(problems):
    from unrolled.separation.tuning import palm_lambda_grid, random_training_start

    data, pool = problems
    A0, S0 = random_training_start(data, pool, seed=0)
    assert torch.allclose(S0, torch.linalg.pinv(A0) @ data.X)
    assert all(any(torch.equal(a, p) for p in pool.A) for a in A0)
    lambdas = (1e-3, 0.02, 0.3)
    best, grid = palm_lambda_grid(data, lambdas, A0, S0, max_iter=2000, tol=1e-7)
    assert [g["lam"] for g in grid] == list(lambdas)
    assert best == min(grid, key=lambda g: g["median_nmse_s"])["lam"]
    res = palm(data.X, A0, S0, 0.3, max_iter=2000, tol=1e-7)
    direct = separation_nmse(res.A, res.S, data.A, data.S)["S"].median()
    assert grid[2]["median_nmse_s"] == pytest.approx(float(direct), rel=1e-12)
    assert len({round(g["median_nmse_s"], 12) for g in grid}) == 3  # lambda matters
    with pytest.raises(ValueError, match="lambda"):
        palm_lambda_grid(data, (0.1, -1.0), A0, S0)


def test_permutation_correction_with_a_non_involutive_permutation():
    """A 3-cycle (its own inverse is another cycle) with scales and signs: both A and S come back exactly.

    A correction that applied the permutation instead of its inverse (indistinguishable on swaps) fails here.
    """
    g = torch.Generator().manual_seed(5)
    B, m, n, t = 2, 6, 4, 9
    A = torch.randn(B, m, n, generator=g, dtype=torch.float64)
    A = A / torch.linalg.vector_norm(A, dim=-2, keepdim=True)
    S = torch.randn(B, n, t, generator=g, dtype=torch.float64)
    q = torch.tensor([1, 2, 0, 3])  # estimated column j holds true column q[j]
    assert not torch.equal(q[q], torch.arange(n))
    scale = torch.tensor([2.0, -0.5, 3.0, -1.5], dtype=torch.float64)
    A_est = A[:, :, q] * scale
    S_est = S[:, q, :] / scale[:, None]
    perm = matching_permutations(A_est, A)
    assert torch.equal(perm, torch.argsort(q).expand(B, n))
    A_c, S_c = correct_permutation(A_est, S_est, A)
    torch.testing.assert_close(A_c, A, rtol=0, atol=1e-12)
    torch.testing.assert_close(S_c, S, rtol=0, atol=1e-12)


def test_gram_and_residual_forms_give_the_same_iterates(problems):
    """palm(gram=True) computes A^T(AS - X) = (A^T A)S - A^T X and (AS - X)S^T = A(SS^T) - XS^T: same iterates."""
    train, starts = problems
    X, A0 = train.X, starts.A
    S0 = pinv_init(X, A0)
    res = {g: palm(X, A0, S0, LAM, max_iter=300, tol=0.0, gram=g, keep_iterates=True) for g in (False, True)}
    for (A_r, S_r), (A_g, S_g) in zip(res[False].iterates, res[True].iterates):
        assert (A_r - A_g).abs().max() < 1e-12 and (S_r - S_g).abs().max() < 1e-12
    # the iterates move (a form that skipped a step would not match): S changes by O(1) over the run
    assert (res[False].S - S0).abs().max() > 1e-2
    # default: the Gram form when n < 2m (here m=22, n=4), the residual form otherwise
    auto = palm(X, A0, S0, LAM, max_iter=5, tol=0.0)
    assert torch.equal(auto.S, palm(X, A0, S0, LAM, max_iter=5, tol=0.0, gram=True).S)
    wide = palm(X[:, :2], A0[:, :2], None, LAM, max_iter=5, tol=0.0)  # m = 2, n = 4 = 2m: the residual form
    assert torch.equal(wide.S, palm(X[:, :2], A0[:, :2], None, LAM, max_iter=5, tol=0.0, gram=False).S)
    with pytest.raises(ValueError, match="gram"):
        palm(X, A0, S0, LAM, gram="yes")


def test_gram_form_of_the_learned_step_kinds_matches_the_residual_form(problems):
    """PALMIteration(gram=True) with ISTA-LLT / ISTA-LL steps (not PALM's) equals the residual form too."""
    from unrolled.separation.iteration import PALMIteration

    train, starts = problems
    X, A0 = train.X, starts.A
    data = {"X": X, "A0": A0, "S0": pinv_init(X, A0)}
    params = {"gamma_s": 0.3, "theta": 1e-3, "gamma_a": torch.full((3, 1, 1), 1e-2, dtype=DT)}
    out = {}
    for g in (False, True):
        it, state = PALMIteration("ista-llt", "ista-ll", gram=g), None
        state = it.init(data, params)
        for k in range(50):
            state = it.step(k, state, data, params)
        out[g] = state
    assert (out[False]["S"] - out[True]["S"]).abs().max() < 1e-12
    assert (out[False]["A"] - out[True]["A"]).abs().max() < 1e-12
    assert (out[False]["S"] - data["S0"]).abs().max() > 1e-3
