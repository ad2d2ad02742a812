"""The NaN/divergence guard of :class:`~unrolled.core.train.Trainer`.

A training batch with NaN/inf entries, a loss that turns NaN/inf or exceeds ``divergence_factor`` times the first
validation loss, or a non-finite gradient stops training: the model gets back the best weights seen so far, the
checkpoint on disk is rolled back to the last good state, and :class:`~unrolled.core.train_result.TrainingDivergedError`
is raised. Under DDP every rank stops together.

Moved out of :mod:`unrolled.core.train` as :class:`DivergenceGuardMixin`, whose methods the Trainer inherits.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import Tensor, nn

from unrolled.core.stages import Stage
from unrolled.core.train_result import TrainingDivergedError

__all__ = ["DivergenceGuardMixin"]


def _non_finite(part) -> bool:
    tensors = (part,) if isinstance(part, Tensor) else part
    return any((t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()) for t in tensors)


class DivergenceGuardMixin:
    """The divergence-guard methods of :class:`~unrolled.core.train.Trainer` (not usable on its own).

    They read the trainer's ``world``, ``device``, ``reference_loss``, ``divergence_factor``, ``best_state``,
    ``model``, ``step``, ``global_step`` and ``_good`` (the last good training state), and call its
    ``_checkpoint_path()`` and ``_write()`` (:class:`~unrolled.core.checkpoint.CheckpointMixin`).
    """

    def _any_rank(self, flag: bool) -> bool:
        """``flag`` or'ed over the processes (every rank must stop together, or the others hang)."""
        if self.world > 1:
            t = torch.tensor([float(flag)], device=self.device)
            dist.all_reduce(t)
            return bool(t.item() > 0)
        return flag

    def _guard(self, loss_value: float, params: list[nn.Parameter], stage: Stage) -> None:
        bad = not math.isfinite(loss_value) or loss_value > self.divergence_factor * max(self.reference_loss, 1e-30)
        if not bad:
            grads = [p.grad for p in params if p.grad is not None]
            # one host sync: a NaN/inf entry makes its tensor's sum non-finite; a non-finite sum of finite
            # entries (overflow) is then told apart by the exact per-tensor test
            if grads and not bool(torch.isfinite(torch.stack([g.sum() for g in grads])).all()):
                bad = any(not torch.isfinite(g).all() for g in grads)
        if self._any_rank(bad):
            self._diverged(stage, f"loss {loss_value:.4g} (first validation loss {self.reference_loss:.4g})",
                           "Lower the learning rate or set grad_clip.")

    def _diverged(self, stage: Stage, what: str, advice: str, taken: bool = False) -> None:
        """Restore the best weights, roll the checkpoint back to the last good state, and raise.

        ``taken``: the step at fault is the one just taken (else the one about to be).
        """
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        d = 0 if taken else 1
        where = f"stage {stage.name!r}, step {self.step + d} (global step {self.global_step + d})"
        path = self._checkpoint_path()
        kept = ""
        if path is not None and self._good is not None:
            self._write(self._good)  # never leave a checkpoint written after the blow-up on disk
            kept = (f"; the checkpoint {path} holds the last good state (stage {self._good['stage_index'] + 1}, "
                    f"step {self._good['step']}); resume from it with other settings via on_mismatch='resume'")
        raise TrainingDivergedError(
            f"training diverged at {where}: {what}. The model holds the best weights seen so far{kept}. {advice}"
        )
