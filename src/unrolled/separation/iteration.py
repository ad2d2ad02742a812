r"""The one iteration of the separation family: a (generalised) PALM step (LPALM paper, Eq. 6 and Eq. 8).

PALM (:func:`~unrolled.separation.solvers.palm`), the constrained
least-squares fit :func:`~unrolled.separation.solvers.estimate_mixing` and
every variant of LPALM (:class:`~unrolled.separation.nets.LPALM`) run
:class:`PALMIteration`. Its step alternates an S-update and an A-update (with
the new ``S``), for every mixture ``X = A S + N`` of a batch:

.. math::
    S^{k+1} = \mathcal{S}_{\theta_k}\big(S^k - \gamma^S_k\, A^{k\top} (A^k S^k - X)\big), \qquad
    A^{k+1} = \Pi\big(A^k - \gamma^A_k\, (A^k S^{k+1} - X)\, S^{k+1\top}\big),

with :math:`\mathcal{S}` the soft threshold and :math:`\Pi` the projection of
the columns onto the unit ball. The update *kinds* are fixed settings of the
iteration; the parameters of :meth:`PALMIteration.step` are what a net learns:

=============  ==============================================================  ===================
``s_update``   S-update                                                        parameters
=============  ==============================================================  ===================
``explicit``   PALM: :math:`\gamma^S = 1/(1.01\,\|A^{k\top}A^k\|_2)`,            ``lam``
               :math:`\theta = \lambda \gamma^S` (Eq. 6)
``ista-llt``   the step above with learned :math:`\gamma^S_k, \theta_k`        ``gamma_s, theta``
``lista-cp``   :math:`\mathcal{S}_{\theta_k}(S - W_k^\top (A S - X))` (Eq. 8)    ``W, theta``
``lista``      :math:`\mathcal{S}_{\theta_k}(W_{1,k} X + W_{2,k} S)` (no A)      ``W1, W2, theta``
``none``       ``S`` kept (``estimate_mixing``)                                --
=============  ==============================================================  ===================

=============  ==============================================================  ===================
``a_update``   A-update                                                        parameters
=============  ==============================================================  ===================
``explicit``   PALM: :math:`\gamma^A = 1/(1.01\,\|S^{k+1}S^{k+1\top}\|_2)`       --
``ista-ll``    the step above with learned :math:`\gamma^A_k` (Eq. 8)          ``gamma_a``
``none``       ``A`` kept at ``A^0`` (LISTA)                                   --
=============  ==============================================================  ===================

PALM's steps are computed from the current iterate (not differentiated in a
net: the Lipschitz constants are taken of detached tensors). ``gamma_a`` may
be a per-problem ``(B, 1, 1)`` tensor in :func:`~unrolled.core.solve.solve`.

Data: ``X`` ``(B, m, t)``, ``A0`` ``(B, m, n)``, optionally ``S0``
``(B, n, t)`` (zeros by default), all batched; optionally ``a_step_scale``
(a float multiplying the learned A-steps, see :meth:`LPALM.forward
<unrolled.separation.nets.LPALM.forward>`). State: ``A`` and ``S``. The
readout packs both into one batch-first tensor (:func:`pack`), because
:func:`~unrolled.core.solve.solve` freezes and reports one tensor per
problem; :func:`unpack` gives them back as views. The stopping criterion is
:math:`\max(\|S^{k+1} - S^k\|_F, \|A^{k+1} - A^k\|_F)`.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import Tensor

from unrolled.core.iteration import Data, Iteration, Param, State
from unrolled.core.prox import project_columns_unit_ball, soft_threshold
from unrolled.sparse_coding.iteration import SCALAR_LR_SCALE

#: PALM's step is ``1 / (STEP_FACTOR * L)`` (the issue's 1/(1.01 L)).
STEP_FACTOR = 1.01

S_KINDS = ("explicit", "ista-llt", "lista-cp", "lista", "none")
A_KINDS = ("explicit", "ista-ll", "none")


# --------------------------------------------------------------------------- helpers
def gram_norm(M: Tensor) -> Tensor:
    """``||M||_2`` per problem, ``(B,)``, of a symmetric PSD ``M`` ``(B, n, n)``: its largest eigenvalue."""
    return torch.linalg.eigvalsh(M)[..., -1]


def lipschitz_s(A: Tensor) -> Tensor:
    """``L_S = ||A^T A||_2`` per problem, ``(B,)`` (largest eigenvalue of the ``n x n`` Gram matrix)."""
    return gram_norm(A.transpose(-2, -1) @ A)


def lipschitz_a(S: Tensor) -> Tensor:
    """``L_A = ||S S^T||_2`` per problem, ``(B,)``."""
    return gram_norm(S @ S.transpose(-2, -1))


def palm_step_size(L: Tensor) -> Tensor:
    """PALM's per-problem step ``1 / (1.01 L)`` as a ``(B, 1, 1)`` tensor (``L`` clamped to the smallest normal)."""
    return 1.0 / (STEP_FACTOR * L.clamp_min(torch.finfo(L.dtype).tiny))[:, None, None]


