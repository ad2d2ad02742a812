"""Tests of the EKF optimiser (review, eqs. (27)-(30)) against the mathematics.

* a model linear in its weights with ``Q = 0``: the filter is recursive least
  squares, whose end point and covariance have a closed form;
* with ``Q > 0``: a Kalman filter written in information form (another
  algebraic form of (30)) step by step;
* the decoupled filter with one group equals the global one; with several
  groups it equals the global recursion with ``P`` forced block diagonal;
* ``R >> H^T P H``: a step is a gradient step of the squared error;
* ``P`` stays symmetric positive definite over many nonlinear steps;
* the Jacobian equals ``torch.func.jacrev``; resumption from ``state_dict``.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.func import functional_call, jacrev

from unrolled.core.ekf import EKF, output_jacobian

DT = torch.float64


def mlp(n_in: int = 3, n_hidden: int = 5, n_out: int = 2, seed: int = 0, dtype=DT) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.Tanh(), nn.Linear(n_hidden, n_out)).to(dtype)


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def jacobian(model: nn.Module, params: list, x: torch.Tensor) -> tuple:
    """d model(x) / d params by ``torch.func.jacrev`` (forward-independent reference): one tensor per parameter."""
    names = [k for k, _ in model.named_parameters()]
    f = lambda *ps: functional_call(model, dict(zip(names, ps)), (x,))  # noqa: E731
    return jacrev(f, argnums=tuple(range(len(params))))(*params)


def linear_design(X: torch.Tensor, m: int) -> torch.Tensor:
    """Rows d(output_{s,j}) / d[vec(W), b] of ``Linear(d, m)``, written by hand: (B*m, m*d + m)."""
    B, d = X.shape
    J = torch.zeros(B * m, m * d + m, dtype=X.dtype)
    for s in range(B):
        for j in range(m):
            J[s * m + j, j * d:(j + 1) * d] = X[s]  # W is (m, d), row-major
            J[s * m + j, m * d + j] = 1.0
    return J


# --------------------------------------------------------------------------- linear models: RLS / Kalman filter


@pytest.mark.parametrize("decoupling", ["global", "group"])
def test_linear_model_is_recursive_least_squares(decoupling):
    g = torch.Generator().manual_seed(0)
    d, m, n = 4, 2, 30
    X = torch.randn(n, d, generator=g, dtype=DT)
    Y = torch.randn(n, m, generator=g, dtype=DT)
    model = nn.Linear(d, m).to(DT)
    theta0 = flat(model)
    lr, R, P0 = 2.0, 0.5, 3.0
    opt = EKF(model.parameters(), lr=lr, R=R, P0=P0, Q=0.0, decoupling=decoupling)
    start = 0
    for size in (1, 3, 5, 2, 7, 4, 8):  # uneven mini-batches: the order and grouping do not matter
        opt.step(model(X[start:start + size]), Y[start:start + size])
        start += size
    assert start == n
    # regularised least squares: min |Y - J theta|^2 / (R / lr) + |theta - theta0|^2 / P0
    J = linear_design(X, m)
    r = R / lr
    info = J.T @ J / r + torch.eye(J.shape[1], dtype=DT) / P0
    theta = torch.linalg.solve(info, J.T @ Y.reshape(-1) / r + theta0 / P0)
    torch.testing.assert_close(flat(model), theta, atol=1e-11, rtol=0)
    torch.testing.assert_close(opt.covariances()[0], torch.linalg.inv(info), atol=1e-12, rtol=0)


def test_linear_model_with_process_noise_is_the_information_form_kalman_filter():
    g = torch.Generator().manual_seed(1)
    d, m = 3, 2
    model = nn.Linear(d, m).to(DT)
    lr, R, P0, Q = 0.5, 0.2, 2.0, 0.03
    opt = EKF(model.parameters(), lr=lr, R=R, P0=P0, Q=Q, decoupling="global")
    theta = flat(model)
    P = torch.eye(theta.numel(), dtype=DT) * P0
    Rinv = lr / R
    for _ in range(6):
        X = torch.randn(3, d, generator=g, dtype=DT)
        Y = torch.randn(3, m, generator=g, dtype=DT)
        J = linear_design(X, m)
        e = Y.reshape(-1) - J @ theta
        P_post = torch.linalg.inv(torch.linalg.inv(P) + Rinv * J.T @ J)  # information form
        theta = theta + Rinv * P_post @ J.T @ e
        P = P_post + Q * torch.eye(theta.numel(), dtype=DT)  # (27): random walk of the weights
        opt.step(model(X), Y)
        torch.testing.assert_close(flat(model), theta, atol=1e-11, rtol=0)
        torch.testing.assert_close(opt.covariances()[0], P, atol=1e-11, rtol=0)


# --------------------------------------------------------------------------- decoupling


def _run(model, opt, steps: int = 15, seed: int = 3):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(4, 3, generator=g, dtype=DT)
        y = torch.sin(x[:, :2]) + x[:, 2:] ** 2
        opt.step(model(x), y)


def test_decoupled_with_one_group_equals_global():
    a, b = mlp(), mlp()
    opt_a = EKF(a.parameters(), lr=0.7, R=0.3, P0=5.0, Q=1e-3, decoupling="global")
    opt_b = EKF(b.parameters(), lr=0.7, R=0.3, P0=5.0, Q=1e-3, decoupling="group")
    _run(a, opt_a)
    _run(b, opt_b)
    torch.testing.assert_close(flat(a), flat(b), atol=1e-12, rtol=0)
    torch.testing.assert_close(opt_a.covariances()[0], opt_b.covariances()[0], atol=1e-12, rtol=0)
    # and a model with a single parameter tensor: 'parameter' decoupling is the global filter too
    c, d = nn.Linear(3, 2, bias=False).to(DT), nn.Linear(3, 2, bias=False).to(DT)
    d.load_state_dict(c.state_dict())
    opt_c = EKF(c.parameters(), P0=2.0, decoupling="global")
    opt_d = EKF(d.parameters(), P0=2.0, decoupling="parameter")
    _run(c, opt_c)
    _run(d, opt_d)
    torch.testing.assert_close(flat(c), flat(d), atol=1e-12, rtol=0)


def test_decoupled_equals_global_recursion_with_block_diagonal_covariance():
    model = mlp()
    groups = [{"params": list(model[0].parameters()), "lr": 2.0, "P0": 3.0, "Q": 1e-3},
              {"params": list(model[2].parameters()), "lr": 0.5, "P0": 1.0, "Q": 0.0}]
    R = 0.4
    opt = EKF(groups, R=R, decoupling="group")
    n0 = sum(p.numel() for p in model[0].parameters())
    n = flat(model).numel()
    lr = torch.cat([torch.full((n0,), 2.0), torch.full((n - n0,), 0.5)]).to(DT)
    q = torch.cat([torch.full((n0,), 1e-3), torch.zeros(n - n0)]).to(DT)
    P = torch.diag(torch.cat([torch.full((n0,), 3.0), torch.full((n - n0,), 1.0)]).to(DT))
    mask = torch.zeros(n, n, dtype=DT)
    mask[:n0, :n0] = 1
    mask[n0:, n0:] = 1
    g = torch.Generator().manual_seed(4)
    params = list(model.parameters())
    for _ in range(5):
        x = torch.randn(3, 3, generator=g, dtype=DT)
        y = torch.randn(3, 2, generator=g, dtype=DT)
        theta = flat(model)
        # reference: dense formulas, covariance seen as D P D with D = diag(sqrt(lr)), P then kept block diagonal
        Ht = torch.cat([j.reshape(6, -1) for j in jacobian(model, params, x)], dim=1)  # (M, N) = H^T
        e = (y - model(x).detach()).reshape(-1)
        D = torch.diag(lr.sqrt())
        Pt = D @ P @ D
        A = torch.linalg.inv(R * torch.eye(6, dtype=DT) + Ht @ Pt @ Ht.T)
        theta_ref = theta + Pt @ Ht.T @ A @ e
        P = (P - P @ D @ Ht.T @ A @ Ht @ D @ P) * mask + torch.diag(q)
        opt.step(model(x), y)
        torch.testing.assert_close(flat(model), theta_ref, atol=1e-10, rtol=1e-9)
        P_blocks = opt.covariances()
        torch.testing.assert_close(P_blocks[0], P[:n0, :n0], atol=1e-10, rtol=1e-9)
        torch.testing.assert_close(P_blocks[1], P[n0:, n0:], atol=1e-10, rtol=1e-9)
    assert opt.covariance_numel() == n0 ** 2 + (n - n0) ** 2


def test_parameter_decoupling_has_one_block_per_tensor():
    model = mlp()
    opt = EKF(model.parameters(), decoupling="parameter")
    assert [len(b) for b in opt.blocks()] == [1, 1, 1, 1]
    assert opt.covariance_numel() == sum(p.numel() ** 2 for p in model.parameters())
    _run(model, opt, steps=3)
    assert [P.shape[0] for P in opt.covariances()] == [p.numel() for p in model.parameters()]


# --------------------------------------------------------------------------- limits and invariants


def test_large_measurement_noise_gives_a_gradient_step():
    model = mlp()
    x = torch.randn(4, 3, dtype=DT, generator=torch.Generator().manual_seed(5))
    y = torch.randn(4, 2, dtype=DT, generator=torch.Generator().manual_seed(6))
    R, P0, lr = 1e9, 2.0, 3.0
    theta = flat(model)
    loss = 0.5 * (model(x) - y).pow(2).sum()
    grad = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(model.parameters()))])
    EKF(model.parameters(), lr=lr, R=R, P0=P0).step(model(x), y)
    step = flat(model) - theta
    expected = -(lr * P0 / R) * grad  # descent direction: the sign of the innovation matters
    torch.testing.assert_close(step, expected, rtol=1e-6, atol=1e-6 * float(expected.abs().max()))


@pytest.mark.parametrize("dtype,Q", [(torch.float64, 0.0), (torch.float32, 1e-5)])
def test_covariance_stays_symmetric_positive_definite(dtype, Q):
    model = mlp(n_in=3, n_hidden=8, n_out=2, dtype=dtype)
    opt = EKF(model.parameters(), lr=1.0, R=0.1, P0=10.0, Q=Q, decoupling="global")
    g = torch.Generator().manual_seed(7)
    smallest = []
    for _ in range(300):
        x = torch.randn(2, 3, generator=g).to(dtype)
        y = torch.tanh(3 * x[:, :2]) * x[:, 2:]
        opt.step(model(x), y)
        P = opt.covariances()[0]
        assert P.dtype == dtype
        assert torch.equal(P, P.T)
        smallest.append(float(torch.linalg.eigvalsh(P.double()).min()))
    assert min(smallest) > 0
    # the filter learned: the covariance contracted from P0 = 10 along the observed directions
    assert float(torch.linalg.eigvalsh(opt.covariances()[0].double()).min()) < 1.0


def test_jacobian_equals_torch_func_and_the_loop_fallback(monkeypatch):
    model = mlp()
    x = torch.randn(3, 3, dtype=DT, generator=torch.Generator().manual_seed(8))
    params = list(model.parameters())
    ref = [j.reshape(6, *p.shape) for j, p in zip(jacobian(model, params, x), params)]
    assert len(ref) == 4
    got = output_jacobian(model(x).reshape(-1), params)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, atol=1e-14, rtol=0)
    grad = torch.autograd.grad

    def no_batching(*args, **kwargs):
        if kwargs.get("is_grads_batched"):
            raise RuntimeError("no batching rule")
        return grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", no_batching)
    looped = output_jacobian(model(x).reshape(-1), params)
    for a, b in zip(looped, ref):
        torch.testing.assert_close(a, b, atol=1e-14, rtol=0)


def test_tuple_outputs_and_unused_parameters():
    model = mlp()
    unused = nn.Parameter(torch.ones(3, dtype=DT))
    opt = EKF([*model.parameters(), unused], decoupling="global")
    x = torch.randn(4, 3, dtype=DT)
    out = model(x)
    opt.step((out[:, 0], out[:, 1:]), (torch.zeros(4, dtype=DT), torch.ones(4, 1, dtype=DT)))
    assert torch.equal(unused.detach(), torch.ones(3, dtype=DT))  # zero Jacobian: no update


def test_state_dict_resumes_exactly():
    a = mlp()
    opt_a = EKF(a.parameters(), lr=0.5, P0=4.0, Q=1e-4, decoupling="parameter")
    _run(a, opt_a, steps=5, seed=1)
    saved_model = {k: v.clone() for k, v in a.state_dict().items()}
    saved_opt = copy.deepcopy(opt_a.state_dict())  # as torch.optim: state_dict holds references
    _run(a, opt_a, steps=5, seed=2)
    b = mlp(seed=99)
    b.load_state_dict(saved_model)
    opt_b = EKF(b.parameters(), lr=0.5, P0=4.0, Q=1e-4, decoupling="parameter")
    opt_b.load_state_dict(saved_opt)
    _run(b, opt_b, steps=5, seed=2)
    assert torch.equal(flat(a), flat(b))
    assert all(torch.equal(p, q) for p, q in zip(opt_a.covariances(), opt_b.covariances()))


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs,name", [
    ({"R": 0.0}, "R"), ({"R": -1.0}, "R"), ({"P0": 0.0}, "P0"), ({"P0": float("nan")}, "P0"),
    ({"Q": -1e-3}, "Q"), ({"lr": 0.0}, "lr"), ({"decoupling": "layer"}, "decoupling"),
    ({"max_block": 0}, "max_block"), ({"max_block": 10}, "max_block"),
])
def test_bad_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        EKF(mlp().parameters(), decoupling=kwargs.pop("decoupling", "global"), **kwargs)


def test_bad_group_options_and_step_inputs_are_named():
    model = mlp()
    with pytest.raises(ValueError, match="P0"):
        EKF([{"params": model.parameters(), "P0": -1.0}])
    with pytest.raises(ValueError, match="Q"):
        EKF([{"params": model.parameters(), "Q": -1.0}])
    opt = EKF(model.parameters())
    x = torch.randn(4, 3, dtype=DT)
    with pytest.raises(ValueError, match="targets"):
        opt.step(model(x), torch.zeros(4, 3, dtype=DT))
    with pytest.raises(ValueError, match="outputs"):
        opt.step(model(x).detach(), torch.zeros(4, 2, dtype=DT))
    with pytest.raises(ValueError, match="outputs"):
        opt.step([], torch.zeros(4, 2, dtype=DT))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu():
    cpu, gpu = mlp(), mlp().cuda()
    opt_cpu = EKF(cpu.parameters(), P0=3.0, Q=1e-4, decoupling="parameter")
    opt_gpu = EKF(gpu.parameters(), P0=3.0, Q=1e-4, decoupling="parameter")
    g = torch.Generator().manual_seed(3)
    for _ in range(5):
        x = torch.randn(4, 3, generator=g, dtype=DT)
        y = torch.sin(x[:, :2])
        opt_cpu.step(cpu(x), y)
        opt_gpu.step(gpu(x.cuda()), y.cuda())
    assert all(P.device.type == "cuda" for P in opt_gpu.covariances())
    torch.testing.assert_close(flat(gpu).cpu(), flat(cpu), atol=1e-10, rtol=0)
