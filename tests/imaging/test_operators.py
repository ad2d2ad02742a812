"""Operators against their dense matrices: adjoint dot-product test, norm, solve_normal, known stencils."""

from __future__ import annotations

import pytest
import torch

from unrolled.imaging.operators import (Blur, Filters, FiniteDifference, Identity, LinearOperator, MatrixOperator,
                                        SubsampledFourier, kernel_spectrum)

SIZES = [(8, 8), (7, 9), (6, 5)]


def _rand(shape, complex_, gen):
    x = torch.randn(*shape, generator=gen, dtype=torch.float64)
    if complex_:
        x = torch.complex(x, torch.randn(*shape, generator=gen, dtype=torch.float64))
    return x


def _operators(shape, gen):
    H, W = shape
    mask = torch.rand(H, W, generator=gen) < 0.4
    mask[0, 0] = True
    n = H * W
    return {
        "identity": Identity(),
        "blur-odd": Blur(torch.rand(3, 5, generator=gen, dtype=torch.float64)),
        "blur-even": Blur(torch.rand(4, 2, generator=gen, dtype=torch.float64)),
        "blur-batched": Blur(torch.rand(3, 3, 3, generator=gen, dtype=torch.float64)),
        "blur-complex": Blur(_rand((3, 3), True, gen)),
        "finite-difference": FiniteDifference(),
        "filters": Filters(torch.randn(4, 3, 2, generator=gen, dtype=torch.float64)),
        "fourier": SubsampledFourier(mask),
        "matrix": MatrixOperator(_rand((n // 2, n), False, gen), (H, W)),
        "matrix-complex": MatrixOperator(_rand((n + 3, n), True, gen), (H, W)),
    }


def _out_shape(op, x):
    return op.forward(x).shape


@pytest.mark.parametrize("shape", SIZES)
@pytest.mark.parametrize("complex_", [False, True])
def test_adjoint_dot_product(shape, complex_):
    gen = torch.Generator().manual_seed(0)
    for name, op in _operators(shape, gen).items():
        x = _rand((3, *shape), complex_, gen)
        Ax = op.forward(x)
        y = _rand(Ax.shape, complex_ or Ax.is_complex(), gen)
        lhs = torch.vdot(Ax.reshape(-1).to(torch.complex128), y.reshape(-1).to(torch.complex128))
        rhs = torch.vdot(x.reshape(-1).to(torch.complex128), op.adjoint(y).reshape(-1).to(torch.complex128))
        assert torch.allclose(lhs, rhs, rtol=1e-11, atol=1e-11), (name, lhs, rhs)
        # the dense matrix agrees with forward and its conjugate transpose with adjoint (no batched kernels)
        if name != "blur-batched":
            M = op.dense(shape)
            assert torch.allclose(Ax[0].reshape(-1).to(M.dtype), M @ x[0].reshape(-1).to(M.dtype), atol=1e-11), name
            assert torch.allclose(op.adjoint(y)[0].reshape(-1).to(M.dtype), M.conj().T @ y[0].reshape(-1).to(M.dtype),
                                  atol=1e-11), name
            assert torch.allclose(op.normal(x)[0].reshape(-1).to(M.dtype),
                                  M.conj().T @ M @ x[0].reshape(-1).to(M.dtype), atol=1e-11), name
        if not complex_ and op.normal_is_real and not isinstance(op, SubsampledFourier):
            assert not Ax.is_complex() and not op.normal(x).is_complex(), name


def test_blur_is_centred_circular_convolution():
    """Against a brute-force sum: out[i, j] = sum_ab k[a, b] x[i - a + h//2, j - b + w//2] (mod H, W)."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(5, 6, generator=gen, dtype=torch.float64)
    k = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    out = Blur(k).forward(x)
    ref = torch.zeros_like(x)
    for i in range(5):
        for j in range(6):
            for a in range(3):
                for b in range(4):
                    ref[i, j] += k[a, b] * x[(i - a + 1) % 5, (j - b + 2) % 6]
    assert torch.allclose(out, ref, atol=1e-12)
    delta = torch.zeros(3, 3, dtype=torch.float64)
    delta[1, 1] = 1
    assert torch.allclose(Blur(delta).forward(x), x, atol=1e-14)  # a centred delta is the identity


def test_finite_difference_stencil_and_filter_form():
    x = torch.arange(12, dtype=torch.float64).reshape(3, 4) ** 2
    d = FiniteDifference().forward(x)
    assert torch.equal(d[0, 1, 2], x[1, 3] - x[1, 2]) and torch.equal(d[0, 2, 3], x[2, 0] - x[2, 3])
    assert torch.equal(d[1, 1, 2], x[2, 2] - x[1, 2]) and torch.equal(d[1, 2, 0], x[0, 0] - x[2, 0])
    as_filters = Filters(FiniteDifference.kernels())
    assert torch.allclose(as_filters.forward(x), d, atol=1e-12)
    assert torch.allclose(as_filters.gain((3, 4)), FiniteDifference().gain((3, 4)), atol=1e-12)


@pytest.mark.parametrize("shape", [(8, 8), (7, 8)])
def test_norm_matches_dense_spectral_norm(shape):
    gen = torch.Generator().manual_seed(2)
    for name, op in _operators(shape, gen).items():
        if name == "blur-batched":
            continue
        exact = float(torch.linalg.matrix_norm(op.dense(shape), ord=2))
        assert op.norm(shape) == pytest.approx(exact, rel=1e-8), name
        # the generic power iteration too (Fourier-diagonal operators override norm with the exact value)
        power = LinearOperator.norm(op, shape, generator=torch.Generator().manual_seed(0), n_iter=5000, tol=1e-14)
        assert power == pytest.approx(exact, rel=1e-5), name


@pytest.mark.parametrize("complex_", [False, True])
def test_solve_normal_matches_dense_solve(complex_):
    gen = torch.Generator().manual_seed(3)
    shape = (8, 8)
    mask = torch.rand(*shape, generator=gen) < 0.3
    mask[0, 0] = True
    filters = Filters(torch.randn(3, 3, 3, generator=gen, dtype=torch.float64))
    cases = [
        (SubsampledFourier(mask), [(0.7, FiniteDifference())], 0.0),
        (SubsampledFourier(mask), [(0.3, FiniteDifference()), (torch.tensor([0.5, 2.0, 1.0]), filters)], 0.0),
        (Blur(torch.rand(5, 5, generator=gen, dtype=torch.float64)), [(0.2, FiniteDifference())], 1e-3),
        (Blur(torch.rand(4, 4, generator=gen, dtype=torch.float64)), [], 0.5),
        (Identity(), [(1.5, filters)], 0.0),
    ]
    b = _rand((2, *shape), complex_, gen)
    for op, terms, shift in cases:
        system = op.dense(shape).conj().T @ op.dense(shape) + shift * torch.eye(64, dtype=torch.complex128)
        for rho, D in terms:
            blocks = D.dense(shape).reshape(D.channels or 1, 64, 64)  # rows are channel-major
            weights = torch.as_tensor(rho, dtype=torch.float64) * torch.ones(blocks.shape[0], dtype=torch.float64)
            for c in range(blocks.shape[0]):
                system = system + weights[c] * blocks[c].conj().T @ blocks[c]
        ref = torch.linalg.solve(system, b.reshape(2, 64).to(torch.complex128).T).T.reshape(2, *shape)
        got = op.solve_normal(b, terms, shift=shift)
        assert torch.allclose(got.to(torch.complex128), ref, atol=1e-10), type(op).__name__
        if not complex_ and op.normal_is_real:
            assert not got.is_complex()


def test_solve_normal_per_problem_weights_and_matrix_fallback():
    gen = torch.Generator().manual_seed(4)
    shape = (6, 6)
    b = torch.randn(2, *shape, generator=gen, dtype=torch.float64)
    blur = Blur(torch.rand(3, 3, generator=gen, dtype=torch.float64))
    fd = FiniteDifference()
    rho = torch.tensor([[0.1, 0.1], [2.0, 2.0]], dtype=torch.float64)  # (B, C)
    got = blur.solve_normal(b, [(rho, fd)])
    for i, r in enumerate((0.1, 2.0)):
        assert torch.allclose(got[i], blur.solve_normal(b[i], [(r, fd)]), atol=1e-12)
    matrix = MatrixOperator(blur.dense(shape).real, shape)
    assert torch.allclose(matrix.solve_normal(b, [(0.4, fd)]), blur.solve_normal(b, [(0.4, fd)]), atol=1e-10)


def test_kernel_spectrum_is_differentiable_and_operators_refuse_bad_shapes():
    k = torch.rand(3, 3, dtype=torch.float64, requires_grad=True)
    x = torch.randn(8, 8, dtype=torch.float64)
    Blur(k).forward(x).square().sum().backward()
    assert k.grad is not None and torch.isfinite(k.grad).all() and k.grad.abs().max() > 0
    with pytest.raises(ValueError, match="kernel"):
        kernel_spectrum(torch.ones(9, 3), (8, 8))
    with pytest.raises(ValueError, match="kernel"):
        Blur(torch.ones(9, 9)).forward(x)
    with pytest.raises(ValueError, match="x"):
        SubsampledFourier(torch.ones(8, 7)).forward(x)
    with pytest.raises(ValueError, match="mask"):
        SubsampledFourier(torch.full((8, 8), 0.5))
    with pytest.raises(ValueError, match="kernel"):
        Blur(torch.tensor([[float("nan")]]))
    with pytest.raises(ValueError, match="y"):
        FiniteDifference().adjoint(torch.ones(3, 8, 8))
