r"""The one iteration of the NMF family: the multiplicative updates (24)-(26) of the review's box "Deep NMF".

For a non-negative spectrogram :math:`M \in \mathbb{R}_+^{F\times T}` and the sparse beta-NMF problem (23)

.. math::
    \min_{W \ge 0, H \ge 0} D_\beta(M | W H) + \mu \|H\|_1, \qquad \|w_l\|_2 = 1,

one iteration :math:`l` is, with :math:`\Lambda = W H` and the MM exponent :math:`\gamma(\beta)`
(:func:`~unrolled.nmf.divergence.mm_exponent`, 1 for :math:`\beta \in [1, 2]`),

.. math::
    H^l &= H^{l-1} \odot \Big(\frac{W^\top [M \odot \Lambda^{\beta-2}]}{W^\top \Lambda^{\beta-1} + \mu}\Big)^\gamma
        && (24),\ \Lambda = W^{l-1} H^{l-1}\\
    W^l &= W^{l-1} \odot \Big(\frac{[M \odot \Lambda^{\beta-2}] H^{l\top}}{\Lambda^{\beta-1} H^{l\top}}\Big)^\gamma
        && (25),\ \Lambda = W^{l-1} H^{l}\\
    w_j^l &\leftarrow w_j^l / \|w_j^l\|_2,\quad h_j^l \leftarrow \|w_j^l\|_2\, h_j^l && (26)

Run two ways:

* the classic solver :func:`~unrolled.nmf.solvers.nmf_mu` runs (24)-(26) (``update_W=True``) or (24) alone with
  fixed, normalised bases (``update_W=False``, the sparse-NMF separation step);
* the deep NMF net :class:`~unrolled.nmf.nets.DeepNMF` runs (24) and (26) with an untied dictionary
  :math:`W^l` per layer (the parameter ``W``, normalised in the step): the layer of Hershey et al. (2014).

With ``n_speech`` set, the state also holds the Wiener-like masked estimate of the first source
:math:`\hat S = M \odot (W_s H_s) / (W H)` (the first ``n_speech`` bases are speech), computed with the
layer's own dictionary; it is then the readout (what the net outputs and its loss sees).

:math:`\Lambda` is clamped at ``eps`` before the powers (scikit-learn clamps it at the float32 machine
epsilon); with data well above ``eps`` the clamp is never active.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor

from unrolled.core.iteration import Data, Iteration, Param, State
from unrolled.nmf.divergence import beta_divergence, mm_exponent, normalise_columns


def default_activations(M: Tensor, W: Tensor) -> Tensor:
    r"""Starting activations :math:`h^0_{l,t} = \|m_t\|_1 / \sum_{l'} \|w_{l'}\|_1`, ``(B, L, T)``.

    Uniform over the bases and scaled so that :math:`\|W h^0_t\|_1 = \|m_t\|_1` (frame energy matched).
    """
    B, _, T = M.shape
    L = W.shape[-1]
    total = W.sum(dim=(-2, -1), keepdim=True) if W.dim() == 3 else W.sum()
    return (M.sum(dim=-2, keepdim=True) / total).expand(B, L, T).contiguous()


class NMFIteration(Iteration):
    """Multiplicative updates (24)-(26), see the module docstring.

    Parameters
    ----------
    beta : float
        The beta of the divergence (0 Itakura-Saito, 1 Kullback-Leibler, 2 squared Euclidean).
    mu : float, default 0
        l1 weight on ``H`` (>= 0).
    update_W : bool, default False
        Also run (25)-(26) (the state then holds a per-problem ``W``); otherwise ``W`` is the parameter.
    n_speech : int, optional
        Number of speech bases (the first columns of ``W``): the state holds the masked speech estimate ``S``
        and the readout is ``S``; without it the readout is ``H``.
    eps : float, default 1e-10
        Floor of :math:`\\Lambda` before its powers.
    monitor : bool, default False
        Keep the objective (23) in the state (solver: history and stopping test).
    reuse : bool, default False
        Take :math:`\\Lambda` of (24) from the previous step's reconstruction ``V`` (valid when the dictionary
        is the same at every step: the solver; the untied net recomputes it).

    Data: ``M`` ``(B, F, T)``; optional ``H0`` ``(B, L, T)``; ``W0`` ``(B, F, L)`` or ``(F, L)`` when
    ``update_W``. Parameter ``W``: ``(F, L)`` or per problem ``(B, F, L)`` (not used when ``update_W``).
    """

    params = (Param("W", "positive", doc="(F, L) non-negative dictionary; its columns are normalised (26)"),)
    batched = ("M", "H0", "W0")
    batched_params = ("W",)

    def __init__(self, beta: float, mu: float = 0.0, *, update_W: bool = False, n_speech: int | None = None,
                 eps: float = 1e-10, monitor: bool = False, reuse: bool = False):
        self.beta, self.mu, self.eps = float(beta), float(mu), float(eps)
        self.gamma = mm_exponent(self.beta)
        self.update_W, self.monitor, self.reuse = bool(update_W), bool(monitor), bool(reuse)
        self.n_speech = None if n_speech is None else int(n_speech)

    # ------------------------------------------------------------ the updates
    def _powers(self, M: Tensor, Lam: Tensor) -> tuple[Tensor, Tensor]:
        """``(M * Lam^(beta-2), Lam^(beta-1))`` with ``Lam`` floored at ``eps``."""
        Lam = Lam.clamp_min(self.eps)
        if self.beta == 1:
            return M / Lam, torch.ones_like(Lam)
        if self.beta == 2:
            return M, Lam
        return M * Lam ** (self.beta - 2.0), Lam ** (self.beta - 1.0)

    def update_H(self, M: Tensor, W: Tensor, H: Tensor, Lam: Tensor) -> Tensor:
        """(24): one MM step on ``H`` with ``W`` (normalised) fixed and :math:`\\Lambda = W H`."""
        num, den = self._powers(M, Lam)
        T = M.shape[-1]
        both = W.transpose(-1, -2) @ torch.cat([num, den], dim=-1)  # one product for numerator and denominator
        ratio = both[..., :T] / (both[..., T:] + self.mu).clamp_min(torch.finfo(M.dtype).tiny)
        return H * (ratio if self.gamma == 1 else ratio ** self.gamma)

    def update_W_step(self, M: Tensor, W: Tensor, H: Tensor) -> tuple[Tensor, Tensor]:
        """(25) then (26): returns the normalised ``W`` and ``H`` rescaled so that ``W H`` is unchanged."""
        num, den = self._powers(M, W @ H)
        Ht = H.transpose(-1, -2)
        ratio = (num @ Ht) / (den @ Ht).clamp_min(torch.finfo(M.dtype).tiny)
        W = W * (ratio if self.gamma == 1 else ratio ** self.gamma)
        W, norms = normalise_columns(W)
        return W, H * norms.transpose(-1, -2)

    # ------------------------------------------------------------ Iteration
    def _finish(self, M: Tensor, W: Tensor, H: Tensor) -> State:
        V = W @ H
        state = {"H": H, "V": V}
        if self.update_W:
            state["W"] = W
        if self.n_speech is not None:
            ns = self.n_speech
            state["S"] = M * (W[..., :ns] @ H[..., :ns, :]) / V.clamp_min(self.eps)
        if self.monitor:
            state["obj"] = self._objective(M, V, H)
        return state

    def _objective(self, M: Tensor, V: Tensor, H: Tensor) -> Tensor:
        return beta_divergence(M, V, self.beta, eps=self.eps) + self.mu * H.sum(dim=(-2, -1))

    def init(self, data: Data, params: Mapping[str, Any]) -> State:
        M = data["M"]
        if self.update_W:
            W0 = data["W0"]
            W, norms = normalise_columns(W0.expand(M.shape[0], *W0.shape[-2:]) if W0.dim() == 2 else W0)
        else:
            W, norms = normalise_columns(params["W"])
        H = data.get("H0")
        if H is None:
            H = default_activations(M, W)
        else:
            H = H * norms.transpose(-1, -2)  # (26) at the start: W0 H0 unchanged
        return self._finish(M, W.contiguous(), H)

    def step(self, k: int, state: State, data: Data, params: Mapping[str, Any]) -> State:
        M, H = data["M"], state["H"]
        W = state["W"] if self.update_W else normalise_columns(params["W"])[0]
        Lam = state["V"] if self.reuse or self.update_W else W @ H
        H = self.update_H(M, W, H, Lam)
        if self.update_W:
            W, H = self.update_W_step(M, W, H)
        return self._finish(M, W, H)

    def readout(self, state: State, data: Data) -> Tensor:
        return state["S"] if self.n_speech is not None else state["H"]

    def objective(self, state: State, data: Data, params: Mapping[str, Any]) -> Tensor:
        if "obj" in state:
            return state["obj"]
        return self._objective(data["M"], state["V"], state["H"])

    def criterion(self, new: State, old: State, data: Data, params: Mapping[str, Any]) -> Tensor:
        """Relative change of the objective (23), :math:`|F^{l-1} - F^l| / F^{l-1}`."""
        f_new, f_old = self.objective(new, data, params), self.objective(old, data, params)
        return (f_old - f_new).abs() / f_old.abs().clamp_min(torch.finfo(f_old.dtype).tiny)
