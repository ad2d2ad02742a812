"""Tests of the classic sparse-coding solvers (ISTA, FISTA, IHT)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unrolled.sparse_coding.data import SparseCodingProblem, gaussian_dictionary, lipschitz_constant
from unrolled.sparse_coding.solvers import fista, iht, ista, lasso_kkt_violation, lasso_objective

DT = torch.float64
LAM = 0.1


@pytest.fixture(scope="module")
def lasso_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Six noisy 30 x 60 problems sharing one dictionary."""
    prob = SparseCodingProblem(m=30, n=60, p=0.1, snr_db=40.0, seed=3, dtype=DT)
    y, _ = prob.sample(6, torch.Generator().manual_seed(1))
    return y, prob.A


@pytest.fixture(scope="module")
def solutions(lasso_batch) -> dict:
    """ISTA and FISTA solutions of ``lasso_batch`` at a tight tolerance (computed once)."""
    y, A = lasso_batch
    return {f: f(y, A, LAM, tol=1e-9, max_iter=50_000) for f in (ista, fista)}


def _objective(y: np.ndarray, A: np.ndarray, x: np.ndarray, lam: float) -> np.ndarray:
    return 0.5 * ((y - x @ A.T) ** 2).sum(-1) + lam * np.abs(x).sum(-1)


def _ill_conditioned(m: int = 30, n: int = 40, smin: float = 0.03, batch: int = 5):
    """A dictionary with singular values spread log-uniformly over [smin, 1]."""
    g = torch.Generator().manual_seed(0)
    U, _ = torch.linalg.qr(torch.randn(m, m, generator=g, dtype=DT))
    V, _ = torch.linalg.qr(torch.randn(n, m, generator=g, dtype=DT))
    s = torch.logspace(0.0, float(np.log10(smin)), m, dtype=DT)
    A = U @ torch.diag(s) @ V.T
    x = torch.randn(batch, n, generator=g, dtype=DT) * (torch.rand(batch, n, generator=g, dtype=DT) < 0.3)
    y = x @ A.T + 0.01 * torch.randn(batch, m, generator=g, dtype=DT)
    return y, A


# --------------------------------------------------------------------------- #
# Optimality
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("solver", [ista, fista])
def test_kkt_conditions_at_solution(solver, lasso_batch):
    y, A = lasso_batch
    res = solver(y, A, LAM, tol=1e-8, max_iter=50_000)
    assert res.x.shape == (6, 60) and res.x.dtype == DT
    assert res.n_iter.shape == (6,) and res.n_iter.dtype == torch.int64
    assert res.converged.all()
    assert (res.n_iter >= 1).all() and (res.n_iter < 50_000).all()
    # Independent check of the Lasso KKT conditions, in numpy.
    Y, M, X = y.numpy(), A.numpy(), res.x.numpy()
    G = (Y - X @ M.T) @ M
    nz = X != 0
    assert nz.any(axis=1).all(), "degenerate test problem: all-zero solution"
    assert np.all(np.abs(G[nz] - LAM * np.sign(X[nz])) <= 1e-8 * LAM)
    assert np.all(np.abs(G[~nz]) <= LAM * (1 + 1e-8))
    # history: one entry per iteration of the slowest problem
    assert len(res.history["objective"]) == int(res.n_iter.max())
    assert len(res.history["criterion"]) == int(res.n_iter.max())
    assert res.history["criterion"][-1] < 1e-8
    assert all(isinstance(v, float) for v in res.history["objective"])


@pytest.mark.parametrize("solver", [ista, fista])
def test_history_matches_public_diagnostics(solver, lasso_batch):
    y, A = lasso_batch
    res = solver(y, A, LAM, tol=0.0, max_iter=40, track=True)
    viol = lasso_kkt_violation(res.x, (y - res.x @ A.T) @ A, LAM)
    assert res.history["criterion"][-1] == pytest.approx(float(viol.max()), rel=1e-9, abs=1e-12)
    obj = lasso_objective(y, A, res.x, LAM)
    assert res.history["objective"][-1] == pytest.approx(float(obj.mean()), rel=1e-12)
    np.testing.assert_allclose(obj.numpy(), _objective(y.numpy(), A.numpy(), res.x.numpy(), LAM), rtol=1e-12)
    # lasso_kkt_violation itself, on a hand-made case: support {0}, lam = 1
    x = torch.tensor([[2.0, 0.0, 0.0]], dtype=DT)
    g = torch.tensor([[0.5, -1.5, 0.25]], dtype=DT)  # |0.5 - 1| = 0.5; |-1.5| - 1 = 0.5; 0
    assert float(lasso_kkt_violation(x, g, 1.0)) == pytest.approx(0.5)
    g = torch.tensor([[1.0, -2.0, 0.25]], dtype=DT)
    assert float(lasso_kkt_violation(x, g, 1.0)) == pytest.approx(1.0)
    assert float(lasso_kkt_violation(x, torch.tensor([[1.0, 0.5, -1.0]], dtype=DT), 1.0)) == 0.0


