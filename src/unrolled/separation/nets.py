r"""LPALM: PALM unrolled for semi-blind source separation (LPALM paper, Sec. 2.2, Eq. 8).

Layer ``k`` alternates a learned S-update and a learned A-update, starting from
``A^0 = (1/sqrt(m)) ones`` and ``S^0 = 0``. The update kinds are options of the
one model (Table 3 ablation and the LISTA baseline of Table 2):

=============  =================================================================  ==============
``s_update``   S-update                                                           learned
=============  =================================================================  ==============
``lista-cp``   ``ST(S - W_k^T (A S - X), theta_k)``   (LISTA-CP, Eq. 7 / 8)        W_k, theta_k
``ista-llt``   ``ST(S - gamma_k A^T (A S - X), theta_k)``   (ISTA-LLT, Eq. 11)     gamma_k, theta_k
``lista``      ``ST(W1_k X + W2_k S, theta_k)``   (LISTA, Eq. 4; no A used)        W1_k, W2_k, theta_k
=============  =================================================================  ==============

=============  =================================================================  ==============
``a_update``   A-update                                                           learned
=============  =================================================================  ==============
``ista-ll``    ``Pi(A - (1/L_k) (A S - X) S^T)``   (ISTA-LL, Eq. 8)                L_k
``explicit``   ``Pi(A - (A S - X) S^T / (1.01 ||S S^T||_2))``   (PALM's step)      --
``none``       ``A`` kept at ``A^0`` (LISTA: the sources only; see                 --
               :func:`~unrolled.separation.solvers.estimate_mixing`)
=============  =================================================================  ==============

``Pi`` projects the columns onto the unit ball. Every variant runs the one
step of :class:`~unrolled.separation.iteration.PALMIteration` (PALM's, with
learned parameters) in the generic :meth:`UnrolledNet.forward
<unrolled.core.unrolled_net.UnrolledNet.forward>` loop. Thresholds and step
sizes are positive through :class:`~unrolled.core.params.LayerParameter`
reparametrisation.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from unrolled.core.io import register_model
from unrolled.core.params import LayerParameter
from unrolled.core.unrolled_net import UnrolledNet, dtype_from_name, dtype_name
from unrolled.core.validation import check_int, check_positive, check_tensor
from unrolled.separation.iteration import STEP_FACTOR, PALMIteration, lipschitz_a, lipschitz_s, unpack
from unrolled.separation.solvers import check_mixtures, palm
from unrolled.sparse_coding.iteration import SCALAR_LR_SCALE

S_UPDATES = ("lista-cp", "ista-llt", "lista")
A_UPDATES = ("ista-ll", "explicit", "none")


def palm_layer_values(s_update: str, a_update: str, A: Tensor, L_S: float, L_A: float | None,
                      lam: float) -> dict[str, Tensor]:
    """The parameters that make an LPALM layer a PALM step at ``A`` with Lipschitz constants ``L_S``, ``L_A``.

    ``theta = lam / L_S`` and ``W = A / L_S`` (ISTA-LLT: ``gamma_s = 1 / L_S``;
    LISTA: ``W1 = A^T / L_S``, ``W2 = I - A^T A / L_S``) and, for ISTA-LL,
    ``gamma_a = 1 / L_A`` (none when ``L_A`` is ``None``). Values in ``A``'s dtype.
    """
    out = {"theta": torch.tensor(lam / L_S, dtype=A.dtype)}
    if s_update == "lista-cp":
        out["W"] = A / L_S
    elif s_update == "ista-llt":
        out["gamma_s"] = torch.tensor(1.0 / L_S, dtype=A.dtype)
    else:
        out["W1"] = A.T / L_S
        out["W2"] = torch.eye(A.shape[1], dtype=A.dtype, device=A.device) - A.T @ A / L_S
    if a_update == "ista-ll" and L_A is not None:
        out["gamma_a"] = torch.tensor(1.0 / L_A, dtype=A.dtype)
    return out


@register_model
class LPALM(UnrolledNet):
    """Learned PALM (Eq. 8) and its ablations.

    Parameters
    ----------
    m, n : int
        Channels (rows of ``X``) and sources.
    n_layers : int
        Number of layers ``K`` (paper: 25).
    s_update : {'lista-cp', 'ista-llt', 'lista'}
        S-update kind (see the module docstring).
    a_update : {'ista-ll', 'explicit', 'none'}
        A-update kind; ``'none'`` goes with (and only with) ``s_update='lista'``,
        whose update has no place for ``A`` (paper, App. D.2).
    tied : bool
        One set of parameters shared by all layers.
    dtype : {'float32', 'float64'}
    scalar_lr_scale : float
        Learning-rate multiplier of the log-parametrised thresholds and steps.

    Notes
    -----
    The constructor gives placeholder weights; build a usable network with
    :meth:`from_training_pair` (the paper's initialisation) or
    :meth:`from_algorithm` (exactly ``K`` PALM iterations on a reference mixture).
    """

    def __init__(self, m: int, n: int, n_layers: int = 25, s_update: str = "lista-cp", a_update: str = "ista-ll",
                 tied: bool = False, dtype: str = "float32", scalar_lr_scale: float = SCALAR_LR_SCALE):
        super().__init__(n_layers)
        check_int("m", m, minimum=1)
        check_int("n", n, minimum=1)
        if s_update not in S_UPDATES:
            raise ValueError(f"s_update must be one of {S_UPDATES}, got {s_update!r}")
        if a_update not in A_UPDATES:
            raise ValueError(f"a_update must be one of {A_UPDATES}, got {a_update!r}")
        if (s_update == "lista") != (a_update == "none"):
            raise ValueError("the LISTA S-update has no alternation with A: use s_update='lista' with a_update='none' "
                             "and a_update='none' only with s_update='lista'")
        self.m, self.n, self.tied = m, n, bool(tied)
        self.s_update, self.a_update = s_update, a_update
        self.scalar_lr_scale = check_positive("scalar_lr_scale", scalar_lr_scale)
        self.iteration = PALMIteration(s_update, a_update)
        dt = self._dtype = dtype_from_name(dtype)
        self.register_buffer("A_init", torch.full((m, n), 1.0 / m**0.5, dtype=dt))

        def new(name: str, init: Tensor) -> LayerParameter:
            spec = self.iteration.param(name)
            scale = self.scalar_lr_scale if spec.constraint == "positive" else 1.0
            return LayerParameter(init, n_layers, tied=tied, constraint=spec.constraint, lr_scale=scale)

        one = torch.ones((), dtype=dt)
        self.theta = new("theta", one)
        if s_update == "lista-cp":
            self.W = new("W", torch.zeros(m, n, dtype=dt))
        elif s_update == "ista-llt":
            self.gamma_s = new("gamma_s", one)
        else:
            self.W1 = new("W1", torch.zeros(n, m, dtype=dt))
            self.W2 = new("W2", torch.zeros(n, n, dtype=dt))
        if a_update == "ista-ll":
            self.gamma_a = new("gamma_a", one)  # 1 / L_A^(k) of Eq. (8)

    @property
    def param_names(self) -> tuple[str, ...]:
        """The learned parameters of this variant, in the order :meth:`layer_parameters` lists them."""
        names = {"lista-cp": ("W", "theta"), "ista-llt": ("gamma_s", "theta"), "lista": ("W1", "W2", "theta")}
        return names[self.s_update] + (("gamma_a",) if self.a_update == "ista-ll" else ())

    # ---------------------------------------------------------------- forward
    def prepare(self, inputs) -> tuple[dict, bool]:
        """Validate the mixtures (``X``, or ``(X, a_step_scale)``) and pair them with the start ``A^0``."""
        X, a_step_scale = inputs if isinstance(inputs, tuple) else (inputs, 1.0)
        if isinstance(X, np.ndarray):
            X = torch.from_numpy(X)
        check_tensor("X", X, ndim=(2, 3))
        single = X.dim() == 2
        Xb = X.unsqueeze(0) if single else X
        if Xb.shape[1] != self.m:
            raise ValueError(f"X must have m={self.m} rows (channels), got shape {tuple(X.shape)}")
        if Xb.dtype != self.dtype:
            raise ValueError(f"X has dtype {Xb.dtype} but the network is {self.dtype}; convert X or the network")
        if Xb.device != self.A_init.device:
            raise ValueError(f"X is on {Xb.device} but the network is on {self.A_init.device}")
        Xb = check_mixtures(Xb)  # empty batch / no samples
        check_positive("a_step_scale", a_step_scale)
        data = {"X": Xb, "A0": self.A_init.expand(Xb.shape[0], -1, -1), "a_step_scale": a_step_scale}
        return data, single

    def finish(self, estimate: Tensor, unbatched: bool):
        """The packed readout as the pair ``(A, S)``."""
        return super().finish(unpack(estimate, self.m, self.n), unbatched)

    def forward(self, X: Tensor, return_layers: bool = False, a_step_scale: float = 1.0):
        """Separate mixtures (the generic :meth:`UnrolledNet.forward` loop; ``a_step_scale`` rides along with ``X``).

        Parameters
        ----------
        X : Tensor
            ``(B, m, t)`` mixtures (or one ``(m, t)``), of the network's dtype.
        return_layers : bool
            Return the list ``[(A^1, S^1), ..., (A^K, S^K)]`` instead of the last pair.
        a_step_scale : float
            Multiplier of the learned ISTA-LL steps. The A-gradient
            ``(A S - X) S^T`` sums over the ``t`` samples, so a net trained on
            ``t_train`` samples applied to ``t`` samples of the same per-sample
            scale needs ``t_train / t`` (default 1: as trained).

        Returns
        -------
        (Tensor, Tensor) or list of them
            ``A`` ``(B, m, n)`` and ``S`` ``(B, n, t)`` (unbatched for unbatched input).
        """
        return super().forward((X, a_step_scale), return_layers)

    def config(self) -> dict:
        return {"m": self.m, "n": self.n, "n_layers": self.n_layers, "s_update": self.s_update,
                "a_update": self.a_update, "tied": self.tied, "dtype": dtype_name(self._dtype),
                "scalar_lr_scale": self.scalar_lr_scale}

    # -------------------------------------------------------- initialisations
    def _set_layer(self, k: int | None, A: Tensor, L_S: float, L_A: float | None, lam: float) -> None:
        """Layer ``k`` (all when ``None``) as a PALM step at ``A`` with constants ``L_S`` (and ``L_A``)."""
        for name, value in palm_layer_values(self.s_update, self.a_update, A, L_S, L_A, lam).items():
            getattr(self, name).set_value(value.to(self._dtype), k)

    @classmethod
    def from_training_pair(cls, A: Tensor, S: Tensor, n_layers: int = 25, *, lam: float = 1e-5,
                           s_update: str = "lista-cp", a_update: str = "ista-ll", tied: bool = False,
                           dtype: str = "float32", **kwargs) -> "LPALM":
        """The paper's initialisation (appendix A) from one training pair ``(A, S)``.

        ``L_S = ||A^T A||_2``, ``L_A = ||S S^T||_2``; every layer gets
        ``theta = lam / L_S``, ``W = A / L_S`` (LISTA: ``W1 = A^T / L_S``,
        ``W2 = I - A^T A / L_S``; ISTA-LLT: ``gamma = 1 / L_S``) and
        ``1 / L_A`` as A-step; ``A^0 = (1/sqrt(m)) ones``, ``lam = 1e-5``.
        """
        check_tensor("A", A, ndim=2)
        check_tensor("S", S, ndim=2)
        if A.shape[1] != S.shape[0]:
            raise ValueError(f"A (m, n) and S (n, t) do not match: {tuple(A.shape)}, {tuple(S.shape)}")
        lam = check_positive("lam", lam)
        A64, S64 = A.to(torch.float64), S.to(torch.float64)
        L_S = float(lipschitz_s(A64[None])[0])
        L_A = float(lipschitz_a(S64[None])[0])
        if not (L_S > 0 and L_A > 0):
            raise ValueError("A and S must not be zero")
        net = cls(A.shape[0], A.shape[1], n_layers, s_update, a_update, tied, dtype, **kwargs).to(A.device)
        net._set_layer(None, A64, L_S, L_A, lam)
        return net

    @classmethod
    def from_algorithm(cls, X: Tensor, lam: float, n_layers: int, *, A0: Tensor | None = None, n_sources: int | None = None,
                       s_update: str = "lista-cp", a_update: str = "ista-ll", dtype: str | None = None,
                       **kwargs) -> "LPALM":
        """The untrained net that equals ``n_layers`` PALM iterations on the reference mixture ``X``.

        PALM's steps ``1/(1.01 L)`` depend on its iterates, so the layers are
        read off a PALM run on ``X`` from ``(A0, S0 = 0)``: layer ``k`` gets
        ``W_k = A^k / (1.01 L_S^k)``, ``theta_k = lam / (1.01 L_S^k)`` (ISTA-LLT:
        ``gamma_k = 1 / (1.01 L_S^k)``; LISTA: the ISTA weights at ``A^k``) and
        ``1 / (1.01 L_A^k)`` as A-step. On ``X`` the network then reproduces
        PALM's iterates (LISTA, which has no A-update, reproduces its sources).

        Parameters
        ----------
        X : Tensor
            One reference mixture ``(m, t)`` (or ``(1, m, t)``).
        lam : float
            PALM's ``lambda > 0``.
        n_layers : int
            ``K``.
        A0 : Tensor, optional
            ``(m, n)`` start (the net's ``A^0``); default ``(1/sqrt(m)) ones`` with ``n_sources`` columns.
        dtype : str, optional
            Default: that of ``X``.
        """
        X = X[0] if X.dim() == 3 and X.shape[0] == 1 else X
        check_tensor("X", X, ndim=2)
        lam = check_positive("lam", lam)
        if kwargs.get("tied"):
            raise ValueError("PALM's per-iteration steps need untied layers (tied=False)")
        m = X.shape[0]
        if A0 is None:
            if n_sources is None:
                raise ValueError("give A0 or n_sources")
            A0 = torch.full((m, n_sources), 1.0 / m**0.5, dtype=X.dtype, device=X.device)
        check_tensor("A0", A0, ndim=2)
        if A0.shape[0] != m:
            raise ValueError(f"A0 must have m={m} rows, got shape {tuple(A0.shape)}")
        run = palm(X[None], A0[None].to(X.dtype), None, lam, max_iter=n_layers, tol=0.0, keep_iterates=True)
        dtype = dtype or dtype_name(X.dtype)
        net = cls(m, A0.shape[1], n_layers, s_update, a_update, dtype=dtype, **kwargs).to(X.device)
        net.A_init.copy_(A0)
        A_k = A0.to(X.dtype)
        for k in range(n_layers):
            L_S, L_A = (float(v[0]) for v in run.steps[k])
            net._set_layer(k, A_k, STEP_FACTOR * L_S, STEP_FACTOR * L_A, lam)
            A_k = run.iterates[k][0][0]
        return net
