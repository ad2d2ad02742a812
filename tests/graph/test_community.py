"""Source-community recovery (SLoG-Net paper Sec. V-D): decision rule, data, GNN baseline, quick experiment."""

import json

import pytest
import torch

from unrolled.core.io import load_model, save_model
from unrolled.graph.community import (
    CommunityDiffusionProblem,
    GraphConvClassifier,
    community_accuracy,
    community_from_estimate,
)

MEMBERSHIP = [0, 0, 1, 1, 2]


# --------------------------------------------------------------------------- decision rule
def test_rule_picks_community_of_largest_magnitude():
    X = torch.zeros(5, 4)
    X[0, 0], X[3, 0] = 0.5, -0.2          # node 0 largest -> community 0
    X[2, 1], X[4, 1] = 0.1, -3.0          # negative value largest in |.| -> node 4 -> community 2
    X[3, 2] = 1e-6                        # single tiny source -> community 1
    X[1, 3], X[2, 3], X[4, 3] = 1.0, 0.99, 0.98  # 0 wins by a hair
    assert community_from_estimate(X, MEMBERSHIP).tolist() == [0, 2, 1, 0]


def test_rule_scale_and_sign_invariant_and_batched():
    torch.manual_seed(0)
    X = torch.randn(3, 5, 7)
    c = community_from_estimate(X, MEMBERSHIP)
    assert c.shape == (3, 7) and c.dtype == torch.long
    assert torch.equal(c, community_from_estimate(-42.0 * X, torch.tensor(MEMBERSHIP)))


def test_rule_all_zero_goes_to_first_node_and_bad_shapes_raise():
    assert community_from_estimate(torch.zeros(5, 2), [2, 0, 1, 1, 0]).tolist() == [2, 2]
    with pytest.raises(ValueError):
        community_from_estimate(torch.zeros(4, 2), MEMBERSHIP)
    with pytest.raises(ValueError):
        community_from_estimate(torch.zeros(5, 2), [0, -1, 0, 0, 0])


def test_accuracy():
    assert community_accuracy(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 2])) == 0.75
    with pytest.raises(ValueError):
        community_accuracy(torch.tensor([0, 1]), torch.tensor([0]))


# --------------------------------------------------------------------------- data model
def test_sources_lie_in_one_community():
    prob = CommunityDiffusionProblem(n_signals=60)
    assert prob.N == 20 and prob.n_communities == 3
    assert [len(c) for c in prob.communities] == [7, 7, 6]
    Y, X = prob.sample(4, torch.Generator().manual_seed(1))
    assert Y.shape == X.shape == (4, 20, 60)
    support = X != 0
    assert (support.sum(1) == 3).all()
    labels = prob.labels(X)
    m = prob.membership_tensor
    for b in range(4):
        for j in range(60):
            assert set(m[support[b, :, j]].tolist()) == {int(labels[b, j])}
    assert set(labels.flatten().tolist()) == {0, 1, 2}
    assert CommunityDiffusionProblem.from_config(prob.config()).membership == prob.membership


def test_single_signals_have_own_filters():
    prob = CommunityDiffusionProblem(n_signals=50)
    y, c = prob.sample_signals(8, torch.Generator().manual_seed(2))
    assert y.shape == (8, 20) and c.shape == (8,) and prob.n_signals == 50
    assert ((c >= 0) & (c < 3)).all()


def test_problem_validation():
    with pytest.raises(ValueError):
        CommunityDiffusionProblem(n_sources=7)  # larger than the smallest community (6)
    with pytest.raises(ValueError):
        CommunityDiffusionProblem(graph="er")  # no partition stored


# --------------------------------------------------------------------------- GNN
def _gnn():
    prob = CommunityDiffusionProblem(n_signals=10)
    torch.manual_seed(0)
    return prob, GraphConvClassifier(prob.S.tolist(), n_classes=3, hidden=8, n_layers=2, taps=3, selected=[20, 8])


