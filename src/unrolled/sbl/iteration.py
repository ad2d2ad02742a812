r"""The one iteration of the SBL family: a hyperparameter update of sparse Bayesian learning.

:func:`~unrolled.sbl.solvers.sbl` (every update) and :class:`~unrolled.sbl.nets.SBLNet` (the LSTM form)
run :class:`SBLIteration`. Sizes: ``Phi`` is ``(n, m)`` (``n`` measurements, ``m`` atoms), ``y`` is
``(B, n)``, the hyperparameters ``gamma`` and the codes ``x`` are ``(B, m)``. At the state's ``gamma``,
:func:`posterior` gives the posterior mean ``u`` (eq. 4) and :math:`q = \mathrm{diag}(\Phi^H\Sigma_y^{-1}\Phi)`
with :math:`\Sigma_y = \lambda_k I + \Phi\Gamma\Phi^H`; the step is then

* ``'em'``:     :math:`\gamma \leftarrow |u|^2 + (\gamma - \gamma^2 q)_+`;
* ``'mackay'``: :math:`\gamma \leftarrow |u|^2 / (\gamma q)` (zero where :math:`\gamma q` underflows);
* ``'lstm'`` (eqs. 8-11, generalised by the net's gates): :math:`w = q^{1/2}`,
  :math:`\nu = u + \mu_k\Phi^H(y - \Phi u)`,
  :math:`x^{+} = \beta_k x + \alpha_k\,\mathrm{sign}(\nu)\,[|\nu| - \mu_k\lambda_k w]_+`,
  :math:`\gamma^{+} = |x^{+}| / w`. SBL's LSTM form is :math:`\alpha = 1, \beta = 0`.

Parameters (``params`` of :meth:`SBLIteration.step`): ``lam`` (noise variance, positive), ``mu`` (step of the
LSTM form, positive), ``alpha`` (input-gate scale, positive), ``beta`` (forget gate); the EM and MacKay
updates read ``lam`` only.

Data: ``y`` ``(B, n)`` (batched), ``Phi`` ``(n, m)``, optionally ``gamma0`` ``(B, m)`` (batched; default
ones) and ``readout``: what :meth:`~SBLIteration.readout` returns, ``'x'`` (the posterior mean at the
state's ``gamma``, the net's output; default), ``'gamma'``, or ``'both'`` (the pair).

Two ways to get the posterior (the one costly part, a batched Cholesky factorisation)
-------------------------------------------------------------------------------------
``reuse_posterior=False`` (nets): each step factorises at ``(gamma, lam_k)`` of its own layer; the readout
factorises once more at the last ``gamma``. ``reuse_posterior=True`` (the solver, whose ``lam`` is the same
at every iteration): each step also factorises at its *new* ``gamma`` and keeps the posterior mean, ``q`` and
the type-II cost (5) in the state, so the next step, the readout (the solver's ``x``) and the objective reuse
them: one factorisation per iteration instead of two or three. The update itself is the same code in both.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import Tensor

from unrolled.core.iteration import Data, Iteration, Param, State

__all__ = ["SBLIteration", "UPDATES", "posterior", "posterior_active", "sigma_y"]

UPDATES = ("em", "mackay", "lstm")
#: Width of the active-set-size groups of :func:`posterior_active`.
_GROUP = 4
READOUTS = ("x", "gamma", "both")


def sigma_y(Phi: Tensor, gamma: Tensor, lam) -> Tensor:
    r"""``(B, n, n)`` covariance of ``y`` under the prior, :math:`\lambda I + \Phi\Gamma\Phi^H`, for ``gamma``
    ``(B, m)`` (``lam`` a scalar, or ``(B, 1, 1)`` per problem)."""
    eye = torch.eye(Phi.shape[-2], dtype=Phi.dtype, device=Phi.device)
    return lam * eye + (Phi * gamma.to(Phi.dtype).unsqueeze(1)) @ Phi.mH


def posterior(y: Tensor, Phi: Tensor, gamma: Tensor, lam) -> tuple[Tensor, Tensor, Tensor]:
    r"""Posterior quantities at ``gamma`` (batched; no validation; ``Phi`` ``(n, m)`` or per problem ``(B, n, m)``).

    Returns
    -------
    (mean, q, cost) : Tensor
        ``mean`` ``(B, m)``: :math:`\Gamma\Phi^H\Sigma_y^{-1}y` (eq. 4);
        ``q`` ``(B, m)`` real: :math:`\mathrm{diag}(\Phi^H\Sigma_y^{-1}\Phi)`;
        ``cost`` ``(B,)``: the type-II cost (5).
    """
    n, m = Phi.shape[-2:]
    chol = torch.linalg.cholesky(sigma_y(Phi, gamma, lam))  # Sigma_y = L L^H
    # With W = L^{-1} Phi and v = L^{-1} y: Phi^H Sigma_y^{-1} y = W^H v, q_j = ||W_j||^2, y^H Sigma_y^{-1} y =
    # ||v||^2 -- two triangular solves instead of a Cholesky solve against [y, Phi] (2.5x faster at B = 1000).
    W = torch.linalg.solve_triangular(chol, Phi.expand(y.shape[0], n, m), upper=False)
    v = torch.linalg.solve_triangular(chol, y.unsqueeze(-1), upper=False)
    mean = gamma * (v.mT @ W.conj()).squeeze(-2)  # Gamma Phi^H Sigma_y^{-1} y, batch-first
    q = W.real**2 + W.imag**2 if W.is_complex() else W**2
    cost = (v.abs() ** 2).sum((-2, -1)) + 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1).real).sum(-1)
    return mean, q.sum(dim=-2), cost


def posterior_active(y: Tensor, Phi: Tensor, gamma: Tensor, lam: float) -> tuple[Tensor, Tensor, Tensor]:
    r"""Posterior quantities at a sparse ``gamma``, computed on its non-zero entries only (batched; no validation).

    For a problem whose active set ``S = {i: gamma_i > 0}`` has ``k <= n`` atoms, with
    :math:`D = \Gamma_S^{1/2}` and :math:`G_S = \Phi_S^H\Phi_S`, Woodbury and Sylvester give, with the
    ``(k, k)`` matrix :math:`M = I + D G_S D/\lambda` (eigenvalues >= 1):

    .. math:: \Sigma_x = D M^{-1} D,\quad \hat x_S = \Sigma_x\Phi_S^H y/\lambda,\quad
              \gamma_i q_i = 1 - (M^{-1})_{ii},\quad
              \mathcal L = (\|y\|^2 - \mathrm{Re}\,(\Phi_S^H y)^H\hat x_S)/\lambda + n\log\lambda
              + \log|M|,

    the same posterior mean (4), ``q`` and type-II cost (5) as :func:`posterior`, at ``O(k^3)`` per problem
    instead of ``O(n^2 m)``. Problems are grouped by ``k`` (rounded up to a multiple of 4, each group padded with
    atoms at ``gamma = 0``, which leave ``M`` block-identity) so that a few problems with large active sets do
    not set the size of the whole batch; groups with ``k > n`` use :func:`posterior` on their active columns
    (one factorisation for the whole group when all its problems share one ``gamma``, as at the start). ``q`` is
    returned as zero where ``gamma = 0`` (the EM and MacKay updates keep those atoms at zero whatever ``q`` is); its
    rounding error relative to ``q_i`` is about ``eps / (gamma_i q_i)``, small for hyperparameters above a
    pruning threshold. One host synchronisation (the group sizes).
    """
    n, m = Phi.shape
    B = gamma.shape[0]
    counts = (gamma > 0).sum(-1)
    bucket = (((counts + _GROUP - 1) // _GROUP) * _GROUP).clamp_max(m)
    sizes = torch.bincount(bucket, minlength=m + 1).tolist()
    mean = torch.zeros(B, m, dtype=y.dtype, device=y.device)
    q = torch.zeros(B, m, dtype=gamma.dtype, device=gamma.device)
    cost = torch.empty(B, dtype=gamma.dtype, device=gamma.device)
    G = Phi.mH @ Phi if any(sizes[: n + 1]) else None
    for k, size in enumerate(sizes):
        if not size:
            continue
        rows = (bucket == k).nonzero().squeeze(-1) if size < B else None
        y_k = y if rows is None else y[rows]
        g_k = gamma if rows is None else gamma[rows]
        if k <= n:
            mean_k, q_k, cost_k = _posterior_small(y_k, Phi, G, g_k, lam, k)
        elif k == m and size > 1 and bool((g_k == g_k[:1]).all()):  # one gamma for all (the default start)
            mean_k, q_k, cost_k = _posterior_shared(y_k, Phi, g_k[0], lam)
        elif k == m:
            mean_k, q_k, cost_k = posterior(y_k, Phi, g_k, lam)
        else:  # the (k, k) form would cost more than the (n, n) one: the latter on the active columns
            g_s, idx = torch.topk(g_k, k, dim=-1)
            mean_s, q_s, cost_k = posterior(y_k, Phi.mT[idx].mT, g_s, lam)  # per-problem Phi_S (size, n, k)
            mean_k = torch.zeros(size, m, dtype=y.dtype, device=y.device).scatter_(1, idx, mean_s)
            q_k = torch.zeros(size, m, dtype=gamma.dtype, device=gamma.device).scatter_(1, idx, q_s)
        if rows is None:
            return mean_k, q_k, cost_k
        mean[rows], q[rows], cost[rows] = mean_k, q_k, cost_k
    return mean, q, cost


def _posterior_shared(y: Tensor, Phi: Tensor, gamma: Tensor, lam: float):
    """:func:`posterior` when every problem has the same ``gamma`` ``(m,)``: one ``(n, n)`` Cholesky factorisation
    for the batch, the measurements as its right-hand sides (the start of :func:`~unrolled.sbl.solvers.sbl`)."""
    n = Phi.shape[0]
    chol = torch.linalg.cholesky(sigma_y(Phi, gamma.unsqueeze(0), lam)[0])
    W = torch.linalg.solve_triangular(chol, Phi, upper=False)  # L^{-1} Phi
    v = torch.linalg.solve_triangular(chol, y.mT, upper=False)  # L^{-1} y for every problem, (n, B)
    mean = gamma * (v.mT @ W.conj())
    q = (W.real**2 + W.imag**2 if W.is_complex() else W**2).sum(0)
    cost = (v.abs() ** 2).sum(0) + 2.0 * torch.log(torch.diagonal(chol).real).sum()
    return mean, q.expand(y.shape[0], -1).clone(), cost


def _posterior_small(y: Tensor, Phi: Tensor, G: Tensor, gamma: Tensor, lam: float, k: int):
    """:func:`posterior_active` for problems with at most ``k`` non-zero hyperparameters (``G = Phi^H Phi``)."""
    n, m = Phi.shape
    B, real = gamma.shape[0], gamma.dtype
    mean = torch.zeros(B, m, dtype=y.dtype, device=y.device)
    q = torch.zeros(B, m, dtype=real, device=gamma.device)
    energy = (y.abs() ** 2).sum(-1)
    if k == 0:  # every atom pruned: x = 0, Sigma_y = lam I
        return mean, q, energy / lam + n * math.log(lam)
    g_s, idx = torch.topk(gamma, k, dim=-1)  # the active atoms first, then padding atoms at gamma = 0
    G_s = G[idx.unsqueeze(-1), idx.unsqueeze(-2)]  # (B, k, k)
    b_s = torch.gather(y @ Phi.conj(), 1, idx)  # Phi_S^H y
    d = g_s.sqrt().to(Phi.dtype)
    M = torch.eye(k, dtype=Phi.dtype, device=Phi.device) + d.unsqueeze(-1) * G_s * d.conj().unsqueeze(-2) / lam
    chol = torch.linalg.cholesky(M)
    Minv = torch.cholesky_inverse(chol)
    mean_s = d * (Minv @ (d.conj() * b_s).unsqueeze(-1)).squeeze(-1) / lam
    gq = 1.0 - torch.diagonal(Minv, dim1=-2, dim2=-1).real  # gamma_i q_i
    q_s = torch.where(g_s > 0, gq / g_s.clamp_min(torch.finfo(real).tiny), torch.zeros_like(gq))
    mean.scatter_(1, idx, mean_s.to(y.dtype))
    q.scatter_(1, idx, q_s)
    fit = (b_s.conj() * mean_s).real.sum(-1) if b_s.is_complex() else (b_s * mean_s).sum(-1)
    logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1).real).sum(-1)
    return mean, q, (energy - fit) / lam + n * math.log(lam) + logdet


class SBLIteration(Iteration):
    """One SBL hyperparameter update (see the module docstring).

    Parameters
    ----------
    update : {'em', 'mackay', 'lstm'}
        The update of ``gamma``.
    reuse_posterior : bool, default False
        Keep the posterior at the new ``gamma`` in the state for the next step (only valid when ``lam`` is
        the same at every step: the solver).
    prune : float, optional
        EM and MacKay updates only: set hyperparameters below ``prune`` to zero after each update (the atom
        leaves the model for good, as in scikit-learn's ``ARDRegression`` with ``threshold_lambda =
        1 / prune``); with ``reuse_posterior`` the posterior is then computed on the surviving atoms by
        :func:`posterior_active`. ``None`` (default): no pruning.

    Notes
    -----
    The state holds ``gamma`` (real, ``(B, m)``), for ``'lstm'`` the cell ``x`` (dtype of ``y``), and either
    ``mean, q, cost`` (``reuse_posterior``) or ``lam`` ``(B,)`` (the last step's, for the readout). The stopping
    criterion is the relative change ``max_i |gamma_new - gamma|_i / max_i gamma_i``; the objective the
    type-II cost (5).
    """

    batched = ("y", "gamma0")
    params = (
        Param("lam", "positive", doc="noise variance lambda of eq. (3)"),
        Param("mu", "positive", doc="step of the LSTM form, eq. (9)"),
        Param("alpha", "positive", doc="input-gate scale, eq. (10) (1 in SBL)"),
        Param("beta", doc="forget gate, eq. (10) (0 in SBL)"),
    )

    def __init__(self, update: str = "lstm", *, reuse_posterior: bool = False, prune: float | None = None):
        if update not in UPDATES:
            raise ValueError(f"update must be one of {UPDATES}, got {update!r}")
        if prune is not None:
            if update == "lstm":
                raise ValueError("prune applies to the 'em' and 'mackay' updates only, got update='lstm'")
            if not (isinstance(prune, (int, float)) and math.isfinite(prune) and prune > 0):
                raise ValueError(f"prune must be a positive finite float or None, got {prune!r}")
            prune = float(prune)
        self.update = update
        self.reuse_posterior = bool(reuse_posterior)
        self.prune = prune

    # ------------------------------------------------------------ helpers
    def _posterior_state(self, y: Tensor, Phi: Tensor, gamma: Tensor, lam) -> State:
        if self.reuse_posterior:
            mean, q, cost = (posterior if self.prune is None else posterior_active)(y, Phi, gamma, lam)
            return {"mean": mean, "q": q, "cost": cost}
        return {"lam": torch.as_tensor(lam, dtype=gamma.dtype, device=gamma.device).expand(gamma.shape[0])}

    def _update(self, state: State, y: Tensor, Phi: Tensor, mean: Tensor, q: Tensor,
                params: Mapping[str, Any]) -> State:
        """The new ``gamma`` (and cell ``x``) from the posterior ``mean, q`` at the state's ``gamma``."""
        gamma = state["gamma"]
        tiny = torch.finfo(gamma.dtype).tiny
        if self.update == "em":
            return {"gamma": mean.abs().pow(2) + (gamma - gamma.pow(2) * q).clamp_min(0.0)}
        if self.update == "mackay":
            denom = gamma * q
            return {"gamma": torch.where(denom > tiny, mean.abs().pow(2) / denom.clamp_min(tiny),
                                         torch.zeros_like(gamma))}
        lam, mu = params["lam"], params["mu"]
        w = q.clamp_min(tiny).sqrt()
        nu = mean + mu * (y - mean @ Phi.T) @ Phi.conj()
        mag = nu.abs()
        gate_in = params["alpha"] * (mag - mu * lam * w).clamp_min(0.0)  # eq. (9), input gate
        x = params["beta"] * state["x"] + gate_in * (nu / mag.clamp_min(tiny))  # eq. (10), sign(nu) candidate
        return {"gamma": x.abs() / w, "x": x}  # eq. (11), output gate 1/w

    # ------------------------------------------------------------ Iteration
    def init(self, data: Data, params: Mapping[str, Any]) -> State:
        y, Phi = data["y"], data["Phi"]
        real = Phi.real.dtype if Phi.is_complex() else Phi.dtype
        gamma = data.get("gamma0")
        if gamma is None:
            gamma = torch.ones(y.shape[0], Phi.shape[1], dtype=real, device=Phi.device)
        state = {"gamma": gamma}  # first: solve() takes the (real) dtype of its statistics from it
        if self.update == "lstm":
            state["x"] = torch.zeros(y.shape[0], Phi.shape[1], dtype=y.dtype, device=y.device)
        state.update(self._posterior_state(y, Phi, gamma, params["lam"]))
        return state

    def step(self, k: int, state: State, data: Data, params: Mapping[str, Any]) -> State:
        y, Phi = data["y"], data["Phi"]
        if self.reuse_posterior:
            mean, q = state["mean"], state["q"]
        else:
            mean, q, _ = posterior(y, Phi, state["gamma"], params["lam"])
        new = self._update(state, y, Phi, mean, q, params)
        if self.prune is not None:
            new["gamma"] = torch.where(new["gamma"] < self.prune, torch.zeros_like(new["gamma"]), new["gamma"])
        if self.reuse_posterior and not bool(torch.isfinite(new["gamma"]).all()):
            raise FloatingPointError(f"SBL produced non-finite hyperparameters at iteration {k + 1}; "
                                     f"lam={params['lam']} may be too small for this dtype")
        new.update(self._posterior_state(y, Phi, new["gamma"], params["lam"]))
        return new

    def readout(self, state: State, data: Data):
        which = data.get("readout", "x")
        gamma = state["gamma"]
        if which == "gamma":
            return gamma
        if self.reuse_posterior:
            mean = state["mean"]
        else:
            mean = posterior(data["y"], data["Phi"], gamma, state["lam"].reshape(-1, 1, 1))[0]
        return (mean, gamma) if which == "both" else mean

    def criterion(self, new: State, old: State, data: Data, params: Mapping[str, Any]) -> Tensor:
        g_new, g_old = new["gamma"], old["gamma"]
        return (g_new - g_old).abs().amax(-1) / g_old.amax(-1).clamp_min(torch.finfo(g_old.dtype).tiny)

    def objective(self, state: State, data: Data, params: Mapping[str, Any]) -> Tensor:
        if self.reuse_posterior:
            return state["cost"]
        return posterior(data["y"], data["Phi"], state["gamma"], params["lam"])[2]
