"""The ``unrolled reproduce crf-rnn`` entry and the ``crf-rnn`` demo part (registered by the segmentation family)."""

from __future__ import annotations

from unrolled.core.registry import DemoPart, Experiment, register_demo_part, register_experiment


def _crf_rnn(out_dir, **kwargs):
    from unrolled.experiments.crf_rnn import reproduce_crf_rnn

    return reproduce_crf_rnn(out_dir, **kwargs)


def _demo(out_dir, **kwargs):
    from unrolled.experiments.crf_demo import run_crf_demo

    return run_crf_demo(out_dir, **kwargs)


EXPERIMENTS: dict[str, Experiment] = {
    "crf-rnn": Experiment(
        "crf-rnn",
        "Algorithm unrolling review, box 'Unrolling CRF into RNN' (eqs. 19-20, Fig. 12; Zheng et al.)",
        "random-shapes segmentation (32 x 32, 4 classes, noise and blur): mean IoU and pixel accuracy on held-out "
        "images of a small unary FCN alone, + dense-CRF mean field with weights tuned on validation, CRF-RNN "
        "trained end to end (K = 5, 10) and a deeper plain CNN; time per image side by side; fast vs exact "
        "filtering error",
        _crf_rnn,
    ),
}

for _e in EXPERIMENTS.values():
    register_experiment(_e, "segmentation")
register_demo_part(DemoPart("crf-rnn", "segmentation", 80, _demo))
