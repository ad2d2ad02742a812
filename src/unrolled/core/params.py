"""Constrained and per-layer parameters.

Unrolled layers learn step sizes and thresholds that must stay positive (or in
an interval). Rather than clamping after each optimiser step, the raw,
unconstrained value is stored and mapped through a smooth bijection
(reparametrisation), so no gradient step can leave the feasible set.

:class:`LayerParameter` also carries the *tied* (one value shared by all
layers) versus *untied* (one value per layer) choice, so networks ask for
``self.theta[k]`` and never care which it is.
"""

from __future__ import annotations

import abc
import math
from typing import Literal

import torch
from torch import Tensor, nn

Constraint = Literal["none", "positive", "bounded"]


class _Transform(abc.ABC):
    """A bijection from the reals to the feasible set, with its inverse."""

    @abc.abstractmethod
    def forward(self, raw: Tensor) -> Tensor:
        """Map the unconstrained raw value to the feasible set."""

    @abc.abstractmethod
    def inverse(self, value: Tensor) -> Tensor:
        """Map a feasible value back to its raw value."""

    def config(self) -> dict:
        return {"kind": "none"}


class _Identity(_Transform):
    def forward(self, raw: Tensor) -> Tensor:
        return raw

    def inverse(self, value: Tensor) -> Tensor:
        return value


class _Positive(_Transform):
    """``value = exp(raw)``: strictly positive, scale-free gradients.

    The exponential is used (not softplus) because its round trip
    ``exp(log(v))`` is exact to float precision for values of any scale, which
    keeps an untrained unrolled net equal to its algorithm.
    """

    def forward(self, raw: Tensor) -> Tensor:
        # exp underflows to exactly 0 for very negative raw (e.g. after large
        # optimiser steps); keep the value strictly positive.
        return torch.exp(raw).clamp(min=torch.finfo(raw.dtype).tiny)

    def inverse(self, value: Tensor) -> Tensor:
        if value.device.type != "meta" and not torch.all(value > 0):  # also rejects NaN (meta: shapes only)
            raise ValueError("a positive parameter needs strictly positive initial values")
        return torch.log(value)

    def config(self) -> dict:
        return {"kind": "positive"}


class _Bounded(_Transform):
    """``value = low + (high - low) * sigmoid(raw)``: strictly inside ``(low, high)``."""

    def __init__(self, low: float, high: float):
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"bounded parameter needs finite low < high, got ({low}, {high})")
        self.low, self.high = float(low), float(high)

    def forward(self, raw: Tensor) -> Tensor:
        value = self.low + (self.high - self.low) * torch.sigmoid(raw)
        # sigmoid saturates to exactly 0 or 1 in floating point for large
        # |raw|; clamp to the closest representable values strictly inside.
        low = torch.tensor(self.low, dtype=value.dtype, device=value.device)
        high = torch.tensor(self.high, dtype=value.dtype, device=value.device)
        return value.clamp(torch.nextafter(low, high), torch.nextafter(high, low))

    def inverse(self, value: Tensor) -> Tensor:
        u = (value - self.low) / (self.high - self.low)
        if u.device.type != "meta" and not torch.all((u > 0) & (u < 1)):  # also rejects NaN (meta: shapes only)
            raise ValueError(
                f"a bounded parameter needs initial values strictly inside ({self.low}, {self.high})"
            )
        return torch.log(u) - torch.log1p(-u)

    def config(self) -> dict:
        return {"kind": "bounded", "low": self.low, "high": self.high}


def positive() -> _Transform:
    """Constraint ``value > 0`` (exponential reparametrisation)."""
    return _Positive()


def bounded(low: float, high: float) -> _Transform:
    """Constraint ``low < value < high`` (scaled-sigmoid reparametrisation)."""
    return _Bounded(low, high)


def _make_transform(constraint: Constraint | _Transform | None) -> _Transform:
    if constraint is None or constraint == "none":
        return _Identity()
    if isinstance(constraint, _Transform):
        return constraint
    if constraint == "positive":
        return _Positive()
    raise ValueError(f"unknown constraint {constraint!r}; use 'none', 'positive' or bounded(low, high)")


