"""Tests of LayerParameter and its constraints (reparametrisations)."""

import math

import pytest
import torch

from unrolled.core.params import LayerParameter, bounded, positive

F64_EPS = torch.finfo(torch.float64).eps

# --------------------------------------------------------------------------
# tied / untied, initialisation
# --------------------------------------------------------------------------


@pytest.mark.parametrize("constraint", [None, "none", "positive", bounded(0.0, 2.0)])
def test_untied_has_one_raw_parameter_per_layer(constraint):
    p = LayerParameter(0.5, 4, constraint=constraint, dtype=torch.float64)
    params = list(p.parameters())
    assert len(params) == 4
    assert len({id(q) for q in params}) == 4
    assert len(p.values()) == 4
    for k in range(4):
        assert p[k].dtype == torch.float64
        assert p[k].item() == pytest.approx(0.5, rel=1e-14)


@pytest.mark.parametrize("constraint", [None, "positive", bounded(0.0, 2.0)])
def test_tied_has_one_shared_raw_parameter(constraint):
    p = LayerParameter(0.5, 4, tied=True, constraint=constraint, dtype=torch.float64)
    assert len(list(p.parameters())) == 1
    vals = p.values()
    assert len(vals) == 4
    for v in vals:
        assert v.item() == pytest.approx(0.5, rel=1e-14)
    # changing the shared raw value changes every layer
    with torch.no_grad():
        p.raw[0].add_(0.1)
    assert len({v.item() for v in p.values()}) == 1
    assert p[0].item() != pytest.approx(0.5)


def test_untied_layers_are_independent_copies():
    p = LayerParameter(torch.tensor([1.0, 2.0]), 3)
    with torch.no_grad():
        p.raw[1].mul_(10)
    torch.testing.assert_close(p[0], torch.tensor([1.0, 2.0]))
    torch.testing.assert_close(p[1], torch.tensor([10.0, 20.0]))
    torch.testing.assert_close(p[2], torch.tensor([1.0, 2.0]))


def test_list_init_gives_per_layer_values():
    init = [0.1, 0.2, 0.3]
    p = LayerParameter(init, 3, constraint="positive", dtype=torch.float64)
    for k, v in enumerate(init):
        assert p[k].item() == pytest.approx(v, rel=1e-14)
    q = LayerParameter((torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])), 2)
    torch.testing.assert_close(q[1], torch.tensor([3.0, 4.0]))


def test_tied_with_list_raises():
    with pytest.raises(ValueError):
        LayerParameter([0.1, 0.2, 0.3], 3, tied=True)


@pytest.mark.parametrize("init", [[0.1, 0.2], [0.1, 0.2, 0.3, 0.4], []])
def test_wrong_list_length_raises(init):
    with pytest.raises(ValueError):
        LayerParameter(init, 3)


def test_bad_n_layers_and_unknown_constraint_raise():
    with pytest.raises(ValueError):
        LayerParameter(1.0, 0)
    with pytest.raises(ValueError):
        LayerParameter(1.0, 3, constraint="nonnegative")


def test_dtype_follows_tensor_init_or_argument():
    p = LayerParameter(torch.tensor(0.5, dtype=torch.float64), 2)
    assert p[0].dtype == torch.float64
    q = LayerParameter(0.5, 2, dtype=torch.float64)
    assert q[1].dtype == torch.float64
    r = LayerParameter(0.5, 2)
    assert r[0].dtype == torch.get_default_dtype()


# --------------------------------------------------------------------------
# positive constraint
# --------------------------------------------------------------------------


def _adversarial(p: LayerParameter, opt_cls, sign: float, steps: int = 100, lr: float = 10.0):
    """Push every layer value down (sign=+1) or up (sign=-1) with large steps."""
    opt = opt_cls(p.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = sign * torch.stack([v.sum() for v in p.values()]).sum()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("opt_cls", [torch.optim.SGD, torch.optim.Adam])
def test_positive_stays_positive_under_adversarial_steps(opt_cls, dtype):
    p = LayerParameter(1.0, 3, constraint="positive", dtype=dtype)
    _adversarial(p, opt_cls, sign=+1.0)
    for v in p.values():
        assert torch.isfinite(v).all()
        assert torch.all(v > 0)
        assert v.item() < 1.0  # it did move


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_positive_stays_positive_for_extreme_raw(dtype):
    p = LayerParameter(1.0, 2, constraint=positive(), dtype=dtype)
    with torch.no_grad():
        p.raw[0].fill_(-1e5)  # exp underflows to 0 without protection
    assert p[0].item() > 0
    assert torch.all(p[1] > 0)


def test_positive_round_trip_float64():
    values = torch.logspace(-8, 3, 1001, dtype=torch.float64)
    p = LayerParameter(values, 1, constraint="positive")
    out = p[0].detach()
    rel = (out - values).abs() / values
    # exp(log(v)) is exact up to the rounding of log(v), whose absolute error
    # (half an ulp of |log v|) becomes a relative error of v: about
    # eps*(|log v|/2) + a couple of ulps. For |log v| ~ 18 (v = 1e-8) that is
    # ~2e-15, so rtol 1e-15 is only attainable for moderate scales.
    assert torch.all(rel <= F64_EPS * (values.log().abs() / 2 + 2))
    moderate = (values >= 1e-3) & (values <= 1e3)
    torch.testing.assert_close(out[moderate], values[moderate], rtol=1e-15, atol=0)
    # scalar per-layer inits across the range too
    inits = [1e-8, 1e-4, 0.37, 1.0, 12.5, 1e3]
    q = LayerParameter(inits, len(inits), constraint="positive", dtype=torch.float64)
    for k, v in enumerate(inits):
        assert q[k].item() == pytest.approx(v, rel=F64_EPS * (abs(math.log(v)) / 2 + 2))


def test_positive_gradient_is_value():
    p = LayerParameter(2.5, 1, constraint="positive", dtype=torch.float64)
    p[0].backward()
    # d exp(raw)/d raw = exp(raw)
    assert p.raw[0].grad.item() == pytest.approx(2.5, rel=1e-14)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), [1.0, 0.0, 2.0]])
