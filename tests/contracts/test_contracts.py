"""The contract every registered unrolled net signs (a new family gets these tests by registering).

Parametrised over :data:`unrolled.core.registry.NETS`: for each net, its data
model (tiny sizes), its algorithmic initialisation and the solver it equals.
"""

from __future__ import annotations

import re

import pytest
import torch
from torch import Tensor, nn

from unrolled.core.io import load_model, save_model
from unrolled.core.params import LayerParameter
from unrolled.core.registry import NETS
from unrolled.core.testing import assert_untrained_equals_solver, equivalence_gaps

K = 4
BATCH = 5
SPECS = sorted(NETS)


def _map(inputs, fn):
    """Apply ``fn`` to the tensor(s) of a net input (a tensor, or a tuple of tensors)."""
    if isinstance(inputs, Tensor):
        return fn(inputs)
    return type(inputs)(fn(t) if isinstance(t, Tensor) else t for t in inputs)


def _first(inputs) -> Tensor:
    return inputs if isinstance(inputs, Tensor) else inputs[0]


def _with_first(inputs, value: Tensor):
    if isinstance(inputs, Tensor):
        return value
    return type(inputs)((value, *inputs[1:]))


def _flat(output) -> Tensor:
    if isinstance(output, Tensor):
        return output
    return torch.cat([o.reshape(-1) for o in output])


def _outputs_equal(a, b, atol=0.0) -> bool:
    a, b = _flat(a), _flat(b)
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=0.0, atol=atol))


class Case:
    def __init__(self, name: str):
        self.spec = NETS[name]
        self.problem = self.spec.problem(seed=0, small=True)
        gen = torch.Generator().manual_seed(1)
        self.inputs, self.targets = self.problem.sample(BATCH, gen)

    def net(self, tied: bool = False, n_layers: int = K):
        return self.spec.from_algorithm(self.problem, n_layers, tied, dict(self.spec.options))

    def run_solver(self, inputs=None):
        inputs = self.inputs if inputs is None else inputs

        def run(max_iter, tol, callback=None):
            return self.spec.solver(self.problem, inputs, max_iter, tol, callback, dict(self.spec.options))

        return run


@pytest.fixture(scope="module", params=SPECS)
def case(request) -> Case:
    return Case(request.param)


def _named(message: str, name: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message) is not None


# ---------------------------------------------------------------- the invariant
def test_untrained_net_equals_solver_iterations(case):
    net = case.net()
    assert net.dtype == torch.float64
    gaps = assert_untrained_equals_solver(net, case.inputs, case.run_solver(), atol=case.spec.equivalence_atol,
                                          compare=case.spec.compare)
    assert len(gaps) == K


def test_untrained_tied_net_equals_solver_iterations(case):
    """Tied parameters hold the algorithm's values too (the algorithms have one value for all iterations)."""
    tied = case.net(tied=True)
    untied = case.net()
    with torch.no_grad():
        a, b = tied(case.inputs), untied(case.inputs)
    assert _outputs_equal(a, b, atol=case.spec.equivalence_atol)


def test_equivalence_check_detects_a_perturbed_layer(case):
    """The contract can fail: moving one parameter of the last layer breaks it."""
    net = case.net()
    last = net.layer_parameters(K - 1)
    assert last, "the last layer owns no parameter"
    with torch.no_grad():
        for p in last:
            p.add_(0.3 * (p.abs() + 1.0))
    gaps = equivalence_gaps(net, case.inputs, case.run_solver(), compare=case.spec.compare)
    assert max(gaps[:-1], default=0.0) <= case.spec.equivalence_atol
    assert gaps[-1] > 1e3 * case.spec.equivalence_atol


# ---------------------------------------------------------------- parameters
def test_tied_and_untied_parameter_counts(case):
    tied, untied = case.net(tied=True), case.net(tied=False)
    layered = [n for n in untied.param_names if isinstance(getattr(untied, n), LayerParameter)]
    assert layered, "a net from an algorithm learns at least one per-layer parameter"
    for name in layered:
        t, u = getattr(tied, name), getattr(untied, name)
        assert t.tied and not u.tied
        n_t = sum(p.numel() for p in t.parameters())
        n_u = sum(p.numel() for p in u.parameters())
        assert n_u == K * n_t, name
    n_other = lambda net: sum(p.numel() for p in net.parameters()) - sum(  # noqa: E731
        p.numel() for n in layered for p in getattr(net, n).parameters())
    assert n_other(tied) == n_other(untied)