def test_gnn_shapes_and_gradients():
    prob, gnn = _gnn()
    y, c = prob.sample_signals(6, torch.Generator().manual_seed(3))
    assert gnn(y).shape == (6, 3)
    assert gnn(torch.randn(2, 4, 20)).shape == (2, 4, 3)
    assert gnn.predict(y).shape == (6,)
    loss = torch.nn.functional.cross_entropy(gnn(y), c)
    loss.backward()
    for name, p in gnn.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert any(float(p.grad.abs().sum()) > 0 for p in gnn.weights)
    with pytest.raises(ValueError):
        gnn(torch.randn(3, 19))


def test_selection_pools_neighbourhood_max_and_keeps_highest_degree_nodes():
    # path 0-1-2-3 plus edge 1-3: degrees 1, 3, 2, 2 -> selection order 1, 2, 3, 0
    S = torch.zeros(4, 4)
    for i, j in ((0, 1), (1, 2), (2, 3), (1, 3)):
        S[i, j] = S[j, i] = 1.0
    gnn = GraphConvClassifier(S, n_classes=2, hidden=1, n_layers=1, taps=1, selected=[2])
    assert gnn.order.tolist() == [1, 2, 3, 0]
    with torch.no_grad():
        gnn.weights[0].fill_(1.0)
        gnn.readout.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        gnn.readout.bias.zero_()
    y = torch.tensor([[5.0, -1.0, 2.0, 0.5], [-1.0, 0.0, 0.0, 3.0]])
    z = torch.relu(y)
    # node 1's 1-hop neighbourhood is {0, 1, 2, 3}; node 2's is {1, 2, 3}
    expected = torch.stack([z.amax(1), z[:, 1:].amax(1)], dim=1)
    torch.testing.assert_close(gnn(y), expected)
    # two hops: node 2 reaches node 0 through node 1
    gnn2 = GraphConvClassifier(S, n_classes=2, hidden=1, n_layers=1, taps=1, selected=[2], pool_hops=2)
    with torch.no_grad():
        gnn2.weights[0].fill_(1.0)
        gnn2.readout.load_state_dict(gnn.readout.state_dict())
    torch.testing.assert_close(gnn2(y), z.amax(1, keepdim=True).expand(2, 2))


def test_selection_rejects_bad_node_counts():
    S = torch.eye(5)
    for bad in ([6, 2], [2, 3], [0, 0], [3]):
        with pytest.raises(ValueError, match="selected"):
            GraphConvClassifier(S, n_layers=2, selected=bad)


def test_gnn_save_load(tmp_path):
    prob, gnn = _gnn()
    save_model(gnn, tmp_path / "gnn")
    back = load_model(tmp_path / "gnn")
    assert isinstance(back, GraphConvClassifier)
    y = torch.randn(5, 20)
    torch.testing.assert_close(back(y), gnn(y))


# --------------------------------------------------------------------------- experiment
def test_quick_experiment_writes_files(tmp_path):
    from unrolled.experiments import EXPERIMENTS
    from unrolled.experiments.slognet_community import METHODS, QUICK_COMMUNITY

    payload = EXPERIMENTS["slognet-community"].run(tmp_path, quick=True, seed=0, progress=False)
    for f in ("results.json", "results.md", "community_acc.png"):
        assert (tmp_path / f).is_file(), f
    data = json.loads((tmp_path / "results.json").read_text())
    assert [r["method"] for r in data["rows"]] == list(METHODS) == [r["method"] for r in payload["rows"]]
    for r in data["rows"]:
        assert set(r["acc"]) == {str(e) for e in QUICK_COMMUNITY.etas}
        assert all(0.0 <= v <= 1.0 for v in r["acc"].values())
    md = (tmp_path / "results.md").read_text()
    assert "Fig. 7" in md and md.count("\n| ") >= len(METHODS) + 1
    assert all(line.count("|") == len(QUICK_COMMUNITY.etas) + 3 for line in md.splitlines() if line.startswith("| "))
    assert (tmp_path / "gnn" / "model" / "config.json").is_file()
