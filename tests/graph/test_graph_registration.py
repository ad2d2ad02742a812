"""The graph family's registration and its one iteration: the net and the solver run the same step."""

from __future__ import annotations

import pytest
import torch

from unrolled.core.registry import FAMILIES, NETS, nets_of
from unrolled.core.solve import solve
from unrolled.graph.data import GraphDiffusionProblem
from unrolled.graph.iteration import GraphADMMIteration, algorithm_values, deconvolution_data
from unrolled.graph.nets import SLoGNet
from unrolled.graph.solvers import admm, default_penalties, sources_from_filter

K = 4


@pytest.fixture(scope="module")
def spec():
    return NETS["slognet"]


def test_family_and_net_are_registered(spec):
    assert FAMILIES["graph"].solvers == ("admm",)
    assert list(nets_of("graph")) == ["slognet"]
    assert spec.cls is SLoGNet and spec.family == "graph" and spec.default_layers == 5


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("output", ["filter", "sources"])
def test_untrained_net_is_its_solver_at_every_layer(spec, output, tied):
    """The contract: ``from_algorithm``'s net, layer by layer, equals ``solver``'s iterates (float64)."""
    options = {**spec.options, "output": output}
    prob = spec.problem(seed=1, small=True)
    Y, X = prob.sample(3, torch.Generator().manual_seed(2))
    net = spec.from_algorithm(prob, K, tied, options)
    with torch.no_grad():
        layers = net(Y, return_layers=True)
    seen = []
    res = spec.solver(prob, Y, K, 0.0, lambda k, est: seen.append((k, est.clone())), options)
    assert [k for k, _ in seen] == list(range(1, K + 1))
    for (k, est), out in zip(seen, layers):
        torch.testing.assert_close(out, est, rtol=0, atol=spec.equivalence_atol)
    torch.testing.assert_close(res.x, seen[-1][1], rtol=0, atol=0)
    assert spec.loss(layers[-1], X).item() == pytest.approx(spec.metric(layers[-1], X))
    for name, baseline in spec.baselines.items():
        assert baseline(prob, Y, 2, 0.0, None, options).x.shape == Y.shape, name


def test_problem_rebuilds_from_its_config(spec):
    prob = spec.problem(seed=3, small=True)
    again = spec.problem(**spec.problem_config(prob))
    assert torch.equal(again.S, prob.S) and again.n_signals == prob.n_signals == 12 and prob.N == 8
    assert spec.problem().N == 20 and spec.problem().n_signals == 400


def test_admm_is_the_generalised_step_at_the_algorithm_values():
    """``admm`` is ``solve`` of GraphADMMIteration at ``algorithm_values``, per-problem penalties included.

    ``polish=False``: the default polish stops problems earlier, on a certified point (test_graph_solvers.py).
    """
    prob = GraphDiffusionProblem("er", n_signals=30, graph_seed=1)
    Y, _ = prob.sample(5, torch.Generator().manual_seed(0))
    rl, rm = default_penalties(Y)
    params = algorithm_values(rl, rm, 1.0, n_nodes=prob.N)
    data = deconvolution_data(Y, prob.V, "singular")
    direct = solve(GraphADMMIteration(), data, params, max_iter=3000, tol=1e-7)
    res = admm(Y, prob.S, V=prob.V, max_iter=3000, tol=1e-7, polish=False)
    assert len(set(res.n_iter.tolist())) > 1  # problems froze at different iterations (working-set compaction)
    assert torch.equal(res.x, direct.x) and torch.equal(res.g, direct.state["g"])
    assert torch.equal(res.n_iter, direct.n_iter) and res.history == direct.history
    # the filter read-out and the callback
    seen = []
    filt = admm(Y, prob.S, V=prob.V, max_iter=3, tol=0.0, output="filter", callback=lambda k, e: seen.append(e))
    torch.testing.assert_close(filt.x, sources_from_filter(Y, prob.V, filt.g), rtol=1e-12, atol=1e-14)
    assert len(seen) == 3 and torch.equal(seen[-1], filt.x)
    with pytest.raises(ValueError, match="output"):
        admm(Y, prob.S, V=prob.V, output="x")


def test_untied_net_steps_are_the_iteration_with_the_layer_values():
    """SLoGNet's forward is the generic loop: init, then ``step(k, ..., layer_values(k))``."""
    prob = GraphDiffusionProblem("er", n_signals=20, graph_seed=2)
    Y, _ = prob.sample(2, torch.Generator().manual_seed(1))
    net = SLoGNet.random_init(prob, 3, seed=5, tau_scale=0.01)
    data, _ = net.prepare(Y)
    it = net.iteration
    state = it.init(data, net.layer_values(0))
    with torch.no_grad():
        for k in range(3):
            state = it.step(k, state, data, net.layer_values(k))
        assert torch.equal(net(Y), state["Zg"])
        states = net.layer_states(Y)
    assert torch.equal(states[-1].x, state["x"]) and torch.equal(states[-1].mu, state["mu"])
