"""nmf_mu, separate and learn_bases against scikit-learn, an independent optimiser, and the MM guarantees."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from unrolled.nmf.divergence import beta_divergence
from unrolled.nmf.iteration import NMFIteration
from unrolled.nmf.solvers import learn_bases, nmf_mu, separate

F, T, L = 12, 20, 4


def _data(seed=0, B=3):
    g = torch.Generator().manual_seed(seed)
    M = torch.rand(B, F, T, generator=g, dtype=torch.float64) + 0.1
    W0 = torch.rand(F, L, generator=g, dtype=torch.float64) + 0.1
    H0 = torch.rand(L, T, generator=g, dtype=torch.float64) + 0.1
    return M, W0, H0


def _sklearn(M, W0, H0, beta, n_iter, update_W):
    """scikit-learn's MU on X = M^T (so its W is our H^T and its H our W^T; it updates its W first = our H)."""
    from sklearn.decomposition import non_negative_factorization

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Wsk, Hsk, n = non_negative_factorization(
            M.numpy().T.copy(), W=H0.numpy().T.copy(), H=W0.numpy().T.copy(), n_components=L, init="custom",
            update_H=update_W, solver="mu", beta_loss=beta, max_iter=n_iter, tol=0.0, alpha_W=0.0, alpha_H=0.0)
    assert n == n_iter
    return Hsk.T, Wsk.T  # our (W, H)


@pytest.mark.parametrize("update_W", [True, False])
@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 2.0, 3.0])
def test_mu_zero_matches_sklearn_iterates(beta, update_W):
    """From the same start, the iterates agree up to the column scaling (26), which the updates commute with."""
    M, W0, H0 = _data()
    if not update_W:  # scikit-learn's transform-like mode ignores the given start: it uses sqrt(mean(X) / L)
        H0 = torch.full((L, T), float(M[0].mean() / L) ** 0.5, dtype=torch.float64)
    for n_iter in (1, 7, 40):
        ours = nmf_mu(M[0], W0, H0, beta=beta, mu=0.0, max_iter=n_iter, tol=0.0, update_W=update_W)
        W_sk, H_sk = _sklearn(M[0], W0, H0, beta, n_iter, update_W)
        np.testing.assert_allclose((ours.W @ ours.H).numpy(), W_sk @ H_sk, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(ours.W.numpy(), W_sk / np.linalg.norm(W_sk, axis=0), rtol=1e-10, atol=1e-12)


def test_sklearn_comparison_detects_a_wrong_exponent():
    """The MM exponent matters for beta < 1: without it (plain heuristic update) the iterates differ."""
    M, W0, H0 = _data()
    W_sk, H_sk = _sklearn(M[0], W0, H0, 0.0, 5, True)
    it = NMFIteration(0.0, update_W=True)
    it.gamma = 1.0
    from unrolled.core.solve import solve

    res = solve(it, {"M": M[:1], "W0": W0[None].clone(), "H0": H0[None].clone()}, {"W": None}, max_iter=5, tol=0.0)
    assert np.abs((res.state["W"] @ res.state["H"])[0].numpy() - W_sk @ H_sk).max() > 1e-4


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
@pytest.mark.parametrize("mu", [0.0, 0.3])
def test_no_update_increases_the_objective(beta, mu):
    M, W0, H0 = _data(1)
    it = NMFIteration(beta, mu, update_W=True)
    W, _ = torch.nn.functional.normalize(W0, dim=0), None
    W = W.expand(3, F, L).clone()
    H = H0.expand(3, L, T).clone()
    obj = lambda W, H: beta_divergence(M, W @ H, beta) + mu * H.sum((-2, -1))  # noqa: E731
    for _ in range(60):
        before = obj(W, H)
        H = it.update_H(M, W, H, W @ H)  # (24)
        after_h = obj(W, H)
        assert torch.all(after_h <= before * (1 + 1e-13))
        d_before = beta_divergence(M, W @ H, beta)
        W, H = it.update_W_step(M, W, H)  # (25), then (26) which keeps W H
        assert torch.all(beta_divergence(M, W @ H, beta) <= d_before * (1 + 1e-13))
        assert torch.allclose(torch.linalg.vector_norm(W, dim=-2), torch.ones(3, L, dtype=W.dtype))
    hist = nmf_mu(M, W0, H0, beta=beta, mu=mu, max_iter=80, tol=1e-12, update_W=False).history["objective"]
    assert all(b <= a * (1 + 1e-13) for a, b in zip(hist, hist[1:]))  # W fixed: the whole iteration is monotone
    if mu == 0:
        hist = nmf_mu(M, W0, H0, beta=beta, mu=0.0, max_iter=80, tol=1e-12).history["objective"]
        assert all(b <= a * (1 + 1e-13) for a, b in zip(hist, hist[1:]))


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_fixed_W_limit_is_the_optimum_of_the_convex_problem(beta):
    """With W fixed, (23) is convex in H for beta in [1, 2]: MU must reach what L-BFGS-B finds."""
    M, W0, _ = _data(2, B=1)
    mu = 0.05
    res = nmf_mu(M[0, :, :6], W0, None, beta=beta, mu=mu, max_iter=4000, tol=1e-13, update_W=False)
    Wn = (W0 / torch.linalg.vector_norm(W0, dim=0)).numpy()
    m = M[0, :, :6].numpy()
    T = 6

    def f(h):
        H = h.reshape(L, T)
        V = Wn @ H
        if beta == 1:
            d, G = np.sum(m * np.log(m / V) - m + V), Wn.T @ (1 - m / V)
        else:
            d, G = 0.5 * np.sum((m - V) ** 2), Wn.T @ (V - m)
        return d + mu * H.sum(), (G + mu).ravel()

    ref = minimize(f, np.full(L * T, 0.5), jac=True, method="L-BFGS-B", bounds=[(1e-12, None)] * (L * T),
                   options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 20000})
    assert abs(float(res.objective) - ref.fun) <= 1e-7 * abs(ref.fun)


