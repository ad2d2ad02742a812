"""Where the Trainer's mini-batches come from: online sampling or a fixed dataset.

Both sources draw every random number from a ``torch.Generator`` owned by the
Trainer, so a run is reproducible from its seed and resumes exactly from a
checkpoint (the generator state and the source's own position are saved).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

#: Inputs or targets of a batch: one batch-first tensor, or a tuple of them
#: (e.g. LPALM's targets ``(A, S)``); the model receives the same structure.
Part = Tensor | tuple[Tensor, ...]
Batch = tuple[Part, Part]


def is_part(data) -> bool:
    """Whether ``data`` is a tensor or a non-empty tuple/list of tensors."""
    if isinstance(data, Tensor):
        return True
    return isinstance(data, (tuple, list)) and len(data) > 0 and all(isinstance(t, Tensor) for t in data)


def part_len(part: Part) -> int:
    """Number of samples (first dimension) of a part; all tensors of a tuple must agree."""
    if isinstance(part, Tensor):
        return part.shape[0]
    sizes = {t.shape[0] for t in part}
    if len(sizes) != 1:
        raise ValueError(f"the tensors of a batch must have the same first dimension, got {sorted(sizes)}")
    return sizes.pop()


def part_index(part: Part, idx) -> Part:
    """Select samples ``idx`` (an index tensor or a slice) of every tensor of a part."""
    return part[idx] if isinstance(part, Tensor) else tuple(t[idx] for t in part)


def part_to(part: Part, device: torch.device) -> Part:
    """Move every tensor of a part to ``device``."""
    return part.to(device) if isinstance(part, Tensor) else tuple(t.to(device) for t in part)


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
    inputs, targets : Tensor or tuple of Tensor
        Batch-first tensors (or tuples of them) with the same first dimension.

    Notes
    -----
    Under data parallelism every rank draws the same permutation (their
    generators share a seed) and takes its own slice of each global batch, so
    ``world`` processes see exactly the batches one process would.
    """

    def __init__(self, inputs: Part, targets: Part):
        n_in, n_tg = part_len(inputs), part_len(targets)
        if n_in != n_tg:
            raise ValueError(f"inputs and targets must have the same number of samples, got {n_in} and {n_tg}")
        if n_in == 0:
            raise ValueError("the training set is empty")
        self.inputs, self.targets = inputs, targets
        self._perm: Tensor | None = None
        self._pos = 0
        self.epoch = 0

    def __len__(self) -> int:
        return part_len(self.inputs)

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
        return part_index(self.inputs, idx), part_index(self.targets, idx)

    def state_dict(self) -> dict:
        return {"perm": self._perm, "pos": self._pos, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self._perm, self._pos, self.epoch = state["perm"], int(state["pos"]), int(state["epoch"])


def as_data_source(data) -> OnlineData | FixedData:
    """Accept a source, a ``sample(n, generator)`` callable or an ``(inputs, targets)`` pair."""
    if isinstance(data, (OnlineData, FixedData)):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(is_part(t) for t in data):
        return FixedData(*data)
    if callable(data):
        return OnlineData(data)
    raise ValueError("train_data must be a sample(n, generator) callable, an (inputs, targets) pair, or a data source")
