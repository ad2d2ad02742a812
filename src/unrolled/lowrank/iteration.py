r"""The one iteration of the lowrank family: a generalised (F)ISTA step of problem (16), i.e. a layer (17)-(18).

Problem (16) of the review, for a movie's Casorati matrix :math:`D` (pixels x frames):

.. math::
    \min_{L,S}\ \tfrac12\|D - H_1L - H_2S\|_F^2 + \lambda_1\|L\|_* + \lambda_2\|S\|_{1,2}.

One step of :class:`RPCAIteration` from the point :math:`(L^l, S^l)` is

.. math::
    L^{l+1} = \mathcal T_{\theta_1}\{P_5 * L^l + P_3 * S^l + P_1 * D\},\qquad
    S^{l+1} = \mathcal S^{1,2}_{\theta_2}\{P_6 * S^l + P_4 * L^l + P_2 * D\}            \qquad (17)\text{-}(18)

with per-frame circular convolutions :math:`P_i` (:func:`~unrolled.lowrank.operators.mix`), singular value
thresholding of the Casorati matrix of :math:`L` and row-wise (per-pixel, over the frames) l1,2 shrinkage of
:math:`S` (:mod:`unrolled.lowrank.prox`). With the filters of
:func:`~unrolled.lowrank.operators.algorithm_filters` and :math:`\theta_i = \lambda_i/\mu` it is the ISTA step of
(16) with step :math:`1/\mu`; the classic solver runs it so, the CORONA net with learned filters and thresholds.
With ``fast=True`` the step is taken from FISTA's extrapolated point (Beck and Teboulle), a solver-only variant.

Complex data
------------
Movies are complex tensors (IQ data after demodulation) and everything stays complex: the filters are complex
kernels (a complex convolution commutes with a global phase rotation :math:`e^{i\phi}` of the data, and so do the
SVT and the l1,2 shrinkage, so the whole layer is equivariant to the arbitrary phase of the demodulation), the
SVD is a complex SVD. Real movies work the same way with real kernels.

Stopping criterion (solver)
---------------------------
With :math:`A = [H_1\ H_2]` and the prox-gradient step :math:`x^+ = \mathrm{prox}(y - \nabla f(y)/\mu)`,
:math:`r = (\mu I - A^HA)(y - x^+) \in \partial F(x^+)` is a subgradient of the objective of (16) at the new
iterate, so :math:`\|r\|_F / \|A^H D\|_F` (relative to :math:`\|\nabla f(0)\|`) is an optimality measure: zero
exactly at a minimiser.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor

from unrolled.core.iteration import Data, Iteration, Param, State
from unrolled.lowrank.operators import FILTER_NAMES, adjoint_kernel, blur, casorati, mix, uncasorati
from unrolled.lowrank.prox import abs2, l12_norm, row_soft_threshold, svt

__all__ = ["RPCAIteration", "objective", "stack_estimate"]


def stack_estimate(L: Tensor, S: Tensor) -> Tensor:
    """The estimate of the family: ``(B, 2, T, H, W)``, ``[:, 0]`` the low-rank ``L``, ``[:, 1]`` the sparse ``S``."""
    return torch.stack([L, S], dim=1)


def _sq(x: Tensor) -> Tensor:
    return abs2(x).flatten(1).sum(-1)


def objective(D: Tensor, L: Tensor, S: Tensor, lam1: float, lam2: float, H1=None, H2=None,
              nuclear: Tensor | None = None) -> Tensor:
    """Objective (16) per movie, ``(B,)`` (``nuclear``: :math:`\\|L\\|_*` when already known)."""
    R = D - blur(L, H1) - blur(S, H2)
    if nuclear is None:
        nuclear = torch.linalg.svdvals(casorati(L)).sum(-1)
    return 0.5 * _sq(R) + lam1 * nuclear + lam2 * l12_norm(casorati(S))


class RPCAIteration(Iteration):
    r"""The step (17)-(18) (see the module docstring).

    Parameters
    ----------
    fast : bool, default False
        FISTA: step from the extrapolated point, momentum :math:`t_{k+1} = (1 + \sqrt{1 + 4t_k^2})/2`.
    lam1, lam2, mu : float, optional
        The penalties and step constant of (16), for the solver's objective and stopping criterion (the step
        itself reads only the filters and thresholds of ``params``).

    Data: ``D`` ``(B, T, H, W)`` (batched); for the solver also ``H1``, ``H2`` (kernels or ``None``).
    Params: ``P1..P6`` ``(k, k)`` kernels of ``D``'s dtype, ``lam1``, ``lam2`` the thresholds
    :math:`\theta_1, \theta_2` (a number or per-movie ``(B,)``).
    """

    batched = ("D",)
    params = tuple(Param(name, doc=f"filter {name} of (17)-(18), (k, k) complex") for name in FILTER_NAMES) + (
        Param("lam1", "positive", doc="SVT threshold of L (lambda_1 / mu for ISTA)"),
        Param("lam2", "positive", doc="l1,2 threshold of S (lambda_2 / mu for ISTA)"),
    )

    def __init__(self, fast: bool = False, *, lam1: float | None = None, lam2: float | None = None,
                 mu: float | None = None):
        self.fast = bool(fast)
        self.lam1, self.lam2, self.mu = lam1, lam2, mu

    @property
    def name(self) -> str:
        return "FISTA-RPCA" if self.fast else "ISTA-RPCA"

    def init(self, data: Data, params: Mapping[str, Any]) -> State:
        D = data["D"]
        zero = torch.zeros_like(D)
        real = D.real.dtype if D.is_complex() else D.dtype
        state = {"L": zero, "S": zero, "nuclear": torch.zeros(D.shape[0], dtype=real, device=D.device)}
        if self.fast:
            state.update(yL=zero, yS=zero, t=torch.ones(D.shape[0], dtype=real, device=D.device))
        return state

    def step(self, k: int, state: State, data: Data, params: Mapping[str, Any]) -> State:
        D = data["D"]
        yL, yS = (state["yL"], state["yS"]) if self.fast else (state["L"], state["S"])
        pre_L, pre_S = mix(yL, yS, D, params)
        H, W = D.shape[-2:]
        L_mat, nuclear = svt(casorati(pre_L), params["lam1"])
        L = uncasorati(L_mat, H, W)
        S = uncasorati(row_soft_threshold(casorati(pre_S), params["lam2"]), H, W)
        new = {"L": L, "S": S, "nuclear": nuclear}
        if self.fast:
            t = state["t"]
            t_next = 0.5 * (1.0 + torch.sqrt(1.0 + 4.0 * t * t))
            beta = ((t - 1.0) / t_next).reshape(-1, 1, 1, 1).to(D.dtype)
            new.update(yL=L + beta * (L - state["L"]), yS=S + beta * (S - state["S"]), t=t_next)
        return new

    def readout(self, state: State, data: Data) -> Tensor:
        return stack_estimate(state["L"], state["S"])

    def criterion(self, new: State, old: State, data: Data, params: Mapping[str, Any]) -> Tensor:
        if self.mu is None:
            raise ValueError("the stopping criterion needs mu (the solver's step constant)")
        D, H1, H2 = data["D"], data.get("H1"), data.get("H2")
        yL, yS = (old["yL"], old["yS"]) if self.fast else (old["L"], old["S"])
        dL, dS = yL - new["L"], yS - new["S"]
        AdX = blur(dL, H1) + blur(dS, H2)
        rL = self.mu * dL - blur(AdX, adjoint_kernel(H1))
        rS = self.mu * dS - blur(AdX, adjoint_kernel(H2))
        scale = _sq(blur(D, adjoint_kernel(H1))) + _sq(blur(D, adjoint_kernel(H2)))
        tiny = torch.finfo(scale.dtype).tiny
        return torch.sqrt((_sq(rL) + _sq(rS)) / scale.clamp_min(tiny))

    def objective(self, state: State, data: Data, params: Mapping[str, Any]) -> Tensor | None:
        if self.lam1 is None or self.lam2 is None:
            return None
        return objective(data["D"], state["L"], state["S"], self.lam1, self.lam2, data.get("H1"), data.get("H2"),
                         nuclear=state["nuclear"])

