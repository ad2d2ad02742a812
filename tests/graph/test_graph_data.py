"""Tests of the graph ensembles and of the graph-diffusion data model."""

from __future__ import annotations

import json

import networkx as nx
import pytest
import torch

from unrolled.graph.data import GraphDiffusionProblem, exact_recovery_target
from unrolled.graph.graphs import (
    adjacency_matrix,
    barabasi_albert,
    check_adjacency,
    dolphins,
    erdos_renyi,
    graph_fourier_basis,
    karate_club,
    make_graph,
    normalized_adjacency,
    random_geometric,
    stochastic_block,
    vandermonde,
)


# --------------------------------------------------------------------------- #
# Graphs
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "name, n_nodes, n_edges",
    [("er", 20, None), ("sbm", 20, None), ("ba", 20, 36), ("rg", 20, None), ("karate", 34, 78), ("dolphins", 62, 159)],
)
def test_ensembles_connected_with_right_size(name, n_nodes, n_edges):
    G = make_graph(name, seed=3)
    assert G.number_of_nodes() == n_nodes
    assert sorted(G.nodes) == list(range(n_nodes))
    assert nx.is_connected(G)
    assert nx.number_of_selfloops(G) == 0
    if n_edges is not None:
        assert G.number_of_edges() == n_edges
    A = adjacency_matrix(G)
    assert set(A.unique().tolist()) <= {0.0, 1.0}  # unweighted
    assert int(A.sum()) == 2 * G.number_of_edges()


def test_random_ensembles_are_seeded():
    for fn in (erdos_renyi, stochastic_block, barabasi_albert, random_geometric):
        e0, e0b, e1 = (sorted(fn(seed=s).edges) for s in (0, 0, 1))
        assert e0 == e0b
        assert e0 != e1


def test_sbm_blocks_and_density():
    G = stochastic_block(seed=0)
    blocks = [G.nodes[i]["block"] for i in range(20)]
    assert [blocks.count(b) for b in range(3)] == [7, 7, 6]
    within = sum(blocks[u] == blocks[v] for u, v in G.edges)
    assert within > G.number_of_edges() - within  # 0.8 within vs 0.2 between


def test_random_geometric_edges_are_within_radius():
    G = random_geometric(seed=2)
    pos = nx.get_node_attributes(G, "pos")
    for u in range(20):
        for v in range(u + 1, 20):
            d = sum((a - b) ** 2 for a, b in zip(pos[u], pos[v])) ** 0.5
            assert G.has_edge(u, v) == (d <= 0.2)


def test_make_graph_sizes_and_errors():
    assert make_graph("er", n_nodes=40, seed=0).number_of_nodes() == 40
    with pytest.raises(ValueError, match="graph"):
        make_graph("nope")
    with pytest.raises(ValueError, match="n_nodes"):
        make_graph("karate", n_nodes=20)
    with pytest.raises(ValueError, match="m"):
        barabasi_albert(n=5, m=5)


def test_redraw_policy_gives_up_with_a_clear_error():
    with pytest.raises(RuntimeError, match="no connected"):
        random_geometric(radius=0.02, max_tries=600)
    with pytest.raises(RuntimeError, match="no connected"):
        erdos_renyi(p=0.0, max_tries=5)


def test_real_networks_match_networkx_and_package_data():
    K = karate_club()
    assert sorted(K.edges) == sorted(nx.karate_club_graph().edges)
    D = dolphins()
    assert (D.number_of_nodes(), D.number_of_edges()) == (62, 159)
    assert nx.is_connected(D)