@pytest.mark.parametrize("solver", [ista, fista])
def test_agrees_with_sklearn(solver, lasso_batch, solutions):
    from sklearn.linear_model import Lasso

    y, A = lasso_batch
    m = A.shape[0]
    res = solutions[solver]
    for b in range(y.shape[0]):
        ref = Lasso(alpha=LAM / m, fit_intercept=False, tol=1e-14, max_iter=1_000_000)
        ref.fit(A.numpy(), y[b].numpy())
        np.testing.assert_allclose(res.x[b].numpy(), ref.coef_, atol=1e-5)


def test_agrees_with_cvxpy(lasso_batch, solutions):
    cp = pytest.importorskip("cvxpy")
    y, A = lasso_batch
    Y, M = y[0].numpy(), A.numpy()
    x = cp.Variable(M.shape[1])
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(Y - M @ x) + LAM * cp.norm1(x)))
    prob.solve()
    ours = float(_objective(Y, M, solutions[fista].x[0].numpy(), LAM))
    assert ours == pytest.approx(prob.value, rel=1e-6)
    assert ours <= prob.value + 1e-9  # the first-order solution is at least as good


def test_fista_needs_fewer_iterations_than_ista():
    y, A = _ill_conditioned()
    lam = 0.01
    r_ista = ista(y, A, lam, tol=1e-6, max_iter=20_000)
    r_fista = fista(y, A, lam, tol=1e-6, max_iter=20_000)
    assert r_ista.converged.all() and r_fista.converged.all()
    assert (r_fista.n_iter < r_ista.n_iter).all()
    assert r_fista.n_iter.sum() < 0.5 * r_ista.n_iter.sum()
    np.testing.assert_allclose(r_fista.x.numpy(), r_ista.x.numpy(), atol=1e-4)


