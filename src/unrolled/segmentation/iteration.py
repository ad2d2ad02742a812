r"""Mean-field inference of the fully connected CRF, one iteration defined once (review, eqs. (19)-(20)).

The CRF over the pixels :math:`i` with labels :math:`l \in \{1..L\}` has the energy
:math:`E(l) = \sum_i \phi_i(l_i) + \sum_{i<j} \mu(l_i, l_j) \sum_m w^m G^m(f_i, f_j)` (the review's box "Unrolling
CRF into RNN"). One mean-field iteration maps the marginals :math:`Q` to

.. math::
    \tilde Q^m_i(l) &= \sum_{j\ne i} G^m(f_i, f_j)\, Q_j(l) && \text{message passing (19)} \\
    \hat Q_i(l) &= \sum_{l'} \sum_m \mu^m(l, l')\, w^m\, \tilde Q^m_i(l') && \text{compatibility transform (20)} \\
    Q_i(l) &\propto \exp\{-\phi_i(l) - \hat Q_i(l)\} && \text{unary addition, normalisation}

with :math:`m = 1` the spatial and :math:`m = 2` the bilateral kernel (:mod:`unrolled.segmentation.filtering`).
``unary`` is the *score* :math:`U = -\phi` (the logits of a segmentation network), so the last step is
``softmax(unary - Q_hat)`` over the labels; the state starts at :math:`Q^0 = \mathrm{softmax}(U)` (CRF-RNN's
initialisation).

Energy
------
:meth:`MeanFieldIteration.objective` is the mean-field free energy :math:`\mathrm{KL}(Q\,\|\,P) - \log Z`,

.. math::
    F(Q) = \sum_i \sum_l Q_i(l)\big(\log Q_i(l) - U_i(l)\big)
         + \tfrac12 \sum_i \sum_l Q_i(l)\, \hat Q_i(l),

(for a non-symmetric :math:`\mu` this is the energy of its symmetric part). With the Potts compatibility
:math:`\mu(l, l') = [l \ne l']` and exact filtering, the parallel update above never increases :math:`F` when
:math:`w^1 + w^2 \le 2`: on the simplices the pairwise term is
:math:`\mathrm{const} - \tfrac12 q^\top((K - W I)\otimes I)q` with :math:`K = \sum_m w^m G^m` positive
semidefinite and :math:`W = \sum_m w^m` its diagonal, so it is bounded above by its linearisation plus
:math:`\tfrac W2\|\Delta\|^2`, while the update decreases the linearised objective by
:math:`\sum_i \mathrm{KL}(Q_i\|Q'_i) \ge \|\Delta\|^2` (Pinsker on zero-sum differences); hence
:math:`F(Q') \le F(Q) - (1 - W/2)\|\Delta\|^2`. Larger weights can make the parallel update oscillate.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor

from unrolled.core.iteration import Data, Iteration, Param, State
from unrolled.segmentation.filtering import Filtering, messages


def compatibility_transform(spatial: Tensor, bilateral: Tensor, weights: Tensor, compatibility: Tensor) -> Tensor:
    r"""Eq. (20): :math:`\hat Q = \sum_m \mu^m w^m \tilde Q^m`, a 1x1 convolution over the labels.

    ``compatibility`` is ``(L, L)`` (one :math:`\mu` for both kernels) or ``(2, L, L)`` (one per kernel).
    """
    if compatibility.dim() == 2:
        mixed = weights[0] * spatial + weights[1] * bilateral
        return torch.einsum("lk,bkhw->blhw", compatibility, mixed)
    return (torch.einsum("lk,bkhw->blhw", compatibility[0], weights[0] * spatial)
            + torch.einsum("lk,bkhw->blhw", compatibility[1], weights[1] * bilateral))


class MeanFieldIteration(Iteration):
    """One parallel mean-field update of the dense CRF, eqs. (19)-(20).

    Parameters
    ----------
    filtering : Filtering
        Exact or fast message passing.

    Notes
    -----
    Data: ``unary`` ``(B, L, H, W)`` scores, ``image`` ``(B, C, H, W)``, and optionally the kernel matrices of
    :func:`~unrolled.segmentation.filtering.kernel_cache` under ``bilateral`` (and ``spatial``), used instead of
    recomputing them from ``widths`` (they must have been built from the same widths). State: ``logits``
    ``(B, L, H, W)``, with :math:`Q = \\mathrm{softmax}(\\text{logits})`. Parameters: ``weights`` ``(2,)``
    positive :math:`(w^1, w^2)`, ``compatibility`` :math:`\\mu`, ``widths`` ``(3,)`` positive
    :math:`(\\gamma, \\alpha, \\beta)`.
    """

    params = (
        Param("weights", "positive", tied=True, doc="kernel weights (w_spatial, w_bilateral)"),
        Param("compatibility", "none", tied=True, doc="label compatibility mu (L, L): a 1x1 convolution"),
        Param("widths", "positive", tied=True, doc="kernel widths (gamma, alpha, beta) in pixels and colour units"),
    )
    batched = ("unary", "image", "bilateral")

    def __init__(self, filtering: Filtering = Filtering()):
        self.filtering = filtering

    def _cache(self, data: Data) -> dict[str, Tensor]:
        return {key: data[key] for key in ("bilateral", "spatial") if key in data}

    def pairwise(self, Q: Tensor, data: Data, params: Mapping) -> Tensor:
        """:math:`\\hat Q` of eq. (20) at the marginals ``Q``."""
        spatial, bilateral = messages(Q, data["image"], params["widths"], self.filtering, self._cache(data))
        return compatibility_transform(spatial, bilateral, params["weights"], params["compatibility"])

    def init(self, data: Data, params: Mapping) -> State:
        return {"logits": data["unary"]}

    def step(self, k: int, state: State, data: Data, params: Mapping) -> State:
        Q = torch.softmax(state["logits"], dim=1)
        return {"logits": data["unary"] - self.pairwise(Q, data, params)}

    def readout(self, state: State, data: Data) -> Tensor:
        return torch.softmax(state["logits"], dim=1)

    def criterion(self, new: State, old: State, data: Data, params: Mapping) -> Tensor:
        """Largest change of a marginal, ``max_i,l |Q_new - Q_old|`` per problem."""
        change = torch.softmax(new["logits"], dim=1) - torch.softmax(old["logits"], dim=1)
        return change.abs().flatten(1).amax(1)

    def objective(self, state: State, data: Data, params: Mapping) -> Tensor:
        """The mean-field free energy :math:`F(Q)` per problem (module docstring)."""
        log_q = torch.log_softmax(state["logits"], dim=1)
        Q = log_q.exp()
        pair = self.pairwise(Q, data, params)
        return (Q * (log_q - data["unary"] + 0.5 * pair)).flatten(1).sum(1)