def bss_objective(X: Tensor, A: Tensor, S: Tensor, lam: float) -> Tensor:
    r"""Per-problem objective of (2) without the constraint: :math:`\tfrac12\|X-AS\|_F^2+\lambda\|S\|_1`, ``(B,)``."""
    r = X - A @ S
    return 0.5 * r.pow(2).sum((-2, -1)) + lam * S.abs().sum((-2, -1))


def s_gradient_step(X: Tensor, A: Tensor, S: Tensor, gamma, theta) -> Tensor:
    """Proximal-gradient S-update ``ST(S - gamma A^T (A S - X), theta)`` (PALM's and ISTA-LLT's)."""
    return soft_threshold(S - gamma * (A.transpose(-2, -1) @ (A @ S - X)), theta)


def a_gradient_step(X: Tensor, A: Tensor, S: Tensor, gamma) -> Tensor:
    """Projected-gradient A-update ``Pi(A - gamma (A S - X) S^T)`` (PALM's and ISTA-LL's)."""
    return project_columns_unit_ball(A - gamma * ((A @ S - X) @ S.transpose(-2, -1)))


def s_gradient_step_gram(AtX: Tensor, AtA: Tensor, S: Tensor, gamma, theta) -> Tensor:
    r"""The S-update of :func:`s_gradient_step` from the Gram matrices: ``ST(S - gamma (A^T A S - A^T X), theta)``.

    :math:`A^\top(AS - X) = (A^\top A)S - A^\top X` with ``AtA`` ``(B, n, n)`` and ``AtX`` ``(B, n, t)``.
    """
    return soft_threshold(S - gamma * (AtA @ S - AtX), theta)


def a_gradient_step_gram(XSt: Tensor, SSt: Tensor, A: Tensor, gamma) -> Tensor:
    r"""The A-update of :func:`a_gradient_step` from the Gram matrices: ``Pi(A - gamma (A S S^T - X S^T))``.

    :math:`(AS - X)S^\top = A(SS^\top) - XS^\top` with ``SSt`` ``(B, n, n)`` and ``XSt`` ``(B, m, n)``.
    """
    return project_columns_unit_ball(A - gamma * (A @ SSt - XSt))


def s_step(X: Tensor, A: Tensor, S: Tensor, lam: float, L_S: Tensor) -> Tensor:
    """PALM's S-update (first line of Eq. 6) with step ``1 / (1.01 L_S)`` per problem."""
    step = palm_step_size(L_S)
    return s_gradient_step(X, A, S, step, lam * step)


def a_step(X: Tensor, A: Tensor, S: Tensor, L_A: Tensor) -> Tensor:
    """PALM's A-update (second line of Eq. 6): projected gradient, step ``1 / (1.01 L_A)``."""
    return a_gradient_step(X, A, S, palm_step_size(L_A))


def pack(A: Tensor, S: Tensor) -> Tensor:
    """``(B, m n + n t)``: the rows of ``A`` ``(B, m, n)`` and ``S`` ``(B, n, t)`` flattened side by side."""
    B = A.shape[0]
    return torch.cat([A.reshape(B, -1), S.reshape(B, -1)], dim=-1)


