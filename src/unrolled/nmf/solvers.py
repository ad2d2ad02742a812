r"""Classic solvers of the NMF family: sparse beta-NMF by multiplicative updates and supervised NMF separation.

* :func:`nmf_mu`: (24)-(26) run to convergence (:class:`~unrolled.nmf.iteration.NMFIteration` through
  :func:`unrolled.core.solve.solve`), batched over spectrograms.
* :func:`learn_bases`: one dictionary per source from its training spectrograms (frames concatenated).
* :func:`separate`: supervised separation (Schmidt & Olsson, 2006; the sparse NMF baseline of the review's
  box): with the stacked bases :math:`W = [W_s, W_n]` fixed, (24) to convergence, then the Wiener-like mask
  :math:`\hat S = M \odot W_s H_s / (W H)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from unrolled.core.result import SolverResult
from unrolled.core.solve import Callback, solve
from unrolled.core.validation import check_int, check_positive, check_tensor, from_numpy
from unrolled.nmf.iteration import NMFIteration


@dataclass
class NMFResult(SolverResult):
    """:class:`~unrolled.core.result.SolverResult` of :func:`nmf_mu` and :func:`separate`.

    Attributes
    ----------
    x : Tensor
        ``H`` ``(B, L, T)`` for :func:`nmf_mu`; the speech estimate ``(B, F, T)`` for :func:`separate`.
    H, W : Tensor
        Activations ``(B, L, T)`` and the normalised dictionary (``(B, F, L)`` when learned, else ``(F, L)``).
    objective : Tensor
        ``(B,)`` value of (23) at the result (nan when not monitored).
    """

    H: Tensor | None = field(default=None, repr=False)
    W: Tensor | None = field(default=None, repr=False)
    objective: Tensor | None = field(default=None, repr=False)


def check_beta(beta) -> float:
    """``beta`` must be a finite real number."""
    if isinstance(beta, bool):
        raise ValueError(f"beta must be a real number, got {beta!r}")
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise ValueError(f"beta must be a real number, got {beta!r}") from None
    if b != b or abs(b) == float("inf"):
        raise ValueError(f"beta must be finite, got {beta!r}")
    return b


def check_spectrogram(name: str, M, beta: float | None = None) -> tuple[Tensor, bool]:
    """A non-negative ``(B, F, T)`` or ``(F, T)`` spectrogram; returns ``(batched M, unbatched)``."""
    M = check_tensor(name, from_numpy(M), ndim=(2, 3))
    if M.is_complex():
        raise ValueError(f"{name} must be real (a magnitude or power spectrogram), got {M.dtype}")
    if M.shape[-1] == 0 or M.shape[-2] == 0:
        raise ValueError(f"{name} has an empty dimension, shape {tuple(M.shape)}")
    if bool((M < 0).any()):
        raise ValueError(f"{name} has negative entries; NMF needs a non-negative matrix")
    if beta is not None and beta <= 0 and bool((M == 0).any()):
        raise ValueError(f"{name} has zero entries, which the beta-divergence with beta = {beta} <= 0 cannot fit")
    return (M.unsqueeze(0), True) if M.dim() == 2 else (M, False)


def check_factor(name: str, X, shape: tuple[int, int], batch: int, like: Tensor) -> Tensor:
    """A non-negative ``shape`` or ``(batch,) + shape`` factor of ``like``'s dtype and device."""
    X = check_tensor(name, from_numpy(X), ndim=(2, 3))
    if tuple(X.shape[-2:]) != shape or (X.dim() == 3 and X.shape[0] != batch):
        raise ValueError(f"{name} must have shape {shape} or {(batch, *shape)}, got {tuple(X.shape)}")
    if X.dtype != like.dtype or X.device != like.device:
        raise ValueError(f"{name} must have the dtype and device of M ({like.dtype}, {like.device}), "
                         f"got {X.dtype}, {X.device}")
    if bool((X < 0).any()):
        raise ValueError(f"{name} has negative entries")
    return X


