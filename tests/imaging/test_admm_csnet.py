"""ADMM-CSNet: untrained == ADMM iterations (own focused check), learning moves it, shapes and dtypes."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from unrolled.core.solve import solve
from unrolled.core.testing import assert_untrained_equals_solver
from unrolled.imaging.admm import admm_cs, admm_cs_setup
from unrolled.imaging.admm_csnet import ADMMCSNet, nrmse_loss
from unrolled.imaging.csmri import CSMRIProblem


@pytest.mark.parametrize("transforms", ["tv", "dct3"])
def test_untrained_net_is_k_admm_iterations(transforms):
    prob = CSMRIProblem(16, 0.3, mask="radial", noise_std=0.02, seed=3)
    y, _ = prob.sample(3, torch.Generator().manual_seed(0))
    lam, rho = torch.tensor([2e-3, 5e-3]) if transforms == "tv" else 3e-3, 0.2
    net = ADMMCSNet.from_algorithm(prob.mask, 5, lam, rho, transforms=transforms)
    iteration, data, params, _ = admm_cs_setup(y, prob.mask, lam=lam, rho=rho, transforms=transforms)
    gaps = assert_untrained_equals_solver(net, y, partial(solve, iteration, data, params), atol=1e-10)
    assert len(gaps) == 5
    with torch.no_grad():
        out = net(y)
    ref = admm_cs(y, prob.mask, lam, rho, transforms=transforms, max_iter=5, tol=0.0).x
    assert torch.allclose(out, ref, atol=1e-10) and out.dtype == torch.complex128
    # a changed filter of the first stage changes everything after it
    with torch.no_grad():
        net.filters.raw[0][0, 1, 1] += 0.5
        assert (net(y) - ref).abs().max() > 1e-3


def test_training_improves_the_untrained_net():
    prob = CSMRIProblem(16, 0.3, noise_std=0.01, seed=0)
    y, x = prob.sample(8, torch.Generator().manual_seed(1))
    net = ADMMCSNet.from_algorithm(prob.mask, 3, 3e-3, 0.1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    with torch.no_grad():
        before = float(nrmse_loss(net(y), x))
    for _ in range(6):
        opt.zero_grad()
        loss = nrmse_loss(net(y), x)
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(nrmse_loss(net(y), x))
    assert after < 0.9 * before
    assert all(bool((net.rho[k] > 0).all() and (net.lam[k] > 0).all()) for k in range(3))


def test_float32_and_bad_input():
    prob = CSMRIProblem(12, 0.4, seed=0, dtype=torch.float32)
    y, x = prob.sample(2, torch.Generator().manual_seed(1))
    net = ADMMCSNet.from_algorithm(prob.mask, 2, dtype="float32")
    out = net(y)
    assert y.dtype == torch.complex64 and out.dtype == torch.complex64 and out.shape == x.shape
    with pytest.raises(ValueError, match="y"):
        net(y[:, :11])
    with pytest.raises(ValueError, match="mask"):
        ADMMCSNet.from_algorithm(torch.full((12, 12), 0.3), 2)
    with pytest.raises(ValueError, match="n_filters"):
        ADMMCSNet((12, 12), 2, n_filters=0)
    assert nrmse_loss(x.to(torch.complex64), x) == 0