def test_batched_equals_one_at_a_time_with_own_stopping():
    M, W0, H0 = _data(3, B=4)
    M[2] *= 7.0  # a different scale: a different stopping iteration
    batch = nmf_mu(M, W0, H0, beta=1.0, mu=0.1, max_iter=150, tol=1e-5)
    for b in range(4):
        one = nmf_mu(M[b], W0, H0, beta=1.0, mu=0.1, max_iter=150, tol=1e-5)
        assert int(one.n_iter) == int(batch.n_iter[b])
        torch.testing.assert_close(one.H, batch.H[b], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(one.W, batch.W[b], rtol=1e-12, atol=1e-12)


def test_numpy_float32_and_unbatched():
    M, W0, H0 = _data(4, B=2)
    a = nmf_mu(M.numpy(), W0.numpy(), H0.numpy(), beta=2.0, max_iter=5, tol=0.0)
    b = nmf_mu(M, W0, H0, beta=2.0, max_iter=5, tol=0.0)
    torch.testing.assert_close(a.H, b.H)
    c = nmf_mu(M.float(), W0.float(), H0.float(), beta=2.0, max_iter=5, tol=0.0)
    assert c.H.dtype == torch.float32 and c.W.dtype == torch.float32
    assert nmf_mu(M[0], W0, H0, beta=2.0, max_iter=5, tol=0.0).H.shape == (L, T)


def test_separate_recovers_sources_with_disjoint_bases():
    """Speech bases on the low half of the spectrum, noise bases on the high half: the mask is exact."""
    g = torch.Generator().manual_seed(5)
    Ws = torch.zeros(F, 3, dtype=torch.float64)
    Wn = torch.zeros(F, 2, dtype=torch.float64)
    Ws[: F // 2] = torch.rand(F // 2, 3, generator=g, dtype=torch.float64) + 0.1
    Wn[F // 2:] = torch.rand(F - F // 2, 2, generator=g, dtype=torch.float64) + 0.1
    Hs = torch.rand(2, 3, T, generator=g, dtype=torch.float64)
    Hn = torch.rand(2, 2, T, generator=g, dtype=torch.float64)
    S, N = Ws @ Hs, Wn @ Hn
    res = separate(S + N, Ws, Wn, beta=1.0, mu=0.0, max_iter=3000, tol=1e-14)
    torch.testing.assert_close(res.x, S, rtol=1e-8, atol=1e-8)
    swapped = separate(S + N, Wn, Ws, beta=1.0, mu=0.0, max_iter=50, tol=0.0)
    assert (swapped.x - N).abs().max() < 1e-8 < (swapped.x - S).abs().max()


def test_learn_bases_fits_a_low_rank_matrix():
    g = torch.Generator().manual_seed(6)
    W = torch.rand(F, 3, generator=g, dtype=torch.float64)
    X = W @ torch.rand(3, 60, generator=g, dtype=torch.float64) + 1e-3
    B = learn_bases([X[:, :30], X[:, 30:]], 3, beta=2.0, max_iter=400, tol=1e-12)
    assert B.shape == (F, 3) and bool((B > 0).all())
    torch.testing.assert_close(torch.linalg.vector_norm(B, dim=0), torch.ones(3, dtype=B.dtype))
    H = nmf_mu(X, B, None, beta=2.0, max_iter=400, tol=1e-14, update_W=False).H
    assert float(((B @ H - X).norm() / X.norm())) < 2e-2


@pytest.mark.parametrize("make, name", [
    (lambda M, W, H: dict(M=-M), "M"),
    (lambda M, W, H: dict(M=M.clone().fill_(float("nan"))), "M"),
    (lambda M, W, H: dict(M=M[None]), "M"),
    (lambda M, W, H: dict(M=M.clone().index_fill_(-1, torch.tensor([0]), 0.0), beta=0.0), "M"),
    (lambda M, W, H: dict(W0=-W), "W0"),
    (lambda M, W, H: dict(W0=W[:-1]), "W0"),
    (lambda M, W, H: dict(W0=W.float()), "W0"),
    (lambda M, W, H: dict(W0=W * 0), "W0"),
    (lambda M, W, H: dict(H0=H[:, :-1]), "H0"),
    (lambda M, W, H: dict(H0=-H), "H0"),
    (lambda M, W, H: dict(mu=-1.0), "mu"),
    (lambda M, W, H: dict(beta=float("nan")), "beta"),
    (lambda M, W, H: dict(beta="kl"), "beta"),
    (lambda M, W, H: dict(max_iter=0), "max_iter"),
    (lambda M, W, H: dict(tol=-1.0), "tol"),
])
def test_bad_input_raises_naming_the_argument(make, name):
    M, W0, H0 = _data(B=2)
    kwargs = dict(M=M, W0=W0, H0=H0, beta=1.0, mu=0.0, max_iter=3, tol=0.0)
    kwargs.update(make(M, W0, H0))
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        nmf_mu(**kwargs)
