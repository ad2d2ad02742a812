"""Gradient checkpointing of UnrolledNet: same outputs and gradients as plain autograd."""

from __future__ import annotations

import pytest
import torch

from unrolled.sparse_coding.data import SparseCodingProblem
from unrolled.sparse_coding.nets import LISTA, LISTACP


def _grads(net, y, x):
    net.zero_grad()
    out = net(y)
    loss = (out - x).pow(2).sum()
    loss.backward()
    return out.detach(), {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("cls,segments", [(LISTACP, 3), (LISTACP, 1), (LISTA, 4), (LISTACP, 50)])
def test_checkpointed_gradients_equal_plain_autograd(cls, segments):
    prob = SparseCodingProblem(m=12, n=20, p=0.2, snr_db=30.0, seed=0)
    y, x = prob.sample(6, torch.Generator().manual_seed(0))
    net = cls.from_algorithm(prob.A, 0.05, n_layers=7)
    with torch.no_grad():  # move away from the algorithm's values so every layer differs
        for p in net.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel()), dtype=p.dtype))
    out_plain, g_plain = _grads(net, y, x)
    assert net.gradient_checkpointing(segments) is net and net.checkpoint_segments == segments
    out_ckpt, g_ckpt = _grads(net, y, x)
    torch.testing.assert_close(out_ckpt, out_plain, atol=1e-12, rtol=0)
    assert g_plain.keys() == g_ckpt.keys() and len(g_plain) > 0
    assert sum(float(g.abs().max() > 0) for g in g_plain.values()) >= 2
    for name in g_plain:
        torch.testing.assert_close(g_ckpt[name], g_plain[name], atol=1e-10, rtol=0, msg=name)
    # layer-wise training: fewer active layers, still equal
    net.active_layers = 4
    _, g_ckpt4 = _grads(net, y, x)
    net.gradient_checkpointing(None)
    _, g_plain4 = _grads(net, y, x)
    assert g_plain4.keys() == g_ckpt4.keys()
    for name in g_plain4:
        torch.testing.assert_close(g_ckpt4[name], g_plain4[name], atol=1e-10, rtol=0, msg=name)


def test_checkpointing_leaves_inference_and_return_layers_alone():
    prob = SparseCodingProblem(m=10, n=16, p=0.2, seed=1)
    y, _ = prob.sample(3, torch.Generator().manual_seed(1))
    net = LISTACP.from_algorithm(prob.A, 0.05, n_layers=5)
    plain_layers = net(y, return_layers=True)
    net.gradient_checkpointing(2)
    with torch.no_grad():
        torch.testing.assert_close(net(y), plain_layers[-1], atol=0, rtol=0)
    layers = net(y, return_layers=True)
    assert len(layers) == 5
    torch.testing.assert_close(layers[-1], plain_layers[-1], atol=0, rtol=0)
    assert net(y[0]).shape == (16,)  # unbatched input through the checkpointed path


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_segments_named(bad):
    prob = SparseCodingProblem(m=10, n=16, p=0.2, seed=1)
    net = LISTACP.from_algorithm(prob.A, 0.05, n_layers=3)
    with pytest.raises(ValueError, match="segments"):
        net.gradient_checkpointing(bad)
