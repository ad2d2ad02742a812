"""Tests of the evaluation metrics against closed forms and hand-built cases."""

import numpy as np
import pytest
import torch

from unrolled.core.metrics import nmse, nmse_db, support_recovery

# --------------------------------------------------------------------------
# nmse / nmse_db
# --------------------------------------------------------------------------


def _data(shape=(6, 3, 4), seed=0):
    rng = np.random.default_rng(seed)
    target = rng.standard_normal(shape) * rng.uniform(0.1, 5.0, size=(shape[0],) + (1,) * (len(shape) - 1))
    estimate = target + 0.3 * rng.standard_normal(shape)
    return estimate, target


@pytest.mark.parametrize("shape", [(6, 10), (6, 3, 4)])
def test_nmse_matches_numpy_closed_forms(shape):
    est, tgt = _data(shape)
    e, t = torch.from_numpy(est), torch.from_numpy(tgt)
    axes = tuple(range(1, len(shape)))
    err = np.sum((est - tgt) ** 2, axis=axes)
    ref = np.sum(tgt**2, axis=axes)

    np.testing.assert_allclose(nmse(e, t).item(), err.sum() / ref.sum(), rtol=1e-13)
    np.testing.assert_allclose(nmse(e, t, reduction="ratio_of_means").item(), err.sum() / ref.sum(), rtol=1e-13)
    np.testing.assert_allclose(nmse(e, t, reduction="mean").item(), np.mean(err / ref), rtol=1e-13)
    per = nmse(e, t, reduction="none")
    assert per.shape == (shape[0],)
    np.testing.assert_allclose(per.numpy(), err / ref, rtol=1e-13)
    # the two scalar reductions genuinely differ on heterogeneous scales
    assert abs(nmse(e, t).item() - nmse(e, t, reduction="mean").item()) > 1e-6