# --------------------------------------------------------------------------- #
# Spectral description
# --------------------------------------------------------------------------- #
def test_shift_basis_and_vandermonde():
    A = adjacency_matrix(karate_club())
    S = normalized_adjacency(A)
    d = A.sum(1)
    assert torch.allclose(S, A / torch.sqrt(d[:, None] * d[None, :]))
    assert torch.equal(S, S.T)
    lam, V = graph_fourier_basis(S)
    assert torch.allclose(V @ torch.diag(lam) @ V.T, S, atol=1e-12)
    assert torch.allclose(V.T @ V, torch.eye(34, dtype=S.dtype), atol=1e-12)
    assert lam.max() == pytest.approx(1.0) and lam.min() >= -1 - 1e-12
    Psi = vandermonde(lam, 5)
    assert Psi.shape == (34, 5)
    assert torch.allclose(Psi, torch.stack([lam**j for j in range(5)], 1))
    # a filter sum_l h_l S^l has response Psi h in the basis V
    h = torch.tensor([0.5, -0.2, 0.1, 0.05, -0.15], dtype=S.dtype)
    H = sum(h[l] * torch.linalg.matrix_power(S, l) for l in range(5))
    assert torch.allclose(V @ torch.diag(Psi @ h) @ V.T, H, atol=1e-12)


def test_bad_adjacency_raises_naming_argument():
    good = adjacency_matrix(karate_club())
    with pytest.raises(ValueError, match="A must be a non-empty square"):
        check_adjacency(good[:, :5])
    asym = good.clone()
    asym[0, 5] = 1.0 - asym[0, 5]
    with pytest.raises(ValueError, match="A must be symmetric"):
        check_adjacency(asym)
    nan = good.clone()
    nan[0, 1] = nan[1, 0] = float("nan")
    with pytest.raises(ValueError, match="A contains NaN"):
        check_adjacency(nan)
    two = torch.block_diag(good, good)
    with pytest.raises(ValueError, match="A must be a connected graph"):
        normalized_adjacency(two)
    with pytest.raises(ValueError, match="A must have non-negative"):
        check_adjacency(-good)


# --------------------------------------------------------------------------- #
# Data model
# --------------------------------------------------------------------------- #
def test_sample_layout_and_forward_model():
    prob = GraphDiffusionProblem("sbm", n_signals=30)
    b = prob.sample_batch(5, torch.Generator().manual_seed(0))
    assert b.Y.shape == b.X.shape == (5, 20, 30)
    assert b.h.shape == (5, 5) and b.h_freq.shape == (5, 20)
    assert torch.allclose(b.h.abs().sum(1), torch.ones(5, dtype=torch.float64))
    assert torch.allclose(b.h_freq, b.h @ prob.Psi.T)
    H = prob.filter_matrix(b.h)  # one filter per problem
    assert torch.allclose(b.Y, H @ b.X, atol=1e-12)
    # the filter is the polynomial sum_l h_l S^l
    H0 = sum(b.h[0, l] * torch.linalg.matrix_power(prob.S, l) for l in range(5))
    assert torch.allclose(H[0], H0, atol=1e-12)
    Y, X = prob.sample(5, torch.Generator().manual_seed(0))
    assert torch.equal(Y, b.Y) and torch.equal(X, b.X)


