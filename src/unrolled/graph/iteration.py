r"""The one iteration of the graph family: SLoG-Net's generalised ADMM step.

:func:`~unrolled.graph.solvers.admm` (the solver) and every layer of
:class:`~unrolled.graph.nets.SLoGNet` (the net) run :class:`GraphADMMIteration`:
the solver is that step at the values :func:`algorithm_values` gives, run by
:func:`unrolled.core.solve.solve`; the net learns the values per layer.

Notation
--------
One problem is ``Y`` ``(N, P)`` on a graph with orthonormal eigenbasis ``V``;
:math:`\tilde Y = V^\top Y`, :math:`Z = Y^\top V \odot V` (never formed:
:math:`Z\tilde g = V(\tilde g\circ\tilde Y)` and :math:`Z^\top Z =
\operatorname{diag}(z)`, :math:`z_i = \|\tilde y_i\|^2`, Appendix B; see
:mod:`unrolled.graph.solvers`). Matrices such as :math:`x, \lambda` are kept as
``(N, P)`` arrays (``vec`` of them is the paper's vector). Batches are
``(B, N, P)``, one filter per problem.

The step (SLoG-Net's layer, sub-layers in the order of the paper's Fig. 2)
--------------------------------------------------------------------------
With state :math:`(x, \lambda, \mu)`, :math:`\mu \in \mathbb R^d`, starting at zero:

.. math::
    \tilde g &= \big(Z^\top Z + \rho_2 M M^\top\big)^{-1}
        \big[Z^\top(x - \rho_1 \lambda) + M(\rho_2 m - \rho_1 \mu)\big]
        &&\text{filter } \mathcal G_k \text{ (15)} \\
    x &\leftarrow \mathcal S_{\tau}\big(\alpha_1 Z\tilde g + \alpha_2 \lambda\big)
        &&\text{sources } \mathcal X_k \text{ (16)} \\
    \lambda &\leftarrow \beta_1 \lambda + \beta_2 Z\tilde g + \beta_3 x
        &&\text{multipliers } \mathcal M_k \text{ (17)} \\
    \mu &\leftarrow \gamma_1 \mu + \gamma_2 (M^\top \tilde g - m)
        &&\text{multipliers } \mathcal M_k \text{ (18')}

with :math:`\rho_1, \rho_2, \tau > 0`, :math:`\alpha_{1,2}, \beta_{1,2,3},
\gamma_{1,2} \in \mathbb R`, :math:`M \in \mathbb R^{N\times d}` and
:math:`m \in \mathbb R^d` (:data:`POSITIVE_SCALARS`, :data:`REAL_SCALARS`,
``M``, ``m``: the parameters of the step). The state also carries
:math:`Z^\top x` and :math:`Z^\top\lambda` (by linearity, with
:math:`Z^\top Z\tilde g = z\circ\tilde g`), so a step costs two products with
``V`` (``O(N^2 P)``) and ``O(NP)`` more; the inverse filter is applied with
the Woodbury identity (Appendix D,
:func:`~unrolled.graph.operators.apply_filter_inverse`, ``O(N d^2 + d^3)``).
The read-out is the thresholded iterate :math:`x` (``output='sources'``, the
solver's ``x``) or the paper's :math:`\hat X = \operatorname{unvec}(Z\tilde g)
= V\operatorname{diag}(\tilde g)V^\top Y` (``output='filter'``).

Deviation from the printed (18)
-------------------------------
The paper prints :math:`\mu[k] = \gamma\mu[k-1] + M^\top\tilde g[k] + m`, which
cannot reproduce (14) for any :math:`\gamma` (it has no step size, and its
sign of ``m`` disagrees with the constraint :math:`M^\top\tilde g = m` used in
(15) and in Algorithm 1). We use (18') above: one extra scalar
:math:`\gamma_2` and the sign of Algorithm 1.

ADMM is this step (:func:`algorithm_values`)
--------------------------------------------
ADMM (11)–(14) with penalties :math:`\rho_\lambda, \rho_\mu` and constant ``c``
is the step with :math:`d = 1`, :math:`M = 1_N`, :math:`m = c` (for ``d > 1``
the extra columns of ``M`` and entries of ``m`` are zero),
:math:`\rho_2 = \rho_\mu/\rho_\lambda`, :math:`\tau = 1/\rho_\lambda`,
:math:`\alpha_1 = \beta_1 = \gamma_1 = 1`, and, since the multipliers enter
linearly, any rescaling :math:`\lambda = s\lambda_{\rm ADMM}`,
:math:`\mu = s\mu_{\rm ADMM}` of them:

.. math::
    \rho_1 = \frac{1}{s\rho_\lambda},\quad \alpha_2 = \frac{1}{s\rho_\lambda},\quad
    \beta_2 = -\beta_3 = s\rho_\lambda,\quad \gamma_2 = s\rho_\mu .

* ``scaled_dual=True`` (the solver's, and the net's default): :math:`s =
  1/\rho_\lambda`, ADMM's *scaled form* (Boyd et al. 2011, Sec. 3.1.1):
  :math:`\rho_1 = \alpha_2 = \beta_2 = 1`, :math:`\beta_3 = -1`,
  :math:`\gamma_2 = \rho_2`. Every unconstrained scalar is then of order one
  whatever the scale of ``Y``, which suits Adam.
* ``scaled_dual=False``: :math:`s = 1`, the paper's literal
  reparametrisation :math:`\rho_1 = 1/\rho_\lambda` with :math:`\lambda` the
  ADMM multiplier itself.

The filter sub-layer's matrix is then :math:`\Gamma/\rho_\lambda` (with
:math:`\Gamma = \rho_\lambda Z^\top Z + \rho_\mu 11^\top`) and its right-hand
side :math:`s` times that of (11), so :math:`\tilde g` and :math:`x` are
ADMM's. The solver's values may be per-problem tensors ``(B,)``
(:attr:`GraphADMMIteration.batched_params`): :func:`~unrolled.graph.solvers.admm`
gives every problem its own data-scaled penalties.

Speed
-----
The solver runs this general step, not a copy specialised to ADMM: numbers
equal to 1 (the solver's :math:`\alpha_1, \beta_1, \gamma_1, \rho_1,
\alpha_2, \beta_2`) skip their multiplication, and the per-iteration time is
within about 6% of the former specialised loop (CPU, float64, one thread,
``N = 20`` and ``100``, with glibc's heap trimming off:
``MALLOC_TRIM_THRESHOLD_`` and ``MALLOC_MMAP_THRESHOLD_`` large). With the
default allocator, fresh ``(B, N, P)`` tensors page-fault, which costs this
step up to 25% more than the former loop on small problems (``N = 20``,
``P = 100``, ``B = 64``) and nothing measurable from ``P = 400``. The stopping test
(:meth:`GraphADMMIteration.criterion`) is ADMM's; it has a meaning only at
:func:`algorithm_values`.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import Tensor

from unrolled.core.iteration import Data, Iteration, Param, State
from unrolled.core.prox import soft_threshold
from unrolled.graph.operators import apply_filter_inverse, apply_Z, apply_Zt, per_problem

__all__ = ["GraphADMMIteration", "OUTPUTS", "POSITIVE_SCALARS", "REAL_SCALARS", "SCALAR_LR_SCALE",
           "algorithm_values", "deconvolution_data"]

#: Read-outs of the iteration (and of :class:`~unrolled.graph.nets.SLoGNet`).
OUTPUTS = ("filter", "sources")
#: Per-layer scalars kept positive by the exponential reparametrisation.
POSITIVE_SCALARS = ("rho1", "rho2", "tau")
#: Per-layer unconstrained scalars.
REAL_SCALARS = ("alpha1", "alpha2", "beta1", "beta2", "beta3", "gamma1", "gamma2")
#: Learning-rate multiplier of the positive scalars (learned as logarithms, so an
#: Adam step is a relative change). 1: the relative steps suit both the O(1)
#: values of the paper's random initialisation and the data-scaled ADMM ones.
SCALAR_LR_SCALE = 1.0

_DOCS = {
    "rho1": "weight of the multipliers in the filter sub-layer (ADMM: 1/(s rho_l))",
    "rho2": "weight of the constraint M^T g = m (ADMM: rho_mu / rho_l)",
    "tau": "threshold of the sources sub-layer (ADMM: 1/rho_l)",
    "alpha1": "weight of Z g in the sources sub-layer (ADMM: 1)",
    "alpha2": "weight of lambda in the sources sub-layer (ADMM: 1/(s rho_l))",
    "beta1": "lambda's memory (ADMM: 1)",
    "beta2": "weight of Z g in the lambda update (ADMM: s rho_l)",
    "beta3": "weight of x in the lambda update (ADMM: -s rho_l)",
    "gamma1": "mu's memory (ADMM: 1)",
    "gamma2": "step of the mu update (ADMM: s rho_mu)",
}


def deconvolution_data(Yb: Tensor, V: Tensor, singular: str) -> Data:
    r"""The iteration's ``data`` for observations ``Yb`` ``(B, N, P)`` on the graph with eigenbasis ``V``.

    ``Yt`` :math:`= V^\top Y` and ``z`` (the diagonal of :math:`Z^\top Z`) are
    per problem, ``V`` is shared. A ``Y`` with no energy in some graph frequency
    (:math:`v_i^\top Y = 0`) raises ``ValueError``; ``singular`` says what that
    breaks.
    """
    Yt = V.T @ Yb
    z = Yt.pow(2).sum(dim=-1)
    if Yb.shape[0] and not (z > 0).all():
        b, i = (z <= 0).nonzero()[0].tolist()
        raise ValueError(f"Y has no energy in graph frequency {i} (v_{i}^T Y = 0) in problem {b}: {singular}")
    return {"Yt": Yt, "z": z, "V": V}


def algorithm_values(rho_l, rho_mu, c: float = 1.0, *, n_nodes: int, d: int = 1, scaled_dual: bool = True,
                     dtype: torch.dtype = torch.float64, device=None) -> dict[str, Any]:
    """The step's parameters at which it is ADMM (11)–(14) (module docstring).

    ``rho_l``, ``rho_mu`` are positive floats (checked by the caller) or
    per-problem tensors ``(B,)``; the scalars come back of the same kind, ``M``
    ``(n_nodes, d)`` and ``m`` ``(d,)`` as tensors of ``dtype`` on ``device``.
    """
    M = torch.zeros(n_nodes, d, dtype=dtype, device=device)
    M[:, 0] = 1.0
    m = torch.zeros(d, dtype=dtype, device=device)
    m[0] = c
    rho2 = rho_mu / rho_l
    if scaled_dual:  # s = 1 / rho_l
        rho1 = alpha2 = beta2 = 1.0
        beta3, gamma2 = -1.0, rho2
    else:  # s = 1
        rho1 = alpha2 = 1.0 / rho_l
        beta2, beta3, gamma2 = rho_l, -rho_l, rho_mu
    return {"rho1": rho1, "rho2": rho2, "tau": 1.0 / rho_l, "alpha1": 1.0, "alpha2": alpha2,
            "beta1": 1.0, "beta2": beta2, "beta3": beta3, "gamma1": 1.0, "gamma2": gamma2, "M": M, "m": m}


def _times(a, t: Tensor) -> Tensor:
    """``a * t``, without a pass over ``t`` when ``a`` is the number 1 (as the solver's values often are)."""
    return t if not isinstance(a, Tensor) and a == 1 else a * t


def _plus(acc: Tensor, a, t: Tensor) -> Tensor:
    """``acc + a * t``, in one pass over memory when ``a`` is a number."""
    return acc + a * t if isinstance(a, Tensor) else torch.add(acc, t, alpha=a)


class GraphADMMIteration(Iteration):
    """SLoG-Net's generalised ADMM step (see the module docstring); ADMM at :func:`algorithm_values`.

    Data: ``Yt`` ``(B, N, P)`` and ``z`` ``(B, N)`` (batched), ``V`` ``(N, N)``
    (:func:`deconvolution_data`). State: ``g`` ``(B, N)``, ``Zg``, ``x``,
    ``lam`` ``(B, N, P)``, ``mu`` ``(B, d)`` and ``q`` :math:`= Z^\\top x`,
    ``u`` :math:`= Z^\\top\\lambda` ``(B, N)``.

    Parameters
    ----------
    output : {'sources', 'filter'}, default 'sources'
        Read-out: the thresholded iterate :math:`x` or :math:`Z\\tilde g`.
    atol : float, default 0
        Absolute tolerance of the stopping test (:meth:`criterion`).
    """

    batched = ("Yt", "z")
    batched_params = POSITIVE_SCALARS + REAL_SCALARS
    params = (
        *(Param(n, "positive", lr_scale=SCALAR_LR_SCALE, doc=_DOCS[n]) for n in POSITIVE_SCALARS),
        *(Param(n, doc=_DOCS[n]) for n in REAL_SCALARS),
        Param("M", doc="(N, d) matrix of the generalised constraint M^T g = m (ADMM: 1_N)"),
        Param("m", doc="(d,) right-hand side of the constraint (ADMM: c)"),
    )

    def __init__(self, output: str = "sources", *, atol: float = 0.0):
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        self.output = output
        self.atol = float(atol)

    def init(self, data: Data, params: Mapping[str, Any]) -> State:
        Yt = data["Yt"]
        B, N, _ = Yt.shape
        zeros = torch.zeros_like(Yt)
        small = Yt.new_zeros(B, N)
        return {"g": small, "Zg": zeros, "x": zeros, "lam": zeros, "mu": Yt.new_zeros(B, params["M"].shape[-1]),
                "q": small, "u": small}

    def step(self, k: int, state: State, data: Data, params: Mapping[str, Any]) -> State:
        V, Yt, z = data["V"], data["Yt"], data["z"]
        M, m = params["M"], params["m"]
        x, lam, mu, q, u = state["x"], state["lam"], state["mu"], state["q"], state["u"]
        # per-problem scalars (B,) broadcast over (B, N) and (B, d), or over (B, N, P)
        rho1, rho2, b1, b2, b3, c1, c2 = (per_problem(params[n], 2) for n in
                                          ("rho1", "rho2", "beta1", "beta2", "beta3", "gamma1", "gamma2"))
        tau, a1, a2, B1, B2, B3 = (per_problem(params[n], 3) for n in
                                   ("tau", "alpha1", "alpha2", "beta1", "beta2", "beta3"))
        # filter sub-layer (15)
        r = q - _times(rho1, u) + (rho2 * m - _times(rho1, mu)) @ M.T
        g = apply_filter_inverse(z, M, params["rho2"], r)
        Zg = apply_Z(V, Yt, g)
        # sources sub-layer (16)
        v = _plus(_times(a1, Zg), a2, lam)
        x = soft_threshold(v, tau) if torch.is_grad_enabled() else v - v.clamp(-tau, tau)
        q_new = apply_Zt(V, Yt, x)
        # multipliers sub-layer (17)-(18'); Z^T lambda by linearity, Z^T Z g = z * g (Appendix B)
        lam = _plus(_plus(_times(B1, lam), B2, Zg), B3, x)
        u = _plus(_plus(_times(b1, u), b2, z * g), b3, q_new)
        mu = _plus(_times(c1, mu), c2, g @ M - m)
        return {"g": g, "Zg": Zg, "x": x, "lam": lam, "mu": mu, "q": q_new, "u": u}

    def readout(self, state: State, data: Data) -> Tensor:
        return state["Zg"] if self.output == "filter" else state["x"]

    def criterion(self, new: State, old: State, data: Data, params: Mapping[str, Any]) -> Tensor:
        r"""ADMM's relative primal and dual residuals, the larger of the two ``(B,)``.

        With :math:`\rho_\lambda = 1/\tau`, the primal residual
        :math:`r = (\|Z\tilde g - x\|^2 + \|M^\top\tilde g - m\|^2)^{1/2}` and
        the dual residual :math:`s = \rho_\lambda\|Z^\top(x^{k} - x^{k-1})\|`
        (Boyd et al., 2011, Sec. 3.3), it is the larger of
        :math:`(r - \sqrt{NP+1}\,\mathrm{atol}) / \max(\|Z\tilde g\|, \|x\|, \|m\|)`
        and :math:`(s - \sqrt N\,\mathrm{atol}) / \|Z^\top\lambda_{\rm ADMM}\|`
        (:math:`\lambda_{\rm ADMM} = (\rho_\lambda/\beta_2)\lambda` in either
        form of :func:`algorithm_values`), so "below ``tol``" is Boyd's test
        with the relative tolerance ``tol`` on both residuals.
        """
        Zg, x, g = new["Zg"], new["x"], new["g"]
        _, N, P = Zg.shape
        norm = torch.linalg.vector_norm
        pri = torch.hypot(norm(Zg - x, dim=(-2, -1)), norm(g @ params["M"] - params["m"], dim=-1))
        pri_scale = torch.maximum(torch.maximum(norm(Zg, dim=(-2, -1)), norm(x, dim=(-2, -1))), norm(params["m"]))
        rho_l = 1.0 / params["tau"]
        dual = rho_l * norm(new["q"] - old["q"], dim=-1)
        dual_scale = (rho_l / params["beta2"]) * norm(new["u"], dim=-1)
        rel_pri = (pri - math.sqrt(N * P + 1) * self.atol) / pri_scale
        rel_dual = (dual - math.sqrt(N) * self.atol) / dual_scale.clamp_min(torch.finfo(Zg.dtype).tiny)
        return torch.maximum(rel_pri, rel_dual)

    def objective(self, state: State, data: Data, params: Mapping[str, Any]) -> Tensor:
        """:math:`\\|x\\|_1` of the sources iterate ``(B,)`` (problem (8)'s objective at feasibility)."""
        return state["x"].abs().sum(dim=(-2, -1))

    def __repr__(self) -> str:
        return f"{self.name}(output={self.output!r}, atol={self.atol})"