def nmf_mu(M, W0, H0=None, *, beta: float, mu: float = 0.0, max_iter: int = 200, tol: float = 1e-4,
           update_W: bool = True, eps: float = 1e-10, callback: Callback | None = None) -> NMFResult:
    r"""Sparse beta-NMF :math:`M \approx W H` (23) by the multiplicative updates (24)-(26), batched.

    Parameters
    ----------
    M : Tensor ``(B, F, T)`` or ``(F, T)``
        Non-negative spectrograms (strictly positive for ``beta <= 0``).
    W0 : Tensor ``(F, L)`` or ``(B, F, L)``
        Initial (or, with ``update_W=False``, fixed) dictionary; its columns are normalised (26), and ``H0`` is
        rescaled so that ``W0 H0`` is unchanged.
    H0 : Tensor ``(L, T)`` or ``(B, L, T)``, optional
        Initial activations (for the dictionary ``W0`` as given: the start is ``W0 H0``); default :func:`~unrolled.nmf.iteration.default_activations`.
    beta : float
        Divergence (0 Itakura-Saito, 1 Kullback-Leibler, 2 Euclidean, any real).
    mu : float, default 0
        l1 weight on ``H``.
    max_iter : int, default 200
    tol : float, default 1e-4
        A problem stops when the relative change of (23) in one iteration is below ``tol``; ``0`` runs exactly
        ``max_iter`` iterations.
    update_W : bool, default True
        Learn ``W`` ((24)-(26)); ``False``: (24) only, the dictionary fixed.
    eps : float, default 1e-10
        Floor of ``W H`` inside the updates.
    callback : callable, optional
        ``callback(k, H)`` after iteration ``k`` (1-based).

    Returns
    -------
    NMFResult
        ``x = H``, ``W`` (normalised columns), ``objective``, ``n_iter``, ``converged``, ``history``; unbatched
        for an unbatched ``M``. Runs under ``no_grad``.

    Notes
    -----
    With ``mu = 0`` every update leaves (23) non-increasing (Févotte & Idier, 2011) and (26) leaves it unchanged.
    With ``mu > 0``, (24) and (25) still do not increase it, but the rescaling (26) changes :math:`\|H\|_1`, so
    the full iteration need not be monotone when ``W`` is learned (it is with ``W`` fixed).
    """
    return _run(M, W0, H0, beta=beta, mu=mu, max_iter=max_iter, tol=tol, update_W=update_W, eps=eps,
                callback=callback, n_speech=None)


def _run(M, W0, H0, *, beta, mu, max_iter, tol, update_W, eps, callback, n_speech) -> NMFResult:
    beta = check_beta(beta)
    mu = check_positive("mu", mu, allow_zero=True)
    eps = check_positive("eps", eps)
    max_iter = check_int("max_iter", max_iter, minimum=1)
    tol = check_positive("tol", tol, allow_zero=True)
    M, single = check_spectrogram("M", M, beta)
    B, F, T = M.shape
    W0 = from_numpy(W0)
    if not isinstance(W0, Tensor) or W0.dim() not in (2, 3):
        raise ValueError(f"W0 must be a (F, L) or (B, F, L) tensor, got "
                         f"{tuple(W0.shape) if isinstance(W0, Tensor) else type(W0).__name__}")
    L = W0.shape[-1]
    W0 = check_factor("W0", W0, (F, L), B, M)
    W0_shared = W0.dim() == 2
    if L == 0 or bool((W0.sum(dim=-2) == 0).any()):
        raise ValueError("W0 must have at least one column and no all-zero column")
    if n_speech is not None and not 1 <= n_speech < L:
        raise ValueError(f"n_speech must be in [1, {L - 1}] (the first bases are speech), got {n_speech}")
    data = {"M": M}
    if H0 is not None:
        H0 = check_factor("H0", H0, (L, T), B, M)
        data["H0"] = H0.expand(B, L, T).clone() if H0.dim() == 2 else H0
    # solve() slices every tensor under a batched key by problem: shared factors are expanded to (B, ...)
    W0 = W0.expand(B, F, L) if W0.dim() == 2 else W0
    params = {"W": None}
    if update_W:
        data["W0"] = W0.clone()
    else:
        params["W"] = W0
    it = NMFIteration(beta, mu, update_W=update_W, n_speech=n_speech, eps=eps, monitor=tol > 0, reuse=True)
    res = solve(it, data, params, max_iter=max_iter, tol=tol, callback=callback)
    st = res.state
    W = st["W"] if update_W else (W0 / torch.linalg.vector_norm(W0, dim=-2, keepdim=True))
    if not update_W and W0_shared:
        W = W[0]
    obj = st["obj"] if "obj" in st else it.objective(st, {"M": M}, params)
    H, x, n_iter, conv = st["H"], res.x, res.n_iter, res.converged
    if single:
        H, x, obj, n_iter, conv = H[0], x[0], obj[0], n_iter[0], conv[0]
        W = W[0] if W.dim() == 3 else W
    return NMFResult(x=x, n_iter=n_iter, converged=conv, history=res.history, state=st, H=H, W=W, objective=obj)


