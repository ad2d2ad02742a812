r"""Deep NMF (Hershey, Le Roux & Weninger, 2014; the review's box "Deep NMF", (24) and (26) unrolled).

Layer :math:`l = 1..K` runs the activation update (24) with its own dictionary :math:`W^l` (untied from the
update rule (25)), normalised as in (26):

.. math::
    \tilde W^l = W^l / \|w^l_j\|_2, \qquad
    H^l = H^{l-1} \odot \Big(\frac{\tilde W^{l\top} [M \odot (\tilde W^l H^{l-1})^{\beta-2}]}
                                   {\tilde W^{l\top} (\tilde W^l H^{l-1})^{\beta-1} + \mu}\Big)^{\gamma(\beta)},

from :math:`H^0` of :func:`~unrolled.nmf.iteration.default_activations` (computed with :math:`\tilde W^1`), and
outputs the Wiener-like masked speech estimate :math:`\hat S^l = M \odot \tilde W^l_s H^l_s / (\tilde W^l H^l)`
(the first ``n_speech`` columns are speech). Hershey et al. reconstruct with a separate :math:`W^{K+1}`; here
each layer reconstructs with its own :math:`\tilde W^l`, so layer ``l``'s output depends on layers ``<= l`` only.

Non-negativity: :math:`W^l = \exp(\theta^l)` entrywise (``LayerParameter`` with the ``'positive'``
constraint) instead of the paper's multiplicative splitting of the gradient, so no optimiser step can make a
basis negative. ``from_algorithm`` sets every :math:`W^l` to the bases of sparse NMF; the untrained net is then
:func:`~unrolled.nmf.solvers.separate` run for ``K`` iterations (the contract suite checks it).
"""

from __future__ import annotations

import torch
from torch import Tensor

from unrolled.core.io import register_model
from unrolled.core.unrolled_net import UnrolledNet, check_n_layers, dtype_from_name, dtype_name
from unrolled.core.validation import check_int, check_positive, check_tensor, from_numpy
from unrolled.nmf.iteration import NMFIteration
from unrolled.nmf.solvers import check_beta


@register_model
class DeepNMF(UnrolledNet):
    """Deep NMF: maps noisy magnitude spectrograms ``M`` to speech magnitude estimates.

    Parameters
    ----------
    n_freq : int
        Frequencies ``F`` of the spectrograms.
    n_speech, n_noise : int
        Speech and noise bases (``L = n_speech + n_noise``).
    n_layers : int, default 10
        ``K``.
    beta : float, default 1
        Divergence of the layer's update (24).
    mu : float, default 0
        l1 weight of (24).
    eps : float, default 1e-10
        Floor of the reconstruction inside the update.
    tied : bool, default False
        One dictionary for all layers (the sparse-NMF algorithm) instead of one per layer.
    dtype : {'float64', 'float32'}
    """

    def __init__(self, n_freq: int, n_speech: int, n_noise: int, n_layers: int = 10, beta: float = 1.0,
                 mu: float = 0.0, eps: float = 1e-10, tied: bool = False, dtype: str = "float64"):
        super().__init__(check_n_layers(n_layers))
        self.n_freq = check_int("n_freq", n_freq, minimum=1)
        self.n_speech = check_int("n_speech", n_speech, minimum=1)
        self.n_noise = check_int("n_noise", n_noise, minimum=1)
        self.beta, self.mu = check_beta(beta), check_positive("mu", mu, allow_zero=True)
        self.eps, self.tied = check_positive("eps", eps), bool(tied)
        self.iteration = it = NMFIteration(self.beta, self.mu, n_speech=self.n_speech, eps=self.eps)
        init = torch.ones(self.n_freq, self.n_speech + self.n_noise, dtype=dtype_from_name(dtype))
        self.W = it.layer_parameter("W", init / self.n_freq ** 0.5, self.n_layers, tied=self.tied)

    @classmethod
    def from_algorithm(cls, W_speech, W_noise, n_layers: int = 10, *, beta: float = 1.0, mu: float = 0.0,
                       eps: float = 1e-10, tied: bool = False, dtype: str = "float64") -> "DeepNMF":
        """The untrained net equal to ``separate(M, W_speech, W_noise, beta=, mu=, eps=, max_iter=n_layers,
        tol=0)``: every :math:`W^l = [W_s, W_n]` (strictly positive, e.g. from
        :func:`~unrolled.nmf.solvers.learn_bases`)."""
        W_speech = check_tensor("W_speech", from_numpy(W_speech), ndim=2)
        W_noise = check_tensor("W_noise", from_numpy(W_noise), ndim=2)
        if W_speech.shape[0] != W_noise.shape[0]:
            raise ValueError("W_speech and W_noise must have the same number of rows (frequencies)")
        W = torch.cat([W_speech, W_noise], dim=1)
        if not bool((W > 0).all()):
            raise ValueError("W_speech and W_noise must be strictly positive (W^l = exp(theta^l)); floor them, "
                             "as learn_bases does")
        net = cls(W.shape[0], W_speech.shape[1], W_noise.shape[1], n_layers, beta, mu, eps, tied, dtype)
        return net.set_algorithm_values(W=W.to(dtype_from_name(dtype)))

    def dictionaries(self) -> list[Tensor]:
        """The normalised dictionaries :math:`\\tilde W^l` of the layers, each ``(F, L)``."""
        return [w / torch.linalg.vector_norm(w, dim=0, keepdim=True) for w in self.W.values()]

    def prepare(self, M) -> tuple[dict, bool]:
        """Validate the noisy spectrograms ``M`` ``(B, F, T)`` or ``(F, T)``."""
        M = check_tensor("M", M, ndim=(2, 3))
        if M.is_complex():
            raise ValueError(f"M must be a real magnitude spectrogram, got {M.dtype}")
        if M.dtype != self.dtype:
            raise ValueError(f"M has dtype {M.dtype} but the network is {self.dtype}; convert one of them")
        if M.shape[-2] != self.n_freq:
            raise ValueError(f"M must have {self.n_freq} frequencies (rows), got shape {tuple(M.shape)}")
        if M.dim() == 3 and M.shape[0] == 0:
            raise ValueError("M is an empty batch (0 spectrograms)")
        if M.shape[-1] == 0:
            raise ValueError("M has no frames")
        if bool((M < 0).any()):
            raise ValueError("M has negative entries; it must be a magnitude spectrogram")
        if M.device != self.W.raw[0].device:
            raise ValueError(f"M is on {M.device} but the network is on {self.W.raw[0].device}")
        unbatched = M.dim() == 2
        return {"M": M.unsqueeze(0) if unbatched else M}, unbatched

    def forward(self, M, return_layers: bool = False):
        """Speech magnitude estimates ``(B, F, T)`` (a list over the layers with ``return_layers``)."""
        return super().forward(M, return_layers)

    def config(self) -> dict:
        return {"n_freq": self.n_freq, "n_speech": self.n_speech, "n_noise": self.n_noise,
                "n_layers": self.n_layers, "beta": self.beta, "mu": self.mu, "eps": self.eps, "tied": self.tied,
                "dtype": dtype_name(self.dtype)}