def test_positive_rejects_non_positive_init(bad):
    init = torch.tensor(bad, dtype=torch.float64)
    with pytest.raises(ValueError):
        LayerParameter(init, 2, constraint="positive")


# --------------------------------------------------------------------------
# bounded constraint
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("opt_cls", [torch.optim.SGD, torch.optim.Adam])
@pytest.mark.parametrize("sign", [+1.0, -1.0])
def test_bounded_stays_strictly_inside_under_adversarial_steps(opt_cls, dtype, sign):
    low, high = 0.1, 0.9
    p = LayerParameter(0.5, 3, constraint=bounded(low, high), dtype=dtype)
    _adversarial(p, opt_cls, sign=sign)
    for v in p.values():
        assert torch.isfinite(v).all()
        assert low < v.item() < high


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("raw", [-1e4, 1e4])
def test_bounded_stays_strictly_inside_for_extreme_raw(dtype, raw):
    for low, high in [(0.0, 1.0), (-3.0, 5.0), (1e-3, 2.0)]:
        p = LayerParameter((low + high) / 2, 1, constraint=bounded(low, high), dtype=dtype)
        with torch.no_grad():
            p.raw[0].fill_(raw)
        assert low < p[0].item() < high


@pytest.mark.parametrize("low,high", [(0.0, 1.0), (-3.0, 5.0), (1e-3, 2.0), (0.5, 1e3)])
def test_bounded_round_trip_float64(low, high):
    u = torch.linspace(0, 1, 1003, dtype=torch.float64)[1:-1]
    values = low + (high - low) * u
    p = LayerParameter(values, 1, constraint=bounded(low, high))
    torch.testing.assert_close(p[0].detach(), values, rtol=1e-12, atol=1e-12 * (high - low))


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.2, 1.5, float("nan")])
def test_bounded_rejects_init_outside(bad):
    with pytest.raises(ValueError):
        LayerParameter(torch.tensor(bad, dtype=torch.float64), 2, constraint=bounded(0.0, 1.0))


@pytest.mark.parametrize("low,high", [(1.0, 0.0), (1.0, 1.0), (0.0, math.inf), (-math.inf, 0.0), (math.nan, 1.0)])
def test_bounded_rejects_bad_interval(low, high):
    with pytest.raises(ValueError):
        bounded(low, high)


# --------------------------------------------------------------------------
# indexing, layer_parameters, state_dict
# --------------------------------------------------------------------------


def test_layer_parameters_untied_and_tied():
    p = LayerParameter(1.0, 3, constraint="positive")
    for k in range(3):
        (q,) = p.layer_parameters(k)
        assert q is p.raw[k]
    # gradient of layer k flows only into layer k's raw parameter
    p[1].backward()
    assert p.raw[1].grad is not None and p.raw[1].grad.item() != 0
    assert p.raw[0].grad is None and p.raw[2].grad is None

    t = LayerParameter(1.0, 3, tied=True)
    shared = [t.layer_parameters(k)[0] for k in range(3)]
    assert all(s is t.raw[0] for s in shared)


def test_negative_indices_count_from_the_end():
    p = LayerParameter([1.0, 2.0, 3.0], 3, dtype=torch.float64)
    assert p[-1].item() == 3.0
    assert p[-3].item() == 1.0
    assert p.layer_parameters(-1)[0] is p.raw[2]


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("k", [3, 4, -4])
def test_index_out_of_range_raises_index_error(tied, k):
    p = LayerParameter(1.0, 3, tied=tied)
    with pytest.raises(IndexError):
        p[k]
    with pytest.raises(IndexError):
        p.layer_parameters(k)


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("constraint", [None, "positive", bounded(-1.0, 4.0)])
def test_state_dict_round_trip(tied, constraint):
    p = LayerParameter(torch.tensor([0.5, 1.5], dtype=torch.float64), 3, tied=tied, constraint=constraint)
    _adversarial(p, torch.optim.SGD, sign=+1.0, steps=3, lr=0.1)  # move away from init
    fresh = LayerParameter(torch.tensor([2.0, 3.0], dtype=torch.float64), 3, tied=tied, constraint=constraint)
    fresh.load_state_dict(p.state_dict())
    for k in range(3):
        torch.testing.assert_close(fresh[k], p[k], rtol=0, atol=0)
    assert not torch.allclose(fresh[0], torch.tensor([2.0, 3.0], dtype=torch.float64))


def test_state_dict_tied_untied_mismatch_fails():
    p = LayerParameter(1.0, 3, tied=False)
    q = LayerParameter(1.0, 3, tied=True)
    with pytest.raises(RuntimeError):
        q.load_state_dict(p.state_dict())
