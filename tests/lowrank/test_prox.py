"""The two proximal operators against their definitions, and the bounded SVT backward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from unrolled.lowrank.prox import l12_norm, nuclear_norm, row_soft_threshold, svt

DT = torch.complex128


def _prox_objective(norm, tau):
    return lambda X, Y: 0.5 * float((X - Y).abs().pow(2).sum()) + tau * float(norm(X))


def _to_complex(v: np.ndarray, shape) -> torch.Tensor:
    return torch.view_as_complex(torch.as_tensor(v, dtype=torch.float64).reshape(*shape, 2).contiguous())


CASES = [
    ("svt", lambda Y, t: svt(Y, t)[0], nuclear_norm),
    ("l12", row_soft_threshold, l12_norm),
]


@pytest.mark.parametrize("name,prox,norm", CASES, ids=[c[0] for c in CASES])
def test_prox_minimises_its_definition_by_brute_force(name, prox, norm):
    """prox_tau(Y) = argmin_X 1/2 ||X - Y||^2 + tau ||X||: no random perturbation (at any scale) lowers the
    objective, for thresholds that zero some of the spectrum / rows and for ones that zero nothing; and a
    derivative-free minimiser (Powell) started elsewhere finds the same point."""
    g = torch.Generator().manual_seed(3)
    for tau in (0.3, 1.5):
        F = _prox_objective(norm, tau)
        for _ in range(2):
            Y = torch.randn(3, 2, dtype=DT, generator=g)
            P = prox(Y, tau)
            best = F(P, Y)
            for scale in (1e-1, 1e-3, 1e-5):
                deltas = torch.randn(200, 3, 2, dtype=DT, generator=g) * scale
                assert min(F(P + d, Y) for d in deltas) >= best - 1e-12
    F = _prox_objective(norm, 0.3)
    Y = torch.randn(3, 2, dtype=DT, generator=g)
    P = prox(Y, 0.3)
    x0 = torch.view_as_real(torch.randn(3, 2, dtype=DT, generator=g)).reshape(-1).numpy()
    res = minimize(lambda v: F(_to_complex(v, (3, 2)), Y), x0, method="Powell",
                   options={"xtol": 1e-9, "ftol": 1e-13, "maxiter": 50000})
    assert res.fun >= F(P, Y) - 1e-9
    assert torch.allclose(_to_complex(res.x, (3, 2)), P, atol=1e-4)


def test_svt_closed_forms():
    """Diagonal input: singular values shrunk by tau; thresholds above sigma_max give 0; tau = 0 is the identity."""
    X = torch.diag(torch.tensor([3.0, 1.0, 0.5], dtype=torch.float64))
    Y, nuc = svt(X, 0.75)
    assert torch.allclose(Y, torch.diag(torch.tensor([2.25, 0.25, 0.0], dtype=torch.float64)), atol=1e-14)
    assert float(nuc) == pytest.approx(2.5)
    Z = torch.randn(4, 6, 3, dtype=DT, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(svt(Z, 0.0)[0], Z, atol=1e-12)
    assert svt(Z, 100.0)[0].abs().max() == 0
    wide = Z.mT.conj()  # (4, 3, 6): the wide side goes through the transpose
    assert torch.allclose(svt(wide, 0.7)[0], svt(Z, 0.7)[0].mH, atol=1e-12)
    per = torch.tensor([0.1, 0.5, 1.0, 2.0], dtype=torch.float64)
    batched = svt(Z, per)[0]
    for b in range(4):
        assert torch.allclose(batched[b], svt(Z[b], float(per[b]))[0], atol=1e-12)


def test_row_soft_threshold_closed_form():
    X = torch.tensor([[3.0 + 4.0j, 0.0], [0.3, 0.4j], [0.0, 0.0]], dtype=DT)  # row norms 5, 0.5, 0
    Y = row_soft_threshold(X, 1.0)
    assert torch.allclose(Y[0], X[0] * 0.8, atol=1e-15)
    assert Y[1:].abs().max() == 0


def _degenerate(dtype, sigmas, m=7, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    Q1 = torch.linalg.qr(torch.randn(m, n, dtype=dtype, generator=g))[0]
    Q2 = torch.linalg.qr(torch.randn(n, n, dtype=dtype, generator=g))[0]
    return (Q1 * torch.tensor(sigmas, dtype=torch.float64).to(dtype)) @ Q2.mH


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_svt_gradient_matches_finite_differences_at_degenerate_spectra(dtype):
    """Repeated (3, 3) and zero singular values: autograd through torch.linalg.svd divides by 0 there; the SVT's
    own backward is the exact derivative (gradcheck), for X and for the threshold."""
    X = _degenerate(dtype, [3.0, 3.0, 1.0, 0.0]).requires_grad_()
    tau = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda X, t: svt(X, t)[0], (X, tau))
    assert torch.autograd.gradcheck(lambda X: svt(X, 0.5)[0], (X.detach().mT.clone().requires_grad_(),))
    G = torch.randn(7, 4, dtype=dtype, generator=torch.Generator().manual_seed(5))
    (g,) = torch.autograd.grad(torch.real((svt(X, tau)[0] * G.conj()).sum()), (X,))
    assert torch.isfinite(g).all() and torch.linalg.matrix_norm(g, 2) <= torch.linalg.matrix_norm(G, 2) * (1 + 1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_svt_gradient_equals_plain_autograd_on_generic_matrices(dtype):
    g = torch.Generator().manual_seed(1)
    X = torch.randn(2, 6, 4, dtype=dtype, generator=g, requires_grad=True)
    tau = torch.tensor([0.8, 1.6], dtype=torch.float64, requires_grad=True)
    G = torch.randn(2, 6, 4, dtype=dtype, generator=g)
    ours = torch.autograd.grad(torch.real((svt(X, tau)[0] * G.conj()).sum()), (X, tau))
    U, s, Vh = torch.linalg.svd(X, full_matrices=False)
    plain = (U * torch.relu(s - tau[:, None]).unsqueeze(-2).to(dtype)) @ Vh
    ref = torch.autograd.grad(torch.real((plain * G.conj()).sum()), (X, tau))
    for a, b in zip(ours, ref):
        assert torch.allclose(a, b, atol=1e-12)


def test_row_soft_threshold_gradient_with_zero_rows():
    X = torch.randn(5, 3, dtype=DT, generator=torch.Generator().manual_seed(2))
    X[1] = 0
    X.requires_grad_()
    tau = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(row_soft_threshold, (X, tau))
    row_soft_threshold(X, tau).real.sum().backward()
    assert torch.isfinite(X.grad).all() and X.grad[1].abs().max() == 0


def test_thresholds_out_of_range_are_refused():
    X = torch.randn(3, 2, dtype=DT)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="tau"):
            svt(X, bad)
        with pytest.raises(ValueError, match="tau"):
            row_soft_threshold(X, bad)
    with pytest.raises(ValueError, match="tau"):
        svt(X, torch.ones(5, dtype=torch.float64))
