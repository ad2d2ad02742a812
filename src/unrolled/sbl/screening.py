"""Learned support screening followed by SBL: a net proposes candidate atoms, SBL decides among them.

The gated recurrent nets of Sec. 3 rank the atoms well (their *loose* accuracy, the share of the true
atoms among their top ``n`` guesses, is above SBL's) while their *strict* accuracy (the top ``d`` exactly
right) lags. :func:`screened_sbl` combines the two: it keeps the ``k`` highest-scoring atoms of each
problem and runs SBL on those columns of ``Phi`` only. Pruning is exact: an atom whose initial
hyperparameter ``gamma_i`` is zero stays at zero under the EM and MacKay updates (its posterior mean and
variance both vanish), so SBL started from the indicator of the candidates is SBL on the candidate
sub-dictionary, batched over problems whose candidate sets differ.

This decoder is an addition of this library, not part of He et al. (2017).
"""

from __future__ import annotations

from torch import Tensor

from unrolled.core.validation import check_int, check_tensor
from unrolled.sbl.solvers import SBLResult, sbl

__all__ = ["candidate_gamma0", "screened_sbl"]


def candidate_gamma0(scores: Tensor, k: int) -> Tensor:
    """``(B, m)`` initial hyperparameters: one on the ``k`` highest ``scores`` of each row, zero elsewhere."""
    check_tensor("scores", scores, ndim=2)
    k = check_int("k", k, minimum=1)
    if k > scores.shape[-1]:
        raise ValueError(f"k={k} is larger than the number of atoms {scores.shape[-1]}")
    gamma0 = scores.new_zeros(scores.shape)
    return gamma0.scatter_(1, scores.topk(k, dim=-1).indices, 1.0)


def screened_sbl(y: Tensor, Phi: Tensor, scores: Tensor, k: int, lam: float, *, update: str = "mackay",
                 **sbl_kwargs) -> SBLResult:
    """SBL restricted, per problem, to the ``k`` atoms with the highest ``scores``.

    Parameters
    ----------
    y : Tensor
        ``(B, n)`` measurements.
    Phi : Tensor
        ``(n, m)`` dictionary.
    scores : Tensor
        ``(B, m)`` real atom scores (e.g. a :class:`~unrolled.sbl.recurrent.GatedFeedbackNet`'s logits).
    k : int
        Candidates kept per problem (``1 <= k <= m``).
    lam : float
        Noise variance of SBL.
    update : {'mackay', 'em'}
        Hyperparameter update; both keep pruned atoms at exactly zero.
    **sbl_kwargs
        ``max_iter``, ``tol`` of :func:`~unrolled.sbl.solvers.sbl`.

    Returns
    -------
    SBLResult
        As :func:`~unrolled.sbl.solvers.sbl`; ``gamma`` and ``x`` are zero outside the candidates.
    """
    if update not in ("mackay", "em"):
        raise ValueError(f"update must be 'mackay' or 'em' (they keep pruned atoms at zero), got {update!r}")
    check_tensor("scores", scores, ndim=2)
    if scores.is_complex():
        raise ValueError("scores must be real (one score per atom)")
    if y.dim() != 2 or scores.shape != (y.shape[0], Phi.shape[-1]):
        raise ValueError(f"scores must have shape (B, m) = ({y.shape[0]}, {Phi.shape[-1]}) for a (B, n) y, "
                         f"got scores {tuple(scores.shape)} and y {tuple(y.shape)}")
    real = Phi.real.dtype if Phi.is_complex() else Phi.dtype
    gamma0 = candidate_gamma0(scores.to(device=Phi.device, dtype=real), k)
    return sbl(y, Phi, lam, update=update, gamma0=gamma0, **sbl_kwargs)
