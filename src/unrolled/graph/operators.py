r"""Linear-algebra building blocks of the graph-diffusion ADMM (shared by :func:`~unrolled.graph.solvers.admm`
and :class:`~unrolled.graph.nets.SLoGNet`).

Notation as in :mod:`unrolled.graph.solvers`: ``Z`` is the Khatri–Rao matrix
with :math:`Z\tilde g = \operatorname{vec}(V \operatorname{diag}(\tilde g) V^\top Y)`,
applied without ever being formed, and
:math:`\Gamma = \rho_\lambda Z^\top Z + \rho_\mu 1 1^\top` is inverted by
Sherman–Morrison.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def check_normaliser(c) -> float:
    """The constant ``c`` of the constraint ``1^T g = c``: a finite, non-zero number."""
    try:
        c = float(c)
    except (TypeError, ValueError):
        raise ValueError(f"c must be a non-zero number, got {c!r}") from None
    if not math.isfinite(c) or c == 0.0:
        raise ValueError(f"c must be finite and non-zero, got {c!r}")
    return c


# --------------------------------------------------------------------------- #
# Building blocks (public: the unrolled network reuses them)
# --------------------------------------------------------------------------- #
def apply_Z(V: Tensor, Yt: Tensor, g: Tensor) -> Tensor:
    r""":math:`Z\tilde g` as an ``N x P`` matrix: :math:`V(\tilde g \circ \tilde Y)`.

    ``V`` ``(N, N)``, ``Yt`` :math:`= V^\top Y` ``(..., N, P)``, ``g`` ``(..., N)``.
    """
    return V @ (g[..., :, None] * Yt)


def apply_Zt(V: Tensor, Yt: Tensor, W: Tensor) -> Tensor:
    r""":math:`Z^\top \operatorname{vec}(W)` ``(..., N)``: row sums of :math:`(V^\top W) \circ \tilde Y`."""
    return ((V.T @ W) * Yt).sum(dim=-1)


def sources_from_filter(Y: Tensor, V: Tensor, g: Tensor) -> Tensor:
    r""":math:`V \operatorname{diag}(\tilde g) V^\top Y` for ``Y`` ``(..., N, P)`` and ``g`` ``(..., N)``."""
    return apply_Z(V, V.T @ Y, g)


def deconvolution_objective(Y: Tensor, V: Tensor, g: Tensor, *, c: float | None = None) -> Tensor:
    r"""Objective of problem (8), :math:`\|Z\tilde g\|_1 = \|V\operatorname{diag}(\tilde g)V^\top Y\|_{1,1}`.

    Parameters
    ----------
    Y : Tensor
        ``(..., N, P)`` observations.
    V : Tensor
        ``(N, N)`` orthonormal eigenbasis of the shift (:func:`~unrolled.graph.graphs.graph_fourier_basis`).
    g : Tensor
        ``(..., N)`` inverse-filter frequency responses.
    c : float, optional
        If given, ``g`` is first rescaled to :math:`c\,\tilde g / 1^\top\tilde g`,
        the feasible point of (8) in its direction, so the value is an upper
        bound of the optimum (ADMM iterates are feasible only to within the
        tolerance).

    Returns
    -------
    Tensor
        ``(...)`` objective values.
    """
    if c is not None:
        g = g * (c / g.sum(dim=-1, keepdim=True))
    return sources_from_filter(Y, V, g).abs().sum(dim=(-2, -1))


def gamma_inverse(z: Tensor, rho_l: Tensor | float, rho_mu: Tensor | float) -> Tensor:
    r"""Dense inverse of :math:`\Gamma = \rho_\lambda \operatorname{diag}(z) + \rho_\mu 1 1^\top` by Sherman–Morrison.

    Derivation
    ----------
    By Appendix B, :math:`Z^\top Z = \operatorname{diag}(z)` with
    :math:`z_i = \|v_i^\top Y\|_2^2`, so :math:`\Gamma = D + u\,1^\top` with
    :math:`D = \operatorname{diag}(d)`, :math:`d = \rho_\lambda z` and
    :math:`u = \rho_\mu 1`. For invertible ``D`` and
    :math:`\beta := 1 + 1^\top D^{-1} u \ne 0`, Sherman–Morrison states

    .. math:: (D + u 1^\top)^{-1} = D^{-1} - \frac{D^{-1} u\, 1^\top D^{-1}}{\beta},

    which one checks by multiplying out:
    :math:`(D + u1^\top)(D^{-1} - D^{-1}u1^\top D^{-1}/\beta) = I + u1^\top D^{-1}
    - (u1^\top D^{-1} + u\,(1^\top D^{-1}u)\,1^\top D^{-1})/\beta = I + u1^\top
    D^{-1}\,(1 - (1 + 1^\top D^{-1}u)/\beta) = I`. With :math:`w := D^{-1} 1 =
    1/(\rho_\lambda z)` (entrywise), :math:`D^{-1}u = \rho_\mu w` and
    :math:`\beta = 1 + \rho_\mu 1^\top w`; dividing numerator and denominator
    by :math:`\rho_\mu`,

    .. math::
        \Gamma^{-1} = \operatorname{diag}(w) - \frac{w w^\top}{\zeta},\qquad
        w_i = \frac{1}{\rho_\lambda z_i},\qquad
        \zeta = \frac{1}{\rho_\mu} + \sum_i \frac{1}{\rho_\lambda z_i}.

    Since :math:`\zeta > 0`, :math:`\Gamma` is invertible exactly when every
    :math:`z_i > 0` (every graph frequency of ``Y`` carries energy). Note that
    :math:`\rho_\lambda` enters *both* ``w`` and :math:`\zeta`: the paper's
    formula (25) inverts :math:`Z^\top Z + \rho 1 1^\top`, so for
    :math:`\Gamma = \rho_\lambda(Z^\top Z + (\rho_\mu/\rho_\lambda) 1 1^\top)` it
    applies with :math:`\rho = \rho_\mu/\rho_\lambda` and an overall factor
    :math:`1/\rho_\lambda` -- which is the same formula as above. (Also note
    that the paper's definition of :math:`z^{-1}` has a typo in its last entry;
    :math:`z^{-1}` is the entrywise reciprocal :math:`1/z_i`.) Applying
    :math:`\Gamma^{-1}` to a vector costs ``O(N)``
    (:func:`apply_gamma_inverse`); this function forms the ``O(N^2)`` matrix.

    Parameters
    ----------
    z : Tensor
        ``(..., N)`` positive diagonal of :math:`Z^\top Z`.
    rho_l, rho_mu : float or Tensor
        Positive penalties, scalars or ``(...)`` (one per problem).

    Returns
    -------
    Tensor
        ``(..., N, N)``.
    """
    w, zeta = _gamma_factors(z, rho_l, rho_mu)
    return torch.diag_embed(w) - w[..., :, None] * w[..., None, :] / zeta[..., None, None]


def _gamma_factors(z: Tensor, rho_l, rho_mu) -> tuple[Tensor, Tensor]:
    """``(w, zeta)`` with ``Gamma^{-1} = diag(w) - w w^T / zeta`` (see :func:`gamma_inverse`)."""
    rho_l = torch.as_tensor(rho_l, dtype=z.dtype, device=z.device)
    rho_mu = torch.as_tensor(rho_mu, dtype=z.dtype, device=z.device)
    w = 1.0 / (rho_l[..., None] * z)
    zeta = 1.0 / rho_mu + w.sum(dim=-1)
    return w, zeta


def apply_gamma_inverse(w: Tensor, zeta: Tensor, r: Tensor) -> Tensor:
    r""":math:`\Gamma^{-1} r = w \circ r - w\,(w^\top r)/\zeta` in ``O(N)`` (``w`` ``(..., N)``, ``zeta`` ``(...)``)."""
    return w * r - w * ((w * r).sum(dim=-1) / zeta)[..., None]


def per_problem(value, ndim: int):
    """A scalar, or a per-problem tensor ``(B,)`` viewed as ``(B, 1, ..., 1)`` (``ndim`` dimensions) to broadcast."""
    if isinstance(value, Tensor) and value.dim() == 1:
        return value.view(-1, *([1] * (ndim - 1)))
    return value


def apply_filter_inverse(z: Tensor, M: Tensor, rho2: Tensor | float, r: Tensor) -> Tensor:
    r""":math:`(\operatorname{diag}(z) + \rho_2 MM^\top)^{-1} r` by Woodbury (Appendix D): SLoG-Net's filter sub-layer.

    The generalisation of :func:`apply_gamma_inverse` (``d = 1``, ``M = 1``) to ``M`` ``(N, d)``:

    .. math::
        (\operatorname{diag}(z) + \rho_2 MM^\top)^{-1} = \operatorname{diag}(z^{-1})
        - W \bar M^{-1} W^\top,\quad W = \operatorname{diag}(z^{-1}) M,\quad
        \bar M = \rho_2^{-1} I_d + M^\top W,

    ``O(N d^2 + d^3)`` per problem. ``z`` ``(B, N)`` positive, ``rho2 > 0`` (a
    scalar or per problem, ``(B,)``), ``r`` ``(B, N)``. For ``d = 1`` (ADMM)
    the ``1 x 1`` solve is a multiplication by the reciprocal; otherwise
    ``torch.linalg.solve_ex`` (no error check, hence no host synchronisation
    on a GPU: :math:`\bar M` is positive definite).
    """
    W = M / z[..., :, None]  # (B, N, d)
    t = (W * r[..., :, None]).sum(dim=-2)  # W^T r, (B, d)
    G = W.mT @ M  # M^T W, (B, d, d): one product with the shared M
    rho2 = per_problem(rho2, 3)
    if M.shape[-1] == 1:  # the 1 x 1 solve as LAPACK's (times the reciprocal), no small batched products
        s = t * (G + 1.0 / rho2)[..., 0].reciprocal()
        return r / z - W[..., 0] * s
    Mbar = G + torch.eye(M.shape[-1], dtype=z.dtype, device=z.device) / rho2  # symmetric positive definite
    s = torch.linalg.solve_ex(Mbar, t.unsqueeze(-1))[0].squeeze(-1)
    return r / z - (W @ s.unsqueeze(-1)).squeeze(-1)
