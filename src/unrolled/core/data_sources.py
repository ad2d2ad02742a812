"""Where the Trainer's mini-batches come from: online sampling or a fixed dataset.

Both sources draw every random number from a ``torch.Generator`` owned by the
Trainer, so a run is reproducible from its seed and resumes exactly from a
checkpoint (the generator state and the source's own position are saved).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

Batch = tuple[Tensor, Tensor]


class OnlineData:
    """Fresh batches from a data model.

    Parameters
    ----------
    sample : callable
        ``sample(n, generator) -> (inputs, targets)``, e.g. the ``sample``
        method of a family's problem dataclass.
    """

    def __init__(self, sample: Callable[[int, torch.Generator], Batch]):
        if not callable(sample):
            raise ValueError("sample must be callable as sample(n, generator)")
        self.sample = sample

    def next_batch(self, batch_size: int, generator: torch.Generator, rank: int = 0, world: int = 1) -> Batch:
        """Draw ``batch_size // world`` fresh samples (each rank has its own generator)."""
        return self.sample(batch_size // world, generator)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        return None


class FixedData:
    """A fixed training set, reshuffled at every epoch.

    Parameters
    ----------
    inputs, targets : Tensor
        Batch-first tensors with the same first dimension.

    Notes
    -----
    Under data parallelism every rank draws the same permutation (their
    generators share a seed) and takes its own slice of each global batch, so
    ``world`` processes see exactly the batches one process would.
    """

    def __init__(self, inputs: Tensor, targets: Tensor):
        if inputs.shape[0] != targets.shape[0]:
            raise ValueError(
                f"inputs and targets must have the same number of samples, got {inputs.shape[0]} and {targets.shape[0]}"
            )
        if inputs.shape[0] == 0:
            raise ValueError("the training set is empty")
        self.inputs, self.targets = inputs, targets
        self._perm: Tensor | None = None
        self._pos = 0
        self.epoch = 0

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def next_batch(self, batch_size: int, generator: torch.Generator, rank: int = 0, world: int = 1) -> Batch:
        """The next ``batch_size`` samples of the epoch (this rank's slice of them)."""
        n = len(self)
        if batch_size > n:
            raise ValueError(f"batch_size {batch_size} exceeds the training set size {n}")
        if self._perm is None or self._pos + batch_size > n:
            self._perm = torch.randperm(n, generator=generator)
            self._pos = 0
            self.epoch += 1
        idx = self._perm[self._pos : self._pos + batch_size]
        self._pos += batch_size
        local = batch_size // world
        idx = idx[rank * local : (rank + 1) * local]
        return self.inputs[idx], self.targets[idx]

    def state_dict(self) -> dict:
        return {"perm": self._perm, "pos": self._pos, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self._perm, self._pos, self.epoch = state["perm"], int(state["pos"]), int(state["epoch"])


def as_data_source(data) -> OnlineData | FixedData:
    """Accept a source, a ``sample(n, generator)`` callable or an ``(inputs, targets)`` pair."""
    if isinstance(data, (OnlineData, FixedData)):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, Tensor) for t in data):
        return FixedData(*data)
    if callable(data):
        return OnlineData(data)
    raise ValueError("train_data must be a sample(n, generator) callable, an (inputs, targets) pair, or a data source")
