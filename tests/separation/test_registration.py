"""The registered LPALM nets: each untrained net equals the iteration its NetSpec solver runs, and
``lpalm-ista-llt``'s solver is PALM (written out here independently) with the S-step 1/(1.01 n)."""

from __future__ import annotations

import pytest
import torch

from unrolled.core.registry import NETS

K = 5


def _case(name):
    spec = NETS[name]
    prob = spec.problem(seed=0, small=True)
    X, targets = prob.sample(4, torch.Generator().manual_seed(3))
    return spec, prob, X, targets


def _solver_iterates(spec, prob, X, n_iter, tol=0.0):
    seen = []
    res = spec.solver(prob, X, n_iter, tol, lambda k, est: seen.append((k, est[0].clone(), est[1].clone())),
                      dict(spec.options))
    return res, seen


@pytest.mark.parametrize("name", ["lpalm", "lpalm-ista-llt"])
@pytest.mark.parametrize("tied", [False, True])
def test_untrained_net_equals_its_solver_layer_by_layer(name, tied):
    spec, prob, X, _ = _case(name)
    net = spec.from_algorithm(prob, K, tied, dict(spec.options))
    assert net.dtype == torch.float64 and net.tied == tied
    with torch.no_grad():
        layers = net(X, return_layers=True)
    res, seen = _solver_iterates(spec, prob, X, K)
    assert [k for k, _, _ in seen] == list(range(1, K + 1)) and res.n_iter.tolist() == [K] * 4
    for (A_net, S_net), (_, A, S) in zip(layers, seen):
        assert torch.allclose(A_net, A, atol=1e-12, rtol=0) and torch.allclose(S_net, S, atol=1e-12, rtol=0)
    assert (seen[-1][1] - seen[0][1]).abs().max() > 1e-4  # the iterates move


def test_lpalm_ista_llt_solver_is_palm_with_the_bound_step():
    spec, prob, X, _ = _case("lpalm-ista-llt")
    lam = spec.options["lam"]
    _, seen = _solver_iterates(spec, prob, X, K)
    n = prob.n
    for b in range(X.shape[0]):
        A, S = prob.A_ref.clone(), torch.zeros(n, X.shape[-1], dtype=X.dtype)
        for _, A_k, S_k in seen:
            g = 1.0 / (1.01 * n)
            v = S - g * A.T @ (A @ S - X[b])
            S = torch.sign(v) * torch.clamp(v.abs() - lam * g, min=0)
            L_a = float(torch.linalg.svdvals(S)[0] ** 2) * 1.01
            W = A - (A @ S - X[b]) @ S.T / L_a
            A = W / torch.clamp(W.norm(dim=0, keepdim=True), min=1.0)
            assert torch.allclose(S_k[b], S, atol=1e-12) and torch.allclose(A_k[b], A, atol=1e-12)
    # the bound the step rests on: ||A^T A||_2 <= n for unit-ball columns
    assert float(torch.linalg.matrix_norm(prob.A_ref, ord=2)) ** 2 <= n


def test_lpalm_solver_freezes_and_problems_are_seeded():
    spec, prob, X, targets = _case("lpalm")
    res, seen = _solver_iterates(spec, prob, X, 300, tol=1e-2)
    assert res.converged.all() and int(res.n_iter.min()) < int(res.n_iter.max())
    for b, t in enumerate(res.n_iter.tolist()):
        for _, A, S in seen[t:]:
            assert torch.equal(A[b], res.A[b]) and torch.equal(S[b], res.S[b])
    X2, t2 = spec.problem(seed=0, small=True).sample(4, torch.Generator().manual_seed(3))
    assert torch.equal(X2, X) and all(torch.equal(a, b) for a, b in zip(t2, targets))
    assert torch.allclose(targets[2], X) and targets[0].shape == (4, prob.m, prob.n)
    assert spec.problem(**spec.problem_config(prob)).config() == prob.config()
    assert 0 < spec.metric(spec.from_algorithm(prob, 3, False, dict(spec.options))(X), targets) < 10
