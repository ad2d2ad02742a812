"""Evaluation kind of the segmentation family's pretrained model: FCN + CRF-RNN on simulated shapes."""

from __future__ import annotations

from pathlib import Path

import torch

from unrolled.pretrained._common import pooled, without_std


def shapes(net, ev, n_test, seed, baseline):
    """FCN + CRF-RNN (review eqs. (19)-(20), Fig. 12): mean IoU and pixel accuracy (one confusion matrix over the
    set, as in the reproduction) on fresh random-shapes images; (``baseline``) the unary FCN before fine-tuning
    (``baseline_unary.safetensors`` beside the model) alone and followed by the dense-CRF mean field with the
    widths and weights the training run tuned on validation images."""
    from safetensors.torch import load_file

    from unrolled.segmentation.data import ShapesSegmentationProblem
    from unrolled.segmentation.metrics import confusion_matrix, mean_iou, pixel_accuracy
    from unrolled.segmentation.training import crf_labels, predict
    from unrolled.segmentation.unary import UnaryFCN

    p = ev["problem"]
    L = p["n_classes"]
    prob = ShapesSegmentationProblem(p["size"], p["size"], L, noise_std=p["noise_std"], dtype=torch.float32,
                                     seed=p["seed"])
    X, y = prob.sample_images(n_test, torch.Generator().manual_seed(seed))

    def score(pred, res, boot_seed):
        conf = torch.stack([confusion_matrix(pred[i:i + 1], y[i:i + 1], L) for i in range(n_test)])
        pooled(res, "mean_iou", lambda i: mean_iou(conf[i].sum(0)), n_test, seed=boot_seed)
        pooled(res, "pixel_accuracy", lambda i: pixel_accuracy(conf[i].sum(0)), n_test, seed=boot_seed + 1)
        return res

    out = score(predict(net, X), {}, seed)
    base = {}
    if baseline:
        unary = UnaryFCN(**ev["unary_config"])
        unary.load_state_dict(load_file(str(Path(ev["model_dir"]) / "baseline_unary.safetensors")))
        unary.eval()
        with torch.no_grad():
            U = unary(X)
        crf = crf_labels(U, X, kernels=ev["crf_kernels"], weights=ev["crf_weights"], n_iter=ev["mf_iterations"],
                         stride=ev["stride"])
        base = without_std(score(crf, {}, seed))
        base.update({f"fcn_{k}": v for k, v in without_std(score(U.argmax(1), {}, seed)).items()})
    return out, base