def test_nmse_hand_computed():
    t = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    e = torch.tensor([[0.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    # per sample: 1/1 and 1/4; pooled: 2/5
    torch.testing.assert_close(nmse(e, t, reduction="none"), torch.tensor([1.0, 0.25], dtype=torch.float64))
    assert nmse(e, t, reduction="mean").item() == pytest.approx(0.625)
    assert nmse(e, t).item() == pytest.approx(0.4)
    assert nmse(t, t).item() == 0.0


def test_nmse_unbatched_vector_is_batch_of_one():
    est, tgt = _data((1, 7))
    e, t = torch.from_numpy(est[0]), torch.from_numpy(tgt[0])
    expected = np.sum((est[0] - tgt[0]) ** 2) / np.sum(tgt[0] ** 2)
    for red in ("ratio_of_means", "mean"):
        assert nmse(e, t, reduction=red).item() == pytest.approx(expected, rel=1e-13)
    assert nmse(e, t, reduction="none").shape == (1,)


def test_nmse_ratio_of_means_handles_a_zero_target_sample():
    t = torch.tensor([[0.0, 0.0], [3.0, 4.0]], dtype=torch.float64)
    e = torch.tensor([[1.0, 0.0], [3.0, 4.0]], dtype=torch.float64)
    assert nmse(e, t).item() == pytest.approx(1.0 / 25.0)


@pytest.mark.parametrize("reduction", ["ratio_of_means", "mean", "none"])
def test_nmse_db_is_ten_log10(reduction):
    est, tgt = _data((5, 8), seed=3)
    e, t = torch.from_numpy(est), torch.from_numpy(tgt)
    lin = nmse(e, t, reduction=reduction).numpy()
    np.testing.assert_allclose(nmse_db(e, t, reduction=reduction).numpy(), 10 * np.log10(lin), rtol=1e-13)


def test_nmse_db_mean_averages_before_log():
    t = torch.tensor([[1.0], [1.0]], dtype=torch.float64)
    e = torch.tensor([[1.1], [2.0]], dtype=torch.float64)  # ratios 0.01 and 1
    assert nmse_db(e, t, reduction="mean").item() == pytest.approx(10 * np.log10(0.505))
    assert nmse_db(e, t, reduction="ratio_of_means").item() == pytest.approx(10 * np.log10(1.01 / 2))
    assert nmse_db(torch.tensor([[0.9]]), torch.tensor([[1.0]])).item() == pytest.approx(-20.0, abs=1e-4)


def test_nmse_shape_mismatch_and_bad_reduction_raise():
    with pytest.raises(ValueError):
        nmse(torch.zeros(3, 4), torch.ones(4, 3))
    with pytest.raises(ValueError):
        nmse(torch.zeros(3, 4), torch.ones(3, 4, 1))
    with pytest.raises(ValueError):
        nmse_db(torch.zeros(2, 4), torch.ones(3, 4))
    with pytest.raises(ValueError):
        nmse(torch.zeros(3, 4), torch.ones(3, 4), reduction="sum")


def test_nmse_is_differentiable():
    e = torch.tensor([[1.0, 2.0]], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    nmse(e, t).backward()
    # d/de ||e - t||^2 / ||t||^2 = 2 (e - t) / ||t||^2
    torch.testing.assert_close(e.grad, torch.tensor([[2.0, 2.0]], dtype=torch.float64))


# --------------------------------------------------------------------------
# support_recovery
# --------------------------------------------------------------------------


def test_support_recovery_hand_built():
    target = torch.tensor([[1.0, 0.0, 2.0, 0.0], [0.0, 0.0, -3.0, 0.0]])
    estimate = torch.tensor([[0.5, 0.1, 2.0, 0.0], [0.0, 0.0, -2.9, 0.0]])
    r = support_recovery(estimate, target)
    # estimated supports {0,1,2}, {2}; true {0,2}, {2}: tp = 3, |est| = 4, |true| = 3
    assert r["precision"].item() == pytest.approx(0.75)
    assert r["recall"].item() == pytest.approx(1.0)
    assert r["exact"].item() == pytest.approx(0.5)
    assert r["accuracy"].item() == pytest.approx(7 / 8)
    for v in r.values():
        assert v.dtype == torch.float64 and v.dim() == 0

    # a tolerance above the spurious 0.1 fixes the first row
    r = support_recovery(estimate, target, tol=0.2)
    assert r["precision"].item() == pytest.approx(1.0)
    assert r["recall"].item() == pytest.approx(1.0)
    assert r["exact"].item() == pytest.approx(1.0)
    assert r["accuracy"].item() == pytest.approx(1.0)


def test_support_recovery_missed_entries_and_sign_agnostic():
    target = torch.tensor([[1.0, -1.0, 1.0, 0.0, 0.0, 0.0]])
    estimate = torch.tensor([[-0.3, 0.0, 0.0, 0.0, 0.7, 0.0]])
    r = support_recovery(estimate, target)
    # est {0,4}, true {0,1,2}: tp 1 -> precision 1/2, recall 1/3; wrong entries 1,2,4
    assert r["precision"].item() == pytest.approx(1 / 2)
    assert r["recall"].item() == pytest.approx(1 / 3)
    assert r["exact"].item() == 0.0
    assert r["accuracy"].item() == pytest.approx(3 / 6)


def test_support_recovery_tol_is_strict_and_applies_to_target_too():
    target = torch.tensor([[0.5, 0.05, 0.0]])
    estimate = torch.tensor([[0.1, 0.0, 0.0]])
    # |0.1| is not > 0.1, so the estimate has an empty support; |0.05| <= 0.1 drops from the target
    r = support_recovery(estimate, target, tol=0.1)
    assert r["recall"].item() == 0.0
    assert r["precision"].item() == 0.0  # no estimated support: 0 / max(0, 1)
    assert r["accuracy"].item() == pytest.approx(2 / 3)
    r = support_recovery(estimate, target, tol=0.09)
    assert r["precision"].item() == 1.0
    assert r["recall"].item() == 1.0
    assert r["exact"].item() == 1.0


def test_support_recovery_all_zero_is_exact():
    z = torch.zeros(3, 5)
    r = support_recovery(z, z)
    assert r["exact"].item() == 1.0
    assert r["accuracy"].item() == 1.0
    assert r["precision"].item() == 0.0 and r["recall"].item() == 0.0


def test_support_recovery_shape_mismatch_raises():
    with pytest.raises(ValueError):
        support_recovery(torch.zeros(2, 5), torch.zeros(2, 4))
