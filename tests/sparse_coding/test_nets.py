"""Tests of the sparse-coding unrolled networks (LISTA, LISTA-CP(SS), ALISTA, ISTA-LLT).

The reference algorithms (ISTA, ISTA with support selection) are written out
here, independently of the package's solvers and proximal operators.
"""

from __future__ import annotations

import copy
import json
import math
import os

import numpy as np
import pytest
import torch

from unrolled.core.io import load_model, save_model
from unrolled.core.params import LayerParameter
from unrolled.sparse_coding.alista_weight import analytic_weight, generalized_coherence
from unrolled.sparse_coding.data import SparseCodingProblem, gaussian_dictionary
from unrolled.sparse_coding.nets import (
    ALISTA,
    ISTALLT,
    LISTA,
    LISTACPSS,
    NETWORKS,
    support_fractions,
)

DT = torch.float64
M, N = 20, 40
LAM = 0.1
K = 5
NAMES = sorted(NETWORKS)


# --------------------------------------------------------------------------- #
# Helpers and fixtures
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def problem() -> SparseCodingProblem:
    return SparseCodingProblem(m=M, n=N, p=0.1, snr_db=40.0, seed=0, dtype=DT)


@pytest.fixture(scope="module")
def data(problem) -> tuple[torch.Tensor, torch.Tensor]:
    y, x = problem.sample(8, torch.Generator().manual_seed(2))
    assert (x != 0).any(dim=1).all(), "degenerate test data: an all-zero code"
    return y, x


def ista_net(name: str, A: torch.Tensor, lam: float, n_layers: int, tied: bool = False):
    """The untrained network of ``name`` set up to be plain ISTA (no support selection)."""
    cls = NETWORKS[name]
    if cls is LISTACPSS:
        return cls.from_algorithm(A, lam, n_layers, tied=tied, ss_fractions=[0.0] * n_layers)
    if cls is ALISTA:
        return cls.from_algorithm(A, lam, n_layers, tied=tied, weight="A", ss_fractions=[0.0] * n_layers)
    return cls.from_algorithm(A, lam, n_layers, tied=tied)


def default_net(name: str, A: torch.Tensor, lam: float, n_layers: int, tied: bool = False):
    """The untrained network of ``name`` with its default options."""
    return NETWORKS[name].from_algorithm(A, lam, n_layers, tied=tied)


def ref_soft(v: torch.Tensor, t: float) -> torch.Tensor:
    return torch.where(v > t, v - t, torch.where(v < -t, v + t, torch.zeros_like(v)))


def ref_ista(y, A, lam, n_iter, step=None):
    """Plain ISTA from x0 = 0, all iterates."""
    if step is None:
        step = 1.0 / float(np.linalg.norm(A.numpy(), 2) ** 2)
    x = torch.zeros(y.shape[0], A.shape[1], dtype=y.dtype)
    out = []
    for _ in range(n_iter):
        x = ref_soft(x - step * (A.T @ (A @ x.T - y.T)).T, step * lam)
        out.append(x)
    return out


def ref_ss_threshold(v: torch.Tensor, t: float, p: float) -> torch.Tensor:
    """Support selection written row by row: the ceil(p n) largest magnitudes pass unshrunk if > t."""
    n = v.shape[1]
    k = math.ceil(round(p * n, 9))
    out = ref_soft(v, t)
    for b in range(v.shape[0]):
        order = sorted(range(n), key=lambda i: -abs(float(v[b, i])))
        for i in order[:k]:
            if abs(float(v[b, i])) > t:
                out[b, i] = v[b, i]
    return out


def ref_ss_ista(y, A, W, lam, step, fractions):
    """x <- eta_ss^{p_k}(x - step W^T (A x - y), step * lam), from x0 = 0, all iterates."""
    x = torch.zeros(y.shape[0], A.shape[1], dtype=y.dtype)
    out = []
    for p in fractions:
        x = ref_ss_threshold(x - step * (W.T @ (A @ x.T - y.T)).T, step * lam, p)
        out.append(x)
    return out


