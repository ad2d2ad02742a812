"""What :class:`~unrolled.core.train.Trainer` returns and raises.

:class:`TrainResult` (the value of :meth:`Trainer.fit <unrolled.core.train.Trainer.fit>`),
:class:`TrainingDivergedError` and :class:`CheckpointMismatchError`. Moved out of
:mod:`unrolled.core.train`, which re-exports them (``from unrolled.core.train import TrainResult`` keeps working).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TrainResult", "TrainingDivergedError", "CheckpointMismatchError"]


class TrainingDivergedError(RuntimeError):
    """Raised when the loss becomes NaN/inf or explodes, or a training batch holds NaN/inf.

    The model then holds the best weights seen so far, and the checkpoint on
    disk (when there is one) is the last good state.
    """


class CheckpointMismatchError(ValueError):
    """An existing checkpoint was written by a run with other settings (see :attr:`Trainer.fingerprint`)."""


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns.

    Attributes
    ----------
    best_val : float
        Validation loss of the weights the model holds at the end.
    history : list of dict
        One record per validation: stage, step, global_step, lr, train_loss, val_loss.
    stages : list of dict
        Per stage: name, steps run, best validation loss, whether it stopped early.
    n_steps : int
        Optimisation steps run in total (across resumptions).
    seconds : float
        Wall-clock training time, summed over every run that resumed the
        same checkpoint.
    time_limited : bool
        Whether ``time_limit`` ended training before the schedule was done
        (the stage it interrupted and the stages not run are marked in
        ``stages``).
    """

    best_val: float
    history: list[dict] = field(default_factory=list)
    stages: list[dict] = field(default_factory=list)
    n_steps: int = 0
    seconds: float = 0.0
    time_limited: bool = False