@pytest.mark.parametrize("tied", [False, True])
def test_layer_parameters_partition_the_parameters(case, tied):
    net = case.net(tied=tied)
    per_layer = [{id(p) for p in net.layer_parameters(k)} for k in range(K)]
    everything = {id(p) for p in net.parameters()}
    assert set().union(*per_layer) == everything
    if tied:
        assert all(s == per_layer[0] for s in per_layer)
    else:
        for i in range(K):
            for j in range(i + 1, K):
                assert not per_layer[i] & per_layer[j], (i, j)
    with pytest.raises(IndexError):
        net.layer_parameters(K)


def test_active_layers_truncates(case):
    net = case.net()
    with torch.no_grad():
        layers = net(case.inputs, return_layers=True)
        for j in range(1, K + 1):
            net.active_layers = j
            assert _outputs_equal(net(case.inputs), layers[j - 1])
            assert len(net(case.inputs, return_layers=True)) == j
    with pytest.raises(ValueError):
        net.active_layers = K + 1
    with pytest.raises(ValueError):
        net.active_layers = 0


def test_iterate_yields_the_states_forward_reads_out(case):
    net = case.net()
    with torch.no_grad():
        layers = net(case.inputs, return_layers=True)
        states = list(net.iterate(case.inputs))
    assert len(states) == K
    for (state, data, unbatched), out in zip(states, layers):
        assert _outputs_equal(net.finish(net.iteration.readout(state, data), unbatched), out)


def test_training_step_gives_finite_gradients(case):
    net = case.net()
    loss = case.spec.loss(net(case.inputs), case.targets)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().max() > 0 for g in grads)


# ---------------------------------------------------------------- io, dtype, batching
def test_save_load_round_trip(case, tmp_path):
    net = case.net()
    with torch.no_grad():
        for p in net.parameters():  # not the initial values: a trained state must survive too
            p.mul_(1.01)
        before = net(case.inputs)
    save_model(net, tmp_path / "m", metadata={"problem": case.spec.problem_config(case.problem)})
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is type(net) and loaded.config() == net.config()
    with torch.no_grad():
        assert _outputs_equal(loaded(case.inputs), before)


def test_save_load_keeps_float32(case, tmp_path):
    net = case.net().to(torch.float32)
    save_model(net, tmp_path / "m32")
    assert load_model(tmp_path / "m32").dtype == torch.float32


def _single(t: Tensor) -> Tensor:
    """float64 -> float32 and complex128 -> complex64 (complex inputs: a float32 net takes complex64 data)."""
    if t.is_floating_point():
        return t.to(torch.float32)
    return t.to(torch.complex64) if t.is_complex() else t


def test_float32_is_kept(case):
    net = case.net().to(torch.float32)
    out = net(_map(case.inputs, _single))
    for o in (out,) if isinstance(out, Tensor) else out:
        if o.is_floating_point() or o.is_complex():
            assert o.dtype in (torch.float32, torch.complex64)
            assert torch.isfinite(o).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_is_kept(case):
    net = case.net().cuda()
    out = net(_map(case.inputs, lambda t: t.cuda()))
    assert _flat(out).device.type == "cuda"


def test_batch_of_one_equals_unbatched(case):
    net = case.net()
    with torch.no_grad():
        batched = net(_map(case.inputs, lambda t: t[:1]))
        single = net(_map(case.inputs, lambda t: t[0]))
    first = _map(batched, lambda t: t[0]) if not isinstance(batched, Tensor) else batched[0]
    assert _outputs_equal(first, single, atol=1e-12)


def test_same_seed_same_result(case):
    again = Case(case.spec.name)
    assert case.spec.problem_config(again.problem) == case.spec.problem_config(case.problem)
    assert _outputs_equal(again.inputs, case.inputs) and _outputs_equal(again.targets, case.targets)
    other_inputs, _ = case.spec.problem(seed=1, small=True).sample(BATCH, torch.Generator().manual_seed(1))
    assert not _outputs_equal(other_inputs, case.inputs)
    with torch.no_grad():
        assert _outputs_equal(again.net()(again.inputs), case.net()(case.inputs))


