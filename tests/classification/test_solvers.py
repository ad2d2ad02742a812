"""IRLS-ADMM against scikit-learn (liblinear), cvxpy and the optimality conditions of (4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from unrolled.classification.bayes import ard_weights, reweighted_irls_admm
from unrolled.classification.data import CorrelatedFeaturesProblem
from unrolled.classification.solvers import irls_admm, lambda_max, prepare_problem

DT = torch.float64


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    N, p = 120, 12
    X = torch.randn(N, p, generator=g, dtype=DT)
    beta = torch.zeros(p, dtype=DT)
    beta[:4] = torch.tensor([2.0, -1.5, 1.0, -1.0], dtype=DT)
    y = torch.sign(X @ beta + 0.5 * torch.randn(N, generator=g, dtype=DT) + 0.3)
    return X, y


def np_objective(X, y, beta, w, b=0.0):
    m = y * (X @ beta + b)
    return float(np.logaddexp(0, -m).sum() + np.abs(w * beta).sum())


def np_kkt(X, y, beta, w, b=0.0):
    """Largest violation of the KKT conditions, written independently of the package."""
    m = y * (X @ beta + b)
    g = -X.T @ (y / (1 + np.exp(m)))
    on = np.abs(g + w * np.sign(beta))
    off = np.maximum(np.abs(g) - w, 0)
    return float(np.where(beta != 0, on, off).max()), float(abs((y / (1 + np.exp(m))).sum()))


def liblinear(X, y, lam):
    clf = LogisticRegression(l1_ratio=1.0, C=1.0 / lam, fit_intercept=False, solver="liblinear", tol=1e-12,
                             max_iter=100000)
    return clf.fit(X, y).coef_[0]


@pytest.mark.parametrize("lam", [0.5, 3.0, 12.0])
def test_matches_liblinear_and_kkt(data, lam):
    X, y = data
    res = irls_admm(X, y, lam)
    assert bool(res.converged) and res.beta.shape == (X.shape[1],)
    Xn, yn, b = X.numpy(), y.numpy(), res.beta.numpy()
    ref = liblinear(Xn, yn, lam)
    ours, theirs = np_objective(Xn, yn, b, lam), np_objective(Xn, yn, ref, lam)
    assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-9)
    assert ours <= theirs + 1e-9
    kkt, _ = np_kkt(Xn, yn, b, lam)
    assert kkt <= 1e-6
    np.testing.assert_allclose(b, ref, atol=1e-5)
    assert set(np.flatnonzero(b)) == set(np.flatnonzero(np.abs(ref) > 1e-8))
    assert float(res.objective) == pytest.approx(ours, rel=1e-12)


def test_zero_solution_above_lambda_max(data):
    X, y = data
    Xt, _, _ = prepare_problem(X, y, 0.0, False)
    lmax = float(lambda_max(Xt)[0])
    assert (irls_admm(X, y, 1.01 * lmax).beta == 0).all()
    assert (irls_admm(X, y, 0.95 * lmax).beta != 0).any()


def test_batched_lambda_path_equals_single_solves(data):
    X, y = data
    lams = torch.tensor([0.5, 2.0, 8.0], dtype=DT)
    w = lams.unsqueeze(-1).expand(3, X.shape[1])
    batched = irls_admm(X, y, w)
    assert batched.beta.shape == (3, X.shape[1]) and batched.converged.all()
    for i, lam in enumerate(lams.tolist()):
        single = irls_admm(X, y, lam)
        torch.testing.assert_close(batched.beta[i], single.beta, atol=1e-6, rtol=0)  # both meet KKT tol 1e-8
    # many data sets at once
    Xb = torch.stack([X, X.flip(0)])
    yb = torch.stack([y, y.flip(0)])
    both = irls_admm(Xb, yb, 2.0)
    torch.testing.assert_close(both.beta[0], both.beta[1], atol=1e-7, rtol=0)


def test_intercept_is_unpenalised_against_cvxpy(data):
    cp = pytest.importorskip("cvxpy")
    X, y = data
    lam = 4.0
    res = irls_admm(X, y, lam, fit_intercept=True)
    Xn, yn = X.numpy(), y.numpy()
    b, c = cp.Variable(Xn.shape[1]), cp.Variable()
    prob = cp.Problem(cp.Minimize(cp.sum(cp.logistic(-cp.multiply(yn, Xn @ b + c))) + lam * cp.norm1(b)))
    prob.solve()
    ours = np_objective(Xn, yn, res.beta.numpy(), lam, float(res.intercept))
    assert ours <= prob.value + 1e-6
    assert ours == pytest.approx(prob.value, rel=1e-6)
    kkt, icpt_grad = np_kkt(Xn, yn, res.beta.numpy(), lam, float(res.intercept))
    assert kkt <= 1e-6 and icpt_grad <= 1e-6
    assert abs(float(res.intercept) - c.value) < 1e-3


def test_fixed_iterations_and_paper_mode(data):
    X, y = data
    res = irls_admm(X, y, 2.0, max_iter=3, inner_max_iter=4, tol=0, inner_tol=0, line_search=False,
                    warm_start=False, sparse_direction=False, rho=1.0)
    assert int(res.n_iter) == 3 and int(res.inner_iter) == 12
    # not converged to the optimum after so few iterations, but finite and a descent from beta = 0
    assert float(res.objective) < X.shape[0] * np.log(2)


def test_line_search_never_increases_objective(data):
    X, y = data
    res = irls_admm(X, y, 1.0, inner_max_iter=3, inner_tol=0.0, max_iter=30, warm_start=False)
    obj = np.array(res.history["objective"])
    assert (np.diff(obj) <= 1e-9).all()


def test_float32_and_device_follow_inputs(data):
    X, y = data
    res = irls_admm(X.float(), y.float(), 3.0, tol=1e-5)
    assert res.beta.dtype == torch.float32 and bool(res.converged)
    ref = irls_admm(X, y, 3.0).beta
    torch.testing.assert_close(res.beta.double(), ref, atol=1e-3, rtol=0)


def test_ard_weights_match_feature_space_formula(data):
    X, y = data
    beta = irls_admm(X, y, 2.0).beta.unsqueeze(0)
    Xt, w, _ = prepare_problem(X, y, 2.0, False)
    beta = beta + 0.1  # every gamma positive
    pen = torch.ones_like(w, dtype=torch.bool)
    got = ard_weights(Xt, beta, w, pen)[0]
    m = (Xt @ beta[0]).squeeze(0)
    lam = torch.sigmoid(m) * torch.sigmoid(-m)
    G = Xt[0].T @ (lam.unsqueeze(-1) * Xt[0])
    gamma = beta[0].abs() / w[0]
    # Woodbury: a_i^T (I + A Gamma A^T)^{-1} a_i = [((A^T A)^{-1} + Gamma)^{-1}]_ii
    z = torch.diagonal(torch.linalg.inv(torch.linalg.inv(G) + torch.diag(gamma)))
    torch.testing.assert_close(got, z.sqrt(), atol=1e-10, rtol=1e-8)


def test_reweighting_keeps_true_features_and_satisfies_kkt():
    (X, y), _ = CorrelatedFeaturesProblem(n_samples=300, n_features=20).sample(1, torch.Generator().manual_seed(3))
    X, y = X[0], y[0]
    res, w = reweighted_irls_admm(X, y, 5.0, n_reweight=3, fit_intercept=True)
    assert w.shape == (20,) and (w > 0).all()
    kkt, _ = np_kkt(X.numpy(), y.numpy(), res.beta.numpy(), w.numpy(), float(res.intercept))
    assert kkt <= 1e-6
    top8 = set(np.argsort(-np.abs(res.beta.numpy()))[:8])
    assert len(top8 & set(range(8))) >= 6


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"y": torch.tensor([0.0, 1.0, 1.0])}, "labels in"),
        ({"X": torch.tensor([[1.0], [float("nan")], [0.0]], dtype=DT)}, "NaN or inf"),
        ({"y": torch.tensor([1.0, -1.0], dtype=DT)}, "samples"),
        ({"w": -1.0}, "finite and >= 0"),
        ({"w": torch.tensor([-1.0], dtype=DT)}, "non-negative"),
    ],
)
def test_bad_input(kwargs, match):
    args = {"X": torch.tensor([[1.0], [2.0], [0.5]], dtype=DT), "y": torch.tensor([1.0, -1.0, 1.0], dtype=DT),
            "w": 1.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        irls_admm(args["X"], args["y"], args["w"])


def test_irls_weighted_system_is_the_newton_system_at_a_random_point():
    """(16)-(19): A^T A is the Hessian of the logistic loss and (A^T A)^{-1} A^T b its Newton point.

    Independent reference: autograd's gradient and Hessian of sum log(1 + exp(-Xt beta)).
    """
    from unrolled.classification.layers import weighted_system

    g = torch.Generator().manual_seed(11)
    N, p = 40, 5
    Xt = torch.randn(1, N, p, generator=g, dtype=torch.float64)  # rows y_i x_i (labels folded in)
    beta = 0.7 * torch.randn(p, generator=g, dtype=torch.float64)

    def loss(b):
        return torch.nn.functional.softplus(-(Xt[0] @ b)).sum()

    grad = torch.autograd.functional.jacobian(loss, beta)
    hess = torch.autograd.functional.hessian(loss, beta)
    gram, rhs, _, _ = weighted_system(Xt, (Xt @ beta.unsqueeze(-1)).squeeze(-1))
    torch.testing.assert_close(gram[0], hess, rtol=1e-12, atol=1e-12)
    newton = beta - torch.linalg.solve(hess, grad)
    torch.testing.assert_close(torch.linalg.solve(gram[0], rhs[0]), newton, rtol=1e-10, atol=1e-12)