def test_frozen_problems_keep_the_iterate_that_met_the_criterion(lasso_batch):
    y, A = lasso_batch
    res = ista(y, A, LAM, tol=1e-6, max_iter=50_000)
    assert res.n_iter.min() < res.n_iter.max()  # problems stop at different times
    for b in range(y.shape[0]):
        alone = ista(y[b : b + 1], A, LAM, tol=0.0, max_iter=int(res.n_iter[b]))
        np.testing.assert_allclose(res.x[b].numpy(), alone.x[0].numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("solver", [ista, fista])
def test_history_of_a_large_batch_tracks_the_returned_iterates(solver):
    # > 8 problems, so converged ones stay in the working set for a while
    prob = SparseCodingProblem(m=30, n=60, p=0.1, snr_db=40.0, seed=5, dtype=DT)
    y, _ = prob.sample(40, torch.Generator().manual_seed(2))
    A = prob.A
    res = solver(y, A, LAM, tol=1e-7, max_iter=50_000)
    assert res.converged.all() and len(set(res.n_iter.tolist())) > 5
    viol = lasso_kkt_violation(res.x, (y - res.x @ A.T) @ A, LAM)
    assert (viol < 1e-7).all()
    assert res.history["criterion"][-1] == pytest.approx(float(viol.max()), rel=1e-6)
    obj = lasso_objective(y, A, res.x, LAM)
    assert res.history["objective"][-1] == pytest.approx(float(obj.mean()), rel=1e-12)
    if solver is ista:
        # replay plain ISTA by hand: history[t] is the batch mean objective with
        # every problem frozen after its own n_iter (loose tol: frozen != continued)
        res = ista(y, A, LAM, tol=1e-2, max_iter=50_000)
        assert len(set(res.n_iter.tolist())) > 5
        step = 1.0 / lipschitz_constant(A)
        x = torch.zeros_like(res.x)
        per_iter = []
        for _ in range(int(res.n_iter.max())):
            v = x - step * ((x @ A.T - y) @ A)
            x = torch.sign(v) * torch.clamp(v.abs() - step * LAM, min=0.0)
            per_iter.append(lasso_objective(y, A, x, LAM))
        F = torch.stack(per_iter)  # (T, B)
        t = torch.arange(1, F.shape[0] + 1)[:, None]
        frozen = F.gather(0, (res.n_iter - 1)[None, :].expand_as(F))
        expected = torch.where(t <= res.n_iter[None, :], F, frozen).mean(1)
        np.testing.assert_allclose(res.history["objective"], expected.numpy(), rtol=1e-10)
        assert np.all(np.diff(res.history["objective"]) <= 1e-12)  # ISTA is monotone
        # stopped by max_iter while a few problems had converged: those keep their
        # frozen iterate, the others have exactly max_iter iterations
        k = int(res.n_iter.sort().values[2])
        capped = ista(y, A, LAM, tol=1e-2, max_iter=k)
        conv = capped.converged
        assert 0 < int(conv.sum()) < 5 and (capped.n_iter[~conv] == k).all()
        torch.testing.assert_close(capped.x[conv], res.x[conv], rtol=0, atol=1e-12)
        plain = ista(y, A, LAM, tol=0.0, max_iter=k)
        torch.testing.assert_close(capped.x[~conv], plain.x[~conv], rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- #
# Exact iteration semantics
# --------------------------------------------------------------------------- #
def test_ista_tol0_runs_exactly_k_plain_iterations(lasso_batch):
    y, A = lasso_batch
    K = 7
    res = ista(y, A, LAM, max_iter=K, tol=0.0)
    tracked = ista(y, A, LAM, max_iter=K, tol=0.0, track=True)
    assert torch.equal(tracked.x, res.x)  # tracking only observes
    assert res.history == {"objective": [], "criterion": []}  # tol=0: nothing asked, nothing computed
    step = 1.0 / float(torch.linalg.matrix_norm(A, ord=2) ** 2)
    x = torch.zeros(y.shape[0], A.shape[1], dtype=DT)
    for _ in range(K):
        v = x - step * ((x @ A.T - y) @ A)
        x = torch.sign(v) * torch.clamp(v.abs() - step * LAM, min=0.0)
    torch.testing.assert_close(res.x, x, rtol=0, atol=1e-13)
    assert (res.n_iter == K).all() and not res.converged.any()
    assert len(tracked.history["objective"]) == K and not tracked.converged.any()
    # one iteration more or less would differ
    assert not torch.allclose(ista(y, A, LAM, max_iter=K - 1, tol=0.0).x, x, rtol=0, atol=1e-10)


@pytest.mark.parametrize("solver", [ista, fista])
def test_tol0_never_stops_even_at_an_exact_solution(solver, lasso_batch):
    y, A = lasso_batch
    y = y.clone()
    y[1] = 0.0  # x = 0 is optimal, with KKT violation exactly 0
    for track in (None, True):
        res = solver(y, A, LAM, max_iter=5, tol=0.0, track=track)
        assert (res.n_iter == 5).all() and not res.converged.any()
    assert len(res.history["criterion"]) == 5
    res = solver(y, A, LAM, max_iter=5, tol=1e-12)
    assert int(res.n_iter[1]) == 1 and bool(res.converged[1]) and res.x[1].abs().sum() == 0
    assert int(res.converged.sum()) == 1


def test_fista_tol0_runs_exactly_k_iterations(lasso_batch):
    y, A = lasso_batch
    K = 6
    step = 1.0 / lipschitz_constant(A)
    x_prev = x = torch.zeros(y.shape[0], A.shape[1], dtype=DT)
    t = 1.0
    z = x
    for _ in range(K):
        v = z - step * ((z @ A.T - y) @ A)
        x_prev, x = x, torch.sign(v) * torch.clamp(v.abs() - step * LAM, min=0.0)
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
        z = x + (t - 1) / t_next * (x - x_prev)
        t = t_next
    res = fista(y, A, LAM, max_iter=K, tol=0.0)
    torch.testing.assert_close(res.x, x, rtol=0, atol=1e-12)


def test_x0_and_step_are_used(lasso_batch, solutions):
    y, A = lasso_batch
    sol = solutions[fista].x
    warm = ista(y, A, LAM, tol=1e-6, x0=sol)
    assert (warm.n_iter == 1).all() and warm.converged.all()
    small = ista(y, A, LAM, max_iter=1, tol=0.0, step=1e-3 / lipschitz_constant(A))
    default = ista(y, A, LAM, max_iter=1, tol=0.0)
    assert small.x.abs().sum() < default.x.abs().sum()


# --------------------------------------------------------------------------- #
# Shapes, dtypes
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("solver,arg", [(ista, LAM), (fista, LAM), (iht, 4)])
def test_unbatched_matches_batched(solver, arg, lasso_batch):
    y, A = lasso_batch
    batched = solver(y, A, arg, tol=0.0, max_iter=200)
    single = solver(y[2], A, arg, tol=0.0, max_iter=200)
    assert single.x.shape == (60,)
    assert single.n_iter.shape == () and single.converged.shape == ()
    torch.testing.assert_close(single.x, batched.x[2], rtol=0, atol=1e-10)
    conv = solver(y[2], A, arg, tol=1e-5, max_iter=5000)
    assert conv.n_iter.dim() == 0 and bool(conv.converged)


@pytest.mark.parametrize("solver,arg", [(ista, LAM), (fista, LAM), (iht, 4)])
def test_float32_in_float32_out(solver, arg, lasso_batch):
    y, A = lasso_batch
    res = solver(y.float(), A.float(), arg, tol=1e-4, max_iter=300)
    assert res.x.dtype == torch.float32 and res.x.device == y.device
    ref = solver(y, A, arg, tol=1e-4, max_iter=300).x
    np.testing.assert_allclose(res.x.numpy(), ref.numpy(), atol=1e-3)
    assert all(isinstance(v, float) for v in res.history["criterion"])


# --------------------------------------------------------------------------- #
# IHT
# --------------------------------------------------------------------------- #
def test_iht_recovers_support_of_noiseless_sparse_code():
    m, n, k, B = 60, 100, 5, 32
    g = torch.Generator().manual_seed(7)
    A = gaussian_dictionary(m, n, generator=g, dtype=DT)
    x_true = torch.zeros(B, n, dtype=DT)
    for b in range(B):
        idx = torch.randperm(n, generator=g)[:k]
        signs = torch.where(torch.rand(k, generator=g, dtype=DT) < 0.5, -1.0, 1.0)
        x_true[b, idx] = signs * (1.0 + torch.rand(k, generator=g, dtype=DT))
    y = x_true @ A.T
    res = iht(y, A, k, tol=1e-10, max_iter=5000)
    assert res.converged.all()
    assert ((res.x != 0).sum(-1) <= k).all()
    # With the conservative step 1/||A||^2, IHT can stop at a local fixed point
    # for some draws; most (about 70 % at this size) are recovered exactly.
    recovered = (res.x != 0).eq(x_true != 0).all(-1)
    assert recovered.float().mean() >= 0.5
    np.testing.assert_allclose(res.x[recovered].numpy(), x_true[recovered].numpy(), atol=1e-6)
    obj = np.array(res.history["objective"])
    assert np.all(np.diff(obj) <= 1e-12 * obj[0])
    assert obj[-1] < 0.1 * obj[0]


def test_iht_exact_in_one_step_with_orthogonal_dictionary():
    n, k = 40, 6
    g = torch.Generator().manual_seed(2)
    A, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=DT))
    x_true = torch.zeros(3, n, dtype=DT)
    x_true[:, :k] = 1.0 + torch.rand(3, k, generator=g, dtype=DT)
    res = iht(x_true @ A.T, A, k, tol=1e-12, max_iter=10)
    assert (res.n_iter == 2).all() and res.converged.all()  # 1st step exact, 2nd confirms it
    torch.testing.assert_close(res.x, x_true, rtol=0, atol=1e-12)


