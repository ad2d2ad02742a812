r"""The one iteration of the classification family: an IRLS-ADMM outer step (Algorithm 1; Fig. 2 of the paper).

Both :func:`~unrolled.classification.solvers.irls_admm` (run by
:func:`unrolled.core.solve.solve`) and :class:`~unrolled.classification.nets.DeepIRLSADMMNet`
(run by :class:`~unrolled.core.unrolled_net.UnrolledNet`'s forward loop) run
:class:`IRLSADMMIteration`. The nested structure maps onto the core as follows:
the **outer IRLS (Newton) step is the Iteration** (a solver iteration, a net
layer), and the inner ADMM (21) lives inside its :meth:`~IRLSADMMIteration.step`.
From :math:`\beta^k` the step builds :math:`A^\top A, A^\top b` (nodes a-d),
runs ``inner_max_iter`` ADMM iterations :math:`i = 1..I`

.. math::
    \Omega^{i} = (A^\top A + \rho_i F_i^2)^{-1}(A^\top b + \rho_i F_i(z^{i-1} - u^{i-1})),\quad
    C^i = F_i\Omega^i,\quad z^i = S_{1/\rho_i}(C^i + u^{i-1}),\quad u^i = u^{i-1} + C^i - z^i

(nodes e-m, q-s), and moves :math:`\beta^{k+1} = (1 - t)\beta^k + t\,\Omega^I` (nodes n-p).

Parameters (``params`` of :meth:`~IRLSADMMIteration.step`)
----------------------------------------------------------
``rho``
    ADMM penalty: a number or a per-problem ``(B, 1)`` tensor (the same for
    every inner iteration), a *list* of ``I`` values (one per inner iteration:
    the net's :math:`\rho_{k,i}`), or ``None``: chosen at every outer step from
    the spectrum of the scaled inner problem (:func:`auto_rho`).
``F``
    l1 weights on the ``p`` features (an intercept gets weight 0 itself):
    ``(p,)`` or per-problem ``(B, p)`` (the solver's ``w``), or a list of ``I``
    such tensors (the net's :math:`F_{k,i}`). Zero entries are unpenalised.
``t``
    Step of the :math:`\beta` update, or ``None``: backtracking line search on
    the objective (4) (:func:`line_search`).

The classic solver is this step at ``rho`` fixed (or ``None``), ``F = w`` at
every inner iteration and ``t = None`` (or 1); the untrained net is the step at
its per-layer values. The objective (4), the line search and the stopping test
use the weights of the last inner iteration (the solver's ``F`` is the same at
all of them).

Data: ``Xt`` ``(B, N, P)``, the label-folded design :math:`\tilde\Phi = \mathrm{diag}(y)[\Phi, 1]`
(see :func:`~unrolled.classification.solvers.prepare_problem`), batch-first.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor

from unrolled.classification.layers import (
    beta_update,
    logistic_gradient,
    logistic_loss_sum,
    omega_update,
    system_cholesky,
    u_update,
    weighted_system,
    z_update,
)
from unrolled.core.iteration import Data, Iteration, Param, State

__all__ = ["IRLSADMMIteration", "objective", "kkt_violation", "lambda_max", "auto_rho", "line_search"]

ARMIJO = 1e-4
MAX_HALVINGS = 40


def objective(Xt: Tensor, beta: Tensor, w: Tensor) -> Tensor:
    """Objective (4) per problem, ``(B,)``."""
    margin = (Xt @ beta.unsqueeze(-1)).squeeze(-1)
    return logistic_loss_sum(margin) + (w * beta).abs().sum(-1)


def lambda_max(Xt: Tensor) -> Tensor:
    r""":math:`\|\nabla L(0)\|_\infty = \tfrac12\|\tilde\Phi^\top 1\|_\infty` per problem: the smallest
    uniform weight for which :math:`\beta = 0` solves (4) (without intercept)."""
    return 0.5 * Xt.sum(-2).abs().amax(-1)


def kkt_violation(Xt: Tensor, beta: Tensor, w: Tensor) -> Tensor:
    r"""Largest violation of the optimality conditions of (4), relative to :func:`lambda_max`.

    With :math:`g = \nabla L(\beta)`: :math:`|g_i + w_i\,\mathrm{sign}\,\beta_i|` on the support,
    :math:`\max(|g_i| - w_i, 0)` off it (:math:`|g_i|` for unpenalised coordinates).
    """
    margin = (Xt @ beta.unsqueeze(-1)).squeeze(-1)
    g = logistic_gradient(Xt, margin)
    on = (g + w * torch.sign(beta)).abs()
    off = torch.relu(g.abs() - w)
    viol = torch.where(beta != 0, on, off).amax(-1)
    return viol / lambda_max(Xt).clamp_min(torch.finfo(Xt.dtype).tiny)


def auto_rho(gram: Tensor, w: Tensor) -> Tensor:
    r"""ADMM penalty from the spectrum of the scaled problem, ``(B, 1)``.

    With :math:`\gamma = F\Omega` the inner problem is a Lasso with Hessian
    :math:`F^{-1} S F^{-1}`, :math:`S` the Gram matrix on the penalised
    coordinates after eliminating the unpenalised ones (Schur complement; with
    an intercept, the weighted centred Gram). ``rho`` is the geometric mean of
    its largest and smallest non-zero eigenvalues, the optimal ADMM penalty for
    strongly convex quadratics (Ghadimi et al., 2015).
    """
    w = w.expand(gram.shape[:-1])
    pen = w > 0
    unp = (~pen).to(gram.dtype)
    S = gram
    if bool((~pen).any()):
        Guu = gram * unp.unsqueeze(-1) * unp.unsqueeze(-2) + torch.diag_embed(1.0 - unp)
        sol = torch.linalg.solve(Guu, gram * unp.unsqueeze(-1))  # G_UU^{-1} G_U. (zero rows off U)
        S = gram - (gram * unp.unsqueeze(-2)) @ sol
    inv_w = torch.where(pen, 1.0 / torch.where(pen, w, torch.ones_like(w)), torch.zeros_like(w))
    H = inv_w.unsqueeze(-1) * S * inv_w.unsqueeze(-2)
    ev = torch.linalg.eigvalsh(0.5 * (H + H.transpose(-1, -2)))
    top = ev[..., -1:].clamp_min(torch.finfo(w.dtype).tiny)
    low = torch.where(ev > 1e-10 * top, ev, top).amin(-1, keepdim=True)
    rho = torch.sqrt(top * low)
    return torch.where(pen.any(-1, keepdim=True), rho, torch.ones_like(rho))


def line_search(Xt: Tensor, beta: Tensor, omega: Tensor, w: Tensor, obj: Tensor, margin: Tensor) -> Tensor:
    r"""Backtracking ``t`` in (0, 1] per problem, ``(B, 1)``; ``t = 0`` when no decrease is found.

    Armijo condition of proximal Newton methods on (4), with
    :math:`\Delta = \nabla L^\top(\Omega - \beta) + \|F\Omega\|_1 - \|F\beta\|_1`.
    """
    d = omega - beta
    g = logistic_gradient(Xt, margin)
    delta = (g * d).sum(-1) + (w * omega).abs().sum(-1) - (w * beta).abs().sum(-1)
    B = beta.shape[0]
    t = beta.new_ones(B)
    found = torch.zeros(B, dtype=torch.bool, device=beta.device)
    for _ in range(MAX_HALVINGS):
        cand = objective(Xt, beta + t.unsqueeze(-1) * d, w)
        bound = obj + ARMIJO * t * torch.clamp(delta, max=0.0)
        ok = (cand <= bound) & ~found
        found = found | ok
        if bool(found.all()):
            break
        t = torch.where(found, t, 0.5 * t)
    return torch.where(found, t, torch.zeros_like(t)).unsqueeze(-1)


def _at(value, i: int):
    """Value of inner iteration ``i``: the ``i``-th entry of a list, else the value itself."""
    return value[i] if isinstance(value, (list, tuple)) else value


class IRLSADMMIteration(Iteration):
    r"""One IRLS-ADMM outer step (see the module docstring).

    Parameters
    ----------
    inner_max_iter : int
        ADMM iterations per outer step (``I``; the net's ``i_max``).
    inner_tol : float, default 0
        Tolerance on Boyd's relative primal / dual residuals; ``0`` runs exactly
        ``inner_max_iter`` iterations (the net).
    inexact : bool, default False
        Inexact Newton: the inner tolerance follows the outer optimality,
        ``max(inner_tol, min(1e-3, 0.1 * max KKT violation))``.
    warm_start : bool, default False
        Start each inner ADMM from the previous ``(z, u)`` (``u`` rescaled to the new
        ``rho``); ``False`` resets them to zero, as Algorithm 1 and the net do.
    sparse_direction : bool, default False
        Use :math:`\Omega^I` restricted to the support of the thresholded :math:`z^I`
        (unpenalised coordinates always kept).
    fit_intercept : bool, default False
        ``Xt`` has an intercept column last; its weight is 0 (``F`` covers the features only).
    monitor : bool, default False
        Keep the objective (4), the KKT violation and the inner iteration count in
        the state (the solver: history, stopping test, line search); the net does not.
    stop : {'kkt', 'change'}, default 'kkt'
        Stopping criterion: the relative KKT violation of (4) (:func:`kkt_violation`),
        or the relative change :math:`\|\beta^{k+1} - \beta^k\| / \|\beta^k\|` (for
        fixed inexact inner solves, whose fixed point is not the optimum of (4)).
    """

    batched = ("Xt",)
    batched_params = ("F", "rho")
    params = (
        Param("rho", "positive", doc="ADMM penalty of each inner iteration"),
        Param("F", "positive", doc="l1 weights on the features, per inner iteration"),
        Param("t", "positive", doc="step of the beta update (None: line search)"),
    )

    def __init__(self, inner_max_iter: int, *, inner_tol: float = 0.0, inexact: bool = False,
                 warm_start: bool = False, sparse_direction: bool = False, fit_intercept: bool = False,
                 monitor: bool = False, stop: str = "kkt"):
        if stop not in ("kkt", "change"):
            raise ValueError(f"stop must be 'kkt' or 'change', got {stop!r}")
        self.stop = stop
        self.inner_max_iter = int(inner_max_iter)
        self.inner_tol = float(inner_tol)
        self.inexact = bool(inexact)
        self.warm_start = bool(warm_start)
        self.sparse_direction = bool(sparse_direction)
        self.fit_intercept = bool(fit_intercept)
        self.monitor = bool(monitor)

    # ------------------------------------------------------------ helpers
    def _full(self, F: Tensor) -> Tensor:
        """Weights on all ``P`` coordinates (0 on the intercept)."""
        if not self.fit_intercept:
            return F
        return torch.cat([F, F.new_zeros(F.shape[:-1] + (1,))], -1)

    def weights(self, params: Mapping[str, Any]) -> Tensor:
        """The weights ``w`` of problem (4) (those of the last inner iteration), on all coordinates."""
        return self._full(_at(params["F"], -1))

    def _admm(self, gram, rhs, rho, F, z, u, tol: float):
        """Inner ADMM (21) from ``(z, u)``; returns ``(Omega, z, u, iterations (B,))``."""
        varying = isinstance(rho, (list, tuple)) or isinstance(F, (list, tuple))
        chol = None
        B = gram.shape[0]
        active = torch.ones(B, dtype=torch.bool, device=gram.device)
        its = torch.zeros(B, dtype=torch.int64, device=gram.device)
        omega = torch.zeros_like(rhs)
        tiny = torch.finfo(rhs.dtype).tiny
        for i in range(self.inner_max_iter):
            rho_i, F_i = _at(rho, i), self._full(_at(F, i))
            if chol is None or varying:
                chol = system_cholesky(gram, rho_i, F_i)
            om = omega_update(gram, rhs, rho_i, F_i, z, u, chol=chol)
            C = F_i * om
            zn = z_update(C, u, rho_i)
            un = u_update(u, C, zn)
            its = its + active
            if tol > 0:
                r = (C - zn).norm(dim=-1)
                s = (rho_i * F_i * (zn - z)).norm(dim=-1)
                scale_p = torch.maximum(C.norm(dim=-1), zn.norm(dim=-1))
                scale_d = (rho_i * F_i * un).norm(dim=-1)
                done = (r <= tol * scale_p + tiny) & (s <= tol * scale_d + tiny)
                a = active.unsqueeze(-1)
                omega, z, u = torch.where(a, om, omega), torch.where(a, zn, z), torch.where(a, un, u)
                active = active & ~done
                if not bool(active.any()):
                    break
            else:
                omega, z, u = om, zn, un
        if self.sparse_direction:
            # keep the support of the thresholded variable z (unpenalised coordinates always)
            omega = torch.where((z != 0) | (F_i == 0), omega, torch.zeros_like(omega))
        return omega, z, u, its

    # ------------------------------------------------------------ Iteration
    def init(self, data: Data, params: Mapping[str, Any]) -> State:
        Xt = data["Xt"]
        B, _, P = Xt.shape
        beta = Xt.new_zeros(B, P)
        state = {"beta": beta}
        if self.warm_start:
            state.update(z=torch.zeros_like(beta), u=torch.zeros_like(beta), rho=Xt.new_ones(B, 1))
        if self.monitor:
            w = self.weights(params)
            state.update(obj=objective(Xt, beta, w), kkt=kkt_violation(Xt, beta, w),
                         inner=torch.zeros(B, dtype=torch.int64, device=Xt.device))
        return state

    def step(self, k: int, state: State, data: Data, params: Mapping[str, Any]) -> State:
        Xt, beta = data["Xt"], state["beta"]
        B = beta.shape[0]
        margin = (Xt @ beta.unsqueeze(-1)).squeeze(-1)
        gram, rhs, _, _ = weighted_system(Xt, margin)
        rho, F, t = params["rho"], params["F"], params.get("t")
        w = self.weights(params)
        if rho is None:
            rho = auto_rho(gram, w)
        elif not isinstance(rho, (list, tuple)) and not isinstance(rho, Tensor):
            rho = Xt.new_full((B, 1), float(rho))
        if self.warm_start:
            rho_first = _at(rho, 0)
            z, u = state["z"], state["u"] * state["rho"] / rho_first  # u is the scaled dual y / rho
        else:
            z = u = torch.zeros_like(beta)
        tol = self.inner_tol
        if self.inexact:
            tol = max(tol, min(1e-3, 0.1 * float(state["kkt"].max())))
        omega, z, u, its = self._admm(gram, rhs, rho, F, z, u, tol)
        if t is None:
            obj = state["obj"] if "obj" in state else objective(Xt, beta, w)
            t = line_search(Xt, beta, omega, w, obj, margin)
        new = {"beta": beta_update(beta, omega, t)}
        if self.warm_start:
            new.update(z=z, u=u, rho=torch.as_tensor(_at(rho, -1), dtype=beta.dtype).expand(B, 1))
        if self.monitor:
            new.update(obj=objective(Xt, new["beta"], w), kkt=kkt_violation(Xt, new["beta"], w),
                       inner=state["inner"] + its)
        return new

    def readout(self, state: State, data: Data) -> Tensor:
        return state["beta"]

    def criterion(self, new: State, old: State, data: Data, params: Mapping[str, Any]) -> Tensor:
        if self.stop == "change":
            b, b_old = new["beta"], old["beta"]
            tiny = torch.finfo(b.dtype).tiny
            return torch.linalg.vector_norm(b - b_old, dim=-1) / torch.linalg.vector_norm(b_old, dim=-1).clamp_min(tiny)
        if "kkt" in new:
            return new["kkt"]
        return kkt_violation(data["Xt"], new["beta"], self.weights(params))

    def objective(self, state: State, data: Data, params: Mapping[str, Any]) -> Tensor:
        if "obj" in state:
            return state["obj"]
        return objective(data["Xt"], state["beta"], self.weights(params))