# ---------------------------------------------------------------- the solver
def test_solver_freezes_converged_problems(case):
    """A problem that met the tolerance keeps its value while the others iterate on."""
    max_iter = 300
    for tol in (1e-1, 1e-2, 1e-3, 1e-4, 1e-6):
        recorded: list[Tensor] = []
        result = case.run_solver()(max_iter, tol,
                                   lambda k, est: recorded.append(_flat_batch(est).clone()))
        n_iter = result.n_iter.tolist()
        if min(n_iter) < max(n_iter):
            break
    else:
        pytest.fail(f"{case.spec.name}: no tolerance made problems converge at different iterations")
    assert len(recorded) == max(n_iter) == len(result.history["criterion"])
    for b, t in enumerate(n_iter):
        if result.converged[b]:
            assert result.history["criterion"][t - 1] >= 0
            for later in recorded[t:]:
                assert torch.equal(later[b], recorded[t - 1][b]), (b, t)
    # the result holds each problem's iterate at its own stopping iteration
    final = _flat_batch(result.x)
    for b, t in enumerate(n_iter):
        assert torch.equal(final[b], recorded[t - 1][b]) or case.spec.compare is not None


def _flat_batch(est) -> Tensor:
    if isinstance(est, Tensor):
        return est.reshape(est.shape[0], -1) if est.dim() else est
    return torch.cat([e.reshape(e.shape[0], -1) for e in est], dim=-1)


# ---------------------------------------------------------------- bad input
def _expect_error(case, bad, what: str):
    net = case.net()
    with pytest.raises((ValueError, TypeError)) as info:
        net(bad)
    assert _named(str(info.value), case.spec.input_name), (
        f"{what}: the error does not name {case.spec.input_name!r}: {info.value}")


def test_nan_input_is_refused(case):
    x = _first(case.inputs).clone()
    x.view(-1)[0] = float("nan")
    _expect_error(case, _with_first(case.inputs, x), "NaN")


def test_wrong_shape_is_refused(case):
    x = _first(case.inputs)
    _expect_error(case, _with_first(case.inputs, x[None, None]), "two extra dimensions")


@pytest.mark.parametrize("dtype", [torch.int64, torch.complex128])
def test_wrong_dtype_is_refused(case, dtype):
    x = _first(case.inputs)
    if x.is_complex() and dtype.is_complex:
        pytest.skip("complex is this net's input type")
    _expect_error(case, _with_first(case.inputs, x.to(dtype)), str(dtype))


def test_empty_batch_is_refused(case):
    _expect_error(case, _map(case.inputs, lambda t: t[:0]), "empty batch")


def test_all_registered_nets_are_loadable_models():
    from unrolled.core.registry import MODELS

    assert SPECS, "no net is registered"
    for name in SPECS:
        assert issubclass(NETS[name].cls, nn.Module)
        assert MODELS[NETS[name].cls.__name__] is NETS[name].cls


# ---------------------------------------------------------------- memory, layer independence (issue 29)
def test_forward_keeps_only_the_current_state(case):
    """Without return_layers, a layer's state is freed once the next one exists (memory does not grow with K).

    Memory-independent: weak references to the tensors each step creates must be dead two steps later.
    """
    import weakref

    net = case.net(n_layers=6)
    it = net.iteration
    if it is None:
        pytest.skip("the net overrides forward (no iteration)")
    step = it.step
    made: list[list[weakref.ref]] = []
    alive_too_long: list[int] = []

    def watched(k, state, data, theta):
        for j, refs in enumerate(made[:-1]):  # states of steps <= k-2
            if any(r() is not None for r in refs):
                alive_too_long.append(j)
        new = step(k, state, data, theta)
        old_ids = {id(t) for t in state.values()}
        made.append([weakref.ref(t) for t in new.values() if isinstance(t, Tensor) and id(t) not in old_ids])
        return new

    object.__setattr__(it, "step", watched)
    try:
        with torch.no_grad():
            out = net(case.inputs)
    finally:
        object.__delattr__(it, "step")
    assert len(made) == 6 and all(made), "every step makes new state tensors"
    assert not alive_too_long, f"states of layers {sorted(set(alive_too_long))} were kept alive"
    del out


@pytest.mark.parametrize("k", [0, 1, 2])
def test_perturbing_layer_k_leaves_earlier_layers_bit_identical(case, k):
    net = case.net()
    with torch.no_grad():
        before = net(case.inputs, return_layers=True)
        params = net.layer_parameters(k)
        assert params, f"layer {k} owns no parameter"
        for p in params:
            p.add_(0.3 * (p.abs() + 1.0))
        after = net(case.inputs, return_layers=True)
    for j in range(k):
        assert _outputs_equal(before[j], after[j]), f"layer {j} changed when layer {k} was perturbed"
    assert not _outputs_equal(before[k], after[k], atol=1e-12), f"perturbing layer {k} did not change its output"