class LayerParameter(nn.Module):
    """A learnable quantity used by every layer of an unrolled network.

    Parameters
    ----------
    init : Tensor or float, or sequence of them
        Initial value. A single value is copied to every layer; a sequence of
        ``n_layers`` values gives each layer its own initial value (only
        allowed when ``tied=False``).
    n_layers : int
        Number of layers of the network.
    tied : bool, default False
        ``True``: one value shared by all layers. ``False``: one per layer.
    constraint : {'none', 'positive'} or transform from :func:`bounded`
        Feasible set, enforced by reparametrisation.
    lr_scale : float, default 1
        Multiplier of the learning rate the :class:`~unrolled.core.train.Trainer`
        uses for this parameter (stored as ``raw[i].lr_scale``). Useful for
        reparametrised scalars: an Adam step on ``log(theta)`` is a *relative*
        change of ``theta``, much smaller than the same step on a matrix entry.
    dtype, device : optional
        Where the parameter lives. Defaults to those of ``init`` when it is a
        tensor, else torch's defaults.

    Notes
    -----
    Index it with the layer number, ``p[k]``, to get the constrained value of
    layer ``k`` (``0 <= k < n_layers``). :meth:`layer_parameters` gives the
    raw ``nn.Parameter`` objects that layer ``k`` owns, which is what
    layer-wise training optimises.
    """

    def __init__(
        self,
        init,
        n_layers: int,
        *,
        tied: bool = False,
        constraint: Constraint | _Transform | None = None,
        lr_scale: float = 1.0,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.n_layers = int(n_layers)
        self.tied = bool(tied)
        self.transform = _make_transform(constraint)
        if isinstance(init, (list, tuple)):
            if tied:
                raise ValueError("a tied parameter takes a single initial value, not a list")
            if len(init) != n_layers:
                raise ValueError(f"expected {n_layers} initial values, got {len(init)}")
            values = [torch.as_tensor(v, dtype=dtype, device=device) for v in init]
        else:
            v = torch.as_tensor(init, dtype=dtype, device=device)
            values = [v] if tied else [v.clone() for _ in range(n_layers)]
        self.raw = nn.ParameterList(
            [nn.Parameter(self.transform.inverse(v.detach().clone())) for v in values]
        )
        if not lr_scale > 0:
            raise ValueError(f"lr_scale must be > 0, got {lr_scale}")
        for p in self.raw:
            p.lr_scale = float(lr_scale)

    def __getitem__(self, k: int) -> Tensor:
        if not -self.n_layers <= k < self.n_layers:
            raise IndexError(f"layer {k} out of range for {self.n_layers} layers")
        return self.transform.forward(self.raw[0 if self.tied else k])

    @torch.no_grad()
    def set_value(self, value, k: int | None = None) -> None:
        """Set the constrained value of layer ``k`` (of every layer when ``None``)."""
        layers = range(len(self.raw)) if k is None else [0 if self.tied else k]
        for i in layers:
            target = self.raw[i]
            v = torch.as_tensor(value, dtype=target.dtype, device=target.device)
            if v.shape != target.shape:
                raise ValueError(f"value of shape {tuple(v.shape)} does not match parameter shape {tuple(target.shape)}")
            target.copy_(self.transform.inverse(v))

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        """Raw parameters owned by layer ``k`` (the shared one when tied)."""
        if not -self.n_layers <= k < self.n_layers:
            raise IndexError(f"layer {k} out of range for {self.n_layers} layers")
        return [self.raw[0 if self.tied else k]]

    def values(self) -> list[Tensor]:
        """Constrained values of all layers, a list of length ``n_layers``."""
        return [self[k] for k in range(self.n_layers)]

    def extra_repr(self) -> str:
        return f"n_layers={self.n_layers}, tied={self.tied}, constraint={self.transform.config()['kind']}"
