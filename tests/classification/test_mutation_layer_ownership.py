"""Each inner parameter of the deep IRLS-ADMM net acts where its index says: ``rho_j``, ``F_j`` of inner layer
``j = k * i_max + i`` change outer layer ``k`` first and leave the outer layers before it bit-identical.

(``from_algorithm`` gives every inner layer the same values, so equality with IRLS-ADMM cannot see parameters read
from the wrong index.)
"""

from __future__ import annotations

import pytest
import torch

from unrolled.classification.data import CorrelatedFeaturesProblem
from unrolled.classification.nets import DeepIRLSADMMNet

DT = torch.float64


@pytest.fixture(scope="module")
def data():
    (X, y), _ = CorrelatedFeaturesProblem(n_samples=60, n_features=6, n_true=2, noise_std=0.5).sample(
        1, torch.Generator().manual_seed(4))
    return X[0], y[0]


def _outputs(net, X, y):
    with torch.no_grad():
        return net((X, y), return_layers=True)


@pytest.mark.parametrize("name", ["rho", "F"])
def test_inner_parameter_j_acts_first_at_outer_layer_j_div_i_max(data, name):
    X, y = data
    k_max, i_max = 3, 3
    base = DeepIRLSADMMNet.from_algorithm(X.shape[1], 3.0, rho=0.8, k_max=k_max, i_max=i_max)
    ref = _outputs(base, X, y)
    for j in range(k_max * i_max):
        net = DeepIRLSADMMNet.from_algorithm(X.shape[1], 3.0, rho=0.8, k_max=k_max, i_max=i_max)
        p = getattr(net, name)
        with torch.no_grad():
            p.set_value(p[j] * 1.7, j)
        out = _outputs(net, X, y)
        k = j // i_max
        for before in range(k):
            assert torch.equal(out[before], ref[before]), f"{name}_{j} changed outer layer {before} < {k}"
        assert not torch.allclose(out[k], ref[k], rtol=1e-9, atol=0), f"{name}_{j} did not change outer layer {k}"


def test_perturbing_layer_parameters_k_changes_layer_k_not_the_earlier_ones(data):
    X, y = data
    net = DeepIRLSADMMNet.from_algorithm(X.shape[1], 3.0, rho=0.8, k_max=3, i_max=2)
    ref = _outputs(net, X, y)
    for k in range(3):
        trial = DeepIRLSADMMNet.from_algorithm(X.shape[1], 3.0, rho=0.8, k_max=3, i_max=2)
        with torch.no_grad():
            for q in trial.layer_parameters(k):
                q.add_(0.3)
        out = _outputs(trial, X, y)
        for before in range(k):
            assert torch.equal(out[before], ref[before])
        assert not torch.allclose(out[k], ref[k], rtol=1e-9, atol=0)