def unpack(x: Tensor, m: int, n: int) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`pack` (views): ``A`` ``(B, m, n)`` and ``S`` ``(B, n, t)``."""
    B = x.shape[0]
    return x[:, : m * n].view(B, m, n), x[:, m * n:].view(B, n, -1)


# --------------------------------------------------------------------------- the iteration
class PALMIteration(Iteration):
    """One (generalised) PALM step: an S-update then an A-update (see the module docstring).

    Parameters
    ----------
    s_update : {'explicit', 'ista-llt', 'lista-cp', 'lista', 'none'}
    a_update : {'explicit', 'ista-ll', 'none'}
    track_objective : bool, default False
        Report the objective of (2) (needs the parameter ``lam``); off, no
        iteration pays for it.
    gram : bool, default False
        Compute the gradients of the gradient-step kinds (``explicit``, ``ista-llt``; ``explicit``,
        ``ista-ll``) from the Gram matrices, :math:`A^\top(AS - X) = (A^\top A)S - A^\top X` and
        :math:`(AS - X)S^\top = A(SS^\top) - XS^\top`, instead of the residual :math:`AS - X`: the same
        iterates up to rounding. Per iteration the residual form costs four ``m n t`` products (and
        the ``n^2 t`` of :math:`SS^\top` for PALM's step), the Gram form two (:math:`A^\top X`,
        :math:`XS^\top`) and two ``n^2 t`` ones (:math:`(A^\top A)S`, :math:`SS^\top`, the Grams being
        those PALM's Lipschitz constants need anyway), cheaper when ``n < 2m``.
        :func:`~unrolled.separation.solvers.palm` uses it there; the LPALM nets keep the residual form.
    """

    batched = ("X", "A0", "S0")
    batched_params = ("gamma_a",)
    params = (
        Param("theta", "positive", lr_scale=SCALAR_LR_SCALE, doc="S threshold"),
        Param("W", doc="(m, n) LISTA-CP weight"),
        Param("gamma_s", "positive", lr_scale=SCALAR_LR_SCALE, doc="S step (ISTA-LLT)"),
        Param("W1", doc="(n, m) LISTA input weight"),
        Param("W2", doc="(n, n) LISTA recurrent weight"),
        Param("gamma_a", "positive", lr_scale=SCALAR_LR_SCALE, doc="A step (ISTA-LL), 1 / L_A"),
        Param("lam", doc="PALM's lambda (explicit S-update: threshold lam / (1.01 L_S))"),
    )

    def __init__(self, s_update: str = "explicit", a_update: str = "explicit", *, track_objective: bool = False,
                 gram: bool = False):
        if s_update not in S_KINDS:
            raise ValueError(f"s_update must be one of {S_KINDS}, got {s_update!r}")
        if a_update not in A_KINDS:
            raise ValueError(f"a_update must be one of {A_KINDS}, got {a_update!r}")
        if s_update == "none" and a_update == "none":
            raise ValueError("s_update and a_update cannot both be 'none'")
        self.s_update, self.a_update = s_update, a_update
        self.track_objective = bool(track_objective)
        self.gram = bool(gram)

    def update_s(self, X: Tensor, A: Tensor, S: Tensor, params: Mapping[str, Any]) -> Tensor:
        """The S-update of kind :attr:`s_update` (from the Gram matrices with ``gram=True``)."""
        kind = self.s_update
        if self.gram and kind in ("explicit", "ista-llt"):
            At = A.transpose(-2, -1)
            AtA, AtX = At @ A, At @ X
            if kind == "explicit":  # lipschitz_s from the same Gram
                step = palm_step_size(gram_norm(AtA.detach()))
                return s_gradient_step_gram(AtX, AtA, S, step, params["lam"] * step)
            return s_gradient_step_gram(AtX, AtA, S, params["gamma_s"], params["theta"])
        if kind == "explicit":
            return s_step(X, A, S, params["lam"], lipschitz_s(A.detach()))
        if kind == "ista-llt":
            return s_gradient_step(X, A, S, params["gamma_s"], params["theta"])
        if kind == "lista-cp":
            return soft_threshold(S - params["W"].T @ (A @ S - X), params["theta"])
        if kind == "lista":
            return soft_threshold(params["W1"] @ X + params["W2"] @ S, params["theta"])
        return S

    def update_a(self, X: Tensor, A: Tensor, S: Tensor, params: Mapping[str, Any], scale: float = 1.0) -> Tensor:
        """The A-update of kind :attr:`a_update` (with the new ``S``); ``scale`` multiplies a learned step."""
        if self.gram and self.a_update in ("explicit", "ista-ll"):
            St = S.transpose(-2, -1)
            SSt, XSt = S @ St, X @ St
            if self.a_update == "explicit":  # lipschitz_a from the same Gram
                gamma = palm_step_size(gram_norm(SSt.detach()))
            else:
                gamma = params["gamma_a"] * scale
            return a_gradient_step_gram(XSt, SSt, A, gamma)
        if self.a_update == "explicit":
            # PALM's step from the current Lipschitz constant, treated as a constant (not differentiated).
            return a_step(X, A, S, lipschitz_a(S.detach()))
        if self.a_update == "ista-ll":
            return a_gradient_step(X, A, S, params["gamma_a"] * scale)
        return A

    # ------------------------------------------------------------ Iteration
    def init(self, data: Data, params: Mapping[str, Any]) -> State:
        X, A = data["X"], data["A0"]
        S = data.get("S0")
        if S is None:
            S = X.new_zeros(X.shape[0], A.shape[-1], X.shape[-1])
        return {"A": A, "S": S}

    def step(self, k: int, state: State, data: Data, params: Mapping[str, Any]) -> State:
        X = data["X"]
        S = self.update_s(X, state["A"], state["S"], params)
        A = self.update_a(X, state["A"], S, params, data.get("a_step_scale", 1.0))
        return {"A": A, "S": S}

    def readout(self, state: State, data: Data) -> Tensor:
        return pack(state["A"], state["S"])

    def criterion(self, new: State, old: State, data: Data, params: Mapping[str, Any]) -> Tensor:
        dS = torch.linalg.matrix_norm(new["S"] - old["S"]) if self.s_update != "none" else None
        dA = torch.linalg.matrix_norm(new["A"] - old["A"]) if self.a_update != "none" else None
        if dS is None or dA is None:
            return dA if dS is None else dS
        return torch.maximum(dS, dA)

    def objective(self, state: State, data: Data, params: Mapping[str, Any]) -> Tensor | None:
        if not self.track_objective:
            return None
        return bss_objective(data["X"], state["A"], state["S"], params["lam"])

    def __repr__(self) -> str:
        gram = ", gram=True" if self.gram else ""
        return f"PALMIteration(s_update={self.s_update!r}, a_update={self.a_update!r}{gram})"