def test_iht_sparsity_and_monotone_objective_on_noisy_data(lasso_batch):
    y, A = lasso_batch
    for k in (1, 3, 10):
        res = iht(y, A, k, tol=0.0, max_iter=150, track=True)
        assert ((res.x != 0).sum(-1) <= k).all()
        obj = np.array(res.history["objective"])
        assert np.all(np.diff(obj) <= 1e-12 * obj[0])
        per_problem = 0.5 * ((y - res.x @ A.T) ** 2).sum(-1)
        assert float(per_problem.mean()) == pytest.approx(obj[-1], rel=1e-12)


# --------------------------------------------------------------------------- #
# Bad input
# --------------------------------------------------------------------------- #
def _bad_cases():
    y = torch.randn(4, 30, dtype=DT)
    A = torch.randn(30, 60, dtype=DT)
    nan_y = y.clone()
    nan_y[1, 2] = float("nan")
    inf_A = A.clone()
    inf_A[0, 0] = float("inf")
    bad_x0 = torch.zeros(4, 60, dtype=DT)
    bad_x0[0, 0] = float("nan")
    return [
        ("y", dict(y=y.numpy())),
        ("A", dict(A=A.numpy())),
        ("y", dict(y=torch.randn(2, 4, 30, dtype=DT))),
        ("A", dict(A=torch.randn(30, 60, 1, dtype=DT))),
        ("y", dict(y=torch.randn(4, 31, dtype=DT))),
        ("y", dict(y=nan_y)),
        ("A", dict(A=inf_A)),
        ("x0", dict(x0=bad_x0)),
        ("lam", dict(lam=0.0)),
        ("lam", dict(lam=-1.0)),
        ("lam", dict(lam=float("nan"))),
        ("lam", dict(lam=float("inf"))),
        ("A", dict(A=A.float())),
        ("x0", dict(x0=torch.zeros(4, 60, dtype=torch.float32))),
        ("x0", dict(x0=torch.zeros(4, 59, dtype=DT))),
        ("x0", dict(x0=torch.zeros(60, dtype=DT))),
        ("max_iter", dict(max_iter=0)),
        ("max_iter", dict(max_iter=2.5)),
        ("tol", dict(tol=-1e-3)),
        ("step", dict(step=0.0)),
        ("step", dict(step=-1.0)),
    ]


