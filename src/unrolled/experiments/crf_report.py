"""Tables and figures of ``unrolled reproduce crf-rnn`` (results.json, results.md, segmentations.png)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from unrolled.experiments.report import markdown_table, save_figure, write_json

#: What the review says (box "Unrolling CRF into RNN", Sec. III-C and III-E), beside which method shows it.
REVIEW_STATEMENTS = (
    ("deep networks are relatively less accurate in delineating the objects than CRFs; CRF post-processing helps",
     "unary FCN", "FCN + mean-field CRF (tuned)"),
    ("CRF-RNN resembles segmentation followed by CRF post-processing, while end-to-end training can be performed",
     "FCN + mean-field CRF (tuned)", "FCN + CRF-RNN K=10 (end to end)"),
    ("unrolled networks need far fewer parameters than conventional networks",
     "deeper plain CNN", "FCN + CRF-RNN K=10 (end to end)"),
    ("Liu et al. run one mean-field iteration for efficiency: fewer iterations cost less",
     "FCN + CRF-RNN K=10 (end to end)", "FCN + CRF-RNN K=5 (end to end)"),
)

PALETTE_LABELS = np.array([[0.15, 0.15, 0.15], [0.85, 0.35, 0.25], [0.3, 0.75, 0.4], [0.3, 0.4, 0.9],
                           [0.9, 0.85, 0.3], [0.75, 0.35, 0.8]])


def _row(name: str, r: dict) -> list:
    return [name, f"{r['mean_iou']:.3f}", f"{r['pixel_accuracy']:.3f}", r["n_parameters"], f"{r['ms_per_image']:.2f}"]


def _statement_rows(results: dict) -> list[list]:
    rows = []
    for text, a, b in REVIEW_STATEMENTS:
        if a in results and b in results:
            ra, rb = results[a], results[b]
            ours = (f"{a}: mIoU {ra['mean_iou']:.3f}, {ra['n_parameters']} params, {ra['ms_per_image']:.2f} ms; "
                    f"{b}: mIoU {rb['mean_iou']:.3f}, {rb['n_parameters']} params, {rb['ms_per_image']:.2f} ms")
            rows.append([text, ours])
    return rows


def results_markdown(payload: dict) -> str:
    res = payload["results"]
    table = markdown_table(["method", "mean IoU", "pixel accuracy", "# parameters", "ms / image"],
                           [_row(n, r) for n, r in res.items()])
    s = payload["settings"]
    tuned, ex = payload["tuned_crf"], payload["exact_filtering"]
    err_rows = [[k, f"{v['spatial']:.2e}", f"{v['bilateral']:.2e}"]
                for k, v in payload["filtering_relative_error"].items()]  # keys "stride s": block size s
    trained = [[n, ", ".join(f"{w:.3f}" for w in v["weights"]),
                "; ".join(" ".join(f"{x:+.2f}" for x in row) for row in v["compatibility"])]
               for n, v in payload["trained_crf"].items()]
    parts = [
        "# CRF-RNN: mean-field inference of the dense CRF, unrolled (review, eqs. (19)-(20), Fig. 12)",
        "",
        f"{'Quick run (tiny sizes: not a result). ' if payload['quick'] else ''}Random-shapes segmentation, "
        f"{s['size']} x {s['size']} pixels, {s['n_classes']} classes (background + 3), noise std {s['noise_std']}; "
        f"{s['n_train']} training, {s['n_val']} validation, {s['n_test']} held-out test images (seed "
        f"{payload['seed']}). Timings per image on the test set, measured in the same run with "
        f"{payload['threads']} thread(s) on {payload['device']}, batches of 16.",
        "",
        "## Held-out scores",
        "",
        table,
        "",
        f"Mean field: {s['mf_iterations']} iterations, fast filtering (stride {s['stride']}). Hand-tuned CRF "
        f"(grid of {tuned['grid_size']} settings on validation): widths (gamma, alpha, beta) = "
        f"{tuple(tuned['kernels'])}, weights (w_spatial, w_bilateral) = {tuple(tuned['weights'])}, validation "
        f"mIoU {tuned['validation_mean_iou']:.3f}. The same CRF with exact filtering: mIoU {ex['mean_iou']:.3f}, "
        f"pixel accuracy {ex['pixel_accuracy']:.3f}, {ex['ms_per_image']:.2f} ms / image, labels equal to the fast "
        f"filtering's on {100 * ex['label_agreement_with_fast']:.2f}% of the pixels.",
        "",
        "## The review's statements beside ours",
        "",
        markdown_table(["review", "ours (held-out)"], _statement_rows(res)),
        "",
        "## Fast filtering against exact (relative Frobenius error of the messages at Q = softmax(unary))",
        "",
        markdown_table(["bilateral blocks (s x s)", "spatial (separable, 4 widths)", "bilateral (down-sampled)"],
                       err_rows),
        "",
        "## Trained CRF-RNN parameters (tied layers)",
        "",
        markdown_table(["net", "w (spatial, bilateral)", "compatibility mu (rows l, columns l')"], trained),
        "",
        "![segmentations](segmentations.png)",
        "",
    ]
    return "\n".join(parts)


def _colour(labels: torch.Tensor) -> np.ndarray:
    return PALETTE_LABELS[labels.numpy()]


def plot_segmentations(path: Path, images: torch.Tensor, labels: torch.Tensor, preds: dict[str, torch.Tensor]) -> None:
    """Rows: test images; columns: image, ground truth, each method's labels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = images.shape[0]
    cols = ["image", "ground truth", *preds]
    fig, axes = plt.subplots(n, len(cols), figsize=(1.9 * len(cols), 1.9 * n + 0.4), squeeze=False)
    for i in range(n):
        img = images[i].permute(1, 2, 0).numpy()
        panels = [np.clip(img, 0, 1), _colour(labels[i])] + [_colour(p[i]) for p in preds.values()]
        for j, (ax, panel) in enumerate(zip(axes[i], panels)):
            ax.imshow(panel, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(cols[j].replace(" (end to end)", "").replace("FCN + ", "+ "), fontsize=7)
    save_figure(fig, path)


def write_outputs(out: Path, payload: dict, images, labels, preds) -> None:
    write_json(out / "results.json", payload)
    (out / "results.md").write_text(results_markdown(payload))
    plot_segmentations(out / "segmentations.png", images, labels, preds)
