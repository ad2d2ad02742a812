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

``Pi`` projects the columns onto the unit ball. The LISTA-CP / ISTA-LLT layers are
those of :mod:`unrolled.sparse_coding.nets` written with the current estimate
``A^k`` of each mixture in place of their fixed dictionary buffer (which is why
they are re-expressed here rather than called). Thresholds and step sizes are
positive through :class:`~unrolled.core.params.LayerParameter` reparametrisation.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from unrolled.core.io import register_model
from unrolled.core.params import LayerParameter
from unrolled.core.prox import project_columns_unit_ball, soft_threshold
from unrolled.core.unrolled_net import UnrolledNet, dtype_from_name, dtype_name
from unrolled.core.validation import check_int, check_positive, check_tensor
from unrolled.separation.solvers import STEP_FACTOR, a_step, lipschitz_a, lipschitz_s, palm
from unrolled.sparse_coding.nets import SCALAR_LR_SCALE

S_UPDATES = ("lista-cp", "ista-llt", "lista")
A_UPDATES = ("ista-ll", "explicit", "none")


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
        dt = self._dtype = dtype_from_name(dtype)
        self.register_buffer("A_init", torch.full((m, n), 1.0 / m**0.5, dtype=dt))

        def scalar() -> LayerParameter:
            return LayerParameter(torch.ones((), dtype=dt), n_layers, tied=tied, constraint="positive",
                                  lr_scale=self.scalar_lr_scale)

        self.theta = scalar()
        if s_update == "lista-cp":
            self.W = LayerParameter(torch.zeros(m, n, dtype=dt), n_layers, tied=tied)
        elif s_update == "ista-llt":
            self.gamma_s = scalar()
        else:
            self.W1 = LayerParameter(torch.zeros(n, m, dtype=dt), n_layers, tied=tied)
            self.W2 = LayerParameter(torch.zeros(n, n, dtype=dt), n_layers, tied=tied)
        if a_update == "ista-ll":
            self.gamma_a = scalar()  # 1 / L_A^(k) of Eq. (8)

    # ---------------------------------------------------------------- layers
    def update_s(self, k: int, X: Tensor, A: Tensor, S: Tensor) -> Tensor:
        """S-update of layer ``k``."""
        if self.s_update == "lista-cp":
            return soft_threshold(S - self.W[k].T @ (A @ S - X), self.theta[k])
        if self.s_update == "ista-llt":
            return soft_threshold(S - self.gamma_s[k] * (A.transpose(-2, -1) @ (A @ S - X)), self.theta[k])
        return soft_threshold(self.W1[k] @ X + self.W2[k] @ S, self.theta[k])

    def update_a(self, k: int, X: Tensor, A: Tensor, S: Tensor, a_step_scale: float = 1.0) -> Tensor:
        """A-update of layer ``k`` (with the new ``S``); ``a_step_scale`` multiplies the learned step."""
        if self.a_update == "ista-ll":
            step = self.gamma_a[k] * a_step_scale
            return project_columns_unit_ball(A - step * ((A @ S - X) @ S.transpose(-2, -1)))
        if self.a_update == "explicit":
            # PALM's step from the current Lipschitz constant, treated as a constant (not differentiated).
            return a_step(X, A, S, lipschitz_a(S.detach()))
        return A

    def forward(self, X: Tensor, return_layers: bool = False, a_step_scale: float = 1.0):
        """Separate mixtures.

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
        check_tensor("X", X, ndim=(2, 3))
        single = X.dim() == 2
        Xb = X.unsqueeze(0) if single else X
        if Xb.shape[1] != self.m:
            raise ValueError(f"X must have m={self.m} rows (channels), got shape {tuple(X.shape)}")
        if Xb.dtype != self.dtype:
            raise ValueError(f"X has dtype {Xb.dtype} but the network is {self.dtype}; convert X or the network")
        check_positive("a_step_scale", a_step_scale)
        B, _, t = Xb.shape
        A = self.A_init.expand(B, -1, -1)
        S = Xb.new_zeros(B, self.n, t)
        outputs = []
        for k in range(self.active_layers):
            S = self.update_s(k, Xb, A, S)
            A = self.update_a(k, Xb, A, S, a_step_scale)
            outputs.append((A[0], S[0]) if single else (A, S))
        return outputs if return_layers else outputs[-1]

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        names = {"lista-cp": ("W", "theta"), "ista-llt": ("gamma_s", "theta"), "lista": ("W1", "W2", "theta")}[self.s_update]
        names += ("gamma_a",) if self.a_update == "ista-ll" else ()
        return [p for name in names for p in getattr(self, name).layer_parameters(k)]

    def config(self) -> dict:
        return {"m": self.m, "n": self.n, "n_layers": self.n_layers, "s_update": self.s_update,
                "a_update": self.a_update, "tied": self.tied, "dtype": dtype_name(self._dtype),
                "scalar_lr_scale": self.scalar_lr_scale}

    # -------------------------------------------------------- initialisations
    def _set_layer(self, k: int | None, A: Tensor, L_S: float, L_A: float | None, lam: float) -> None:
        """Layer ``k`` (all when ``None``) as a PALM step at ``A`` with constants ``L_S`` (and ``L_A``)."""
        dt = self._dtype
        self.theta.set_value(torch.tensor(lam / L_S, dtype=dt), k)
        if self.s_update == "lista-cp":
            self.W.set_value((A / L_S).to(dt), k)
        elif self.s_update == "ista-llt":
            self.gamma_s.set_value(torch.tensor(1.0 / L_S, dtype=dt), k)
        else:
            self.W1.set_value((A.T / L_S).to(dt), k)
            self.W2.set_value((torch.eye(self.n, dtype=A.dtype) - A.T @ A / L_S).to(dt), k)
        if self.a_update == "ista-ll" and L_A is not None:
            self.gamma_a.set_value(torch.tensor(1.0 / L_A, dtype=dt), k)

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
            L_S, L_A = (float(v[0]) for v in run.history["steps"][k])
            net._set_layer(k, A_k, STEP_FACTOR * L_S, STEP_FACTOR * L_A, lam)
            A_k = run.history["iterates"][k][0][0]
        return net
