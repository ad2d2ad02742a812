"""Training schedules: a list of stages, each with its depth, its parameters and its learning rate."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass


def _is_int(value, minimum: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Integral) and value >= minimum


@dataclass(frozen=True)
class Stage:
    """One phase of training.

    Attributes
    ----------
    name : str
        Label used in logs and histories.
    lr : float
        Peak learning rate of the stage.
    max_steps : int
        Optimisation steps at most.
    active_layers : int or None
        Depth of the network during the stage (``None``: all layers).
    params : {'all', 'new'}
        ``'all'``: every parameter the forward pass uses; ``'new'``: only the
        parameters of the deepest active layer (the layer just added).
    patience : int or None
        Stop the stage early after this many validations without improvement.
    """

    name: str
    lr: float
    max_steps: int
    active_layers: int | None = None
    params: str = "all"
    patience: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.lr, bool) or not isinstance(self.lr, numbers.Real) or not (
                math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"stage {self.name!r}: lr must be a finite number > 0, got {self.lr!r}")
        if not _is_int(self.max_steps, 1):
            raise ValueError(f"stage {self.name!r}: max_steps must be an int >= 1, got {self.max_steps!r}")
        if self.active_layers is not None and not _is_int(self.active_layers, 1):
            raise ValueError(f"stage {self.name!r}: active_layers must be None or an int >= 1, "
                             f"got {self.active_layers!r}")
        if self.patience is not None and not _is_int(self.patience, 1):
            raise ValueError(f"stage {self.name!r}: patience must be None or an int >= 1 (validations without "
                             f"improvement), got {self.patience!r}")
        if self.params not in ("all", "new"):
            raise ValueError(f"stage {self.name!r}: params must be 'all' or 'new', got {self.params!r}")
        if self.params == "new" and self.active_layers is None:
            raise ValueError(f"stage {self.name!r}: params='new' needs active_layers")

    def to_dict(self) -> dict:
        return asdict(self)


def end_to_end(lr: float, max_steps: int, patience: int | None = None) -> list[Stage]:
    """A single stage training every layer at once."""
    return [Stage("end-to-end", lr, max_steps, None, "all", patience)]


def layerwise(
    n_layers: int,
    lr: float,
    max_steps: int,
    *,
    decays: tuple[float, ...] = (0.2, 0.02),
    patience: int | None = None,
    first_layer: int = 1,
) -> list[Stage]:
    """Layer-wise (stage-wise) schedule of LISTA-CPSS (Chen et al. 2018, Sec. 5).

    For ``k = 1 .. n_layers``: train the new layer ``k`` alone at ``lr``, then
    fine-tune layers ``1..k`` together at ``lr * d`` for each ``d`` in
    ``decays`` (the paper's 0.2 and 0.02).

    Parameters
    ----------
    n_layers : int
        Final depth.
    lr : float
        Learning rate of the new-layer stages (paper: 5e-4).
    max_steps : int
        Step budget of every stage.
    decays : tuple of float
        Fine-tuning learning-rate multipliers.
    patience : int, optional
        Early stopping of each stage, in validations without improvement.
    first_layer : int
        Depth to start from (to extend an already trained shallower net).
    """
    if not _is_int(n_layers, 1):
        raise ValueError(f"n_layers must be an int >= 1, got {n_layers!r}")
    if not _is_int(first_layer, 1) or first_layer > n_layers:
        raise ValueError(f"first_layer must be an int in [1, n_layers={n_layers}], got {first_layer!r}")
    if not all(isinstance(d, numbers.Real) and math.isfinite(d) and d > 0 for d in decays):
        raise ValueError(f"decays must be finite numbers > 0, got {decays!r}")
    stages = []
    for k in range(first_layer, n_layers + 1):
        stages.append(Stage(f"layer{k}", lr, max_steps, k, "new", patience))
        for d in decays:
            stages.append(Stage(f"layer{k}-x{d:g}", lr * d, max_steps, k, "all", patience))
    return stages
