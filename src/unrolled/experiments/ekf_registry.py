"""The ``unrolled reproduce ekf-training`` entry (EKF training is a core method; registered by the
sparse-coding family's registration module, whose LISTA it trains beside an MLP)."""

from __future__ import annotations

from unrolled.core.registry import Experiment, register_experiment


def _ekf_training(out_dir, **kwargs):
    from unrolled.experiments.ekf_training import reproduce_ekf_training

    return reproduce_ekf_training(out_dir, **kwargs)


EXPERIMENT = register_experiment(Experiment(
    "ekf-training",
    "algorithm-unrolling-review, box 'Neural Network Training Using Extended Kalman Filter' (eqs. 27-30), Sec. IV-B",
    "epochs and wall-clock to reach target training losses, EKF vs SGD vs Adam through the one Trainer: MLPs on "
    "scikit-learn's breast-cancer and digits data and a small LISTA; the measured ratios beside the review's "
    "'orders of magnitude fewer epochs'",
    _ekf_training,
), "sparse_coding")
