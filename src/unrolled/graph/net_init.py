r"""Initialisations of :class:`~unrolled.graph.nets.SLoGNet`: from ADMM, or the paper's random draw.

Mapping to ADMM (what ``SLoGNet.from_algorithm`` sets)
------------------------------------------------------
Every layer gets :func:`~unrolled.graph.iteration.algorithm_values`, the
values at which the step is ADMM with penalties :math:`\rho_\lambda,
\rho_\mu` and constant ``c`` (the mapping and its two forms, ``scaled_dual``
or not, are in :mod:`unrolled.graph.iteration`); the solver
:func:`~unrolled.graph.solvers.admm` runs the same step at the same values.
Either way the untrained network's ``g`` and ``x`` after layer ``k`` are
those of ``k`` ADMM iterations to float precision (tested for every layer:
about 1e-11 relative in float64; the positive scalars' exponential
reparametrisation rounds their values, and with ``scaled_dual=False`` the
multipliers are ADMM's rather than the solver's scaled ones).

Initial state
-------------
The state starts at zero, ADMM's start: the paper draws
:math:`x[0], \lambda[0], \mu[0]` at random in its experiments, which would
make the network's output random; we do not.

"""

from __future__ import annotations

import torch
from torch import Tensor

from unrolled.core.params import LayerParameter
from unrolled.core.validation import check_int, check_positive
from unrolled.graph.iteration import POSITIVE_SCALARS, REAL_SCALARS, algorithm_values
from unrolled.graph.operators import check_normaliser
from unrolled.graph.solvers import default_penalties

__all__ = ["POSITIVE_SCALARS", "REAL_SCALARS", "median_default_penalties", "set_admm_parameters",
           "set_random_parameters"]


def median_default_penalties(problem, dtype: torch.dtype, c: float, n_problems: int, seed: int,
                             rho_l: float | None = None, rho_mu: float | None = None) -> tuple[float, float]:
    """Medians of :func:`~unrolled.graph.solvers.default_penalties` over ``n_problems`` draws of ``problem``.

    A penalty given (not ``None``) is returned unchanged.
    """
    n_problems = check_int("calibration_problems", n_problems, minimum=1)
    Y, _ = problem.sample(n_problems, torch.Generator().manual_seed(int(seed)))
    dl, dm = default_penalties(Y.to(dtype), check_normaliser(c))
    return (float(dl.median()) if rho_l is None else rho_l, float(dm.median()) if rho_mu is None else rho_mu)


def set_admm_parameters(net, rho_l: float, rho_mu: float, *, c: float = 1.0, scaled_dual: bool = True) -> None:
    """Set every layer of ``net`` to the ADMM iteration with penalties ``rho_l``, ``rho_mu`` (module docstring)."""
    c = check_normaliser(c)
    rho_l = check_positive("rho_l", rho_l)
    rho_mu = check_positive("rho_mu", rho_mu)
    net.set_algorithm_values(**algorithm_values(rho_l, rho_mu, c, n_nodes=net.n_nodes, d=net.d,
                                                scaled_dual=scaled_dual, dtype=net.dtype, device=net.V.device))


def set_random_parameters(net, *, seed: int = 0, tau_scale: float = 1.0) -> None:
    r"""The paper's random initialisation (Sec. V-A), in place; see ``SLoGNet.random_init``.

    :math:`\rho_1, \rho_2, \tau` uniform on :math:`(0, 1]` (``tau`` scaled by
    ``tau_scale``), every other parameter standard normal, drawn on the CPU in
    float64 from ``seed``, one draw per layer (one in all for a tied network).
    """
    tau_scale = check_positive("tau_scale", tau_scale)
    gen = torch.Generator().manual_seed(check_int("seed", seed))
    n = 1 if net.tied else net.n_layers
    dt, dev = net.dtype, net.V.device

    def draw(kind: str, shape: tuple[int, ...]) -> list[Tensor]:
        out = []
        for _ in range(n):
            if kind == "uniform":
                v = 1.0 - torch.rand(shape, generator=gen, dtype=torch.float64)  # (0, 1]
            else:
                v = torch.randn(shape, generator=gen, dtype=torch.float64)
            out.append(v.to(dtype=dt, device=dev))
        return out

    def assign(p: LayerParameter, values: list[Tensor]) -> None:
        for k, v in enumerate(values):
            p.set_value(v, None if net.tied else k)

    for name in POSITIVE_SCALARS:
        values = draw("uniform", ())
        assign(getattr(net, name), [v * tau_scale for v in values] if name == "tau" else values)
    for name in REAL_SCALARS:
        assign(getattr(net, name), draw("normal", ()))
    assign(net.M, draw("normal", (net.n_nodes, net.d)))
    assign(net.m, draw("normal", (net.d,)))
