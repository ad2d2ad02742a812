"""Checkpoints of a :class:`~unrolled.core.train.Trainer` run: the fingerprint, the training state, writing and resuming.

A checkpoint (``checkpoint_dir / CHECKPOINT_FILE``, written atomically by rank 0) holds the full training state:
weights, optimiser, random generator, data-source state, stage and step, the best weights and validation loss,
the history, the accumulated training seconds and the run's :attr:`~unrolled.core.train.Trainer.fingerprint`.
A run resumes it, exactly, only when its fingerprint is the same (``on_mismatch`` says what happens otherwise).
Loading uses ``torch.load(..., weights_only=True)``: a checkpoint file never runs code.

Moved out of :mod:`unrolled.core.train` as :class:`CheckpointMixin`, whose methods
:class:`~unrolled.core.train.Trainer` inherits (``unrolled.core.train.CHECKPOINT_FILE`` keeps working).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import torch

from unrolled.core.fingerprint import fingerprint_differences, qualname, tensor_digest, to_json
from unrolled.core.train_result import CheckpointMismatchError

__all__ = ["CHECKPOINT_FILE", "CheckpointMixin"]

CHECKPOINT_FILE = "checkpoint.pt"


class CheckpointMixin:
    """The checkpoint methods of :class:`~unrolled.core.train.Trainer` (not usable on its own).

    They read and write the trainer's progress state (``model``, ``optimizer``, ``generator``, ``data``,
    ``stage_index``, ``step``, ``global_step``, ``best_val``, ``best_state``, ``bad_validations``,
    ``reference_loss``, ``train_seconds``, ``history``, ``stage_summaries``, ``time_limited``,
    ``stage_deadline``, ``stages``, ``fingerprint``) and its settings (``checkpoint_dir``, ``rank``,
    ``device``, ``on_mismatch``), and call its ``_snapshot()`` and ``_elapsed()``.
    """

    def _fingerprint(self, extra: dict | None) -> dict:
        """Everything that defines the run; a checkpoint is resumed only by a run with the same fingerprint."""
        config = None
        if hasattr(self.model, "config"):
            try:
                config = to_json(self.model.config())
            except NotImplementedError:
                config = None
        if hasattr(self.data, "inputs"):
            train = "fixed:" + tensor_digest(self.data.inputs, self.data.targets)
        else:
            train = "online:" + qualname(self.data.sample)
        fp = {
            "model": qualname(type(self.model)),
            "model_config": config,
            "model_init": tensor_digest(self.model.state_dict()),  # e.g. the dictionary a net was built from
            "train_data": train,
            "val_data": tensor_digest(self.val_inputs, self.val_targets),
            "loss": qualname(self.loss_fn),
            "seed": int(self.seed),
            "batch_size": self.batch_size,
            "val_every": self.val_every,
            "schedule": self.schedule,
            "stages": [s.to_dict() for s in self.stages],
            "grad_clip": self.grad_clip,
            "optimizer": "Adam" if self.optimizer_name == "adam" and not self.optimizer_options
            else {"name": self.optimizer_name, **self.optimizer_options},
            "world_size": self.world,
        }
        for key, value in (extra or {}).items():
            fp[f"user.{key}"] = value
        return to_json(fp)

    def _checkpoint_path(self) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / CHECKPOINT_FILE

    def _state(self) -> dict:
        """The full training state, as a checkpoint holds it (tensors copied)."""
        return {
            "model": self._snapshot(),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()) if self.optimizer is not None else None,
            "generator": self.generator.get_state(),
            "data": copy.deepcopy(self.data.state_dict()),
            "stage_index": self.stage_index,
            "step": self.step,
            "global_step": self.global_step,
            "best_val": self.best_val,
            "best_state": self.best_state,
            "bad_validations": self.bad_validations,
            "reference_loss": self.reference_loss,
            "train_seconds": self.train_seconds,
            "history": list(self.history),
            "stage_summaries": list(self.stage_summaries),
            "time_limited": self.time_limited,
            "stage_deadline": self.stage_deadline,
            "n_stages": len(self.stages),
            "fingerprint": self.fingerprint,
        }

    def _write(self, state: dict) -> None:
        path = self._checkpoint_path()
        if path is None or self.rank != 0:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)

    def save_checkpoint(self, *, good: bool = False) -> None:
        """Write the full training state (rank 0 only), atomically.

        ``good=True`` also keeps it in memory as the last good state: the one a
        divergence rolls the model and the checkpoint back to.
        """
        self.train_seconds = self._elapsed()  # the time a resumed run continues from
        self._validations = 0
        if self._checkpoint_path() is None and not good:
            return
        state = self._state()
        if good:
            self._good = state
        self._write(state)

    def _load_checkpoint(self) -> dict | None:
        path = self._checkpoint_path()
        if path is None or not path.is_file():
            return None
        state = torch.load(path, map_location=self.device, weights_only=True)
        differ = self._fingerprint_differences(state.get("fingerprint"))
        if differ:
            if self.on_mismatch == "restart":
                if self.rank == 0:
                    path.unlink()
                return None
            if self.on_mismatch == "error":
                raise CheckpointMismatchError(
                    f"checkpoint {path} was written by a run with other settings (saved -> now):\n  "
                    + "\n  ".join(differ)
                    + "\nPass on_mismatch='restart' (`unrolled train --fresh`) to start over, or "
                      "on_mismatch='resume' to continue from it with the new settings"
                )
        if state["n_stages"] != len(self.stages):
            raise CheckpointMismatchError(
                f"checkpoint {path} was written for {state['n_stages']} stages, this schedule has {len(self.stages)}")
        self.model.load_state_dict(state["model"])
        self.generator.set_state(state["generator"].cpu())
        self.data.load_state_dict(state["data"])
        for key in ("stage_index", "step", "global_step", "best_val", "best_state", "bad_validations",
                    "reference_loss", "train_seconds", "history", "stage_summaries"):
            setattr(self, key, state[key])
        self.time_limited = bool(state.get("time_limited", False))  # absent from older checkpoints
        self.stage_deadline = state.get("stage_deadline")
        state["fingerprint"] = self.fingerprint
        self._good = state
        return state["optimizer"]

    def _fingerprint_differences(self, saved: dict | None) -> list[str]:
        """``'field: saved -> now'`` for every field of the fingerprint that differs."""
        return fingerprint_differences(saved, self.fingerprint)
