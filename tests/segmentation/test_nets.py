"""CRFRNN: untrained = mean field, tied / untied / learned widths, end-to-end gradients, save and load."""

from __future__ import annotations

from functools import partial

import pytest
import torch
import torch.nn.functional as F

from unrolled.core.io import load_model, save_model
from unrolled.core.testing import assert_untrained_equals_solver, equivalence_gaps
from unrolled.segmentation.data import ShapesSegmentationProblem
from unrolled.segmentation.nets import CRFRNN
from unrolled.segmentation.solvers import mean_field
from unrolled.segmentation.unary import PlainCNN, UnaryCRF, UnaryFCN

KERNELS, WEIGHTS = (1.2, 2.5, 0.4), (0.6, 1.4)


@pytest.fixture(scope="module")
def batch():
    prob = ShapesSegmentationProblem(9, 10, 3, n_shapes=(1, 2), seed=3)
    return prob.sample(3, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("filtering, tied, learn_widths", [("exact", True, False), ("fast", False, False),
                                                           ("fast", True, True), ("exact", False, True)])
def test_untrained_net_equals_mean_field(batch, filtering, tied, learn_widths):
    (unary, image), _ = batch
    net = CRFRNN.from_algorithm(3, 4, kernels=KERNELS, weights=WEIGHTS, tied=tied, learn_widths=learn_widths,
                                filtering=filtering)
    run = partial(mean_field, unary, image, kernels=KERNELS, weights=WEIGHTS, filtering=filtering)
    assert_untrained_equals_solver(net, (unary, image), run, atol=1e-12)


def test_general_compatibility_and_a_wrong_one_differs(batch):
    (unary, image), _ = batch
    mu = torch.randn(3, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    net = CRFRNN.from_algorithm(3, 3, kernels=KERNELS, weights=WEIGHTS, compatibility=mu, filtering="exact")
    run = partial(mean_field, unary, image, kernels=KERNELS, weights=WEIGHTS, compatibility=mu)
    assert_untrained_equals_solver(net, (unary, image), run, atol=1e-12)
    run_t = partial(mean_field, unary, image, kernels=KERNELS, weights=WEIGHTS, compatibility=mu.T)
    assert max(equivalence_gaps(net, (unary, image), run_t)) > 1e-3  # a dropped transpose is detected


def test_untied_layers_are_independent_and_learned_widths_get_gradients(batch):
    (unary, image), labels = batch
    net = CRFRNN.from_algorithm(3, 3, kernels=KERNELS, weights=WEIGHTS, tied=False, learn_widths=True)
    loss = F.nll_loss(net.log_marginals((unary, image)), labels)
    loss.backward()
    for k in range(3):
        grads = [p.grad for p in net.layer_parameters(k)]
        assert len(grads) == 3 and all(g is not None and torch.isfinite(g).all() for g in grads)
        assert net.widths.raw[k].grad.abs().max() > 0
    assert len(list(net.parameters())) == 9


def test_log_marginals_match_the_output(batch):
    (unary, image), _ = batch
    net = CRFRNN.from_algorithm(3, 2, kernels=KERNELS, weights=WEIGHTS)
    with torch.no_grad():
        torch.testing.assert_close(net.log_marginals((unary, image)).exp(), net((unary, image)), rtol=0, atol=1e-14)


def test_positive_weights_stay_positive_after_large_steps(batch):
    (unary, image), labels = batch
    net = CRFRNN.from_algorithm(3, 2, kernels=KERNELS, weights=WEIGHTS, learn_widths=True)
    opt = torch.optim.SGD(net.parameters(), lr=50.0)
    for _ in range(3):
        opt.zero_grad()
        F.nll_loss(net.log_marginals((unary, image)), labels).backward()
        opt.step()
    assert torch.all(net.weights[0] > 0) and torch.all(net.widths[0] > 0)


def test_end_to_end_training_reaches_the_unary_net_and_lowers_the_loss():
    prob = ShapesSegmentationProblem(12, 12, 3, n_shapes=(1, 2), dtype=torch.float32, seed=0)
    images, labels = prob.sample_images(8, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = UnaryCRF(UnaryFCN(n_classes=3, width=6), CRFRNN.from_algorithm(3, 3, kernels=KERNELS, weights=WEIGHTS,
                                                                           dtype="float32"))
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    losses = []
    for _ in range(15):
        loss = F.nll_loss(model.log_marginals(images), labels)
        opt.zero_grad()
        loss.backward()
        assert model.unary.body[0].weight.grad.abs().max() > 0 and model.crf.weights.raw[0].grad.abs() .max() > 0
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0]


def test_save_load_with_learned_widths(tmp_path, batch):
    (unary, image), _ = batch
    net = CRFRNN.from_algorithm(3, 3, kernels=KERNELS, weights=WEIGHTS, tied=False, learn_widths=True)
    with torch.no_grad():
        net.widths.raw[1].add_(0.1)
        before = net((unary, image))
    save_model(net, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.config() == net.config()
    with torch.no_grad():
        torch.testing.assert_close(loaded((unary, image)), before, rtol=0, atol=0)


def test_bad_inputs_name_the_argument(batch):
    (unary, image), _ = batch
    net = CRFRNN.from_algorithm(3, 2, kernels=KERNELS, weights=WEIGHTS)
    with pytest.raises(ValueError, match="unary"):
        net((unary[:, :2], image))  # wrong number of labels
    with pytest.raises(ValueError, match="image"):
        net((unary, image[..., :-1]))
    with pytest.raises(ValueError, match="unary"):
        net(unary)
    with pytest.raises(ValueError, match="weights"):
        CRFRNN(3, 2, weights=(1.0, 0.0))
    with pytest.raises(ValueError, match="compatibility"):
        CRFRNN.from_algorithm(3, 2, compatibility=torch.zeros(2, 3, 3))


def test_baselines_have_more_parameters_and_keep_the_size():
    unary, cnn = UnaryFCN(n_classes=4), PlainCNN(n_classes=4)
    crf = CRFRNN(4, 10)
    assert cnn.n_parameters() > 10 * (unary.n_parameters() + sum(p.numel() for p in crf.parameters()))
    x = torch.rand(2, 3, 11, 13)
    assert unary(x).shape == cnn(x).shape == (2, 4, 11, 13)
    assert unary(x[0]).shape == (4, 11, 13)
    with pytest.raises(ValueError, match="image"):
        cnn(torch.rand(2, 1, 8, 8))