def positive_layer_params(net) -> list[LayerParameter]:
    return [m for m in net.modules() if isinstance(m, LayerParameter) and m.transform.config()["kind"] == "positive"]


def perturb_(params, scale: float = 0.05, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in params:
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


# --------------------------------------------------------------------------- #
# 1. Untrained nets are ISTA
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_untrained_net_is_ista(name, tied, problem, data):
    y, _ = data
    A = problem.A
    net = ista_net(name, A, LAM, K, tied=tied)
    assert isinstance(net, NETWORKS[name])
    with torch.no_grad():
        layers = net(y, return_layers=True)
        last = net(y)
    ref = ref_ista(y, A, LAM, K)
    assert isinstance(layers, list) and len(layers) == K
    for k in range(K):
        assert layers[k].shape == (y.shape[0], N) and layers[k].dtype == DT
        torch.testing.assert_close(layers[k], ref[k], atol=1e-12, rtol=0)
    torch.testing.assert_close(last, ref[-1], atol=1e-12, rtol=0)
    assert (ref[-1] != 0).any() and (ref[-1] == 0).any(), "reference should be sparse but non-trivial"

    try:
        from unrolled.sparse_coding.solvers import ista
    except ImportError:  # pragma: no cover - solvers are optional for this test
        return
    torch.testing.assert_close(last, ista(y, A, LAM, max_iter=K, tol=0.0).x, atol=1e-12, rtol=0)


# --------------------------------------------------------------------------- #
# 2. Support selection
# --------------------------------------------------------------------------- #
def test_support_fractions_schedule():
    fr = support_fractions(16)
    assert len(fr) == 16
    for k, p in enumerate(fr, start=1):
        assert p == pytest.approx(min(0.012 * k, 0.13), abs=1e-15)
    assert fr[-1] == 0.13 and fr[0] == pytest.approx(0.012)
    with pytest.raises(ValueError):
        support_fractions(3, step=1.5)


def test_lista_cpss_default_is_ista_with_support_selection(problem, data):
    y, _ = data
    A = problem.A
    n_layers = 16
    net = LISTACPSS.from_algorithm(A, LAM, n_layers)
    assert net.ss_fractions == pytest.approx(support_fractions(n_layers))
    with torch.no_grad():
        layers = net(y, return_layers=True)
    L = float(np.linalg.norm(A.numpy(), 2) ** 2)
    ref = ref_ss_ista(y, A, A, LAM, 1.0 / L, [min(0.012 * k, 0.13) for k in range(1, n_layers + 1)])
    for k in range(n_layers):
        torch.testing.assert_close(layers[k], ref[k], atol=1e-12, rtol=0)
    # not vacuous: support selection changes the result
    plain = ref_ista(y, A, LAM, n_layers)
    assert (layers[-1] - plain[-1]).abs().max() > 1e-3


def test_alista_default_is_ss_ista_with_analytic_weight(problem, data):
    y, _ = data
    A = problem.A
    net = ALISTA.from_algorithm(A, LAM, K)
    W = analytic_weight(A)
    step = 1.0 / float(np.linalg.norm((W.T @ A).numpy(), 2))
    with torch.no_grad():
        layers = net(y, return_layers=True)
    ref = ref_ss_ista(y, A, W, LAM, step, support_fractions(K))
    for k in range(K):
        torch.testing.assert_close(layers[k], ref[k], atol=1e-12, rtol=0)


def test_ss_fractions_validated(problem):
    with pytest.raises(ValueError, match="ss_fractions"):
        LISTACPSS.from_algorithm(problem.A, LAM, K, ss_fractions=[0.1] * (K - 1))
    with pytest.raises(ValueError, match="ss_fractions"):
        ALISTA.from_algorithm(problem.A, LAM, K, ss_fractions=[1.5] * K)
    with pytest.raises(ValueError, match="weight"):
        ALISTA.from_algorithm(problem.A, LAM, K, weight="B")


# --------------------------------------------------------------------------- #
# 3. ALISTA analytic weight
# --------------------------------------------------------------------------- #
def _frob(W, A) -> float:
    return float((W.T @ A).pow(2).sum())


def test_analytic_weight_constraint_and_kkt():
    A = gaussian_dictionary(M, N, generator=torch.Generator().manual_seed(3))
    W = analytic_weight(A)
    assert W.shape == A.shape and W.dtype == DT
    torch.testing.assert_close(torch.diagonal(W.T @ A), torch.ones(N, dtype=DT), atol=1e-12, rtol=0)
    # Lagrange condition: the gradient 2 A A^T w_i is parallel to a_i.
    grad = A @ A.T @ W  # columns A A^T w_i
    for i in range(N):
        g, a = grad[:, i], A[:, i]
        residual = g - (g @ a) / (a @ a) * a
        assert float(residual.norm()) <= 1e-10 * float(g.norm())
        assert float(g @ a) > 0  # multiplier of the right sign (w_i^T G w_i > 0)


def test_analytic_weight_is_minimal():
    A = gaussian_dictionary(M, N, generator=torch.Generator().manual_seed(4))
    W = analytic_weight(A)
    f = _frob(W, A)
    g = torch.Generator().manual_seed(5)
    for scale in (1e-3, 0.1, 1.0):
        D = scale * torch.randn(M, N, generator=g, dtype=DT)
        D = D - (D * A).sum(0, keepdim=True) / (A * A).sum(0, keepdim=True) * A  # diag(D^T A) = 0
        torch.testing.assert_close(torch.diagonal(D.T @ A), torch.zeros(N, dtype=DT), atol=1e-12, rtol=0)
        f_pert = _frob(W + D, A)
        assert f_pert > f
        # quadratic objective, zero first-order term at the optimum
        assert f_pert - f == pytest.approx(_frob(D, A), rel=1e-8, abs=1e-12)
    # W = A is feasible (unit-norm columns) and worse
    torch.testing.assert_close(torch.diagonal(A.T @ A), torch.ones(N, dtype=DT), atol=1e-12, rtol=0)
    assert _frob(A, A) > f


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_analytic_weight_lowers_generalized_coherence(seed):
    A = gaussian_dictionary(25, 50, generator=torch.Generator().manual_seed(seed))
    W = analytic_weight(A)
    mu_W, mu_A = generalized_coherence(W, A), generalized_coherence(A, A)
    assert 0 < mu_W < mu_A
    # generalized_coherence ignores the diagonal
    assert mu_A < 1.0


def test_generalized_coherence_definition():
    W = torch.tensor([[1.0, 0.5], [0.0, -2.0]], dtype=DT)
    A = torch.eye(2, dtype=DT)
    # W^T A = W^T = [[1, 0], [0.5, -2]]: off-diagonal max 0.5
    assert generalized_coherence(W, A) == pytest.approx(0.5)


def test_analytic_weight_rank_deficient_raises():
    g = torch.Generator().manual_seed(6)
    low_rank = torch.randn(M, 5, generator=g, dtype=DT) @ torch.randn(5, N, generator=g, dtype=DT)
    with pytest.raises(ValueError, match="rank"):
        analytic_weight(low_rank)
    with pytest.raises(ValueError, match="rank"):
        analytic_weight(torch.randn(N, M, generator=g, dtype=DT))  # tall: m > n
    with pytest.raises(ValueError, match="A"):
        analytic_weight(torch.full((M, N), float("nan"), dtype=DT))
    with pytest.raises(ValueError):
        ALISTA.from_algorithm(low_rank, LAM, K)


def test_analytic_weight_matches_cvxpy():
    cp = pytest.importorskip("cvxpy")
    A = gaussian_dictionary(8, 16, generator=torch.Generator().manual_seed(7))
    W = analytic_weight(A).numpy()
    Mx = A.numpy()
    i = 3
    w = cp.Variable(8)
    prob = cp.Problem(cp.Minimize(cp.sum_squares(Mx.T @ w)), [Mx[:, i] @ w == 1])
    prob.solve()
    assert prob.status == cp.OPTIMAL
    assert float(np.sum((Mx.T @ W[:, i]) ** 2)) <= prob.value + 1e-7
    np.testing.assert_allclose(W[:, i], w.value, atol=1e-5)


# --------------------------------------------------------------------------- #
# 4. Shapes, dtypes and input validation
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", NAMES)
def test_unbatched_input(name, problem, data):
    y, _ = data
    net = default_net(name, problem.A, LAM, K)
    with torch.no_grad():
        batched = net(y)
        single = net(y[2])
        single_layers = net(y[2], return_layers=True)
    assert single.shape == (N,)
    assert len(single_layers) == K and all(o.shape == (N,) for o in single_layers)
    torch.testing.assert_close(single, batched[2], atol=1e-13, rtol=0)
    torch.testing.assert_close(single_layers[-1], single, atol=0, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_float32(name, problem, data):
    y, _ = data
    A32, y32 = problem.A.float(), y.float()
    net32 = default_net(name, A32, LAM, K)
    assert net32.dtype == torch.float32
    assert all(t.dtype == torch.float32 for t in list(net32.parameters()) + list(net32.buffers()))
    assert net32.config()["dtype"] == "float32"
    with torch.no_grad():
        out32 = net32(y32)
        out64 = default_net(name, problem.A, LAM, K)(y)
    assert out32.dtype == torch.float32 and out32.shape == (y.shape[0], N)
    assert torch.isfinite(out32).all()
    torch.testing.assert_close(out32.double(), out64, atol=1e-3, rtol=0)
    # dtype mismatch in either direction
    with pytest.raises(ValueError, match="y"):
        net32(y)
    net64 = default_net(name, problem.A, LAM, K)
    with pytest.raises(ValueError, match="y"):
        net64(y32)


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs(name, problem, data):
    y, _ = data
    A = problem.A
    net = default_net(name, A, LAM, K)
    with pytest.raises(ValueError, match="y"):
        net(y[:, :-1])  # wrong last dimension
    with pytest.raises(ValueError, match="y"):
        net(y[0, :-1])
    with pytest.raises(ValueError, match="y"):
        net(y.reshape(2, 4, M))  # 3-d
    y_nan = y.clone()
    y_nan[1, 3] = float("nan")
    with pytest.raises(ValueError, match="y"):
        net(y_nan)
    with pytest.raises(ValueError, match="y"):
        net(y.long())
    cls = NETWORKS[name]
    for lam in (0.0, -0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lam"):
            cls.from_algorithm(A, lam, K)
    A_nan = A.clone()
    A_nan[0, 0] = float("nan")
    with pytest.raises(ValueError, match="A"):
        cls.from_algorithm(A_nan, LAM, K)
    with pytest.raises(ValueError, match="A"):
        cls.from_algorithm(A[0], LAM, K)  # 1-d
    with pytest.raises(ValueError, match="n_layers"):
        cls.from_algorithm(A, LAM, 0)


# --------------------------------------------------------------------------- #
# 5. Positivity of thresholds and step sizes
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_positivity_under_adversarial_steps(name, tied, problem, data):
    y, _ = data
    net = default_net(name, problem.A, LAM, K, tied=tied)
    pos = positive_layer_params(net)
    expected = {"theta"} | ({"gamma"} if NETWORKS[name] in (ALISTA, ISTALLT) else set())
    assert {n for n, m in net.named_modules() if m in pos} == expected
    raw = [p for lp in pos for p in lp.raw]
    opt = torch.optim.SGD(raw, lr=100.0)
    # Large steps that push every threshold / step size towards zero: first on the
    # values, then on their logarithms (steps of -100 on the raw log-values, which
    # drive exp() far into underflow).
    for loss_fn in (lambda v: v.sum(), lambda v: torch.log(v).sum()):
        for _ in range(12):
            opt.zero_grad()
            loss = sum(loss_fn(v) for lp in pos for v in lp.values())
            loss.backward()
            opt.step()
    assert min(float(p.detach().min()) for p in raw) < -700  # exp(raw) underflows in float64
    for lp in pos:
        for v in lp.values():
            assert torch.isfinite(v).all() and (v > 0).all()
    with torch.no_grad():
        outs = net(y, return_layers=True)
    assert all(torch.isfinite(o).all() for o in outs)


# --------------------------------------------------------------------------- #
# 6. Gradients
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name, tied, problem, data):
    y, x = data
    net = default_net(name, problem.A, LAM, K, tied=tied)
    x_hat = net(y)
    loss = ((x_hat - x).pow(2).sum(-1) / x.pow(2).sum(-1)).mean()
    loss.backward()
    named = dict(net.named_parameters())
    assert named, "network has no learnable parameters"
    for pname, p in named.items():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        if NETWORKS[name] is LISTA and not tied and pname == "W2.raw.0":
            # x^0 = 0, so the first layer's W2 multiplies zero: its gradient is exactly 0.
            assert (p.grad == 0).all()
            continue
        assert p.grad.abs().max() > 0, pname


@pytest.mark.parametrize("name", ["alista", "lista-cp", "lista-cpss", "ista-llt"])
def test_dictionary_and_weight_are_buffers(name, problem):
    net = default_net(name, problem.A, LAM, K)
    params = dict(net.named_parameters())
    buffers = dict(net.named_buffers())
    assert "A" in buffers and not buffers["A"].requires_grad
    torch.testing.assert_close(buffers["A"], problem.A, atol=0, rtol=0)
    assert not any(n == "A" or n.startswith("A.") for n in params)
    if NETWORKS[name] is ALISTA:
        assert "W" in buffers and not buffers["W"].requires_grad
        assert not any(n == "W" or n.startswith("W.") for n in params)
        torch.testing.assert_close(buffers["W"], analytic_weight(problem.A), atol=1e-14, rtol=0)
        # only 2 K scalars are learned
        assert sum(p.numel() for p in net.parameters()) == 2 * K
        assert all(p.ndim == 0 for p in net.parameters())


# --------------------------------------------------------------------------- #
# 7. Save / load
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(name, tied, problem, data, tmp_path):
    y, _ = data
    net = default_net(name, problem.A, LAM, K, tied=tied)
    perturb_(net.parameters(), scale=0.05, seed=11)
    net.active_layers = K
    folder = save_model(net, tmp_path / "model", metadata={"note": "test"})
    assert sorted(os.listdir(folder)) == ["config.json", "model.safetensors"]
    payload = json.loads((folder / "config.json").read_text())
    assert payload["class"] == NETWORKS[name].__name__
    assert payload["metadata"] == {"note": "test"}
    with open(folder / "model.safetensors", "rb") as fh:
        assert fh.read(2) != b"\x80\x04"  # not a pickle stream
    loaded = load_model(folder)
    assert type(loaded) is type(net)
    assert loaded.config() == net.config()
    assert payload["config"] == net.config()
    sd, sd2 = net.state_dict(), loaded.state_dict()
    assert sd.keys() == sd2.keys()
    for k in sd:
        assert torch.equal(sd[k], sd2[k]), k
    with torch.no_grad():
        a, b = net(y, return_layers=True), loaded(y, return_layers=True)
        fresh = default_net(name, problem.A, LAM, K, tied=tied)(y)
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, atol=0, rtol=0)
    assert not torch.allclose(a[-1], fresh, atol=1e-8), "perturbation should change the output"


def test_save_load_float32(problem, data, tmp_path):
    y, _ = data
    net = ALISTA.from_algorithm(problem.A.float(), LAM, K)
    perturb_(net.parameters(), seed=12)
    loaded = load_model(save_model(net, tmp_path))
    assert loaded.dtype == torch.float32
    with torch.no_grad():
        torch.testing.assert_close(net(y.float()), loaded(y.float()), atol=0, rtol=0)


def test_load_without_config_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path)
    net = LISTA.from_algorithm(gaussian_dictionary(M, N), LAM, 2)
    folder = save_model(net, tmp_path / "m")
    (folder / "config.json").unlink()
    with pytest.raises(FileNotFoundError):
        load_model(folder)


