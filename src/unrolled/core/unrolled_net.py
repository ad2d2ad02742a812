"""The base class of every unrolled network: an :class:`~unrolled.core.iteration.Iteration` run for K layers.

A net holds an iteration (``self.iteration``) and, for each parameter the
iteration declares, a :class:`~unrolled.core.params.LayerParameter` attribute of
the same name (tied: one value for all layers; untied: one per layer). The
forward pass is the iteration's own loop::

    data, unbatched = self.prepare(inputs)         # validate input, add fixed buffers
    state = iteration.init(data, theta_0)
    for k in range(active_layers):
        state = iteration.step(k, state, data, theta_k)   # theta_k = self.layer_values(k)
    return self.finish(iteration.readout(state, data), unbatched)

so an untrained net whose parameters hold the algorithm's values is K
iterations of the solver by construction (:func:`unrolled.core.solve.solve`
runs the same ``step``). The base class also gives the
:class:`~unrolled.core.train.Trainer` what it needs:

* ``n_layers`` and ``active_layers`` (layer-wise training grows
  ``active_layers`` from 1 to ``n_layers``);
* :meth:`layer_parameters`: which parameters belong to layer ``k``;
* :meth:`config`: the constructor arguments, so :mod:`unrolled.core.io` can
  rebuild the network from a folder.

Nets with no algorithm behind them (e.g. the SBL family's gated recurrent
nets) override :meth:`forward` and :meth:`layer_parameters` and set no
iteration.
"""

from __future__ import annotations

import numbers
from typing import Any


import torch
from torch import Tensor, nn

from unrolled.core.iteration import Data, Iteration
from unrolled.core.params import LayerParameter
from unrolled.core.validation import from_numpy

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def dtype_from_name(name: str | torch.dtype) -> torch.dtype:
    """``'float32'`` / ``'float64'`` (or a torch dtype) to a torch dtype."""
    if isinstance(name, torch.dtype):
        if name not in _DTYPES.values():
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {name}")
        return name
    try:
        return _DTYPES[name]
    except (KeyError, TypeError):
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {name!r}") from None


def dtype_name(dtype: torch.dtype) -> str:
    """Inverse of :func:`dtype_from_name`."""
    return str(dtype).replace("torch.", "")


def check_n_layers(n_layers, name: str = "n_layers") -> int:
    """``n_layers`` must be an int >= 1 (bools and floats refused)."""
    if isinstance(n_layers, bool) or not isinstance(n_layers, numbers.Integral) or n_layers < 1:
        raise ValueError(f"{name} must be an int >= 1, got {n_layers!r}")
    return int(n_layers)


