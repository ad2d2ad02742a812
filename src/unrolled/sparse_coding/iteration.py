r"""The one iteration of the sparse-coding family: a (generalised) proximal gradient step.

Every solver (:func:`~unrolled.sparse_coding.solvers.ista`,
:func:`~unrolled.sparse_coding.solvers.fista`,
:func:`~unrolled.sparse_coding.solvers.iht`) and every net of the LISTA family
(:mod:`unrolled.sparse_coding.nets`) runs :class:`ShrinkageIteration`. With the
residual :math:`r^k = A x^k - y`, its step is

.. math::
    x^{k+1} = \eta_k\big(z^k - \gamma_k\, W_k^\top r_z^k\big)
    \qquad\text{(coupled form: ISTA, FISTA, IHT, LISTA-CP(SS), ALISTA, ISTA-LLT)}

or, for LISTA's free matrices (Gregor & LeCun 2010),

.. math::
    x^{k+1} = \eta_k\big(W_{1,k}\, y + W_{2,k}\, x^k\big)
    \qquad\text{(uncoupled form)},

where :math:`z^k = x^k + \beta_k (x^k - x^{k-1})` (FISTA's extrapolation;
:math:`\beta_k = 0` without momentum; the residual at :math:`z^k` is the same
combination of the residuals, as ``r`` is affine in ``x``) and :math:`\eta_k`
is the soft threshold at :math:`\theta_k` (with support selection of a
fraction ``ss`` of the entries, LISTA-CPSS) or the hard threshold keeping
``k`` entries (IHT).

Parameters (``params`` of :meth:`~ShrinkageIteration.step`)
-----------------------------------------------------------
``W``
    ``(m, n)`` matrix of the coupled form, or ``None`` for :math:`W = A` (the
    algorithm's value; the gradient :math:`A^\top r` computed for the stopping
    test is then reused by the next step: one product with ``A`` and one with
    :math:`A^\top` per iteration).
``gamma``, ``theta``
    Positive step size and threshold. ISTA: :math:`\gamma = 1/L`,
    :math:`\theta = \lambda/L`.
``W1`` ``(n, m)``, ``W2`` ``(n, n)``
    Matrices of the uncoupled form (used when ``W1`` is given).
``ss``
    Support-selection fraction (a fixed per-layer setting, ``0`` = none).

Data: ``y`` ``(B, m)`` (batched), ``A`` ``(m, n)``, ``At`` (``A.T``,
contiguous for fast products), optionally ``x0`` ``(B, n)`` (batched).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import Tensor

from unrolled.core.iteration import Data, Iteration, Param, State
from unrolled.core.prox import hard_threshold, soft_threshold

#: Learning-rate multiplier of the positive scalars (thresholds, step sizes).
#: They are learned as logarithms, where an Adam step of size lr is a relative
#: change of lr; the multiplier brings that close to the absolute steps the
#: papers take on the raw values (theta ~ 0.02, lr 5e-4).
SCALAR_LR_SCALE = 20.0


_T = [1.0]  # t_1, t_2, ... of FISTA, grown on demand


def fista_momentum(k: int) -> float:
    r"""FISTA's extrapolation weight at 0-based iteration ``k``.

    :math:`\beta_k = (t_{k} - 1)/t_{k+1}` with :math:`t_1 = 1`,
    :math:`t_{j+1} = (1 + \sqrt{1 + 4 t_j^2})/2` (Beck & Teboulle 2009);
    :math:`\beta_0 = \beta_1 = 0`.
    """
    if k <= 0:
        return 0.0
    while len(_T) <= k:
        t = _T[-1]
        _T.append(0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t)))
    return (_T[k - 1] - 1.0) / _T[k]


def soft_threshold_(v: Tensor, theta: float) -> Tensor:
    """In-place :func:`~unrolled.core.prox.soft_threshold` of a scratch tensor (no autograd).

    ``v - clamp(v, -theta, theta)`` equals ``sign(v) * relu(|v| - theta)``
    bit for bit, in two passes over memory instead of five.
    """
    return v.sub_(v.clamp(-theta, theta))


def support_selection(v: Tensor, theta: Tensor | float, fraction: float) -> Tensor:
    """:func:`~unrolled.core.prox.support_selection_threshold` (LISTA-CPSS's :math:`\\eta^{p}_{ss}`), faster.

    The same operator, value for value: the ``ceil(fraction * n)`` largest
    magnitudes of each row are found by an unsorted ``topk`` (only the set is
    used) and ``|v|`` is computed once; this is the step's costliest
    non-matrix operation in training.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    n = v.shape[-1]
    k = min(n, math.ceil(fraction * n - 1e-9))  # as support_selection_threshold rounds it
    shrunk = soft_threshold(v, theta)
    if k == 0:
        return shrunk
    mag = v.abs()
    idx = mag.topk(k, dim=-1, sorted=False).indices
    mask = torch.zeros_like(v, dtype=torch.bool).scatter_(-1, idx, True)
    return torch.where(mask & (mag > theta), v, shrunk)


def kkt_from_grad(x: Tensor, grad: Tensor, lam: float) -> Tensor:
    """Normalised Lasso KKT violation from the gradient ``A^T(Ax - y)`` (few passes over memory)."""
    s = torch.sign(x)
    a = torch.add(grad, s, alpha=lam).abs_()  # |g - lam sign(x)| with g = -grad
    a = torch.where(s == 0, a - lam, a)  # off the support: |g| - lam (clamped below)
    return a.amax(dim=-1).clamp_min_(0.0) / lam


class ShrinkageIteration(Iteration):
    """Proximal-gradient step of the sparse-coding family (see the module docstring).

    Parameters
    ----------
    lam : float, optional
        :math:`\\lambda` of the Lasso: the stopping test is its KKT violation and
        the objective its value. ``None`` (IHT): the stopping test is the
        relative change of the iterate, the objective the data fit.
    hard : int, optional
        Use the hard threshold keeping ``hard`` entries (IHT) instead of the
        soft threshold.
    momentum : bool, default False
        FISTA's extrapolation.
    """

    batched = ("y", "x0")
    params = (
        Param("W", doc="(m, n) coupled weight; None means A"),
        Param("gamma", "positive", lr_scale=SCALAR_LR_SCALE, doc="step size"),
        Param("theta", "positive", lr_scale=SCALAR_LR_SCALE, doc="threshold"),
        Param("W1", doc="(n, m) LISTA input weight"),
        Param("W2", doc="(n, n) LISTA recurrent weight"),
    )

    def __init__(self, lam: float | None = None, *, hard: int | None = None, momentum: bool = False):
        self.lam = lam
        self.hard = hard
        self.momentum = bool(momentum)

    # ------------------------------------------------------------ helpers
    @staticmethod
    def _uncoupled(params: Mapping[str, Any]) -> bool:
        return params.get("W1") is not None

    def _shrink(self, v: Tensor, params: Mapping[str, Any]) -> Tensor:
        if self.hard is not None:
            return hard_threshold(v, self.hard)
        theta = params["theta"]
        ss = params.get("ss", 0.0)
        if ss > 0:
            return support_selection(v, theta, ss)
        if not torch.is_grad_enabled() and not isinstance(theta, Tensor):
            return soft_threshold_(v, theta)
        return soft_threshold(v, theta)

    # ------------------------------------------------------------ Iteration
    def init(self, data: Data, params: Mapping[str, Any]) -> State:
        y, A = data["y"], data["A"]
        x0 = data.get("x0")
        x = x0 if x0 is not None else y.new_zeros(y.shape[0], A.shape[1])
        if self._uncoupled(params):
            return {"x": x}
        r = torch.addmm(y, x, data["At"], beta=-1)  # A x - y
        state = {"x": x, "r": r}
        if params.get("W") is None:
            state["g"] = r @ A
        if self.momentum:
            state["x_prev"], state["r_prev"] = x, r
            if "g" in state:
                state["g_prev"] = state["g"]
        return state

    def step(self, k: int, state: State, data: Data, params: Mapping[str, Any]) -> State:
        y, A = data["y"], data["A"]
        x = state["x"]
        if self._uncoupled(params):
            return {"x": self._shrink(y @ params["W1"].T + x @ params["W2"].T, params)}
        W, gamma = params.get("W"), params["gamma"]
        beta = fista_momentum(k) if self.momentum else 0.0
        cached = W is None
        if beta != 0.0:
            z = torch.lerp(state["x_prev"], x, 1.0 + beta)
            rz = torch.lerp(state["r_prev"], state["r"], 1.0 + beta)
            d = torch.lerp(state["g_prev"], state["g"], 1.0 + beta) if cached else rz @ W
        else:
            z = x
            d = state["g"] if cached else state["r"] @ W
        if isinstance(gamma, Tensor):
            v = z - gamma * d
        else:
            # sub(alpha=), not add(alpha=-gamma): torch 2.13's inductor drops the alpha of
            # add(z, mm, alpha) when it fuses the product in (wrong compiled training).
            v = torch.sub(z, d, alpha=gamma)
        x_new = self._shrink(v, params)
        r_new = torch.addmm(y, x_new, data["At"], beta=-1)
        new = {"x": x_new, "r": r_new}
        if cached:
            new["g"] = r_new @ A
        if self.momentum:
            new.update(x_prev=x, r_prev=state["r"])
            if cached:
                new["g_prev"] = state["g"]
        return new

    def readout(self, state: State, data: Data) -> Tensor:
        return state["x"]

    def criterion(self, new: State, old: State, data: Data, params: Mapping[str, Any]) -> Tensor:
        if self.lam is None:
            x_new, x_old = new["x"], old["x"]
            diff = torch.linalg.vector_norm(x_new - x_old, dim=-1)
            return diff / torch.linalg.vector_norm(x_old, dim=-1).clamp_min(torch.finfo(x_new.dtype).tiny)
        g = new["g"] if "g" in new else new["r"] @ data["A"]
        return kkt_from_grad(new["x"], g, self.lam)

    def objective(self, state: State, data: Data, params: Mapping[str, Any]) -> Tensor:
        r = state["r"] if "r" in state else torch.addmm(data["y"], state["x"], data["At"], beta=-1)
        fit = 0.5 * torch.linalg.vecdot(r, r)
        if self.lam is None:
            return fit
        return fit + self.lam * torch.linalg.vector_norm(state["x"], ord=1, dim=-1)
