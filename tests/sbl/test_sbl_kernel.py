"""The numba kernel of ``sbl`` (``method='numba'``): the torch path's iteration, fixed point, ARDRegression, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import ARDRegression

from unrolled.sbl.data import CorrelatedSparseProblem
from unrolled.sbl.screening import candidate_gamma0
from unrolled.sbl.solvers import sbl

DT = torch.float64


def _problem(n, m, d, noise, B, seed):
    prob = CorrelatedSparseProblem(n=n, m=m, d=d, noise_std=noise, correlated=False, seed=seed)
    y, x = prob.sample(B, torch.Generator().manual_seed(seed + 1))
    return prob.Phi, y, x


def _assert_same_run(a, b, rtol=1e-8):
    """Same iteration counts and convergence flags, same gamma / x / history to ``rtol`` of each problem's scale."""
    assert torch.equal(a.n_iter, b.n_iter) and torch.equal(a.converged, b.converged)
    scale = a.gamma.amax(-1, keepdim=True).clamp_min(1e-300)
    assert float(((a.gamma - b.gamma).abs() / scale).max()) < rtol
    xscale = a.x.abs().amax(-1, keepdim=True).clamp_min(1e-300)
    assert float(((a.x - b.x).abs() / xscale).max()) < rtol
    assert torch.equal(a.gamma == 0, b.gamma == 0)  # the same atoms pruned
    for key in ("objective", "criterion"):
        ha, hb = np.array(a.history[key]), np.array(b.history[key])
        assert ha.shape == hb.shape
        np.testing.assert_allclose(hb, ha, rtol=rtol, atol=1e-12)


# (n, m, d, noise, B, lam, prune): underdetermined pruned / unpruned, one problem, noiseless, overdetermined
CASES = [
    (25, 60, 4, 1e-2, 40, 1e-4, 1e-4),
    (25, 60, 4, 1e-2, 40, 1e-4, None),
    (25, 60, 4, 1e-2, 1, 1e-4, 1e-4),
    (20, 40, 3, 0.0, 12, 1e-8, 1e-6),
    (20, 40, 3, 0.0, 12, 1e-6, None),
    (30, 15, 3, 5e-2, 9, 2.5e-3, 1e-4),  # pruned and k <= n from the start: the (k, k) form throughout
]


@pytest.mark.parametrize("update", ["mackay", "em"])
@pytest.mark.parametrize("n, m, d, noise, B, lam, prune", CASES)
def test_kernel_is_the_torch_iteration(n, m, d, noise, B, lam, prune, update):
    Phi, y, _ = _problem(n, m, d, noise, B, seed=n + m + B)
    kw = dict(update=update, max_iter=4000, tol=1e-7, prune=prune)
    a = sbl(y, Phi, lam, method="torch", **kw)
    b = sbl(y, Phi, lam, method="numba", **kw)
    _assert_same_run(a, b)
    assert float(b.converged.double().mean()) > 0.9  # (unpruned EM, the slowest, leaves a few at max_iter)
    if B > 1:  # the problems stop at different iterations (the per-problem freezing is exercised)
        assert len(set(b.n_iter.tolist())) > 1
        assert len(b.history["criterion"]) == int(b.n_iter.max())
    auto = sbl(y, Phi, lam, **kw)  # CPU float64: the kernel
    assert torch.equal(auto.gamma, b.gamma) and torch.equal(auto.x, b.x)


def test_kernel_per_problem_starts_cap_and_tol_zero():
    """Per-problem ``gamma0`` with zeros (screened SBL), a ``max_iter`` cap, and ``tol=0`` (no history), as torch."""
    Phi, y, _ = _problem(25, 60, 4, 1e-2, 10, seed=5)
    scores = torch.randn(10, 60, generator=torch.Generator().manual_seed(0), dtype=DT)
    gamma0 = candidate_gamma0(scores, 30) * torch.rand(10, 60, generator=torch.Generator().manual_seed(1), dtype=DT)
    for kw in (dict(gamma0=gamma0, prune=1e-4, tol=1e-8), dict(gamma0=gamma0, tol=1e-8),
               dict(max_iter=5, tol=1e-12, prune=1e-4), dict(max_iter=7, tol=0.0, prune=1e-4),
               dict(max_iter=7, tol=0.0)):
        a = sbl(y, Phi, 1e-4, update="mackay", method="torch", **kw)
        b = sbl(y, Phi, 1e-4, update="mackay", method="numba", **kw)
        _assert_same_run(a, b)
        if "gamma0" in kw:
            assert bool((b.gamma[gamma0 == 0] == 0).all())  # atoms started at zero stay out
        if kw.get("max_iter") == 5:
            assert (b.n_iter == 5).all() and not b.converged.any() and len(b.history["criterion"]) == 5
        if kw.get("tol") == 0.0:
            assert (b.n_iter == 7).all() and not b.converged.any() and b.history["criterion"] == []


def test_kernel_groups_active_sets_as_the_torch_path():
    """The kernel picks the (k, k) form by the torch path's bucket rule; its copy of the group width must agree
    (a global of another module would not invalidate numba's cache, hence the copy)."""
    from unrolled.sbl import iteration, sbl_kernel

    assert sbl_kernel.GROUP == iteration._GROUP


