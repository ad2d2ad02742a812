"""ista / fista / iht pass ``chunk_size`` and ``progress`` through to :func:`unrolled.core.solve` (issue 29, scale)."""

import pytest
import torch

from unrolled.sparse_coding.solvers import fista, iht, ista


@pytest.mark.parametrize("solver, arg", [(ista, 0.3), (fista, 0.3), (iht, 3)])
def test_chunked_run_equals_one_batch(solver, arg, capsys):
    gen = torch.Generator().manual_seed(0)
    A = torch.randn(20, 40, generator=gen, dtype=torch.float64) / 20**0.5
    y = torch.randn(23, 20, generator=gen, dtype=torch.float64)
    whole = solver(y, A, arg, tol=1e-6, max_iter=3000)
    parts = solver(y, A, arg, tol=1e-6, max_iter=3000, chunk_size=5, progress=True)
    assert torch.allclose(parts.x, whole.x, rtol=0, atol=1e-12)
    assert torch.equal(parts.n_iter, whole.n_iter) and torch.equal(parts.converged, whole.converged)
    assert int(whole.n_iter.min()) < int(whole.n_iter.max())  # problems stop at different iterations
    with pytest.raises(ValueError, match="chunk_size"):
        solver(y, A, arg, chunk_size=0)
