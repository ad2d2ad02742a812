r"""Initialisations of :class:`~unrolled.graph.nets.SLoGNet`: from ADMM, or the paper's random draw.

Mapping to ADMM (what ``SLoGNet.from_algorithm`` sets)
------------------------------------------------------
ADMM with penalties :math:`\rho_\lambda, \rho_\mu` and constant ``c`` is the
layer above with :math:`d = 1`, :math:`M = 1_N`, :math:`m = c` (for ``d > 1``
the extra columns of ``M`` and entries of ``m`` are zero),
:math:`\rho_2 = \rho_\mu/\rho_\lambda`, :math:`\tau = 1/\rho_\lambda`,
:math:`\alpha_1 = \beta_1 = \gamma_1 = 1`, and, since the multipliers enter
linearly, any rescaling :math:`\lambda = s\lambda_{\rm ADMM}`,
:math:`\mu = s\mu_{\rm ADMM}` of them:

.. math::
    \rho_1 = \frac{1}{s\rho_\lambda},\quad \alpha_2 = \frac{1}{s\rho_\lambda},\quad
    \beta_2 = -\beta_3 = s\rho_\lambda,\quad \gamma_2 = s\rho_\mu .

* ``scaled_dual=True`` (default): :math:`s = 1/\rho_\lambda`, ADMM's *scaled
  form* (Boyd et al. 2011, Sec. 3.1.1): :math:`\rho_1 = \alpha_2 = \beta_2 = 1`,
  :math:`\beta_3 = -1`, :math:`\gamma_2 = \rho_2`. Every unconstrained scalar
  is then of order one whatever the scale of ``Y``, which suits Adam.
* ``scaled_dual=False``: :math:`s = 1`, the paper's literal reparametrisation
  :math:`\rho_1 = 1/\rho_\lambda` with :math:`\lambda` the ADMM multiplier
  itself; :math:`\alpha_2 = 1/\rho_\lambda`, :math:`\beta_2 = -\beta_3 =
  \rho_\lambda`, :math:`\gamma_2 = \rho_\mu`.

Either way the untrained network's ``g`` and ``x`` after layer ``k`` are
those of ``k`` ADMM iterations to float precision (tested for every layer: about
1e-11 relative in float64, the rounding of the two Sherman–Morrison/Woodbury
evaluations amplified by the conditioning of :math:`\Gamma`).

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
from unrolled.graph.operators import check_normaliser
from unrolled.graph.solvers import default_penalties

__all__ = ["POSITIVE_SCALARS", "REAL_SCALARS", "median_default_penalties", "set_admm_parameters",
           "set_random_parameters"]

#: Per-layer scalars kept positive by the exponential reparametrisation.
POSITIVE_SCALARS = ("rho1", "rho2", "tau")
#: Per-layer unconstrained scalars.
REAL_SCALARS = ("alpha1", "alpha2", "beta1", "beta2", "beta3", "gamma1", "gamma2")


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
    s = 1.0 / rho_l if scaled_dual else 1.0
    dt, dev = net.dtype, net.V.device

    def val(v: float) -> Tensor:
        return torch.tensor(v, dtype=dt, device=dev)

    net.rho1.set_value(val(1.0 / (s * rho_l)))
    net.rho2.set_value(val(rho_mu / rho_l))
    net.tau.set_value(val(1.0 / rho_l))
    net.alpha1.set_value(val(1.0))
    net.alpha2.set_value(val(1.0 / (s * rho_l)))
    net.beta1.set_value(val(1.0))
    net.beta2.set_value(val(s * rho_l))
    net.beta3.set_value(val(-s * rho_l))
    net.gamma1.set_value(val(1.0))
    net.gamma2.set_value(val(s * rho_mu))
    M = torch.zeros(net.n_nodes, net.d, dtype=dt, device=dev)
    M[:, 0] = 1.0
    m = torch.zeros(net.d, dtype=dt, device=dev)
    m[0] = c
    net.M.set_value(M)
    net.m.set_value(m)


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