def learn_bases(spectrograms, n_bases: int, *, beta: float, mu: float = 0.0, max_iter: int = 200,
                tol: float = 1e-5, seed: int = 0, eps: float = 1e-10, floor: float = 1e-12) -> Tensor:
    """A dictionary ``(F, n_bases)`` for one source: :func:`nmf_mu` on its training frames, concatenated.

    Parameters
    ----------
    spectrograms : sequence of Tensor ``(F, T_i)`` or a Tensor ``(B, F, T)``
        Training spectrograms of the source.
    n_bases : int
    beta, mu, max_iter, tol, eps : see :func:`nmf_mu`
    seed : int
        Seeds the random (uniform, positive) initial ``W`` and ``H``.
    floor : float, default 1e-12
        Entries are floored at this value (then renormalised) so that the dictionary is strictly positive, as
        the deep NMF's reparametrised :math:`W^l` must be.
    """
    n_bases = check_int("n_bases", n_bases, minimum=1)
    if isinstance(spectrograms, Tensor) and spectrograms.dim() == 3:
        spectrograms = list(spectrograms)
    X = torch.cat([check_spectrogram("spectrograms", s)[0][0] for s in spectrograms], dim=-1)
    g = torch.Generator().manual_seed(seed)
    F, T = X.shape
    W0 = (0.5 + torch.rand(F, n_bases, generator=g, dtype=X.dtype)).to(X.device)
    scale = float(X.mean()) / n_bases
    H0 = (scale * (0.5 + torch.rand(n_bases, T, generator=g, dtype=X.dtype))).to(X.device)
    res = nmf_mu(X, W0, H0, beta=beta, mu=mu, max_iter=max_iter, tol=tol, eps=eps)
    W = res.W.clamp_min(floor)
    return W / torch.linalg.vector_norm(W, dim=0, keepdim=True)


def separate(M, W_speech, W_noise, *, beta: float, mu: float = 0.0, max_iter: int = 200, tol: float = 1e-4,
             H0=None, eps: float = 1e-10, callback: Callback | None = None) -> NMFResult:
    r"""Supervised NMF enhancement: activations of fixed bases by (24), then a Wiener-like mask.

    Parameters
    ----------
    M : Tensor ``(B, F, T)`` or ``(F, T)``
        Noisy magnitude spectrograms.
    W_speech, W_noise : Tensor ``(F, L_s)``, ``(F, L_n)``
        Bases of each source (:func:`learn_bases`).
    beta, mu, max_iter, tol, H0, eps, callback : see :func:`nmf_mu` (``W`` fixed; ``callback(k, S)`` sees
        the speech estimate).

    Returns
    -------
    NMFResult
        ``x``: the speech estimate :math:`M \odot W_s H_s / (W H)` ``(B, F, T)``; ``H`` ``(B, L_s + L_n, T)``.
    """
    W_speech = check_tensor("W_speech", from_numpy(W_speech), ndim=2)
    W_noise = check_tensor("W_noise", from_numpy(W_noise), ndim=2)
    if W_speech.shape[0] != W_noise.shape[0]:
        raise ValueError(f"W_speech and W_noise must have the same number of rows (frequencies), got "
                         f"{W_speech.shape[0]} and {W_noise.shape[0]}")
    return _run(M, torch.cat([W_speech, W_noise], dim=1), H0, beta=beta, mu=mu, max_iter=max_iter, tol=tol,
                update_W=False, eps=eps, callback=callback, n_speech=W_speech.shape[1])