@pytest.mark.parametrize("solver", [ista, fista, iht])
@pytest.mark.parametrize("name,override", _bad_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_bad_input_raises(solver, name, override):
    if solver is iht and name == "lam":
        pytest.skip("iht takes k, not lam")
    kwargs = dict(y=torch.randn(4, 30, dtype=DT), A=torch.randn(30, 60, dtype=DT))
    kwargs["lam"] = 4 if solver is iht else LAM
    kwargs.update(override)
    y, A, lam = kwargs.pop("y"), kwargs.pop("A"), kwargs.pop("lam")
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        solver(y, A, lam, **kwargs)


def test_mismatched_device_raises():
    if not torch.cuda.is_available():
        pytest.skip("needs a second device")
    y = torch.randn(4, 30, dtype=DT, device="cuda")
    A = torch.randn(30, 60, dtype=DT)
    with pytest.raises(ValueError, match=r"\bA\b"):
        ista(y, A, LAM)


def test_meta_device_mismatch_raises():
    y = torch.randn(4, 30, dtype=DT)
    x0 = torch.zeros(4, 60, dtype=DT, device="meta")
    with pytest.raises(ValueError, match=r"\bx0\b"):
        ista(y, torch.randn(30, 60, dtype=DT), LAM, x0=x0)


@pytest.mark.parametrize("k", [0, -1, 61, 2.0, True, "3"])
def test_iht_bad_k_raises(k):
    with pytest.raises(ValueError, match=r"\bk\b"):
        iht(torch.randn(4, 30, dtype=DT), torch.randn(30, 60, dtype=DT), k)


def test_callback_sees_every_iterate():
    """callback(k, x) gets the k-th iterate: stopping after k iterations gives the same x."""
    import torch as _t

    from unrolled.sparse_coding.data import SparseCodingProblem
    from unrolled.sparse_coding.solvers import fista as _fista

    prob = SparseCodingProblem(m=20, n=40, p=0.1, seed=3)
    y, _ = prob.sample(5, _t.Generator().manual_seed(0))
    seen = {}
    _fista(y, prob.A, 0.05, max_iter=12, tol=0.0, callback=lambda k, x: seen.__setitem__(k, x.clone()))
    assert sorted(seen) == list(range(1, 13))
    for k in (1, 5, 12):
        _t.testing.assert_close(seen[k], _fista(y, prob.A, 0.05, max_iter=k, tol=0.0).x, rtol=0, atol=1e-12)
