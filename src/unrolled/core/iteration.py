r"""One iteration, defined once: the public form of the review's Fig. 4.

An iterative algorithm is the repeated map :math:`s^{k+1} = h(s^k; d, \theta_k)`
of a *state* :math:`s` given the problem *data* :math:`d` and the parameters
:math:`\theta_k` of iteration (layer) ``k``. :class:`Iteration` holds that map
and nothing else, so it can be run two ways:

* :func:`unrolled.core.solve.solve` runs it to convergence for a batch of
  problems with fixed parameters (the classic solver);
* :class:`unrolled.core.unrolled_net.UnrolledNet` runs ``K`` copies of it with
  learnable, constrained parameters, tied or untied across layers (the net).

Because both call the same :meth:`Iteration.step`, an untrained net whose
parameters hold the algorithm's values *is* ``K`` iterations of the solver.

Data and state
--------------
``data`` and the state are ``dict[str, Tensor]``. Every state entry is
batch-first (leading dimension ``B``, one row per problem); the entries of
``data`` named in :attr:`Iteration.batched` are batch-first too, all other
entries (a dictionary ``A``, a graph basis ``V``...) are shared by the batch.
:func:`~unrolled.core.solve.solve` relies on this to freeze converged problems
and drop them from the working set.

Declaring parameters
--------------------
An iteration declares its parameters once, as :class:`Param` entries of
:attr:`Iteration.params`: a name, a constraint (``'none'``, ``'positive'`` or
:func:`~unrolled.core.params.bounded`) and whether nets tie it across layers by
default. :meth:`Iteration.layer_parameter` turns a declaration and an initial
value into a :class:`~unrolled.core.params.LayerParameter`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Mapping

from torch import Tensor

from unrolled.core.params import Constraint, LayerParameter, _Transform

State = dict[str, Tensor]
Data = dict[str, Any]


@dataclass(frozen=True)
class Param:
    """Declaration of one parameter of an iteration.

    Attributes
    ----------
    name : str
        Key under which :meth:`Iteration.step` reads the value.
    constraint : {'none', 'positive'} or transform from :func:`~unrolled.core.params.bounded`
        Feasible set; nets enforce it by reparametrisation.
    tied : bool
        Default tying in nets: one value for all layers (``True``) or one per
        layer (``False``).
    lr_scale : float
        Learning-rate multiplier the Trainer applies to this parameter.
    doc : str
        One line on what the parameter is.
    """

    name: str
    constraint: Constraint | _Transform | None = "none"
    tied: bool = False
    lr_scale: float = 1.0
    doc: str = ""


class Iteration(abc.ABC):
    r"""An iteration :math:`s^{k+1} = h(s^k; d, \theta_k)`, defined once.

    Subclasses implement :meth:`init`, :meth:`step` and :meth:`readout`, and
    for use as a solver :meth:`criterion` (and optionally :meth:`objective`).
    An iteration object carries only fixed settings (e.g. ``lam`` of the
    stopping test, or which proximal operator to use); tensors live in
    ``data``, ``state`` and ``params``.

    Attributes
    ----------
    params : tuple of Param
        The parameters :meth:`step` reads from its ``params`` mapping.
    batched : tuple of str
        Keys of ``data`` whose tensors are batch-first (one row per problem).
    batched_params : tuple of str
        Names of parameters that :func:`~unrolled.core.solve.solve` may receive
        as per-problem tensors (leading dimension ``B``), e.g. penalties
        chosen per problem.
    name : str
        Used in messages (defaults to the class name).
    """

    params: tuple[Param, ...] = ()
    batched: tuple[str, ...] = ()
    batched_params: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the declared parameters, in declaration order."""
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        """The declaration of parameter ``name``."""
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"{self.name} has no parameter {name!r}; it has {list(self.param_names)}")

    @abc.abstractmethod
    def init(self, data: Data, params: Mapping[str, Any]) -> State:
        """The starting state (batch-first tensors) for ``data``.

        ``params`` are the parameters of the first iteration (layer 0).
        """

    @abc.abstractmethod
    def step(self, k: int, state: State, data: Data, params: Mapping[str, Any]) -> State:
        """One iteration at index ``k`` (0-based): the new state.

        Must not modify ``state`` in place when gradients are enabled (nets).
        """

    @abc.abstractmethod
    def readout(self, state: State, data: Data) -> Tensor:
        """The estimate held by ``state`` (what a net outputs, a solver's ``x``)."""

    def criterion(self, new: State, old: State, data: Data, params: Mapping[str, Any]) -> Tensor:
        """Per-problem stopping criterion ``(B,)`` after a step from ``old`` to ``new``.

        A problem converges at the first iteration where it is below ``tol``.
        Use an optimality measure where the problem has one.
        """
        raise NotImplementedError(f"{self.name} defines no stopping criterion; it cannot be run by solve()")

    def objective(self, state: State, data: Data, params: Mapping[str, Any]) -> Tensor | None:
        """Per-problem objective ``(B,)`` at ``state``, or ``None`` when there is none."""
        return None

    def layer_parameter(
        self, name: str, init, n_layers: int, *, tied: bool | None = None, lr_scale: float | None = None, **kwargs
    ) -> LayerParameter:
        """A :class:`~unrolled.core.params.LayerParameter` for the declared parameter ``name``.

        ``tied=None`` and ``lr_scale=None`` use the declaration's defaults; extra
        keyword arguments (``dtype``, ``device``) go to
        :class:`~unrolled.core.params.LayerParameter`.
        """
        spec = self.param(name)
        return LayerParameter(
            init,
            n_layers,
            tied=spec.tied if tied is None else tied,
            constraint=spec.constraint,
            lr_scale=spec.lr_scale if lr_scale is None else lr_scale,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"{self.name}(params={list(self.param_names)})"