def test_filter_taps_distribution():
    prob = GraphDiffusionProblem("er", n_signals=1, phi=0.0)
    h = prob.sample_filters(4, torch.Generator().manual_seed(0))
    assert torch.equal(h, torch.eye(5, dtype=torch.float64)[0].expand(4, 5))  # phi=0: identity filter
    prob = GraphDiffusionProblem("er", n_signals=1, phi=1.0)
    g = torch.Generator().manual_seed(7)
    h = prob.sample_filters(3, g)
    b = torch.randn(3, 5, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    e = b.clone()
    e[:, 0] += 1
    assert torch.allclose(h, e / e.abs().sum(1, keepdim=True))


def test_sources_bernoulli_and_exact_count():
    prob = GraphDiffusionProblem("er", n_signals=200, theta=0.15)
    X = prob.sample_sources(20, torch.Generator().manual_seed(1))
    frac = (X != 0).double().mean().item()
    assert abs(frac - 0.15) < 0.01  # 80,000 Bernoulli draws
    exact = GraphDiffusionProblem("er", n_signals=50, n_sources=3)
    X = exact.sample_sources(4, torch.Generator().manual_seed(1))
    assert torch.equal((X != 0).sum(dim=1), torch.full((4, 50), 3))


def test_noise_is_uniform_with_level_eta():
    clean = GraphDiffusionProblem("er", n_signals=50)
    noisy = GraphDiffusionProblem("er", n_signals=50, eta=0.05)
    bc = clean.sample_batch(3, torch.Generator().manual_seed(2))
    bn = noisy.sample_batch(3, torch.Generator().manual_seed(2))
    assert torch.equal(bc.X, bn.X)
    w = bn.Y - bc.Y
    assert w.abs().max() <= 0.05 and w.abs().max() > 0.045
    assert abs(w.mean().item()) < 0.005


def test_seeded_and_dtype_device():
    p64 = GraphDiffusionProblem("ba", n_signals=10)
    p32 = GraphDiffusionProblem("ba", n_signals=10, dtype=torch.float32)
    Y64, X64 = p64.sample(2, torch.Generator().manual_seed(3))
    Y32, X32 = p32.sample(2, torch.Generator().manual_seed(3))
    assert Y32.dtype == X32.dtype == p32.S.dtype == p32.V.dtype == torch.float32
    assert torch.equal(Y32, Y64.float()) and torch.equal(X32, X64.float())
    Y64b, _ = p64.sample(2, torch.Generator().manual_seed(3))
    assert torch.equal(Y64, Y64b)
    assert Y64.device.type == "cpu"


def test_exact_recovery_target_inverts_the_filter():
    prob = GraphDiffusionProblem("er", n_signals=10)
    b = prob.sample_batch(2, torch.Generator().manual_seed(0))
    x, g = exact_recovery_target(b.X, b.h_freq, c=2.0)
    assert torch.allclose(g.sum(-1), torch.full((2,), 2.0, dtype=torch.float64))
    Xhat = prob.V @ (g[..., None] * (prob.V.T @ b.Y))  # V diag(g) V^T Y
    assert torch.allclose(Xhat, x, atol=1e-10)


def test_custom_graph_and_config_roundtrip():
    G = nx.relabel_nodes(karate_club(), {i: f"n{i:02d}" for i in range(34)})
    prob = GraphDiffusionProblem(G, n_signals=7)
    assert prob.N == 34
    again = GraphDiffusionProblem.from_config(json.loads(json.dumps(prob.config())))
    assert torch.equal(again.S, prob.S)
    named = GraphDiffusionProblem("rg", graph_seed=4, n_signals=3, n_sources=2, eta=0.01)
    again = GraphDiffusionProblem.from_config(json.loads(json.dumps(named.config())))
    assert torch.equal(again.S, named.S) and again.n_sources == 2
    W = adjacency_matrix(karate_club()) * 2.5
    assert torch.allclose(GraphDiffusionProblem(W).S, prob.S)  # S is invariant to a global weight scale


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"graph": "nope"}, "graph"),
        ({"graph": torch.ones(3, 4, dtype=torch.float64)}, "graph"),
        ({"graph": torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])}, "graph must be symmetric"),
        ({"graph": torch.tensor([[0.0, float("inf")], [float("inf"), 0.0]])}, "graph contains NaN"),
        ({"graph": torch.block_diag(torch.ones(2, 2), torch.ones(2, 2)).double()}, "graph must be a connected"),
        ({"graph": nx.Graph([(0, 1), (2, 3)])}, "graph must be a connected"),
        ({"graph": nx.DiGraph([(0, 1)])}, "graph must be undirected"),
        ({"graph": nx.path_graph(4), "n_nodes": 4}, "n_nodes"),
        ({"L": 21}, "L must be <= N"),
        ({"theta": 0.0}, "theta"),
        ({"n_sources": 21}, "n_sources"),
        ({"eta": -0.1}, "eta"),
        ({"noise": "laplace"}, "noise"),
        ({"n_signals": 0}, "n_signals"),
        ({"phi": float("nan")}, "phi"),
        ({"dtype": torch.int64}, "dtype"),
    ],
)
def test_problem_validation(kwargs, name):
    with pytest.raises(ValueError, match=name):
        GraphDiffusionProblem(**kwargs)