def test_batch_equals_one_by_one_and_unbatched():
    """A batch (start factorised once for all problems) gives each problem's own run bit for bit."""
    Phi, y, _ = _problem(25, 60, 4, 1e-2, 6, seed=7)
    for prune in (1e-4, None):
        batch = sbl(y, Phi, 1e-4, update="mackay", tol=1e-8, prune=prune, method="numba")
        for b in range(6):
            one = sbl(y[b], Phi, 1e-4, update="mackay", tol=1e-8, prune=prune, method="numba")
            assert one.gamma.shape == (60,) and one.x.shape == (60,) and one.n_iter.dim() == 0
            assert int(one.n_iter) == int(batch.n_iter[b])
            assert torch.equal(one.gamma, batch.gamma[b]) and torch.equal(one.x, batch.x[b])


def _dense_update(y, Phi, gamma, lam, update, prune):
    """One EM / MacKay update from the posterior of eq. (4) with an explicit inverse of Sigma_y (numpy, float64)."""
    S = gamma > 0
    P = Phi[:, S]
    Sinv = np.linalg.inv(lam * np.eye(Phi.shape[0]) + (P * gamma[S]) @ P.T)
    mean = np.zeros_like(gamma)
    mean[S] = gamma[S] * (P.T @ Sinv @ y)
    q = np.zeros_like(gamma)
    q[S] = np.einsum("ij,ik,kj->j", P, Sinv, P)
    new = np.zeros_like(gamma)
    if update == "mackay":
        new[S] = mean[S] ** 2 / (gamma[S] * q[S])
    else:
        new[S] = mean[S] ** 2 + gamma[S] - gamma[S] ** 2 * q[S]
    if prune is not None:
        new[new < prune] = 0.0
    return new, mean


@pytest.mark.parametrize("update, prune, tol", [("mackay", 1e-4, 1e-10), ("mackay", None, 1e-10),
                                                ("em", 1e-4, 1e-9)])
def test_kernel_result_is_a_fixed_point(update, prune, tol):
    """One more update (computed independently) moves the result by less than ``tol``; ``x`` is the mean (4)."""
    Phi, y, _ = _problem(25, 60, 4, 1e-2, 5, seed=11)
    lam = 1e-4
    res = sbl(y, Phi, lam, update=update, max_iter=100000, tol=tol, prune=prune, method="numba")
    assert res.converged.all()
    for b in range(5):
        g = res.gamma[b].numpy()
        new, mean = _dense_update(y[b].numpy(), Phi.numpy(), g, lam, update, prune)
        assert np.abs(new - g).max() / g.max() < tol
        np.testing.assert_allclose(res.x[b].numpy(), mean, rtol=0, atol=1e-9 * np.abs(mean).max())


def test_kernel_matches_sklearn_ard():
    """Pruned MacKay SBL = ARDRegression with threshold_lambda = 1 / prune and its noise precision pinned to 1 / lam
    (as in tests/sbl/test_solvers.py), on a 25 x 60 batch (the (k, k) form) and an overdetermined one (no pruning)."""
    C = 1e12
    Phi, y, _ = _problem(25, 60, 4, 1e-2, 6, seed=13)
    lam, prune = 1e-4, 1e-4
    res = sbl(y, Phi, lam, update="mackay", max_iter=5000, tol=1e-12, prune=prune, method="numba")
    assert res.converged.all()
    for b in range(6):
        ard = ARDRegression(fit_intercept=False, alpha_1=C, alpha_2=C * lam, lambda_1=1e-16, lambda_2=1e-16,
                            threshold_lambda=1.0 / prune, tol=1e-14, max_iter=5000).fit(Phi.numpy(), y[b].numpy())
        np.testing.assert_allclose(res.x[b].numpy(), ard.coef_, atol=1e-6)
        np.testing.assert_array_equal(res.gamma[b].numpy() > 0, ard.coef_ != 0)
    g = torch.Generator().manual_seed(0)
    Phi = torch.randn(60, 15, generator=g, dtype=DT)
    x = torch.zeros(15, dtype=DT)
    x[[1, 6, 11]] = torch.tensor([1.5, -2.0, 0.8], dtype=DT)
    y = Phi @ x + 0.1 * torch.randn(60, generator=g, dtype=DT)
    res = sbl(y, Phi, 0.01, update="mackay", max_iter=20000, tol=1e-12, method="numba")
    ard = ARDRegression(fit_intercept=False, alpha_1=C, alpha_2=C * 0.01, lambda_1=1e-16, lambda_2=1e-16,
                        threshold_lambda=1e13, tol=1e-14, max_iter=20000).fit(Phi.numpy(), y.numpy())
    np.testing.assert_allclose(res.x.numpy(), ard.coef_, atol=1e-5)