# --------------------------------------------------------------------------- #
# 8. Layer parameters and active layers
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", NAMES)
def test_layer_parameters_untied(name, problem, data):
    y, _ = data
    net = default_net(name, problem.A, LAM, K)
    with torch.no_grad():
        base = net(y, return_layers=True)
    seen: list[int] = []
    for k in range(K):
        params = net.layer_parameters(k)
        assert params and all(isinstance(p, torch.nn.Parameter) for p in params)
        seen += [id(p) for p in params]
        other = copy.deepcopy(net)
        perturb_(other.layer_parameters(k), scale=0.3, seed=20 + k)
        with torch.no_grad():
            out = other(y, return_layers=True)
        for j in range(k):
            assert torch.equal(out[j], base[j]), f"layer {k} params changed layer {j}"
        assert (out[k] - base[k]).abs().max() > 1e-6, f"layer {k} params do not affect layer {k}"
    # every parameter belongs to exactly one layer
    assert len(seen) == len(set(seen))
    assert set(seen) == {id(p) for p in net.parameters()}
    with pytest.raises((IndexError, ValueError)):
        net.layer_parameters(K)


@pytest.mark.parametrize("name", NAMES)
def test_layer_parameters_tied(name, problem, data):
    y, _ = data
    net = default_net(name, problem.A, LAM, K, tied=True)
    first = net.layer_parameters(0)
    for k in range(1, K):
        ps = net.layer_parameters(k)
        assert len(ps) == len(first) and all(p is q for p, q in zip(ps, first))
    assert {id(p) for p in first} == {id(p) for p in net.parameters()}
    with torch.no_grad():
        base = net(y, return_layers=True)
    perturb_(net.layer_parameters(K - 1), scale=0.3, seed=30)
    with torch.no_grad():
        out = net(y, return_layers=True)
    assert (out[0] - base[0]).abs().max() > 1e-6  # shared: the first layer changes too