class UnrolledNet(nn.Module):
    """Common base of unrolled networks.

    Parameters
    ----------
    n_layers : int
        Number of unrolled iterations (layers).

    Attributes
    ----------
    iteration : Iteration or None
        The iteration the layers run. Subclasses set it (in ``__init__``) and
        define a :class:`~unrolled.core.params.LayerParameter` attribute for
        each name of :attr:`param_names`.
    """

    iteration: Iteration | None = None

    def __init__(self, n_layers: int):
        super().__init__()
        self.n_layers = check_n_layers(n_layers)
        self._active_layers = self.n_layers

    # ------------------------------------------------------------ depth
    @property
    def active_layers(self) -> int:
        """Number of layers the forward pass runs (``n_layers`` unless training layer-wise)."""
        return self._active_layers

    @active_layers.setter
    def active_layers(self, k: int) -> None:
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= self.n_layers:
            raise ValueError(f"active_layers must be an int in [1, {self.n_layers}], got {k!r}")
        self._active_layers = int(k)

    # ------------------------------------------------------------ parameters
    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the learnable per-layer parameters (by default, the iteration's)."""
        return self.iteration.param_names if self.iteration is not None else ()

    def layer_values(self, k: int) -> dict[str, Any]:
        """Parameter values of layer ``k``: the constrained learnable ones plus :meth:`layer_constants`."""
        values = {name: getattr(self, name)[k] for name in self.param_names}
        values.update(self.layer_constants(k))
        return values

    def layer_constants(self, k: int) -> dict[str, Any]:
        """Fixed (not learned) per-layer settings passed to the step; none by default."""
        return {}

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        """Raw ``nn.Parameter`` objects owned by layer ``k`` (0-based)."""
        if not -self.n_layers <= k < self.n_layers:
            raise IndexError(f"layer {k} out of range for {self.n_layers} layers")
        out: list[nn.Parameter] = []
        for name in self.param_names:
            p = getattr(self, name)
            if isinstance(p, LayerParameter):
                out += p.layer_parameters(k)
        return out

    @torch.no_grad()
    def set_algorithm_values(self, **values) -> "UnrolledNet":
        """Set parameters (every layer) and buffers by name: the generic part of ``from_algorithm``.

        A :class:`~unrolled.core.params.LayerParameter` attribute takes a value
        for every layer (one value, or a list of ``n_layers``); a buffer is
        copied into.
        """
        buffers = dict(self.named_buffers(recurse=False))
        for name, value in values.items():
            target = getattr(self, name, None)
            if isinstance(target, LayerParameter):
                if isinstance(value, (list, tuple)):
                    for k, v in enumerate(value):
                        target.set_value(v, k)
                else:
                    target.set_value(value)
            elif name in buffers:
                buffers[name].copy_(torch.as_tensor(value, dtype=buffers[name].dtype))
            else:
                raise ValueError(f"{type(self).__name__} has no parameter or buffer {name!r}")
        return self

    # ------------------------------------------------------------ forward
    def prepare(self, inputs) -> tuple[Data, bool]:
        """Validate ``inputs`` and build the iteration's ``data``; returns ``(data, unbatched)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement prepare() or forward()")

    def finish(self, estimate, unbatched: bool):
        """Turn a batch-first readout into the net's output (squeezed for unbatched input)."""
        if not unbatched:
            return estimate
        if isinstance(estimate, tuple):
            return tuple(e.squeeze(0) for e in estimate)
        return estimate.squeeze(0)

    def forward(self, inputs, return_layers: bool = False):
        """Run the first :attr:`active_layers` layers.

        Parameters
        ----------
        inputs
            The family's input (its measurements; see the family's net).
        return_layers : bool, default False
            Return the list of every layer's estimate ``[x^1, ..., x^K]``
            instead of the last one. Without it, only the current state is
            kept, so inference memory does not grow with depth. Training memory
            grows with depth unless :meth:`gradient_checkpointing` is set.
        """
        if self.iteration is None:
            raise NotImplementedError(f"{type(self).__name__} has no iteration; it must override forward()")
        it = self.iteration
        segments = getattr(self, "checkpoint_segments", None)
        if segments is not None and torch.is_grad_enabled() and not return_layers:
            data, unbatched = self.prepare(from_numpy(inputs))
            state = it.init(data, self.layer_values(0))
            state = self._checkpointed(state, data, self.active_layers, segments)
            return self.finish(it.readout(state, data), unbatched)
        outputs = []
        for state, data, unbatched in self.iterate(inputs):
            if return_layers:
                outputs.append(self.finish(it.readout(state, data), unbatched))
        if return_layers:
            return outputs
        return self.finish(it.readout(state, data), unbatched)

    def iterate(self, inputs):
        """Yield ``(state, data, unbatched)`` after each of the :attr:`active_layers` layers.

        The loop :meth:`forward` runs, exposing whole states (e.g. a net that
        also reports an auxiliary variable of its last layer). Each state is
        batch-first; only the current one is referenced between yields.
        """
        if self.iteration is None:
            raise NotImplementedError(f"{type(self).__name__} has no iteration to iterate")
        data, unbatched = self.prepare(from_numpy(inputs))
        it = self.iteration
        state = it.init(data, self.layer_values(0))
        for k in range(self.active_layers):
            state = it.step(k, state, data, self.layer_values(k))
            yield state, data, unbatched

    def gradient_checkpointing(self, segments: int | None) -> "UnrolledNet":
        r"""Train in memory that does not grow with depth: recompute layers in the backward pass.

        With ``segments = S`` the :attr:`active_layers` layers are cut into ``S`` consecutive
        segments of about :math:`K/S` layers; the forward pass keeps only the state at each
        segment boundary (:func:`torch.utils.checkpoint.checkpoint`, non-reentrant), and the
        backward pass reruns one segment at a time. Peak activation memory falls from
        :math:`O(K)` states to :math:`O(S + K/S)` (least at :math:`S \approx \sqrt K`) for
        one extra forward pass; gradients are those of plain autograd (the same operations
        are replayed). Applies to training forwards with ``return_layers=False`` (with
        ``return_layers=True`` every layer's estimate is kept anyway, and under
        :func:`torch.no_grad` nothing is stored).

        Parameters
        ----------
        segments : int or None
            Number of segments ``>= 1`` (capped at the number of layers run), or ``None`` to
            switch checkpointing off.

        Returns
        -------
        UnrolledNet
            ``self``. The setting is the attribute ``checkpoint_segments``; it is not part of
            :meth:`config` (a training choice, not a property of the model).
        """
        if segments is not None and (isinstance(segments, bool) or not isinstance(segments, numbers.Integral)
                                     or segments < 1):
            raise ValueError(f"segments must be an int >= 1 or None, got {segments!r}")
        self.checkpoint_segments = None if segments is None else int(segments)
        return self

    def _checkpointed(self, state, data: Data, K: int, segments: int):
        """Run layers ``0..K-1`` in ``segments`` checkpointed segments (see :meth:`gradient_checkpointing`)."""
        from torch.utils.checkpoint import checkpoint

        it = self.iteration
        keys = list(state)
        S = min(int(segments), K)
        bounds = [round(i * K / S) for i in range(S + 1)]

        def run(start: int, stop: int, *tensors):
            st = dict(zip(keys, tensors))
            for k in range(start, stop):
                st = it.step(k, st, data, self.layer_values(k))
            if list(st) != keys:
                raise ValueError(f"{it.name}.step changed the state's keys; gradient checkpointing needs fixed keys")
            return tuple(st[key] for key in keys)

        tensors = tuple(state[key] for key in keys)
        for start, stop in zip(bounds[:-1], bounds[1:]):
            tensors = checkpoint(run, start, stop, *tensors, use_reentrant=False)
        return dict(zip(keys, tensors))

    def config(self) -> dict:
        """JSON-serialisable constructor keyword arguments."""
        raise NotImplementedError(f"{type(self).__name__} must implement config()")

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the network's tensors."""
        for t in list(self.parameters()) + list(self.buffers()):
            if t.is_floating_point():
                return t.dtype
        return torch.get_default_dtype()
