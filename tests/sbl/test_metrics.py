"""Tests of support decoding, accuracies, least squares on a support, the support loss and Chamfer distance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unrolled.sbl.metrics import (
    chamfer_distance,
    least_squares_on_support,
    SUPPORT_LOSSES,
    loose_accuracy,
    pairwise_support_loss,
    peak_indices,
    strict_accuracy,
    support_loss,
    top_d_support,
)

DT = torch.float64


def test_top_d_and_accuracies_by_hand():
    scores = torch.tensor([[5.0, 1.0, 4.0, 0.0, 3.0], [0.0, 2.0, 1.0, 3.0, 0.5]], dtype=DT)
    x = torch.tensor([[1.0, 0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 2.0, 0.0]], dtype=DT)
    mask = top_d_support(scores, 2)
    assert mask.tolist() == [[True, False, True, False, False], [False, True, False, True, False]]
    # row 0: top-2 = {0, 2} exact; row 1: top-2 = {3, 1} but truth {2, 3}
    assert strict_accuracy(scores, x).item() == 0.5
    assert strict_accuracy(scores, x, per_sample=True).tolist() == [True, False]
    # loose with 3 guesses: row 0 -> {0,2,4}: 2/2; row 1 -> {3,1,2}: 2/2
    assert loose_accuracy(scores, x, 3).item() == 1.0
    # loose with 2 guesses: row 1 has 1 of 2
    assert loose_accuracy(scores, x, 2).item() == 0.75
    # per-row d
    assert top_d_support(scores, torch.tensor([1, 3])).sum(-1).tolist() == [1, 3]
    with pytest.raises(ValueError, match="d must be"):
        top_d_support(scores, 6)
    with pytest.raises(ValueError, match="NaN"):
        top_d_support(torch.full((1, 3), float("nan")), 1)


def test_least_squares_on_support_matches_numpy():
    g = torch.Generator().manual_seed(0)
    Phi = torch.randn(20, 50, generator=g, dtype=DT)
    y = torch.randn(3, 20, generator=g, dtype=DT)
    support = torch.zeros(3, 50, dtype=torch.bool)
    support[0, [1, 4, 9]] = True
    support[1, [0, 2, 3, 7, 30, 49]] = True
    support[2, [11]] = True
    x = least_squares_on_support(y, Phi, support)
    for b in range(3):
        idx = support[b].nonzero().flatten().numpy()
        ref = np.linalg.lstsq(Phi.numpy()[:, idx], y[b].numpy(), rcond=None)[0]
        np.testing.assert_allclose(x[b, idx].numpy(), ref, rtol=1e-9, atol=1e-12)
        assert (x[b, ~support[b]] == 0).all()
    # complex data
    Pc = torch.complex(Phi, torch.randn(20, 50, generator=g, dtype=DT))
    yc = torch.complex(y, y.flip(-1))
    xc = least_squares_on_support(yc, Pc, support)
    idx = support[1].nonzero().flatten().numpy()
    ref = np.linalg.lstsq(Pc.numpy()[:, idx], yc[1].numpy(), rcond=None)[0]
    np.testing.assert_allclose(xc[1, idx].numpy(), ref, rtol=1e-9, atol=1e-12)


def test_support_loss_minimum():
    x = torch.tensor([[0.0, 1.0, 0.0, -2.0]], dtype=DT)
    ideal = torch.tensor([[-1e3, 0.0, -1e3, 0.0]], dtype=DT)  # equal mass on the support
    assert abs(float(support_loss(ideal, x)) - np.log(2)) < 1e-9  # entropy of the target
    worse = torch.tensor([[-1e3, 1.0, -1e3, 0.0]], dtype=DT)
    flat = torch.zeros(1, 4, dtype=DT)
    assert support_loss(worse, x) > support_loss(ideal, x)
    assert abs(float(support_loss(flat, x)) - np.log(4)) < 1e-9


def test_pairwise_support_loss_is_the_sum_over_pairs_and_bounds_strict_errors():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(5, 7, generator=gen, dtype=DT)
    x = torch.zeros(5, 7, dtype=DT)
    for b, supp in enumerate(([0], [1, 2], [3, 4, 5], [0, 6], [1, 2, 3, 4, 5, 6])):
        x[b, supp] = 1.0
    # the definition: log(1 + sum over (support i, off-support j) of exp(s_j - s_i)), averaged over rows
    ref = []
    for b in range(5):
        on, off = x[b] != 0, x[b] == 0
        ref.append(torch.log1p(torch.exp(logits[b, off][None, :] - logits[b, on][:, None]).sum()))
    assert abs(float(pairwise_support_loss(logits, x)) - float(torch.stack(ref).mean())) < 1e-12
    # a row whose top-d is not the support pays at least log 2; a well-separated one pays ~0
    per_row = [float(pairwise_support_loss(logits[b:b + 1], x[b:b + 1])) for b in range(5)]
    wrong = ~strict_accuracy(logits, x, per_sample=True)
    assert wrong.any()
    assert all(per_row[b] >= np.log(2) - 1e-12 for b in range(5) if wrong[b])
    separated = torch.where(x != 0, 50.0, 0.0).to(DT)
    assert float(pairwise_support_loss(separated, x)) < 1e-15
    # finite gradients even with huge logits; clear errors for empty or full supports
    big = (1e4 * logits).requires_grad_()
    pairwise_support_loss(big, x).backward()
    assert torch.isfinite(big.grad).all()
    with pytest.raises(ValueError, match="between 1 and m-1"):
        pairwise_support_loss(logits[:1], torch.zeros(1, 7, dtype=DT))
    with pytest.raises(ValueError, match="between 1 and m-1"):
        pairwise_support_loss(logits[:1], torch.ones(1, 7, dtype=DT))
    with pytest.raises(ValueError, match="shape"):
        pairwise_support_loss(logits, x[:, :6])
    assert set(SUPPORT_LOSSES) == {"softmax", "pairwise", "softmax+pairwise"}
    both = SUPPORT_LOSSES["softmax+pairwise"](logits, x)
    assert abs(float(both) - float(support_loss(logits, x) + pairwise_support_loss(logits, x))) < 1e-12


def test_pairwise_support_loss_compiles_without_a_graph_break():
    """Under ``torch.compile`` (the long SBL runs) the loss is one graph: its eager-only input check is skipped,
    the value is the eager one, and a full-support row adds 0 rather than NaN."""
    import torch._dynamo

    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(6, 9, generator=gen)
    x = (torch.rand(6, 9, generator=gen) < 0.4).float()
    x[:, 0], x[:, 1] = 1.0, 0.0  # every row: 1 <= |S| <= m - 1
    torch._dynamo.reset()
    explained = torch._dynamo.explain(pairwise_support_loss)(logits, x)
    assert explained.graph_break_count == 0 and explained.graph_count == 1
    compiled = torch.compile(pairwise_support_loss, backend="eager")
    torch.testing.assert_close(compiled(logits, x), pairwise_support_loss(logits, x))
    full = torch.cat([x, torch.ones(1, 9)])
    value = compiled(torch.cat([logits, torch.randn(1, 9, generator=gen)]), full)
    torch.testing.assert_close(value, pairwise_support_loss(logits, x) * 6 / 7)


def test_peaks_and_chamfer():
    scores = torch.tensor([[0.0, 5.0, 4.9, 0.0, 3.0, 0.0, 1.0]])
    # top-2 values are 5.0 and 4.9 (adjacent); the peaks are at 1 and 4
    assert peak_indices(scores, 2).tolist() == [[1, 4]]
    assert peak_indices(scores, 4).tolist() == [[1, 4, 6, 2]]  # non-peaks fill in after all peaks
    est = torch.tensor([[0.0, 10.0]])
    true = torch.tensor([[1.0, 10.0, 20.0]])
    # est->true: (1 + 0)/2 = 0.5; true->est: (1 + 0 + 10)/3
    assert abs(float(chamfer_distance(est, true)) - 0.5 * (0.5 + 11 / 3)) < 1e-6
    assert float(chamfer_distance(true, true)) == 0.0