def test_auto_falls_back_to_torch():
    """'auto' takes the torch path where the kernel does not apply (float32, grad, callback, lstm)."""
    Phi, y, _ = _problem(20, 40, 3, 1e-2, 4, seed=17)
    kw = dict(update="mackay", tol=1e-8, prune=1e-4)
    torch_run = sbl(y, Phi, 1e-4, method="torch", **kw)
    numba_run = sbl(y, Phi, 1e-4, method="numba", **kw)
    assert not torch.equal(torch_run.gamma, numba_run.gamma)  # rounding differs: the two paths are told apart
    grad = sbl(y, Phi.clone().requires_grad_(True), 1e-4, **kw)
    assert torch.equal(grad.gamma, torch_run.gamma)
    seen = []
    called = sbl(y, Phi, 1e-4, callback=lambda k, g: seen.append(k), **kw)
    assert torch.equal(called.gamma, torch_run.gamma) and seen
    f32 = sbl(y.float(), Phi.float(), 1e-4, **kw)
    assert f32.gamma.dtype == torch.float32


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "fast"}, "method must be one of"),
    ({"method": "numba", "update": "lstm"}, "update='lstm'"),
    ({"method": "numba", "callback": lambda k, g: None}, "callback"),
    ({"method": "numba", "dtype": torch.float32}, "float64"),
    ({"method": "numba", "dtype": torch.complex128}, "float64"),
    ({"method": "numba", "prune": -1.0}, "prune"),
])
def test_kernel_bad_input(kwargs, match):
    Phi, y, _ = _problem(20, 40, 3, 1e-2, 3, seed=19)
    dtype = kwargs.pop("dtype", None)
    if dtype is not None:
        Phi, y = Phi.to(dtype), y.to(dtype)
    with pytest.raises(ValueError, match=match):
        sbl(y, Phi, 1e-3, **{"update": "mackay", **kwargs})


@pytest.mark.parametrize("update", ["mackay", "em"])
def test_kernel_raises_as_the_torch_path(update):
    """Overflowing hyperparameters and a Cholesky factorisation lost to rounding raise the torch path's errors."""
    Phi, y, _ = _problem(20, 40, 3, 0.0, 4, seed=3)
    for method in ("torch", "numba"):
        with pytest.raises(FloatingPointError, match="non-finite hyperparameters at iteration 1"):
            sbl(y * 1e160, Phi, 1.0, update=update, max_iter=200, tol=1e-8, method=method)
        with pytest.raises(torch.linalg.LinAlgError):
            sbl(y * 1e150, Phi, 1e-10, update=update, max_iter=200, tol=1e-8, method=method)


def test_kernel_edge_cases_as_torch():
    """No problems, a zero ``y`` (every atom pruned: the k = 0 posterior), non-contiguous inputs."""
    Phi, y, _ = _problem(20, 40, 3, 1e-2, 5, seed=23)
    for yy, P, prune in ((y[:0], Phi, None), (torch.zeros(3, 20, dtype=DT), Phi, 1e-4),
                         (y.T.contiguous().T, Phi.T.contiguous().T, 1e-4), (y[:, ::1], Phi, None)):
        a = sbl(yy, P, 1e-3, update="mackay", tol=1e-8, prune=prune, method="torch")
        b = sbl(yy, P, 1e-3, update="mackay", tol=1e-8, prune=prune, method="numba")
        assert b.x.shape == a.x.shape == (yy.shape[0], 40)
        if yy.shape[0]:
            _assert_same_run(a, b)
        else:
            assert b.n_iter.shape == (0,) and b.history == a.history
    zero = sbl(torch.zeros(3, 20, dtype=DT), Phi, 1e-3, update="em", tol=1e-8, prune=1e-4, method="numba")
    assert bool((zero.gamma == 0).all() and (zero.x == 0).all() and zero.converged.all())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_takes_the_torch_path():
    Phi, y, _ = _problem(20, 40, 3, 1e-2, 4, seed=29)
    kw = dict(update="mackay", tol=1e-8, prune=1e-4)
    gpu = sbl(y.cuda(), Phi.cuda(), 1e-4, **kw)
    assert gpu.gamma.is_cuda  # 'auto' on CUDA: the torch path (the kernel would have raised, as below)
    ref = sbl(y, Phi, 1e-4, method="torch", **kw)
    torch.testing.assert_close(gpu.gamma.cpu(), ref.gamma, rtol=1e-6, atol=1e-10)
    with pytest.raises(ValueError, match="CPU only"):
        sbl(y.cuda(), Phi.cuda(), 1e-4, method="numba", **kw)


@pytest.mark.parametrize("prune", [1e-4, None])
def test_kernel_without_the_pair_table(monkeypatch, prune):
    """Dictionaries too large for the table of atom products build Sigma_y by rank-one updates: same run."""
    import unrolled.sbl.solvers as solvers

    Phi, y, _ = _problem(25, 60, 4, 1e-2, 8, seed=31)
    kw = dict(update="mackay", tol=1e-8, prune=prune)
    a = sbl(y, Phi, 1e-4, method="torch", **kw)
    monkeypatch.setattr(solvers, "PACKED_MAX_BYTES", 0)
    _assert_same_run(a, sbl(y, Phi, 1e-4, method="numba", **kw))
