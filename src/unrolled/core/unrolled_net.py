"""The base class of every unrolled network.

An unrolled network is ``n_layers`` copies of a generalised solver step. The
base class holds what the shared :class:`~unrolled.core.train.Trainer` needs to
know about any of them:

* ``n_layers`` and ``active_layers``: how deep the forward pass goes (layer-wise
  training grows ``active_layers`` from 1 to ``n_layers``);
* :meth:`layer_parameters`: which parameters belong to layer ``k``;
* :meth:`config`: the constructor arguments, so :mod:`unrolled.core.io` can
  rebuild the network from a folder.
"""

from __future__ import annotations

import abc

import torch
from torch import nn

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def dtype_from_name(name: str | torch.dtype) -> torch.dtype:
    """``'float32'`` / ``'float64'`` (or a torch dtype) to a torch dtype."""
    if isinstance(name, torch.dtype):
        return name
    try:
        return _DTYPES[name]
    except KeyError:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {name!r}") from None


def dtype_name(dtype: torch.dtype) -> str:
    """Inverse of :func:`dtype_from_name`."""
    return str(dtype).replace("torch.", "")


class UnrolledNet(nn.Module, abc.ABC):
    """Common interface of unrolled networks.

    Parameters
    ----------
    n_layers : int
        Number of unrolled iterations (layers).
    """

    def __init__(self, n_layers: int):
        super().__init__()
        if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
            raise ValueError(f"n_layers must be an int >= 1, got {n_layers!r}")
        self.n_layers = n_layers
        self._active_layers = n_layers

    @property
    def active_layers(self) -> int:
        """Number of layers the forward pass runs (``n_layers`` unless training layer-wise)."""
        return self._active_layers

    @active_layers.setter
    def active_layers(self, k: int) -> None:
        if not 1 <= k <= self.n_layers:
            raise ValueError(f"active_layers must be in [1, {self.n_layers}], got {k}")
        self._active_layers = int(k)

    @abc.abstractmethod
    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        """Parameters owned by layer ``k`` (0-based)."""

    @abc.abstractmethod
    def config(self) -> dict:
        """JSON-serialisable constructor keyword arguments."""

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the network's tensors."""
        for t in list(self.parameters()) + list(self.buffers()):
            if t.is_floating_point():
                return t.dtype
        return torch.get_default_dtype()
