r"""Classic solver of the graph-diffusion family: ADMM for the convex blind deconvolution (8).

Problem
-------
For one problem, ``Y`` is the ``N x P`` matrix of diffused signals on a graph
with shift :math:`S = V \operatorname{diag}(\lambda) V^\top`. With
:math:`\tilde Y = V^\top Y` and :math:`Z = Y^\top V \odot V \in
\mathbb R^{NP \times N}` (Khatri–Rao product), whose column ``i`` is
:math:`\operatorname{vec}(v_i \tilde y_i^\top)` (:math:`\tilde y_i^\top` the
``i``-th row of :math:`\tilde Y`), so that :math:`Z\tilde g =
\operatorname{vec}(V \operatorname{diag}(\tilde g) V^\top Y)`, the SLoG-Net
paper's problem (8) is the linear program

.. math::
    \min_{\tilde g \in \mathbb R^N} \|Z \tilde g\|_1
    \quad\text{s.t.}\quad 1^\top \tilde g = c \qquad (c = 1),

whose solution is the frequency response :math:`\tilde g` of the inverse
filter; the sources are :math:`\hat X = V \operatorname{diag}(\tilde g)
V^\top Y` (:func:`sources_from_filter`).

:func:`admm` runs the updates (11)–(14) of the paper on the split form
:math:`\min \|x\|_1` s.t. :math:`Z\tilde g - x = 0`, :math:`1^\top \tilde g = c`,
with multipliers :math:`\lambda \in \mathbb R^{NP}` and :math:`\mu`:

.. math::
    \tilde g^{k+1} &= \Gamma^{-1}\big[Z^\top(\rho_\lambda x^k - \lambda^k) + (\rho_\mu c - \mu^k) 1\big], \\
    x^{k+1} &= \mathcal S_{1/\rho_\lambda}\big(Z\tilde g^{k+1} + \lambda^k/\rho_\lambda\big), \\
    \lambda^{k+1} &= \lambda^k + \rho_\lambda (Z\tilde g^{k+1} - x^{k+1}), \\
    \mu^{k+1} &= \mu^k + \rho_\mu (1^\top \tilde g^{k+1} - c),

with :math:`\Gamma = \rho_\lambda Z^\top Z + \rho_\mu 1 1^\top`, starting from
:math:`x^0 = \lambda^0 = 0`, :math:`\mu^0 = 0`.

Implementation
--------------
:func:`admm` is :class:`~unrolled.graph.iteration.GraphADMMIteration` (the
step SLoG-Net generalises) at the values
:func:`~unrolled.graph.iteration.algorithm_values` gives, run by
:func:`unrolled.core.solve.solve`; the step is ADMM's *scaled form* (the
multipliers divided by :math:`\rho_\lambda`), with the same iterates
:math:`\tilde g, x`. ``Z`` is never formed. :math:`Z\tilde g =
\operatorname{vec}(V(\tilde g \circ \tilde Y))` (the product scales the rows
of :math:`\tilde Y`) and :math:`Z^\top \operatorname{vec}(W) = \big(\sum_p
[V^\top W]_{ip} \tilde Y_{ip}\big)_i`. Appendix B of the paper shows
:math:`Z^\top Z = \operatorname{diag}(z)` with :math:`z_i = \|\tilde
y_i\|_2^2`, so :math:`Z^\top \lambda` obeys the recursion
:math:`Z^\top\lambda^{k+1} = Z^\top\lambda^k + \rho_\lambda (z \circ
\tilde g^{k+1} - Z^\top x^{k+1})` and :math:`Z^\top x^{k+1}` is needed anyway
for the next filter update: one iteration costs two products with ``V``
(``O(N^2 P)``) and ``O(NP)`` more, and :math:`\Gamma^{-1}` is applied in
``O(N)`` by Sherman–Morrison (:func:`gamma_inverse`, in the form of
:func:`~unrolled.graph.operators.apply_filter_inverse` with ``M = 1``).

Polish and certificate
----------------------
With ``polish=True`` (the default when ``tol > 0``), every ``polish_every``
iterations :func:`admm` solves the problem restricted to the zero set of its
current :math:`x` and stops a problem when a dual point built from the
polished filter certifies it :math:`\mathrm{tol}`-optimal: the dual of (8),
the polish and the certificate are derived in :mod:`unrolled.graph.polish`
(:func:`polish_filter`, :func:`dual_candidate`, :func:`certify`).

Everything is batched over many problems on one graph: ``Y`` is ``(B, N, P)``
(or a single ``(N, P)``), ``x`` has the shape of ``Y`` and ``g`` is ``(B, N)``,
each problem with its own penalties. Each problem stops on its own primal and
dual residuals and is then frozen. The solver runs under :func:`torch.no_grad`
and returns detached tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from unrolled.core.result import SolverResult
from unrolled.core.solve import solve
from unrolled.core.validation import check_int, check_positive, check_same_dtype_device, check_tensor
from unrolled.graph.graphs import check_shift, graph_fourier_basis
from unrolled.graph.iteration import GraphADMMIteration, algorithm_values, deconvolution_data
from unrolled.graph.operators import (
    apply_gamma_inverse,
    apply_Z,
    apply_Zt,
    check_normaliser,
    deconvolution_objective,
    gamma_inverse,
    sources_from_filter,
)
from unrolled.graph.polish import PolishedIteration, certify, dual_candidate, polish_filter

__all__ = [
    "ADMMResult",
    "admm",
    "gamma_inverse",
    "apply_gamma_inverse",
    "apply_Z",
    "apply_Zt",
    "sources_from_filter",
    "deconvolution_objective",
    "default_penalties",
    "polish_filter",
    "dual_candidate",
    "certify",
]

#: Defaults of the data-scaled penalties (see :func:`default_penalties`).
KAPPA_LAMBDA = 10.0
KAPPA_MU = 10.0


@dataclass
class ADMMResult(SolverResult):
    """:class:`~unrolled.core.result.SolverResult` of :func:`admm`, plus the filter.

    Attributes
    ----------
    x : Tensor
        ``(B, N, P)`` recovered sources, shaped like ``Y``: the
        soft-thresholded ADMM iterate :math:`x^{k}` (exactly sparse), or
        :math:`V\\operatorname{diag}(\\tilde g^{k})V^\\top Y` with ``output='filter'``.
    g : Tensor
        ``(B, N)`` frequency response :math:`\\tilde g^{k}` of the inverse filter;
        ``g.sum(-1)`` equals ``c`` to within the primal tolerance.
    rho_l, rho_mu : Tensor
        ``(B,)`` penalties used for each problem.
    n_iter, converged, history
        As in :class:`~unrolled.core.result.SolverResult`; ``history`` has
        ``'objective'`` (batch mean of :math:`\\|x^k\\|_1`) and
        ``'criterion'`` (batch maximum of the larger relative residual, see
        :func:`admm`; for a problem stopped by the polish, its certified gap).
    polished : Tensor
        ``(B,)`` bool: the problem stopped on a certified polished point
        (``admm(polish=True)``, module docstring).
    gap : Tensor
        ``(B,)`` certified bound of :math:`(F - F^*)/F^*` of the polished
        problems (:func:`certify`), ``inf`` for the others.
    """

    g: Tensor | None = None
    rho_l: Tensor | None = None
    rho_mu: Tensor | None = None
    polished: Tensor | None = None
    gap: Tensor | None = None


def default_penalties(Y: Tensor, c: float = 1.0) -> tuple[Tensor, Tensor]:
    r"""Data-scaled penalties ``(rho_l, rho_mu)``, each ``(B,)``, for ``Y`` ``(B, N, P)``.

    ADMM is not scale invariant, but it is *equivariant*: replacing ``Y`` by
    :math:`\alpha Y` and ``c`` by :math:`\beta c` maps the iterates to
    :math:`(\beta\tilde g, \alpha\beta x, \lambda, \alpha\mu)` exactly when
    :math:`\rho_\lambda \to \rho_\lambda/(\alpha\beta)` and
    :math:`\rho_\mu \to \rho_\mu\,\alpha/\beta`. The defaults follow that rule:

    .. math::
        \rho_\lambda = \kappa_\lambda \frac{N}{|c|\,\overline{|Y|}},\qquad
        \rho_\mu = \kappa_\mu\,\rho_\lambda \frac{\|Y\|_F^2}{N},

    with :math:`\overline{|Y|}` the mean absolute entry of the problem (so the
    threshold :math:`1/\rho_\lambda` is a tenth of the mean entry of
    :math:`x = (c/N) Y`, the sources of the flat filter) and
    :math:`\|Y\|_F^2/N` the mean diagonal of :math:`Z^\top Z`;
    :math:`\kappa_\lambda = \kappa_\mu = 10` were the fastest in a sweep on
    ER and karate problems (``rho_mu`` matters little once large enough).
    """
    N = Y.shape[-2]
    mean_abs = Y.abs().mean(dim=(-2, -1))
    rho_l = KAPPA_LAMBDA * N / (abs(c) * mean_abs)
    rho_mu = KAPPA_MU * rho_l * Y.pow(2).sum(dim=(-2, -1)) / N
    return rho_l, rho_mu


# --------------------------------------------------------------------------- #
# Validation
# --------------------------------------------------------------------------- #
def _penalty(name: str, value, B: int, like: Tensor) -> Tensor | None:
    if value is None:
        return None
    if isinstance(value, Tensor) and value.numel() != 1:
        check_tensor(name, value, ndim=1)
        if value.shape[0] != B:
            raise ValueError(f"{name} must be a scalar or have shape ({B},), got {tuple(value.shape)}")
        if not (value > 0).all():
            raise ValueError(f"{name} must be positive")
        return value.detach().to(dtype=like.dtype, device=like.device)
    v = check_positive(name, value)
    return torch.full((B,), v, dtype=like.dtype, device=like.device)


def _check_inputs(Y, S, V, c):
    check_tensor("S", S, ndim=2, finite=False)
    check_tensor("Y", Y, ndim=(2, 3), finite=False)
    check_same_dtype_device(Y=Y, S=S)
    if Y.is_complex():
        raise ValueError(f"Y must be real, got dtype {Y.dtype}")
    check_shift(S, "S")
    N = S.shape[0]
    if Y.shape[-2] != N:
        raise ValueError(
            f"Y must have N={N} rows (one per node of S) in its shape (B, N, P) or (N, P), got {tuple(Y.shape)}"
        )
    if Y.shape[-1] == 0:
        raise ValueError(f"Y must have at least one signal (column), got shape {tuple(Y.shape)}")
    check_tensor("Y", Y)
    if V is None:
        _, V = graph_fourier_basis(S)
    else:
        check_tensor("V", V, ndim=2)
        check_same_dtype_device(Y=Y, V=V)
        if tuple(V.shape) != (N, N):
            raise ValueError(f"V must have shape ({N}, {N}) like S, got {tuple(V.shape)}")
        eye = torch.eye(N, dtype=V.dtype, device=V.device)
        if (V.T @ V - eye).abs().max() > 1e3 * torch.finfo(V.dtype).eps * N:
            raise ValueError("V must be orthonormal (the eigenvectors of S as columns)")
    return V.detach(), check_normaliser(c)


# --------------------------------------------------------------------------- #
# Solver
# --------------------------------------------------------------------------- #
class _TestedEvery(GraphADMMIteration):
    """``every`` ADMM steps per :func:`~unrolled.core.solve.solve` iteration (``admm(check_every=...)``).

    The state also carries ``q_prev`` (:math:`Z^\\top x` one step before the last), so that :meth:`criterion`
    tests the residuals of the last single step; step ``k`` of the block loop runs the inner steps
    ``k * every ... min((k + 1) * every, max_iter) - 1``.
    """

    def __init__(self, inner: GraphADMMIteration, every: int, max_iter: int):
        super().__init__(inner.output, atol=inner.atol)
        self.inner, self.every, self.max_iter = inner, every, max_iter

    def init(self, data, params):
        state = self.inner.init(data, params)
        state["q_prev"] = state["q"]
        return state

    def step(self, k, state, data, params):
        start = k * self.every
        prev = state
        for j in range(start, min(start + self.every, self.max_iter)):
            prev, state = state, self.inner.step(j, state, data, params)
        state["q_prev"] = prev["q"]
        return state

    def criterion(self, new, old, data, params):
        return self.inner.criterion(new, {"q": new["q_prev"]}, data, params)


def admm(
    Y: Tensor,
    S: Tensor,
    *,
    V: Tensor | None = None,
    c: float = 1.0,
    rho_l: float | Tensor | None = None,
    rho_mu: float | Tensor | None = None,
    max_iter: int = 10_000,
    tol: float = 1e-6,
    atol: float = 0.0,
    output: str = "sources",
    callback: Callable[[int, Tensor], None] | None = None,
    check_every: int = 1,
    polish: bool = True,
    polish_every: int = 100,
) -> ADMMResult:
    r"""ADMM (updates (11)–(14) of the SLoG-Net paper) for a batch of problems (8) on one graph.

    Parameters
    ----------
    Y : Tensor
        ``(B, N, P)`` observations (``B`` problems of ``P`` signals, each
        problem with its own filter), or a single ``(N, P)`` problem.
    S : Tensor
        ``(N, N)`` symmetric graph shift, same dtype and device as ``Y``.
    V : Tensor, optional
        ``(N, N)`` orthonormal eigenvectors of ``S`` (columns); computed with
        :func:`~unrolled.graph.graphs.graph_fourier_basis` when ``None``. Pass
        the data model's ``V`` to reuse it (with repeated eigenvalues, problem
        (8) depends on the basis chosen inside the eigenspaces).
    c : float
        Non-zero constant of the normalisation :math:`1^\top \tilde g = c`.
    rho_l, rho_mu : float or Tensor, optional
        Penalties :math:`\rho_\lambda, \rho_\mu > 0`, scalars or ``(B,)``; the
        data-scaled :func:`default_penalties` when ``None``.
    max_iter : int
        Iteration cap (``>= 1``).
    tol, atol : float
        Relative and absolute tolerances (``>= 0``). With the primal residual
        :math:`r = \big(\|Z\tilde g - x\|_2^2 + (1^\top\tilde g - c)^2\big)^{1/2}`
        and the dual residual :math:`s = \rho_\lambda \|Z^\top(x^{k} -
        x^{k-1})\|_2` (Boyd et al., 2011, Sec. 3.3; the :math:`\mu` block
        contributes nothing to ``s``), a problem converges at the first
        iteration where

        * :math:`r < \sqrt{NP+1}\,\mathrm{atol} + \mathrm{tol}\,\max(\|Z\tilde g\|_2, \|x\|_2, |c|)` and
        * :math:`s < \sqrt{N}\,\mathrm{atol} + \mathrm{tol}\,\|Z^\top\lambda\|_2`

        (the dual scale is :math:`\|Z^\top \lambda\|` rather than Boyd's
        :math:`\|A^\top y\| = \|Z^\top\lambda + \mu 1\|`, which vanishes at the
        solution of (8)). It is then frozen. ``tol = atol = 0`` runs exactly
        ``max_iter`` iterations. ``history['criterion']`` records the larger
        of the two tests' left-hand sides less their absolute terms, each
        divided by its scale (:meth:`~unrolled.graph.iteration.GraphADMMIteration.criterion`).
    output : {'sources', 'filter'}
        What ``x`` holds: the thresholded iterate :math:`x^k` (exactly sparse),
        or :math:`V\operatorname{diag}(\tilde g^k)V^\top Y`, the read-out of
        SLoG-Net's paper (and of :class:`~unrolled.graph.nets.SLoGNet`'s
        ``output='filter'``).
    callback : callable, optional
        ``callback(k, x)`` after iteration ``k`` (1-based) with the batch's
        ``(B, N, P)`` estimate (of the kind ``output`` names), converged
        problems at their frozen value; it must not modify ``x``.
    check_every : int, default 1
        Evaluate the stopping test (and record ``history``) only after every ``check_every``-th iteration: the
        test, the objective and the host synchronisation that reads them cost about as much as an ADMM step on
        small problems (CPU, ``B = 2``, ``N = 20``, ``P = 100``: 0.27 ms per bare step, 0.61 ms with the test).
        ``n_iter`` is then a multiple of ``check_every`` (or ``max_iter``) and a problem may run up to
        ``check_every - 1`` iterations past the first one that meets the test; the residuals tested are those
        of the last iteration (as with ``1``). ``history`` has one entry per test. Not with ``callback``.
    polish : bool, default True
        Every ``polish_every`` iterations (after the test that completes them, with ``check_every``), polish
        each live problem on its current zero set and stop it when the polished point is certified
        ``tol``-optimal, :math:`(F - F^*)/F^* \le (F - D)/D < \mathrm{tol}` (module docstring,
        :func:`polish_filter`, :func:`certify`); ``res.polished`` and ``res.gap`` say which and by how much.
        A rejected candidate leaves the iterates untouched. Never with ``tol = 0`` (which runs exactly
        ``max_iter`` ADMM iterations, as the nets' comparisons need); ``polish=False`` gives the plain
        ADMM iterates and stopping test.
    polish_every : int, default 100
        Iterations between polishes (``>= 1``). A polish forms two ``N x N`` Gram matrices of rows of ``Z``
        (``O(N^3 P)`` per problem, about ``N / 2`` ADMM iterations each) and runs two dual candidates of 20
        alternating projections (about one ADMM iteration each): about ``N + 45`` ADMM iterations in all, paid
        also when the candidate is rejected.

    Returns
    -------
    ADMMResult
        ``x`` shaped like ``Y``, ``g`` ``(B, N)``, ``n_iter``, ``converged``,
        ``polished`` and ``gap`` ``(B,)`` (0-dim for a single problem),
        ``rho_l``, ``rho_mu`` and ``history``.

    Raises
    ------
    ValueError
        On a bad argument (the message names it), including a ``Y`` with no
        energy in some graph frequency (:math:`v_i^\top Y = 0`), for which
        :math:`\Gamma` is singular and (8) is degenerate.

    Examples
    --------
    >>> from unrolled.graph.data import GraphDiffusionProblem
    >>> prob = GraphDiffusionProblem("er", n_signals=100)
    >>> Y, X = prob.sample(4, torch.Generator().manual_seed(0))
    >>> res = admm(Y, prob.S, V=prob.V)
    >>> res.x.shape, res.g.shape
    (torch.Size([4, 20, 100]), torch.Size([4, 20]))
    """
    V, c = _check_inputs(Y, S, V, c)
    max_iter = check_int("max_iter", max_iter, minimum=1)
    tol = check_positive("tol", tol, allow_zero=True)
    atol = check_positive("atol", atol, allow_zero=True)
    check_every = check_int("check_every", check_every, minimum=1)
    polish_every = check_int("polish_every", polish_every, minimum=1)
    if not isinstance(polish, bool):
        raise ValueError(f"polish must be True or False, got {polish!r}")
    if check_every > 1 and callback is not None:
        raise ValueError("check_every > 1 cannot be combined with callback (which sees every iteration)")
    iteration = GraphADMMIteration(output, atol=atol)
    unbatched = Y.dim() == 2
    Yb = (Y.unsqueeze(0) if unbatched else Y).detach()
    B, N, _ = Yb.shape
    rl = _penalty("rho_l", rho_l, B, Yb)
    rm = _penalty("rho_mu", rho_mu, B, Yb)

    data = deconvolution_data(Yb, V, "Gamma is singular and problem (8) is degenerate")
    if rl is None or rm is None:
        dl, dm = default_penalties(Yb, c)
        rl = dl if rl is None else rl
        rm = dm if rm is None else rm
    params = algorithm_values(rl, rm, c, n_nodes=N, dtype=Yb.dtype, device=Yb.device)
    polishing = polish and tol > 0
    if check_every == 1:
        it = PolishedIteration(iteration, c, tol, polish_every) if polishing else iteration
        res = solve(it, data, params, max_iter=max_iter, tol=tol, callback=callback)
        n_iter = res.n_iter
    else:
        blocks = -(-max_iter // check_every)
        it = _TestedEvery(iteration, check_every, max_iter)
        if polishing:
            it = PolishedIteration(it, c, tol, polish_every, per_step=check_every)
        res = solve(it, data, params, max_iter=blocks, tol=tol)
        n_iter = (res.n_iter * check_every).clamp_max(max_iter)
    x, g, conv = res.x, res.state["g"], res.converged
    gap = res.state["gap"] if polishing else torch.full_like(g[:, 0], float("inf"))
    polished = torch.isfinite(gap)
    if unbatched:
        x, g, n_iter, conv, rl, rm, gap, polished = (x[0], g[0], n_iter[0], conv[0], rl[0], rm[0], gap[0],
                                                     polished[0])
    return ADMMResult(x=x, n_iter=n_iter, converged=conv, history=res.history, g=g, rho_l=rl, rho_mu=rm,
                      polished=polished, gap=gap)
