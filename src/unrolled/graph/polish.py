r"""Polish and certificate of the graph :func:`~unrolled.graph.solvers.admm` (SLoG-Net's LP (8)).

With ``polish=True`` (the default when ``tol > 0``), every ``polish_every``
iterations :func:`admm` takes the zero set :math:`\mathcal Z` of its current
:math:`x` (the entries thresholded to zero; :math:`\mathcal N` the others),
solves the problem restricted to it (:func:`polish_filter`) and stops a
problem when the polished point is *certified* :math:`\mathrm{tol}`-optimal by
a dual point built from it (:func:`certify`), as OSQP polishes its QP solutions.

*Dual of (8).* With :math:`\|Z\tilde g\|_1 = \max_{\|\lambda\|_\infty \le
1}\lambda^\top Z\tilde g`, the Lagrangian :math:`\lambda^\top Z\tilde g +
\nu(c - 1^\top\tilde g)` is bounded below in :math:`\tilde g` only when
:math:`Z^\top\lambda = \nu 1`, so the dual is

.. math::
    \max_{\lambda \in \mathbb R^{NP},\, \nu}\ c\,\nu \quad\text{s.t.}\quad
    Z^\top\lambda = \nu 1,\ \|\lambda\|_\infty \le 1,

and every feasible :math:`(\tilde g; \lambda, \nu)` has :math:`\|Z\tilde g\|_1
\ge \lambda^\top Z\tilde g = \nu 1^\top\tilde g = c\nu` (weak duality). At
the solution :math:`\lambda_j = \operatorname{sign}(Z\tilde g)_j` on
:math:`\mathcal N` (strong duality, :math:`c\nu = \|Z\tilde g\|_1`).

*Primal polish.* An LP's solution is a vertex: :math:`(Z\tilde g)_j = 0` on
at least :math:`N - 1` rows. Given :math:`\mathcal Z`, the equality-constrained
least squares :math:`\min \|Z_{\mathcal Z}\tilde g\|_2^2` s.t.
:math:`1^\top\tilde g = c` has the KKT system

.. math::
    \begin{pmatrix} G & 1 \\ 1^\top & 0 \end{pmatrix}
    \begin{pmatrix} \tilde g \\ \eta \end{pmatrix} =
    \begin{pmatrix} 0 \\ c \end{pmatrix},\qquad
    G = Z_{\mathcal Z}^\top Z_{\mathcal Z} = \sum_{(n,p) \in \mathcal Z}
    (v^{(n)} \circ \tilde y_p)(v^{(n)} \circ \tilde y_p)^\top

(:math:`v^{(n)}` the ``n``-th row of ``V``, :math:`\tilde y_p` the ``p``-th
column of :math:`\tilde Y`), non-singular when :math:`G` is positive definite
on :math:`1^\perp`; when :math:`\mathcal Z` is contained in the solution's zero
set and determines :math:`\tilde g` (rank ``N - 1``), its solution is the
solution of (8) (with :math:`G\tilde g = 0`). ADMM's zero set may also hold
entries that are small but non-zero at the solution; the polished point is then
only near the solution, and the certificate decides.

*Dual candidate* (:func:`dual_candidate`). Complementary slackness fixes
:math:`\lambda_j = \operatorname{sign}(x_j)` on the support; on the free set
:math:`\mathcal F` (ADMM's zero set, together with the entries where the
polished :math:`Z\tilde g` vanishes to rounding) :math:`\lambda_{\mathcal F}`
must satisfy :math:`Z_{\mathcal F}^\top\lambda_{\mathcal F} - \nu 1 =
-Z^\top_{\mathcal N}s` and :math:`|\lambda_{\mathcal F}| \le 1`, an
intersection of an affine set and a box that contains the optimal dual point
when :math:`\mathcal F` contains the solution's zero set. Alternating
projections onto the two, started at ADMM's own multiplier (which always lies
in the box and sits on the support's signs, by the optimality of the
:math:`x`-update), find a point near it; the projection onto the affine set
needs only the ``N x N`` matrix :math:`G_{\mathcal F} + 11^\top`.

*Certificate* (:func:`certify`, valid for any candidate). A candidate
:math:`\lambda` is made dual feasible: first exactly on
:math:`Z^\top\lambda = \nu 1` by :math:`\lambda' = \lambda + Z\,
\operatorname{diag}(z)^{-1}(\nu 1 - Z^\top\lambda)` (using :math:`Z^\top Z =
\operatorname{diag}(z)`), then in the box by dividing :math:`(\lambda', \nu)`
by :math:`t = \max(1, \|\lambda'\|_\infty)` (:math:`\nu` the weighted mean of
:math:`Z^\top\lambda` that makes the correction smallest). The primal is made
exactly feasible, :math:`\tilde g \leftarrow c\tilde g/1^\top\tilde g`, with
objective :math:`F`. The lower bound :math:`D = c\nu/t \le F^*` gives the
certified relative gap :math:`(F - D)/D \ge (F - F^*)/F^*`, plus a term
:math:`\|e\|_\infty\|\tilde g\|_1/D` for the rounding residual :math:`e =
Z^\top\lambda'/t - (\nu/t)1` of the products. A problem stops when this bound
is below ``tol``: its reported :math:`\tilde g` is then the (feasible)
polished filter, ``x`` its sources with :math:`\mathcal F` set to zero, and its
state the certified primal-dual point. A wrong zero set gives a point the
certificate rejects (or one that is ``tol``-optimal anyway), and ADMM
continues unchanged.

The notation is that of :mod:`unrolled.graph.solvers` (``Yt`` is :math:`\tilde Y = V^\top Y`, ``z`` the
diagonal of :math:`Z^\top Z`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from unrolled.graph.iteration import GraphADMMIteration
from unrolled.graph.operators import apply_Z, apply_Zt, per_problem

__all__ = ["polish_filter", "dual_candidate", "certify", "PolishedIteration"]

#: Elements of one chunk of the rows of ``Z`` formed at a time by the polish (bounds its memory).
POLISH_CHUNK = 1 << 22

#: Entries of the polished sources at most this fraction of their largest are zero to rounding (the dual's set).
ZERO_RTOL = 1e-9


def zero_set_gram(V: Tensor, Yt: Tensor, zero: Tensor) -> Tensor:
    r""":math:`G = Z_{\mathcal Z}^\top Z_{\mathcal Z}` ``(B, N, N)`` for the 0/1 mask ``zero`` ``(B, N, P)`` of the set.

    Row :math:`(n, p)` of ``Z`` is :math:`v^{(n)} \circ \tilde y_p`; the rows are formed in chunks of
    :data:`POLISH_CHUNK` elements, masked and accumulated, ``O(N^3 P)`` per problem.
    """
    B, N, P = Yt.shape
    G = Yt.new_zeros(B, N, N)
    Ytt = Yt.transpose(-2, -1)
    pc = max(1, POLISH_CHUNK // max(1, B * N * N))
    for p0 in range(0, P, pc):
        rows = V[None, :, None, :] * Ytt[:, None, p0:p0 + pc, :]  # (B, N, pc, N)
        rows = (rows * zero[:, :, p0:p0 + pc, None]).reshape(B, -1, N)
        G = G + rows.transpose(-2, -1) @ rows
    return G


def polish_filter(Yt: Tensor, V: Tensor, zero: Tensor, c: float) -> tuple[Tensor, Tensor]:
    r"""Primal polish of (8) on a guessed zero set: the equality-constrained least squares (module docstring).

    Parameters
    ----------
    Yt : Tensor
        ``(B, N, P)`` :math:`\tilde Y = V^\top Y`.
    V : Tensor
        ``(N, N)`` orthonormal eigenbasis.
    zero : Tensor
        ``(B, N, P)`` bool, the guessed zero set :math:`\mathcal Z` of :math:`Z\tilde g`.
    c : float
        Normalisation :math:`1^\top\tilde g = c`.

    Returns
    -------
    g, ok : Tensor
        ``(B, N)`` solution of :math:`\min\|Z_{\mathcal Z}\tilde g\|_2^2` s.t. :math:`1^\top\tilde g = c`
        (its KKT system) and ``(B,)`` bool: the solve is finite. Only :func:`certify` says whether it is
        optimal.
    """
    B, N, P = Yt.shape
    G = zero_set_gram(V, Yt, zero.to(Yt.dtype))
    sigma = (G.diagonal(dim1=-2, dim2=-1).sum(-1) / N).clamp_min(torch.finfo(Yt.dtype).tiny)  # scales the KKT rows
    K = Yt.new_zeros(B, N + 1, N + 1)
    K[:, :N, :N] = G
    K[:, :N, N] = sigma[:, None]
    K[:, N, :N] = sigma[:, None]
    rhs = Yt.new_zeros(B, N + 1, 1)
    rhs[:, N, 0] = sigma * c
    g = torch.linalg.solve_ex(K, rhs)[0][:, :N, 0]
    return g, torch.isfinite(g).all(-1)


def dual_candidate(Yt: Tensor, V: Tensor, free: Tensor, sign: Tensor, lam: Tensor, n_steps: int = 20, *,
                   nu: Tensor | None = None, null: Tensor | None = None, gram: Tensor | None = None) -> Tensor:
    r"""A dual point of (8) near ``lam``, by alternating projections (module docstring, *Dual candidate*).

    With :math:`\lambda_j = s_j` fixed off the set ``free`` (:math:`\mathcal F`), it alternates the
    projection onto the affine set :math:`Z_{\mathcal F}^\top\lambda_{\mathcal F} - \nu 1 =
    -Z_{\mathcal N}^\top s` and the clipping of :math:`\lambda_{\mathcal F}` to :math:`[-1, 1]`,
    ``n_steps`` times, from ``lam`` clipped, ending on the affine set. Each step costs about one ADMM
    iteration.

    * ``nu=None``: :math:`\nu` is a variable too; the matrix :math:`[Z_{\mathcal F}^\top, -1]` times its
      transpose is :math:`G_{\mathcal F} + 11^\top` (``N x N``, non-singular when :math:`G_{\mathcal F}`'s
      null space is not orthogonal to 1).
    * ``nu`` given (``(B,)``, e.g. :math:`\|Z\tilde g\|_1/c` of a polished ``g``): :math:`\nu` stays
      there; :math:`G_{\mathcal F}` is singular along the polished filter ``null`` (``(B, N)``, required
      then), so the projection uses :math:`G_{\mathcal F} + \sigma\hat g\hat g^\top`, whose inverse acts
      as the pseudo-inverse on the range of :math:`G_{\mathcal F}`.

    Parameters
    ----------
    Yt, V
        As in :func:`polish_filter`.
    free : Tensor
        ``(B, N, P)`` bool, where :math:`\lambda` may move (the guessed zero set).
    sign : Tensor
        ``(B, N, P)`` values of :math:`\lambda` elsewhere (signs of the sources).
    lam : Tensor
        ``(B, N, P)`` start (ADMM's multiplier).
    n_steps : int
        Number of alternating projections (``>= 1``).
    nu, null : Tensor, optional
        Fixed :math:`\nu` and the null vector of :math:`G_{\mathcal F}` (see above).
    gram : Tensor, optional
        ``(B, N, N)`` :math:`G_{\mathcal F}` if already formed (it costs ``O(N^3 P)``).

    Returns
    -------
    Tensor
        ``(B, N, P)`` dual candidate for :func:`certify`.
    """
    N = Yt.shape[-2]
    m = free.to(Yt.dtype)
    fixed = sign * (1.0 - m)
    G = zero_set_gram(V, Yt, m) if gram is None else gram
    if nu is None:
        Ginv = torch.linalg.inv_ex(G + 1.0)[0]
    else:
        sigma = G.diagonal(dim1=-2, dim2=-1).sum(-1) / N
        gh = null / torch.linalg.vector_norm(null, dim=-1, keepdim=True)
        Ginv = torch.linalg.inv_ex(G + sigma[:, None, None] * gh[:, :, None] * gh[:, None, :])[0]
    b = -apply_Zt(V, Yt, fixed)
    lam = lam.clamp(-1.0, 1.0) * m
    free_nu = nu is None
    if free_nu:
        nu = (apply_Zt(V, Yt, lam) - b).mean(-1)
    for i in range(n_steps):
        y = (Ginv @ (apply_Zt(V, Yt, lam) - nu[:, None] - b).unsqueeze(-1)).squeeze(-1)
        lam = lam - m * apply_Z(V, Yt, y)
        if free_nu:
            nu = nu + y.sum(-1)
        if i < n_steps - 1:
            lam = lam.clamp(-1.0, 1.0)
    return fixed + lam


def certify(Yt: Tensor, z: Tensor, V: Tensor, g: Tensor, lam: Tensor, c: float
            ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    r"""Certified bound of :math:`(F - F^*)/F^*` for a primal candidate ``g`` and any dual candidate ``lam``.

    Makes both candidates feasible (module docstring, *Certificate*): :math:`\tilde g \leftarrow
    c\tilde g/1^\top\tilde g` with objective :math:`F`; with :math:`r = Z^\top\lambda`,
    :math:`\nu = (\sum_i r_i/z_i)/(\sum_i 1/z_i)` (the :math:`\nu` of the smallest correction),
    :math:`\lambda' = \lambda + Z\operatorname{diag}(z)^{-1}(\nu 1 - r)` and
    :math:`t = \max(1, \|\lambda'\|_\infty)`, :math:`(\lambda'/t, \nu/t)` is dual feasible with value
    :math:`D = c\nu/t \le F^*`.

    Parameters
    ----------
    Yt, V
        As in :func:`polish_filter`.
    z : Tensor
        ``(B, N)`` diagonal of :math:`Z^\top Z` (:func:`~unrolled.graph.iteration.deconvolution_data`).
    g : Tensor
        ``(B, N)`` primal candidate (any scale with :math:`1^\top\tilde g \ne 0`).
    lam : Tensor
        ``(B, N, P)`` dual candidate (any).
    c : float
        Normalisation constant.

    Returns
    -------
    gap, g, Zg, lam, nu : Tensor
        ``(B,)`` bound :math:`(F - D)/D + \|e\|_\infty\|\tilde g\|_1/D` (``e`` the rounding
        residual of :math:`Z^\top\lambda = \nu 1`; ``inf`` where :math:`D \le 0` or not finite), the
        feasible ``(B, N)`` filter and ``(B, N, P)`` :math:`Z\tilde g`, and the dual feasible point
        ``(B, N, P)``, ``(B,)``.
    """
    g = g * (c / g.sum(dim=-1, keepdim=True))
    Zg = apply_Z(V, Yt, g)
    F = Zg.abs().sum(dim=(-2, -1))
    r = apply_Zt(V, Yt, lam)
    nu = (r / z).sum(-1) / (1.0 / z).sum(-1)
    lam = lam + apply_Z(V, Yt, (nu[:, None] - r) / z)
    t = lam.abs().amax(dim=(-2, -1)).clamp_min(1.0)
    lam, nu = lam / t[:, None, None], nu / t
    D = c * nu
    e = (apply_Zt(V, Yt, lam) - nu[:, None]).abs().amax(dim=-1)
    gap = (F - D) / D + e * g.abs().sum(dim=-1) / D
    gap = torch.where(torch.isfinite(gap) & (D > 0), gap, torch.full_like(gap, float("inf")))
    return gap, g, Zg, lam, nu


class PolishedIteration(GraphADMMIteration):
    """``inner``'s steps, and after the step that completes each ``polish_every``-th ADMM iteration, the polish.

    What :func:`~unrolled.graph.solvers.admm` runs with ``polish=True``. ``inner`` is the ADMM step or
    ``solvers._TestedEvery`` (``per_step`` ADMM iterations per step). The state also
    carries ``gap`` ``(B,)``: the certified gap of a problem whose polished point was accepted at this step
    (``inf`` otherwise); :meth:`criterion` is that gap there (below ``tol``, so the problem stops), the inner
    criterion elsewhere.
    """

    def __init__(self, inner: GraphADMMIteration, c: float, tol: float, polish_every: int, per_step: int = 1,
                 dual_steps: int = 20):
        super().__init__(inner.output, atol=inner.atol)
        self.inner, self.c, self.tol, self.polish_every, self.per_step = inner, c, tol, polish_every, per_step
        self.dual_steps = dual_steps

    def init(self, data, params):
        state = self.inner.init(data, params)
        state["gap"] = torch.full_like(state["g"][:, 0], float("inf"))
        return state

    def step(self, k, state, data, params):
        new = self.inner.step(k, state, data, params)
        before, after = k * self.per_step, (k + 1) * self.per_step
        if after // self.polish_every > before // self.polish_every:
            return self._polish(new, data, params)
        new["gap"] = torch.full_like(new["g"][:, 0], float("inf"))
        return new

    def _polish(self, state, data, params):
        """Replace the problems whose polished point is certified ``tol``-optimal by that point (no host sync)."""
        Yt, z, V = data["Yt"], data["z"], data["V"]
        x = state["x"]
        zero = x == 0
        g, ok = polish_filter(Yt, V, zero, self.c)
        Zg = apply_Z(V, Yt, g)
        # the dual may move on ADMM's zero set and where the polished sources vanish (to rounding)
        free = zero | (Zg.abs() <= ZERO_RTOL * Zg.abs().amax(dim=(-2, -1), keepdim=True))
        rho_l = 1.0 / params["tau"]
        lam0 = state["lam"] * per_problem(rho_l, 3)  # ADMM's multiplier (scaled form * rho_l)
        sign = torch.sign(x)
        # two candidates: nu free with ADMM's signs (near ADMM's multiplier), and nu at the polished objective
        # with the polished signs (strong duality, exact when the polish found the vertex); the smaller
        # certified gap is kept
        G = zero_set_gram(V, Yt, free.to(Yt.dtype))
        best = certify(Yt, z, V, g, dual_candidate(Yt, V, free, sign, lam0, self.dual_steps, gram=G), self.c)
        nu_p = Zg.abs().sum(dim=(-2, -1)) / self.c
        other = certify(Yt, z, V, g, dual_candidate(Yt, V, free, torch.sign(Zg), lam0, self.dual_steps, nu=nu_p,
                                                    null=g, gram=G), self.c)
        pick = other[0] < best[0]
        best = tuple(torch.where(pick.view(-1, *([1] * (a.dim() - 1))), b, a) for a, b in zip(best, other))
        gap, g, Zg, lam, nu = best
        ok = ok & (gap < self.tol)
        # the certified point in the step's variables (algorithm_values, scaled form: lam_state = lam / rho_l,
        # and the ADMM multiplier of 1^T g = c is -nu, from Z^T lam + mu 1 = 0)
        x = Zg * (~free).to(Zg.dtype)
        lam_s = lam / per_problem(rho_l, 3)
        mu = torch.zeros_like(state["mu"])
        mu[:, 0] = -nu / rho_l
        cand = {"g": g, "Zg": Zg, "x": x, "lam": lam_s, "mu": mu, "q": apply_Zt(V, Yt, x),
                "u": apply_Zt(V, Yt, lam_s)}
        out = {}
        for key, t in state.items():
            if key in cand:
                sel = ok.view(-1, *([1] * (t.dim() - 1)))
                out[key] = torch.where(sel, cand[key], t)
            else:
                out[key] = t
        out["gap"] = torch.where(ok, gap, torch.full_like(gap, float("inf")))
        return out

    def criterion(self, new, old, data, params):
        crit = self.inner.criterion(new, old, data, params)
        return torch.where(torch.isfinite(new["gap"]), new["gap"], crit)
