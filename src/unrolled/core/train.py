"""One Trainer for every family.

Features: online sampling or a fixed dataset; Adam (or SGD, or the
extended-Kalman-filter optimiser :class:`~unrolled.core.ekf.EKF`) with a
per-stage learning rate schedule; validation-based best-model selection;
layer-wise (stage-wise) schedules (:mod:`unrolled.core.stages`); checkpoints that resume exactly; a
NaN/divergence guard; tqdm progress bars; and data-parallel training with
``torch.distributed`` (DDP) when the process is launched under ``torchrun``.

Checkpointing (the run's fingerprint, writing and resuming the training state) is in
:mod:`unrolled.core.checkpoint`, the NaN/divergence guard in :mod:`unrolled.core.divergence`, the argument
checks in :mod:`unrolled.core.train_options`, the result and error types in :mod:`unrolled.core.train_result`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm.auto import tqdm

from unrolled.core.checkpoint import CHECKPOINT_FILE, CheckpointMixin
from unrolled.core.data_sources import as_data_source, part_index, part_len, part_to
from unrolled.core.distributed import init_distributed_from_env
from unrolled.core.divergence import DivergenceGuardMixin, _non_finite
from unrolled.core.ekf import EKF
from unrolled.core.stages import Stage, end_to_end
from unrolled.core.train_options import (ON_MISMATCH, OPTIMIZERS, SCHEDULES, optimizer_class,
                                         check_stage_time_weights, check_trainer_options)
from unrolled.core.train_result import CheckpointMismatchError, TrainingDivergedError, TrainResult
from unrolled.core.unrolled_net import UnrolledNet

# The checkpoint methods live in unrolled.core.checkpoint, the divergence guard in unrolled.core.divergence, the
# result and error types in unrolled.core.train_result; they are re-exported here (the import paths of unrolled.core.train keep working).
__all__ = ["Trainer", "TrainResult", "TrainingDivergedError", "CheckpointMismatchError", "CHECKPOINT_FILE",
           "SCHEDULES", "ON_MISMATCH", "OPTIMIZERS"]

class Trainer(CheckpointMixin, DivergenceGuardMixin):
    """Train any model by minimising ``loss_fn(model(inputs), targets)``.

    Parameters
    ----------
    model : nn.Module
        The network. Layer-wise stages need an
        :class:`~unrolled.core.unrolled_net.UnrolledNet`.
    loss_fn : callable
        ``loss_fn(prediction, target) -> scalar tensor``.
    train_data : callable, (inputs, targets) pair, or data source
        ``sample(n, generator)`` for online sampling (fresh data every batch),
        or a fixed training set. Inputs and targets are batch-first tensors or
        tuples of them (e.g. ``(A, S)`` targets); the model receives the inputs
        and ``loss_fn`` the targets with the same structure.
    val_data : (inputs, targets) pair
        Held-out validation set, structured like the training data; the weights
        with the lowest validation loss of each stage are kept.
    stages : list of Stage, optional
        The schedule (default: one end-to-end stage of ``max_steps`` at ``lr``).
    lr, max_steps, patience : optional
        Used only to build the default schedule.
    batch_size : int
        Global mini-batch size (split across processes under DDP).
    val_every : int
        Steps between validations (and checkpoints).
    checkpoint_every : int
        Validations between checkpoint writes (default 1: every validation);
        the end of every stage is always written. A resumed run restarts from
        the last write, exactly. Not part of the fingerprint (it does not
        change the training).
    time_limit : float, optional
        Seconds of training (summed over resumptions, as
        :attr:`TrainResult.seconds`) after which :meth:`fit` stops at the next
        validation: the running stage ends with its best weights and the
        remaining stages are skipped (:attr:`TrainResult.time_limited`). The
        state is checkpointed, so re-running a finished run returns at once.
        Not part of the fingerprint.
    stage_time_weights : list of float, optional
        Share ``time_limit`` among the stages (one positive weight per stage):
        each stage, when it starts, gets the time left times its weight over
        the weights of the stages left, and ends at the first validation past
        that (with its best weights; ``stage_time_limited`` in its summary).
        Time a stage leaves unused (patience) goes to the later ones. Needs
        ``time_limit``; not part of the fingerprint.
    schedule : {'constant', 'cosine', 'linear'}
        Learning-rate decay inside each stage, from the stage's ``lr``.
    grad_clip : float, optional
        Clip the gradient norm to this value (``> 0``).
    checkpoint_dir : str or Path, optional
        Write ``checkpoint.pt`` there at every validation; an existing one is
        resumed from (exactly: weights, optimiser, random generator, stage and
        step) when it was written by the same run, i.e. with the same
        :attr:`fingerprint`. After a divergence it holds the last good state
        (never weights written after the blow-up).
    seed : int
        Seeds the data generator (rank ``r`` of an online run uses ``seed + r``).
    device : str or torch.device, optional
        Default: the model's device.
    progress : bool
        Show progress bars (rank 0 only).
    divergence_factor : float
        Stop when a training or validation loss exceeds this multiple of the
        first validation loss (or is NaN/inf); must be ``> 1``. A training
        batch with NaN/inf entries stops training the same way.
    callbacks : list of callable
        Called as ``cb(trainer, record)`` after every validation (and checkpoint).
    val_batch_size : int
        Chunk size of the validation forward passes.
    compile : bool
        Run the training forward/backward through ``torch.compile`` (fuses the many small ops of
        recurrent nets; costs a one-off compilation of tens of seconds). Validation stays eager.
    fingerprint : dict, optional
        Extra JSON-serialisable settings that define the run (e.g. the data
        model's configuration), added to the fingerprint as ``user.<key>``.
        The fingerprint always holds the model class, its ``config()`` and a
        digest of its initial weights, the training data (a digest of a fixed
        set, the sampler's name for online data), a digest of the validation
        set, the loss, seed, batch size, validation interval, schedule,
        stages, gradient clipping, optimiser and number of processes.
    on_mismatch : {'error', 'restart', 'resume'}
        What to do with a checkpoint whose fingerprint differs: raise a
        :class:`CheckpointMismatchError` listing the differing fields
        (default), delete it and start over, or continue from it with the new
        settings (e.g. a lower learning rate after a divergence; the number of
        stages must match).
    optimizer : {'adam', 'sgd', 'ekf'}
        ``'ekf'``: the extended Kalman filter (:class:`~unrolled.core.ekf.EKF`).
        It needs no gradient of the loss: each step hands it the batch's model
        outputs (still attached to the graph) and targets,
        ``optimizer.step(outputs, targets)``, and it fits the outputs to the
        targets in least squares; ``loss_fn`` still gives the training and
        validation losses that are logged, guarded and used for model
        selection. The stage's ``lr`` is the filter's learning rate
        (``R_k = R / lr``; typical values are near 1, not Adam's 1e-3). Runs in
        one process, without ``grad_clip``.
    optimizer_options : dict, optional
        Keyword arguments of the optimiser besides ``lr`` (e.g. ``{'P0': 10,
        'Q': 1e-6, 'decoupling': 'parameter'}`` for EKF, ``{'momentum': 0.9}``
        for SGD).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        train_data,
        val_data: tuple[Tensor, Tensor],
        *,
        stages: list[Stage] | None = None,
        lr: float = 1e-3,
        max_steps: int = 1000,
        patience: int | None = None,
        batch_size: int = 64,
        val_every: int = 50,
        checkpoint_every: int = 1,
        time_limit: float | None = None,
        stage_time_weights: list[float] | None = None,
        schedule: str = "constant",
        grad_clip: float | None = None,
        checkpoint_dir: str | Path | None = None,
        seed: int = 0,
        device: str | torch.device | None = None,
        progress: bool = True,
        divergence_factor: float = 1e4,
        callbacks: list[Callable] | None = None,
        val_batch_size: int = 1024,
        compile: bool = False,
        fingerprint: dict | None = None,
        on_mismatch: str = "error",
        optimizer: str = "adam",
        optimizer_options: dict | None = None,
    ):
        options = check_trainer_options(
            loss_fn=loss_fn, val_data=val_data, schedule=schedule, batch_size=batch_size, val_every=val_every,
            val_batch_size=val_batch_size, checkpoint_every=checkpoint_every, grad_clip=grad_clip,
            time_limit=time_limit, divergence_factor=divergence_factor, on_mismatch=on_mismatch, optimizer=optimizer,
            optimizer_options=optimizer_options, fingerprint=fingerprint)
        self.stages = list(stages) if stages is not None else end_to_end(lr, max_steps, patience)
        if not self.stages:
            raise ValueError("stages must not be empty")
        self.stage_time_weights = check_stage_time_weights(stage_time_weights, time_limit, len(self.stages))
        if any(s.active_layers is not None for s in self.stages) and not isinstance(model, UnrolledNet):
            raise ValueError("stages with active_layers need an UnrolledNet model")
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.rank, self.world = init_distributed_from_env(self.device)
        if optimizer == "ekf" and self.world > 1:
            raise ValueError("optimizer='ekf' runs in one process (its covariance is not shared across ranks)")
        self.optimizer_name, self.optimizer_options = optimizer, options
        if batch_size % self.world:
            raise ValueError(f"batch_size {batch_size} must be divisible by the {self.world} processes")
        self.model = model.to(self.device)
        self.loss_fn = loss_fn
        self.data = as_data_source(train_data)
        self.val_inputs, self.val_targets = (part_to(t, self.device) for t in val_data)
        if part_len(self.val_inputs) != part_len(self.val_targets):
            raise ValueError("val_data inputs and targets must have the same number of samples")
        if part_len(self.val_inputs) == 0:
            raise ValueError("val_data has 0 samples; the validation set needs at least one")
        self.batch_size, self.val_every, self.schedule = batch_size, val_every, schedule
        self.checkpoint_every, self.time_limit = int(checkpoint_every), time_limit
        self.grad_clip, self.divergence_factor = grad_clip, divergence_factor
        self.val_batch_size = val_batch_size
        self.compile = bool(compile)
        self.callbacks = list(callbacks or [])
        self.progress = progress and self.rank == 0
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        online = not hasattr(self.data, "inputs")
        self.generator = torch.Generator().manual_seed(int(seed) + (self.rank if online else 0))
        self.seed = seed
        # Progress state (all of it goes into checkpoints).
        self.stage_index, self.step, self.global_step = 0, 0, 0
        self.best_val, self.best_state, self.bad_validations = math.inf, None, 0
        self.reference_loss: float | None = None
        self.train_seconds = 0.0  # accumulated over resumptions
        self.time_limited = False
        self.stage_deadline: float | None = None  # training seconds at which the running stage ends
        self._validations = 0  # since the last checkpoint write (not checkpointed: a resume starts at a write)
        self._clock = (time.perf_counter(), 0.0)
        self.history: list[dict] = []
        self.stage_summaries: list[dict] = []
        self.optimizer: torch.optim.Optimizer | None = None
        self.on_mismatch = on_mismatch
        self.fingerprint = self._fingerprint(fingerprint)
        self._good: dict | None = None  # the last good training state (what a divergence rolls back to)

    # ------------------------------------------------------------------ helpers
    @torch.no_grad()
    def validate(self) -> float:
        """Mean validation loss of the current weights (sample-weighted over chunks)."""
        was_training = self.model.training
        self.model.eval()
        total, count = 0.0, 0
        for i in range(0, part_len(self.val_inputs), self.val_batch_size):
            chunk = slice(i, i + self.val_batch_size)
            xb, tb = part_index(self.val_inputs, chunk), part_index(self.val_targets, chunk)
            n = part_len(xb)
            total += float(self._check_loss(self.loss_fn(self.model(xb), tb))) * n
            count += n
        self.model.train(was_training)
        return total / count

    @staticmethod
    def _check_loss(loss) -> Tensor:
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            shape = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
            raise ValueError(f"loss_fn must return a scalar tensor (reduce over the batch, e.g. with .mean()), "
                             f"got {shape}")
        return loss.reshape(())

    def _stage_parameters(self, stage: Stage) -> list[nn.Parameter]:
        if stage.params == "new":
            return list(self.model.layer_parameters(stage.active_layers - 1))
        return [p for p in self.model.parameters()]

    def _lr(self, stage: Stage, step: int) -> float:
        frac = step / stage.max_steps
        if self.schedule == "cosine":
            return stage.lr * 0.5 * (1.0 + math.cos(math.pi * frac))
        if self.schedule == "linear":
            return stage.lr * (1.0 - frac)
        return stage.lr

    def _snapshot(self) -> dict[str, Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _begin_stage(self, stage: Stage, optimizer_state: dict | None = None) -> tuple[nn.Module, list[nn.Parameter]]:
        if stage.active_layers is not None:
            self.model.active_layers = stage.active_layers
        elif isinstance(self.model, UnrolledNet):
            self.model.active_layers = self.model.n_layers
        params = self._stage_parameters(stage)
        ids = {id(p) for p in params}
        for p in self.model.parameters():
            p.requires_grad_(id(p) in ids)
        # one parameter group per learning-rate scale (see LayerParameter's lr_scale)
        groups: dict[float, list[nn.Parameter]] = {}
        for p in params:
            groups.setdefault(getattr(p, "lr_scale", 1.0), []).append(p)
        self.optimizer = optimizer_class(self.optimizer_name)(
            [{"params": ps, "lr": stage.lr * s, "lr_scale": s} for s, ps in sorted(groups.items())],
            **self.optimizer_options,
        )
        if optimizer_state is not None:
            self.optimizer.load_state_dict(optimizer_state)
        net = torch.compile(self.model) if self.compile else self.model
        if self.world > 1:
            net = nn.parallel.DistributedDataParallel(self.model, find_unused_parameters=True)
        return net, params

    # -------------------------------------------------------------- clock
    def _elapsed(self) -> float:
        start, before = self._clock
        return before + time.perf_counter() - start

    # ------------------------------------------------------------------- train
    def fit(self) -> TrainResult:
        """Run (or resume) the whole schedule; returns a :class:`TrainResult`.

        Raises
        ------
        TrainingDivergedError
            When the loss turns NaN/inf or explodes. The model then holds the
            best weights seen so far, and the checkpoint on disk is the last
            good one.
        """
        optimizer_state = self._load_checkpoint()
        self._clock = (time.perf_counter(), self.train_seconds)
        if self.reference_loss is None:
            self.reference_loss = self.validate()
            if not math.isfinite(self.reference_loss):
                raise TrainingDivergedError(f"the initial validation loss is {self.reference_loss}: check the model and data")
        # one bar over all stages (its ETA an upper bound: a stage that stops early skips its remaining steps)
        self._overall = tqdm(total=sum(s.max_steps for s in self.stages),
                             initial=sum(s.max_steps for s in self.stages[:self.stage_index]) + self.step,
                             desc=f"training, {len(self.stages)} stages", unit="step", dynamic_ncols=True,
                             disable=not self.progress or len(self.stages) < 2)
        try:
            while self.stage_index < len(self.stages):
                stage = self.stages[self.stage_index]
                self._run_stage(stage, optimizer_state)
                optimizer_state = None
                if self.time_limited and self.stage_index < len(self.stages):
                    for skipped in self.stages[self.stage_index:]:
                        self.stage_summaries.append({"stage": skipped.name, "steps": 0, "best_val": None,
                                                     "stopped_early": False, "skipped": True})
                    self.stage_index = len(self.stages)
                    self.save_checkpoint(good=True)
        finally:
            self._overall.close()
        for p in self.model.parameters():  # stages froze some; hand back a fully trainable model
            p.requires_grad_(True)
        if self.world > 1:
            dist.barrier()
        return TrainResult(
            best_val=self.best_val if self.stage_summaries else self.reference_loss,
            history=list(self.history),
            stages=list(self.stage_summaries),
            n_steps=self.global_step,
            seconds=self.train_seconds,
            time_limited=self.time_limited,
        )

    def _run_stage(self, stage: Stage, optimizer_state: dict | None) -> None:
        resumed = optimizer_state is not None or self.step > 0
        net, params = self._begin_stage(stage, optimizer_state)
        if not resumed:
            self.best_val, self.bad_validations = self.validate(), 0
            self.best_state = self._snapshot()
            self.stage_deadline = None
            if self.stage_time_weights is not None:
                now = self._elapsed()
                weights = self.stage_time_weights[self.stage_index:]
                self.stage_deadline = now + max(self.time_limit - now, 0.0) * weights[0] / sum(weights)
            self._good = self._state()  # the stage's start: good by definition (not written yet)
        bar = tqdm(total=stage.max_steps, initial=self.step, desc=f"[{self.stage_index + 1}/{len(self.stages)}] {stage.name}",
                   disable=not self.progress, leave=False, dynamic_ncols=True,
                   position=0 if self._overall.disable else 1)
        # a run interrupted right at the validation that triggered early stopping
        # must not resume training the stage
        stopped_early = resumed and stage.patience is not None and self.bad_validations >= stage.patience
        out_of_time = resumed and not stopped_early and self._stage_out_of_time()
        running = 0.0
        while not stopped_early and not out_of_time and not self.time_limited and self.step < stage.max_steps:
            lr = self._lr(stage, self.step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr * group["lr_scale"]
            inputs, targets = self.data.next_batch(self.batch_size, self.generator, self.rank, self.world)
            inputs, targets = part_to(inputs, self.device), part_to(targets, self.device)
            bad = [name for name, part in (("inputs", inputs), ("targets", targets)) if _non_finite(part)]
            if self._any_rank(bool(bad)):
                where = " and ".join(bad) if bad else "data (on another process)"
                self._diverged(stage, f"the training batch holds NaN or inf in its {where}", "Check the training data.")
            self.optimizer.zero_grad(set_to_none=True)
            outputs = net(inputs)
            loss = self._check_loss(self.loss_fn(outputs, targets))
            ekf = isinstance(self.optimizer, EKF)
            if not ekf:
                loss.backward()
            loss_value = float(loss.detach())
            self._guard(loss_value, params, stage)
            if self.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
            if ekf:
                self.optimizer.step(outputs, targets)
            else:
                self.optimizer.step()
            self.step += 1
            self.global_step += 1
            running += loss_value
            bar.update(1)
            self._overall.update(1)
            if self.step % self.val_every == 0 or self.step == stage.max_steps:
                n_avg = (self.step - 1) % self.val_every + 1
                stopped_early = self._validation_point(stage, lr, running / n_avg, bar)
                running = 0.0
                out_of_time = not stopped_early and self._stage_out_of_time()
                if stopped_early or out_of_time or self.time_limited:
                    break
        bar.close()
        self._overall.update(stage.max_steps - self.step)  # the steps an early stop left out
        self.model.load_state_dict(self.best_state)
        summary = {"stage": stage.name, "steps": self.step, "best_val": self.best_val, "stopped_early": stopped_early}
        if self.time_limited:
            summary["time_limited"] = True
        if out_of_time:
            summary["stage_time_limited"] = True
        self.stage_summaries.append(summary)
        self.stage_deadline = None
        self.stage_index += 1
        self.step = 0
        self.optimizer = None
        self.save_checkpoint(good=True)  # the model holds the stage's best weights

    def _validation_point(self, stage: Stage, lr: float, train_loss: float, bar) -> bool:
        val = self.validate()
        if not math.isfinite(val) or val > self.divergence_factor * max(self.reference_loss, 1e-30):
            self._diverged(stage, f"validation loss {val:.4g} after this step (first validation loss "
                                  f"{self.reference_loss:.4g})", "Lower the learning rate or set grad_clip.", taken=True)
        improved = val < self.best_val
        if improved:
            self.best_val, self.best_state, self.bad_validations = val, self._snapshot(), 0
        else:
            self.bad_validations += 1
        record = {"stage": stage.name, "step": self.step, "global_step": self.global_step, "lr": lr,
                  "train_loss": train_loss, "val_loss": val}
        self.history.append(record)
        bar.set_postfix(train=f"{train_loss:.3e}", val=f"{val:.3e}", best=f"{self.best_val:.3e}")
        self.train_seconds = self._elapsed()
        if self.time_limit is not None and self.train_seconds >= self.time_limit:
            self.time_limited = True  # the stage ends here; its end writes the checkpoint
        self._validations += 1
        patience_out = stage.patience is not None and self.bad_validations >= stage.patience
        stops = self.time_limited or patience_out or self._stage_out_of_time()
        if stops or self._validations >= self.checkpoint_every:
            self.save_checkpoint(good=improved)
        elif improved:  # not written this time; kept in memory as the state a divergence rolls back to
            self.train_seconds = self._elapsed()
            self._good = self._state()
        for cb in self.callbacks:
            cb(self, record)
        return patience_out  # (a stage that runs out of patience and of time at once counts as stopped early)

    def _stage_out_of_time(self) -> bool:
        """Whether the running stage has spent its share of ``time_limit`` (see ``stage_time_weights``)."""
        return self.stage_deadline is not None and self.train_seconds >= self.stage_deadline
