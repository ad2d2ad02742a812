"""The polish of the graph ADMM (``admm(polish=True)``): the polished point is optimal for the LP (8), the gap
certificate is a true bound and rejects wrong candidates, and ``polish=False`` / ``tol=0`` keep plain ADMM."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
import torch

from unrolled.graph import polish
from unrolled.graph.data import GraphDiffusionProblem
from unrolled.graph.iteration import deconvolution_data
from unrolled.graph.operators import apply_Z, deconvolution_objective
from unrolled.graph.solvers import admm, certify, dual_candidate, polish_filter

DT = torch.float64


def _khatri_rao(Y: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``Z`` ``(N P, N)`` with ``Z g = vec(V diag(g) V^T Y)`` (row-major vec), formed explicitly."""
    return np.einsum("ji,ip->jpi", V, V.T @ Y).reshape(-1, V.shape[0])


def _cvxpy_optimum(Y: torch.Tensor, V: torch.Tensor, c: float = 1.0) -> float:
    g = cp.Variable(V.shape[0])
    prob = cp.Problem(cp.Minimize(cp.norm1(_khatri_rao(Y.numpy(), V.numpy()) @ g)), [cp.sum(g) == c])
    prob.solve(solver=cp.CLARABEL)
    assert prob.status == cp.OPTIMAL
    return float(prob.value)


def _problems(N: int, seed: int, B: int = 3, P: int = 60):
    prob = GraphDiffusionProblem("er", n_nodes=N, graph_seed=seed, n_signals=P)
    Y, _ = prob.sample(B, torch.Generator().manual_seed(100 + seed))
    return prob, Y


@pytest.mark.parametrize("N,seed", [(12, 0), (20, 1), (30, 2)])
def test_polished_points_satisfy_the_kkt_conditions_and_match_cvxpy(N, seed):
    """At tol = 1e-9 a polished filter is the LP's vertex: feasible, with a dual point found by an independent LP
    (cvxpy) on its own support, and its objective equals cvxpy's optimum."""
    prob, Y = _problems(N, seed)
    res = admm(Y, prob.S, V=prob.V, tol=1e-9, max_iter=4000, polish_every=50)
    assert res.polished.any() and res.converged[res.polished].all()
    for b in torch.nonzero(res.polished).flatten().tolist():
        g = res.g[b]
        assert abs(float(g.sum()) - 1.0) < 1e-12 and res.gap[b] < 1e-9
        Z = _khatri_rao(Y[b].numpy(), prob.V.numpy())
        r = Z @ g.numpy()
        support = np.abs(r) > 1e-9 * np.abs(r).max()
        # KKT: lambda = sign(Z g) on the support, |lambda| <= 1 elsewhere, Z^T lambda = nu 1
        lam, nu = cp.Variable(Z.shape[0]), cp.Variable()
        kkt = cp.Problem(cp.Minimize(cp.norm_inf(Z.T @ lam - nu)),
                         [lam[support] == np.sign(r[support]), cp.abs(lam[~support]) <= 1])
        kkt.solve(solver=cp.CLARABEL)
        assert kkt.value < 1e-7 * np.abs(Z).max()
        assert abs(float(nu.value) - np.abs(r).sum()) < 1e-6 * np.abs(r).sum()  # strong duality, c = 1
        F_star = _cvxpy_optimum(Y[b], prob.V)
        F = float(deconvolution_objective(Y[b], prob.V, g, c=1.0))
        assert abs(F - F_star) <= 1e-7 * F_star
        # the sources are the polished Z g, exactly zero off its support
        Zg = apply_Z(prob.V, prob.V.T @ Y[b], g)
        assert torch.equal(res.x[b] == 0, Zg.abs() <= 1e-9 * Zg.abs().max())


@pytest.mark.parametrize("N,seed", [(15, 3), (20, 4)])
def test_default_tolerance_matches_cvxpy_to_the_certified_gap(N, seed):
    """With the default tol the reported filter is within its certified gap (<= tol) of cvxpy's optimum."""
    prob, Y = _problems(N, seed, B=4)
    res = admm(Y, prob.S, V=prob.V, tol=1e-6, max_iter=4000)
    assert res.converged.all()
    for b in range(Y.shape[0]):
        F_star = _cvxpy_optimum(Y[b], prob.V)
        F = float(deconvolution_objective(Y[b], prob.V, res.g[b], c=1.0))
        if res.polished[b]:
            assert (F - F_star) / F_star <= float(res.gap[b]) + 1e-8 and res.gap[b] < 1e-6
        else:
            assert torch.isinf(res.gap[b])
        assert (F - F_star) / F_star < 2e-5


