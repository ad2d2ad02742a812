"""The random-shapes data model and the segmentation scores."""

from __future__ import annotations

import pytest
import torch

from unrolled.segmentation.data import PALETTE, ShapesSegmentationProblem
from unrolled.segmentation.metrics import confusion_matrix, mean_iou, pixel_accuracy, scores


def test_sample_shapes_labels_and_seeds():
    prob = ShapesSegmentationProblem(20, 24, 4, seed=1)
    (unary, image), labels = prob.sample(6, torch.Generator().manual_seed(0))
    assert unary.shape == (6, 4, 20, 24) and image.shape == (6, 3, 20, 24) and labels.shape == (6, 20, 24)
    assert labels.dtype == torch.int64 and labels.min() >= 0 and labels.max() <= 3
    assert all(len(torch.unique(lab)) >= 2 for lab in labels)  # every image has a shape
    again = prob.sample(6, torch.Generator().manual_seed(0))
    assert torch.equal(again[0][1], image) and torch.equal(again[1], labels)
    other = ShapesSegmentationProblem(20, 24, 4, seed=2).sample(6, torch.Generator().manual_seed(0))
    assert not torch.equal(other[1], labels)


def test_class_colours_follow_the_palette_and_noise_is_as_set():
    prob = ShapesSegmentationProblem(32, 32, 4, noise_std=0.1, blur=0.0, colour_jitter=0.0, seed=0)
    images, labels = prob.sample_images(20, torch.Generator().manual_seed(0))
    for c in range(4):
        pix = images.permute(0, 2, 3, 1)[labels == c]
        assert torch.allclose(pix.mean(0), torch.tensor(PALETTE[c], dtype=torch.float64), atol=0.03), c
    bg = images.permute(0, 2, 3, 1)[labels == 0]
    assert bg.std(0).mean() == pytest.approx(0.1, rel=0.1)  # background has no texture: only the noise


def test_pixel_unary_beats_chance_and_less_noise_helps():
    accs = []
    for noise in (0.3, 0.05):
        prob = ShapesSegmentationProblem(24, 24, 4, noise_std=noise, blur=0.0, seed=0)
        (unary, _), labels = prob.sample(8, torch.Generator().manual_seed(0))
        accs.append(float((unary.argmax(1) == labels).double().mean()))
    assert accs[0] > 0.25 and accs[1] > 0.85  # chance is 1/4


def test_scores_against_a_hand_count():
    labels = torch.tensor([[0, 0, 1, 1], [2, 2, 2, 0]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 2, 0, 0]])
    conf = confusion_matrix(pred, labels, 3)
    assert conf.tolist() == [[2, 1, 0], [0, 2, 0], [1, 0, 2]]
    # IoU: class 0: 2 / (3 + 3 - 2) = 0.5; class 1: 2 / 3; class 2: 2 / 3
    assert mean_iou(conf) == pytest.approx((0.5 + 2 / 3 + 2 / 3) / 3)
    assert pixel_accuracy(conf) == pytest.approx(6 / 8)
    assert scores(pred, labels, 4)["mean_iou"] == pytest.approx(mean_iou(conf))  # absent class 3 ignored
    with pytest.raises(ValueError, match="pred"):
        confusion_matrix(pred[:1], labels, 3)