@pytest.mark.parametrize("name", NAMES)
def test_active_layers(name, problem, data):
    y, _ = data
    net = default_net(name, problem.A, LAM, K)
    with torch.no_grad():
        full = net(y, return_layers=True)
    for k in range(1, K + 1):
        net.active_layers = k
        assert net.active_layers == k
        with torch.no_grad():
            outs = net(y, return_layers=True)
            last = net(y)
        assert len(outs) == k
        for j in range(k):
            assert torch.equal(outs[j], full[j])
        assert torch.equal(last, full[k - 1])
    for bad in (0, K + 1, -1):
        with pytest.raises(ValueError):
            net.active_layers = bad
    assert net.active_layers == K


@pytest.mark.parametrize("fraction", [0.0, 0.012, 0.13, 0.5, 1.0])
def test_fast_support_selection_equals_the_prox_operator(fraction):
    from unrolled.core.prox import support_selection_threshold
    from unrolled.sparse_coding.iteration import support_selection

    g = torch.Generator().manual_seed(0)
    v = torch.randn(37, 500, generator=g, dtype=torch.float64)
    theta = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    fast, ref = support_selection(v, theta, fraction), support_selection_threshold(v, theta, fraction)
    assert torch.equal(fast, ref)
    (gf,) = torch.autograd.grad(fast.sum(), theta)
    (gr,) = torch.autograd.grad(ref.sum(), theta)
    assert torch.equal(gf, gr)
    with pytest.raises(ValueError, match="fraction"):
        support_selection(v, theta, 1.5)