def test_certificate_is_a_lower_bound_and_rejects_wrong_candidates():
    """certify's D never exceeds cvxpy's optimum, whatever the candidates; a wrong polish candidate gets a gap far
    above tol (and the true relative suboptimality below the bound)."""
    prob, Y = _problems(15, 5, B=2)
    data = deconvolution_data(Y, prob.V, "")
    Yt, z, V = data["Yt"], data["z"], data["V"]
    res = admm(Y, prob.S, V=prob.V, tol=1e-9, max_iter=4000, polish_every=50)
    good = res.polished
    assert good.any()
    F_star = torch.tensor([_cvxpy_optimum(Y[b], prob.V) for b in range(2)], dtype=DT)
    gen = torch.Generator().manual_seed(0)
    # random candidates: still a valid bound
    for _ in range(3):
        g = torch.rand(2, 15, generator=gen, dtype=DT) + 0.5
        lam = torch.randn(Y.shape, generator=gen, dtype=DT)
        gap, g_f, Zg, lam_f, nu = certify(Yt, z, V, g, lam, 1.0)
        F = Zg.abs().sum((-2, -1))
        assert (nu <= F_star * (1 + 1e-10)).all() and (lam_f.abs().amax((-2, -1)) <= 1 + 1e-12).all()
        assert ((F - F_star) / F_star <= gap + 1e-12).all() and (gap > 1e-3).all()
    # a wrong zero set: the solution's zero set with its support entries added (a point of zero sources)
    Zg = apply_Z(V, Yt, res.g)
    true_zero = Zg.abs() <= 1e-9 * Zg.abs().amax((-2, -1), keepdim=True)
    wrong = true_zero.clone()
    wrong[:, :, : Y.shape[-1] // 2] = True
    for zero, expect_ok in ((true_zero, True), (wrong, False)):
        g, ok = polish_filter(Yt, V, zero, 1.0)
        lam = dual_candidate(Yt, V, zero, torch.sign(Zg), torch.sign(Zg) * ~zero, 50)
        gap = certify(Yt, z, V, g, lam, 1.0)[0]
        F = deconvolution_objective(Y, prob.V, g, c=1.0)
        assert ((F - F_star) / F_star <= gap + 1e-12).all()
        if expect_ok:
            assert (gap[good] < 1e-9).all()
        else:
            assert (gap > 1e-3).all()


def test_a_rejected_candidate_leaves_the_iterates_untouched(monkeypatch):
    """A polish candidate the certificate rejects (here: a perturbed one) changes nothing: the run equals
    polish=False exactly, and nothing is reported polished."""
    prob, Y = _problems(20, 1)
    plain = admm(Y, prob.S, V=prob.V, tol=1e-7, max_iter=1500, polish=False)
    real = polish.polish_filter

    def perturbed(Yt, V, zero, c):
        g, ok = real(Yt, V, zero, c)
        shift = torch.zeros_like(g)
        shift[:, 0], shift[:, 1] = 1e-2, -1e-2  # keeps 1^T g = c
        return g + shift, ok

    monkeypatch.setattr(polish, "polish_filter", perturbed)
    res = admm(Y, prob.S, V=prob.V, tol=1e-7, max_iter=1500)
    assert not res.polished.any()
    assert torch.equal(res.x, plain.x) and torch.equal(res.g, plain.g) and torch.equal(res.n_iter, plain.n_iter)
    monkeypatch.setattr(polish, "polish_filter", real)
    polished = admm(Y, prob.S, V=prob.V, tol=1e-7, max_iter=1500)
    assert polished.polished.any() and (polished.n_iter <= plain.n_iter).all()


def test_polish_false_and_tol_zero_are_plain_admm():
    prob, Y = _problems(20, 1)
    a = admm(Y, prob.S, V=prob.V, tol=0.0, max_iter=250)
    b = admm(Y, prob.S, V=prob.V, tol=0.0, max_iter=250, polish=False)
    assert torch.equal(a.x, b.x) and torch.equal(a.g, b.g) and not a.polished.any()
    c = admm(Y, prob.S, V=prob.V, tol=1e-7, max_iter=250, polish=False)
    assert not c.polished.any() and torch.isinf(c.gap).all()


def test_batched_problems_stop_at_different_times_like_alone():
    """In a batch, problems stop at their own iteration (ADMM's test or a polish at some multiple of
    polish_every), each with the result it gets alone; check_every composes with the polish."""
    prob, Y = _problems(20, 6, B=5)
    res = admm(Y, prob.S, V=prob.V, tol=1e-6, max_iter=3000, polish_every=40)
    assert res.converged.all() and len(set(res.n_iter.tolist())) > 1 and res.polished.any()
    assert (res.n_iter[res.polished] % 40 == 0).all()
    for b in range(Y.shape[0]):
        alone = admm(Y[b], prob.S, V=prob.V, tol=1e-6, max_iter=3000, polish_every=40)
        assert alone.n_iter == res.n_iter[b] and alone.polished == res.polished[b]
        torch.testing.assert_close(alone.g, res.g[b], rtol=1e-9, atol=1e-12)
    blocks = admm(Y, prob.S, V=prob.V, tol=1e-6, max_iter=3000, polish_every=40, check_every=15)
    assert blocks.converged.all() and blocks.polished.any()
    # a polish runs after the block that completes a multiple of 40 iterations
    k = blocks.n_iter[blocks.polished]
    assert ((k % 15 == 0) | (k == 3000)).all() and ((k % 40) < 15).all()


def test_bad_polish_arguments():
    prob, Y = _problems(12, 0, B=1)
    with pytest.raises(ValueError, match="polish_every"):
        admm(Y, prob.S, V=prob.V, polish_every=0)
    with pytest.raises(ValueError, match="polish"):
        admm(Y, prob.S, V=prob.V, polish="yes")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_polish_on_cuda_matches_cpu():
    prob, Y = _problems(20, 1)
    cpu = admm(Y, prob.S, V=prob.V, tol=1e-7, max_iter=1500)
    gpu = admm(Y.cuda(), prob.S.cuda(), V=prob.V.cuda(), tol=1e-7, max_iter=1500)
    assert gpu.g.is_cuda and gpu.polished.is_cuda and gpu.polished.any()
    assert torch.equal(gpu.polished.cpu(), cpu.polished) and torch.equal(gpu.n_iter.cpu(), cpu.n_iter)
    torch.testing.assert_close(gpu.g.cpu(), cpu.g, rtol=1e-8, atol=1e-10)
