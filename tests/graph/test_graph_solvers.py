"""Tests of the ADMM solver of problem (8) (blind deconvolution of graph diffusion)."""

from __future__ import annotations

import pytest
import torch

from unrolled.graph.data import GraphDiffusionProblem, exact_recovery_target
from unrolled.graph.solvers import (
    ADMMResult,
    admm,
    apply_gamma_inverse,
    apply_Z,
    apply_Zt,
    deconvolution_objective,
    default_penalties,
    gamma_inverse,
    sources_from_filter,
)

DT = torch.float64


def explicit_Z(Y: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """``Z = Y^T V (Khatri-Rao) V`` as an explicit ``(N P, N)`` matrix, rows ordered as ``vec`` (column-major)."""
    Yt = V.T @ Y  # (N, P)
    N, P = Y.shape
    # column i is vec(v_i yt_i^T): entry (p, n) -> V[n, i] * Yt[i, p], row index p * N + n
    return (Yt.T[:, None, :] * V[None, :, :]).reshape(P * N, N)


@pytest.fixture(scope="module")
def er_problem():
    prob = GraphDiffusionProblem("er", n_signals=60, graph_seed=1)
    return prob, prob.sample_batch(4, torch.Generator().manual_seed(5))


# --------------------------------------------------------------------------- #
# Building blocks
# --------------------------------------------------------------------------- #
def test_sherman_morrison_matches_dense_inverse():
    gen = torch.Generator().manual_seed(0)
    for N in (1, 5, 20):
        z = torch.rand(3, N, generator=gen, dtype=DT) * 5 + 0.01
        rho_l = torch.tensor([0.3, 7.0, 150.0], dtype=DT)
        rho_mu = torch.tensor([2.0, 0.05, 900.0], dtype=DT)
        ones = torch.ones(N, N, dtype=DT)
        Gamma = rho_l[:, None, None] * torch.diag_embed(z) + rho_mu[:, None, None] * ones
        dense = torch.linalg.inv(Gamma)
        sm = gamma_inverse(z, rho_l, rho_mu)
        assert torch.allclose(sm, dense, rtol=1e-10, atol=1e-12 * dense.abs().max())
        assert torch.allclose(Gamma @ sm, torch.eye(N, dtype=DT).expand(3, N, N), atol=1e-10)
        # the O(N) application agrees with the matrix
        r = torch.randn(3, N, generator=gen, dtype=DT)
        w = 1.0 / (rho_l[:, None] * z)
        zeta = 1.0 / rho_mu + w.sum(-1)
        assert torch.allclose(apply_gamma_inverse(w, zeta, r), (dense @ r[..., None])[..., 0], rtol=1e-10)
    # scalar penalties
    z = torch.rand(6, generator=gen, dtype=DT) + 0.1
    dense = torch.linalg.inv(4.0 * torch.diag(z) + 0.5 * torch.ones(6, 6, dtype=DT))
    assert torch.allclose(gamma_inverse(z, 4.0, 0.5), dense, rtol=1e-10)


def test_filter_inverse_matches_a_dense_solve():
    """SLoG-Net's Woodbury solve equals ``solve(diag(z) + rho2 M M^T, r)``; with ``M = 1`` it is the ADMM's
    Sherman-Morrison inverse for ``rho_l = 1``."""
    from unrolled.graph.operators import apply_filter_inverse
    gen = torch.Generator().manual_seed(1)
    for N, d in ((1, 1), (6, 2), (20, 3)):
        z = torch.rand(4, N, generator=gen, dtype=DT) * 5 + 0.01
        M = torch.randn(N, d, generator=gen, dtype=DT)
        r = torch.randn(4, N, generator=gen, dtype=DT)
        rho2 = torch.tensor(0.7, dtype=DT)
        dense = torch.linalg.solve(torch.diag_embed(z) + rho2 * M @ M.T, r[..., None])[..., 0]
        torch.testing.assert_close(apply_filter_inverse(z, M, rho2, r), dense, rtol=1e-10, atol=1e-12)
    ones = torch.ones(N, 1, dtype=DT)
    sherman_morrison = (gamma_inverse(z, 1.0, 2.5) @ r[..., None])[..., 0]
    torch.testing.assert_close(apply_filter_inverse(z, ones, 2.5, r), sherman_morrison, rtol=1e-10, atol=1e-12)


def test_ztz_is_diagonal_and_operators_match_explicit_Z(er_problem):
    prob, b = er_problem
    Y, V = b.Y[0], prob.V
    Z = explicit_Z(Y, V)
    Yt = V.T @ Y
    ZtZ = Z.T @ Z
    assert torch.allclose(ZtZ, torch.diag(Yt.pow(2).sum(-1)), atol=1e-10)  # Appendix B
    g = torch.randn(20, generator=torch.Generator().manual_seed(1), dtype=DT)
    W = torch.randn(20, 60, generator=torch.Generator().manual_seed(2), dtype=DT)
    vec = lambda M: M.T.reshape(-1)  # noqa: E731  column-major vec
    assert torch.allclose(vec(apply_Z(V, Yt, g)), Z @ g, atol=1e-12)
    assert torch.allclose(apply_Zt(V, Yt, W), Z.T @ vec(W), atol=1e-12)
    assert torch.allclose(deconvolution_objective(Y, V, g), (Z @ g).abs().sum())


def test_filter_update_solves_the_normal_equations(er_problem):
    """One ADMM step from x = lambda = mu = 0 gives g = Gamma^{-1} (rho_mu c) 1 (update (11))."""
    prob, b = er_problem
    Y = b.Y[0]
    res = admm(Y, prob.S, V=prob.V, rho_l=3.0, rho_mu=2.0, c=1.5, tol=0.0, max_iter=1)
    Z = explicit_Z(Y, prob.V)
    Gamma = 3.0 * Z.T @ Z + 2.0 * torch.ones(20, 20, dtype=DT)
    g1 = torch.linalg.solve(Gamma, torch.full((20,), 2.0 * 1.5, dtype=DT))
    assert torch.allclose(res.g, g1, rtol=1e-9)
    v = Z @ g1
    x1 = torch.sign(v) * torch.clamp(v.abs() - 1 / 3.0, min=0)
    assert torch.allclose(res.x.T.reshape(-1), x1, atol=1e-12)


# --------------------------------------------------------------------------- #
# Against the linear program
# --------------------------------------------------------------------------- #
def lp_optimum(Y: torch.Tensor, V: torch.Tensor) -> float:
    cp = pytest.importorskip("cvxpy")
    Z = explicit_Z(Y, V).numpy()
    g = cp.Variable(Z.shape[1])
    prob = cp.Problem(cp.Minimize(cp.norm1(Z @ g)), [cp.sum(g) == 1])
    prob.solve(solver="CLARABEL" if "CLARABEL" in cp.installed_solvers() else None)
    assert prob.status == "optimal"
    return float(prob.value)


@pytest.mark.parametrize("graph", ["er", "sbm", "karate", "rg"])
def test_objective_matches_linear_program(graph):
    """Paper's setting (phi=1, theta=0.15, noiseless), which includes failed recoveries, and a noisy problem."""
    prob = GraphDiffusionProblem(graph, n_signals=50, graph_seed=0)
    Y = prob.sample(3, torch.Generator().manual_seed(11))[0]
    noisy = GraphDiffusionProblem(graph, n_signals=50, graph_seed=0, eta=0.02)
    Y = torch.cat([Y, noisy.sample(1, torch.Generator().manual_seed(12))[0]])
    res = admm(Y, prob.S, V=prob.V, tol=1e-7, max_iter=2000)  # the noisy problem stops at max_iter
    ours = deconvolution_objective(Y, prob.V, res.g, c=1.0)  # feasible point: an upper bound
    for b in range(Y.shape[0]):
        ref = lp_optimum(Y[b], prob.V)
        gap = (ours[b].item() - ref) / ref
        assert -1e-6 < gap < 1e-4, (graph, b, gap, res.n_iter[b].item())
        # the sparse iterate's l1 norm agrees too
        assert res.x[b].abs().sum().item() == pytest.approx(ref, rel=1e-4)


def test_exact_recovery_in_easy_noiseless_regime():
    prob = GraphDiffusionProblem("er", n_signals=60, phi=0.3, theta=0.1, graph_seed=2)
    b = prob.sample_batch(4, torch.Generator().manual_seed(3))
    res = admm(b.Y, prob.S, V=prob.V, tol=1e-9, max_iter=3000)
    assert res.converged.all()
    x_true, g_true = exact_recovery_target(b.X, b.h_freq, c=1.0)
    err = torch.linalg.vector_norm(res.x - x_true, dim=(1, 2)) / torch.linalg.vector_norm(x_true, dim=(1, 2))
    assert (err < 1e-6).all(), err
    assert torch.allclose(res.g, g_true, rtol=1e-5, atol=1e-8)
    assert torch.equal(res.x != 0, b.X != 0)  # exact support
    # the sources follow from the filter as in the paper: X = V diag(g) V^T Y
    assert torch.allclose(sources_from_filter(b.Y, prob.V, res.g), res.x, atol=1e-7)


@pytest.mark.parametrize("c", [1.0, -2.0])
def test_constraint_satisfied(er_problem, c):
    prob, b = er_problem
    res = admm(b.Y, prob.S, V=prob.V, c=c, tol=1e-8, max_iter=1500)
    assert isinstance(res, ADMMResult)
    assert res.converged.sum() >= 3  # problem 3 is a degenerate LP on which ADMM is slow
    assert torch.allclose(res.g.sum(-1), torch.full((4,), c, dtype=DT), rtol=1e-7)


def test_scale_equivariance_of_default_penalties(er_problem):
    prob, b = er_problem
    r1 = admm(b.Y, prob.S, V=prob.V, tol=0.0, max_iter=40)
    r2 = admm(3.0 * b.Y, prob.S, V=prob.V, c=0.5, tol=0.0, max_iter=40)
    assert torch.allclose(r2.g, 0.5 * r1.g, rtol=1e-8, atol=1e-12)
    assert torch.allclose(r2.x, 1.5 * r1.x, rtol=1e-8, atol=1e-12)
    rl, rm = default_penalties(b.Y)
    assert torch.allclose(r1.rho_l, rl) and torch.allclose(r1.rho_mu, rm)


# --------------------------------------------------------------------------- #
# Batching, dtype, device, history
# --------------------------------------------------------------------------- #
def test_batched_equals_per_problem(er_problem):
    prob, b = er_problem
    for kw in ({"tol": 0.0, "max_iter": 60}, {"tol": 1e-7, "max_iter": 2000}):
        batch = admm(b.Y, prob.S, V=prob.V, **kw)
        for i in range(4):
            one = admm(b.Y[i], prob.S, V=prob.V, **kw)
            assert one.x.shape == (20, 60) and one.g.shape == (20,) and one.n_iter.dim() == 0
            assert one.n_iter.item() == batch.n_iter[i].item()
            assert one.converged.item() == batch.converged[i].item()
            assert torch.allclose(one.x, batch.x[i], rtol=1e-9, atol=1e-12)
            assert torch.allclose(one.g, batch.g[i], rtol=1e-9, atol=1e-12)


def test_frozen_problems_keep_the_iterate_that_converged(er_problem):
    prob, b = er_problem
    Y = b.Y[:3]  # the fourth is a degenerate LP on which ADMM is slow
    res = admm(Y, prob.S, V=prob.V, tol=1e-6, max_iter=1000)
    assert res.converged.all()
    assert len(set(res.n_iter.tolist())) > 1  # problems stop at different iterations
    for i in range(3):
        k = res.n_iter[i].item()
        again = admm(Y[i], prob.S, V=prob.V, tol=0.0, max_iter=k)
        assert torch.allclose(again.x, res.x[i], rtol=1e-9, atol=1e-12)
    h = res.history
    assert len(h["objective"]) == len(h["criterion"]) == res.n_iter.max().item()
    assert h["criterion"][-1] < 1e-6  # the larger of the relative primal and dual residuals


def test_check_every_tests_the_last_step_and_keeps_the_iterates(er_problem):
    """``check_every=k``: the same ADMM iterates, tested only at multiples of ``k``; a problem stops at the first
    tested iteration whose last-step residuals meet the test, and keeps exactly that iterate (``polish=False``:
    the plain ADMM iterates; the polish with ``check_every`` is tested below)."""
    prob, b = er_problem
    Y = b.Y[:3]
    bare = admm(Y, prob.S, V=prob.V, tol=0.0, max_iter=25)
    blocks = admm(Y, prob.S, V=prob.V, tol=0.0, max_iter=25, check_every=10)  # last block: 5 steps
    assert (blocks.n_iter == 25).all() and torch.equal(blocks.x, bare.x) and torch.equal(blocks.g, bare.g)
    every1 = admm(Y, prob.S, V=prob.V, tol=1e-6, max_iter=1000, polish=False)
    every7 = admm(Y, prob.S, V=prob.V, tol=1e-6, max_iter=1000, check_every=7, polish=False)
    assert every7.converged.all()
    assert ((every7.n_iter % 7) == 0).all() and (every7.n_iter >= every1.n_iter).all()
    assert len(every7.history["criterion"]) == every7.n_iter.max().item() // 7
    assert every7.history["criterion"][-1] < 1e-6  # last-step residuals of every problem at its stop
    for i in range(3):
        k = every7.n_iter[i].item()
        again = admm(Y[i], prob.S, V=prob.V, tol=0.0, max_iter=k)
        assert torch.allclose(again.x, every7.x[i], rtol=1e-9, atol=1e-12)
        assert torch.allclose(again.g, every7.g[i], rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="check_every"):
        admm(Y, prob.S, V=prob.V, check_every=0)
    with pytest.raises(ValueError, match="check_every"):
        admm(Y, prob.S, V=prob.V, check_every=2, callback=lambda k, x: None)


def test_float32_and_dtype_device_preserved(er_problem):
    prob, b = er_problem
    Y32, S32, V32 = b.Y.float(), prob.S.float(), prob.V.float()
    r32 = admm(Y32, S32, V=V32, tol=1e-4, max_iter=1000)
    r64 = admm(b.Y, prob.S, V=prob.V, tol=1e-8, max_iter=1000)
    for t in (r32.x, r32.g, r32.rho_l):
        assert t.dtype == torch.float32 and t.device == Y32.device
    assert r32.n_iter.dtype == torch.int64 and r32.converged.dtype == torch.bool
    assert r64.x.dtype == torch.float64
    f32 = deconvolution_objective(b.Y, prob.V, r32.g.double(), c=1.0)
    f64 = deconvolution_objective(b.Y, prob.V, r64.g, c=1.0)
    assert torch.allclose(f32, f64, rtol=1e-3)
    r = admm(Y32, S32, tol=1e-4, max_iter=50)  # V computed from S
    assert r.x.dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(er_problem):
    prob, b = er_problem
    cpu = admm(b.Y, prob.S, V=prob.V, tol=0.0, max_iter=50)
    gpu = admm(b.Y.cuda(), prob.S.cuda(), V=prob.V.cuda(), tol=0.0, max_iter=50)
    assert gpu.x.is_cuda and gpu.g.is_cuda and gpu.n_iter.is_cuda
    assert torch.allclose(gpu.x.cpu(), cpu.x, rtol=1e-8, atol=1e-10)


def test_no_grad_and_detached(er_problem):
    prob, b = er_problem
    Y = b.Y.clone().requires_grad_(True)
    res = admm(Y, prob.S, V=prob.V, tol=0.0, max_iter=3)
    assert not res.x.requires_grad and not res.g.requires_grad


# --------------------------------------------------------------------------- #
# Bad input
# --------------------------------------------------------------------------- #
def test_bad_input_raises_naming_argument(er_problem):
    prob, b = er_problem
    Y, S, V = b.Y, prob.S, prob.V
    asym = S.clone()
    asym[0, 1] += 0.1
    nan_S = S.clone()
    nan_S[2, 3] = float("nan")
    inf_Y = Y.clone()
    inf_Y[0, 0, 0] = float("inf")
    cases = [
        (dict(Y=Y, S=S[:, :10]), "S must be a non-empty square"),
        (dict(Y=Y, S=asym), "S must be symmetric"),
        (dict(Y=Y, S=nan_S), "S contains NaN"),
        (dict(Y=inf_Y, S=S), "Y contains NaN"),
        (dict(Y=Y[:, :15], S=S), "Y must have N=20 rows"),
        (dict(Y=Y[None], S=S), "Y must have 2 or 3 dimensions"),
        (dict(Y=Y.long(), S=S), "Y must have a floating-point dtype"),
        (dict(Y=Y.float(), S=S), "S has dtype"),
        (dict(Y=torch.zeros_like(Y), S=S), "Y has no energy"),
        (dict(Y=Y, S=S, V=V[:5]), "V must have shape"),
        (dict(Y=Y, S=S, V=V + 0.1), "V must be orthonormal"),
        (dict(Y=Y, S=S, c=0.0), "c must be"),
        (dict(Y=Y, S=S, rho_l=-1.0), "rho_l"),
        (dict(Y=Y, S=S, rho_mu=torch.ones(3, dtype=DT)), "rho_mu"),
        (dict(Y=Y, S=S, max_iter=0), "max_iter"),
        (dict(Y=Y, S=S, tol=-1.0), "tol"),
        (dict(Y=Y, S=S, atol=float("nan")), "atol"),
    ]
    for kwargs, msg in cases:
        Yk, Sk = kwargs.pop("Y"), kwargs.pop("S")
        with pytest.raises(ValueError, match=msg):
            admm(Yk, Sk, **kwargs)
