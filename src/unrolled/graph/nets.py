r"""SLoG-Net (Source Localization on Graphs Network): ADMM (11)–(14) unrolled (paper Sec. IV).

Notation
--------
One problem is ``Y`` ``(N, P)`` on a graph with orthonormal eigenbasis ``V``;
:math:`\tilde Y = V^\top Y`, :math:`Z = Y^\top V \odot V` (never formed:
:math:`Z\tilde g = V(\tilde g\circ\tilde Y)` and :math:`Z^\top Z =
\operatorname{diag}(z)`, :math:`z_i = \|\tilde y_i\|^2`, Appendix B; see
:mod:`unrolled.graph.solvers`). Matrices such as :math:`x, \lambda` are kept as
``(N, P)`` arrays (``vec`` of them is the paper's vector). Batches are
``(B, N, P)``, one filter per problem.

Layer ``k`` (sub-layers in the order of Fig. 2)
-----------------------------------------------
With state :math:`(x, \lambda, \mu)`, :math:`\mu \in \mathbb R^d`:

.. math::
    \tilde g &= \big(Z^\top Z + \rho_2 M M^\top\big)^{-1}
        \big[Z^\top(x - \rho_1 \lambda) + M(\rho_2 m - \rho_1 \mu)\big]
        &&\text{filter } \mathcal G_k \text{ (15)} \\
    x &\leftarrow \mathcal S_{\tau}\big(\alpha_1 Z\tilde g + \alpha_2 \lambda\big)
        &&\text{sources } \mathcal X_k \text{ (16)} \\
    \lambda &\leftarrow \beta_1 \lambda + \beta_2 Z\tilde g + \beta_3 x
        &&\text{multipliers } \mathcal M_k \text{ (17)} \\
    \mu &\leftarrow \gamma_1 \mu + \gamma_2 (M^\top \tilde g - m)
        &&\text{multipliers } \mathcal M_k \text{ (18')}

with per-layer (untied by default) learnable :math:`\rho_1, \rho_2, \tau > 0`
(exponential reparametrisation, :class:`~unrolled.core.params.LayerParameter`),
:math:`\alpha_{1,2}, \beta_{1,2,3}, \gamma_{1,2} \in \mathbb R`,
:math:`M \in \mathbb R^{N\times d}` and :math:`m \in \mathbb R^d`. The state
starts at zero. The output is the paper's read-out
:math:`\hat X = \operatorname{unvec}(Z\tilde g^{(K)}) = V\operatorname{diag}(\tilde
g^{(K)})V^\top Y` (``output='filter'``), or the last thresholded iterate
:math:`x^{(K)}` (``output='sources'``, what :func:`~unrolled.graph.solvers.admm`
returns as ``x``). The inverse filter :math:`(Z^\top Z + \rho_2 MM^\top)^{-1}`
is applied with the Woodbury identity (Appendix D,
:func:`~unrolled.graph.operators.apply_filter_inverse`): ``O(N d^2 + d^3)`` per
problem after the ``O(N^2 P)`` products with ``V``.

Deviation from the printed (18)
-------------------------------
The paper prints :math:`\mu[k] = \gamma\mu[k-1] + M^\top\tilde g[k] + m`, which
cannot reproduce (14) for any :math:`\gamma` (it has no step size, and its
sign of ``m`` disagrees with the constraint :math:`M^\top\tilde g = m` used in
(15) and in Algorithm 1). We use (18') above: one extra learnable scalar
:math:`\gamma_2` per layer and the sign of Algorithm 1.

Initialisations
---------------
:meth:`SLoGNet.from_algorithm` (the untrained network is ADMM) and
:meth:`SLoGNet.random_init` (the paper's Sec. V-A draw); the parameter values
and the mapping to ADMM are in :mod:`unrolled.graph.net_init`.

Parameters that do not reach the output
---------------------------------------
Some entries of the paper's :math:`\Theta` cannot influence :math:`\hat X`
and get no gradient (they are kept so that every layer has the paper's
parameter set :math:`\Theta^{(k)}` and ``active_layers`` can change):

* layer 1: :math:`\rho_1, \alpha_2, \beta_1, \gamma_1` multiply the zero
  initial multipliers;
* layer ``K`` (the last active one): its multipliers sub-layer
  (:math:`\beta_{1,2,3}, \gamma_{1,2}`), whose output nothing reads, and,
  with the paper's read-out :math:`Z\tilde g^{(K)}` (``output='filter'``),
  its sources sub-layer (:math:`\alpha_{1,2}, \tau`) too. The forward pass
  skips these sub-layers.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from unrolled.core.io import register_model
from unrolled.core.params import LayerParameter
from unrolled.core.prox import soft_threshold
from unrolled.core.unrolled_net import UnrolledNet, dtype_from_name, dtype_name
from unrolled.core.validation import check_int, check_tensor
from unrolled.graph.graphs import shift_and_basis
from unrolled.graph.operators import apply_filter_inverse, apply_Z, apply_Zt
from unrolled.graph.net_init import (
    POSITIVE_SCALARS,
    REAL_SCALARS,
    median_default_penalties,
    set_admm_parameters,
    set_random_parameters,
)

__all__ = ["SLoGNet", "SLoGState", "OUTPUTS", "SCALAR_LR_SCALE"]

#: Read-outs of the network (see :class:`SLoGNet`).
OUTPUTS = ("filter", "sources")

#: Learning-rate multiplier of the positive scalars (learned as logarithms, so an
#: Adam step is a relative change). 1: the relative steps suit both the O(1)
#: values of the paper's random initialisation and the data-scaled ADMM ones.
SCALAR_LR_SCALE = 1.0



class SLoGState(NamedTuple):
    """State after one SLoG-Net layer (batched).

    Attributes
    ----------
    g : Tensor
        ``(B, N)`` inverse-filter frequency response :math:`\\tilde g`.
    Zg : Tensor
        ``(B, N, P)`` :math:`V\\operatorname{diag}(\\tilde g)V^\\top Y`, the read-out.
    x : Tensor or None
        ``(B, N, P)`` thresholded sources (``None`` where not computed).
    lam : Tensor or None
        ``(B, N, P)`` multiplier :math:`\\lambda` (``None`` where not computed).
    mu : Tensor or None
        ``(B, d)`` multiplier :math:`\\mu` (``None`` where not computed).
    """

    g: Tensor
    Zg: Tensor
    x: Tensor | None
    lam: Tensor | None
    mu: Tensor | None


@register_model
class SLoGNet(UnrolledNet):
    r"""SLoG-Net: ``n_layers`` generalised ADMM iterations for blind graph deconvolution.

    See the module docstring for the layer, the read-out and the mapping to
    ADMM. Build a usable network with :meth:`from_algorithm` (the untrained
    network is ADMM) or :meth:`random_init` (the paper's initialisation); the
    constructor itself gives placeholder values and no graph, to be filled by
    :func:`unrolled.core.io.load_model` (the graph's ``S``, ``V`` and
    eigenvalues are buffers, so they are saved with the weights).

    Parameters
    ----------
    n_nodes : int
        ``N``, the number of nodes of the graph.
    n_layers : int, default 5
        ``K``.
    d : int, default 2
        Number of columns of ``M`` (the paper uses 2; ADMM is ``d = 1``).
    output : {'filter', 'sources'}, default 'filter'
        Read-out: :math:`V\operatorname{diag}(\tilde g^{(K)})V^\top Y` (paper)
        or the last thresholded iterate :math:`x^{(K)}`.
    tied : bool, default False
        Share the parameters across layers (the paper unties them).
    dtype : {'float64', 'float32'}
        Of parameters and buffers.

    Attributes
    ----------
    rho1, rho2, tau : LayerParameter
        Positive per-layer scalars.
    alpha1, alpha2, beta1, beta2, beta3, gamma1, gamma2 : LayerParameter
        Real per-layer scalars.
    M, m : LayerParameter
        Per-layer ``(N, d)`` matrix and ``(d,)`` vector of the generalised constraint.
    S, V, eigvals : Tensor
        Buffers: shift, its orthonormal eigenbasis (columns), eigenvalues.
    """

    def __init__(
        self,
        n_nodes: int,
        n_layers: int = 5,
        d: int = 2,
        output: str = "filter",
        tied: bool = False,
        dtype: str = "float64",
    ):
        super().__init__(n_layers)
        self.n_nodes = check_int("n_nodes", n_nodes, minimum=1)
        self.d = check_int("d", d, minimum=1)
        if d > n_nodes:
            raise ValueError(f"d must be <= n_nodes={n_nodes}, got {d}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if not isinstance(tied, bool):
            raise ValueError(f"tied must be a bool, got {tied!r}")
        self.output, self.tied = output, tied
        self._dtype = dtype_from_name(dtype)
        dt, N = self._dtype, n_nodes
        for name in POSITIVE_SCALARS:
            p = LayerParameter(
                torch.ones((), dtype=dt), n_layers, tied=tied, constraint="positive", lr_scale=SCALAR_LR_SCALE
            )
            setattr(self, name, p)
        for name in REAL_SCALARS:
            setattr(self, name, LayerParameter(torch.zeros((), dtype=dt), n_layers, tied=tied))
        self.M = LayerParameter(torch.zeros(N, d, dtype=dt), n_layers, tied=tied)
        self.m = LayerParameter(torch.zeros(d, dtype=dt), n_layers, tied=tied)
        self.register_buffer("S", torch.zeros(N, N, dtype=dt))
        self.register_buffer("V", torch.zeros(N, N, dtype=dt))
        self.register_buffer("eigvals", torch.zeros(N, dtype=dt))

    # ------------------------------------------------------------------ #
    # Construction
    # ------------------------------------------------------------------ #
    @classmethod
    def _for_graph(cls, graph, V, n_layers, d, output, tied) -> "SLoGNet":
        S, V, lam = shift_and_basis(graph, V)
        net = cls(S.shape[0], n_layers, d, output, tied, dtype_name(S.dtype)).to(S.device)
        net.set_graph(S, V=V)
        return net

    def set_graph(self, S: Tensor, *, V: Tensor | None = None) -> None:
        """Set the graph buffers from a shift ``S`` ``(N, N)`` (and optionally its eigenbasis ``V``).

        ``V`` defaults to :func:`~unrolled.graph.graphs.graph_fourier_basis`
        of ``S``, the basis :func:`~unrolled.graph.solvers.admm` uses; pass the
        data model's ``V`` when ``S`` has repeated eigenvalues.
        """
        S, V, lam = shift_and_basis(S, V)
        if S.shape[0] != self.n_nodes:
            raise ValueError(f"S must be {self.n_nodes} x {self.n_nodes} (n_nodes), got {tuple(S.shape)}")
        if S.dtype != self._dtype:
            raise ValueError(f"S has dtype {S.dtype} but the network is {self._dtype}")
        with torch.no_grad():
            self.S.copy_(S)
            self.V.copy_(V)
            self.eigvals.copy_(lam)

    @classmethod
    def from_algorithm(
        cls,
        graph,
        n_layers: int = 5,
        *,
        rho_l: float | None = None,
        rho_mu: float | None = None,
        c: float = 1.0,
        d: int = 1,
        output: str = "filter",
        tied: bool = False,
        scaled_dual: bool = True,
        V: Tensor | None = None,
        calibration_problems: int = 8,
        calibration_seed: int = 0,
    ) -> "SLoGNet":
        r"""The network whose untrained forward pass is ``n_layers`` ADMM iterations.

        Layer ``k``'s ``g`` and ``x`` equal those of
        ``admm(Y, S, V=net.V, c=c, rho_l=rho_l, rho_mu=rho_mu, max_iter=k, tol=0)``
        to float precision, and the output is ``x`` (``output='sources'``) or
        :math:`V\operatorname{diag}(\tilde g)V^\top Y` (``'filter'``). The
        parameter values are listed in the module docstring.

        Parameters
        ----------
        graph : Tensor or GraphDiffusionProblem
            The shift ``S`` ``(N, N)`` (its eigenbasis is computed as
            :func:`~unrolled.graph.solvers.admm` does), or a problem, whose
            ``S`` and ``V`` are used. Sets the network's dtype and device.
        n_layers : int, default 5
            ``K``.
        rho_l, rho_mu : float, optional
            ADMM penalties. When ``None`` and ``graph`` is a problem, the
            medians of :func:`~unrolled.graph.solvers.default_penalties` over
            ``calibration_problems`` problems drawn with ``calibration_seed``;
            with a bare ``S`` they are required.
        c : float, default 1
            Constant of the normalisation :math:`1^\top\tilde g = c` (it becomes ``m``).
        d : int, default 1
            Columns of ``M``. ADMM needs one; further columns start at zero,
            which is a stationary point for them (they get no gradient), so
            ``d > 1`` is only useful with a perturbation of your own.
        output : {'filter', 'sources'}
            Read-out (see :class:`SLoGNet`).
        tied : bool, default False
            One set of parameters for all layers (ADMM is tied; the paper unties).
        scaled_dual : bool, default True
            Store the multipliers divided by :math:`\rho_\lambda` (so every
            real scalar is of order one) rather than the ADMM multipliers.
        V : Tensor, optional
            Eigenbasis to use with a bare ``S``.

        Returns
        -------
        SLoGNet
        """
        net = cls._for_graph(graph, V, n_layers, d, output, tied)
        if rho_l is None or rho_mu is None:
            if isinstance(graph, Tensor):
                raise ValueError("rho_l and rho_mu must be given when graph is a shift matrix (or pass a problem)")
            rho_l, rho_mu = median_default_penalties(graph, net.dtype, c, calibration_problems, calibration_seed,
                                                     rho_l, rho_mu)
        set_admm_parameters(net, rho_l, rho_mu, c=c, scaled_dual=scaled_dual)
        return net

    @classmethod
    def random_init(
        cls,
        graph,
        n_layers: int = 5,
        *,
        d: int = 2,
        output: str = "filter",
        tied: bool = False,
        seed: int = 0,
        tau_scale: float = 1.0,
        V: Tensor | None = None,
    ) -> "SLoGNet":
        r"""The paper's random initialisation (Sec. V-A).

        :math:`\rho_1, \rho_2, \tau` i.i.d. uniform on :math:`(0, 1]` (the
        paper's :math:`[0, 1]` without the endpoint 0, which the positive
        reparametrisation excludes); every other parameter (:math:`\alpha,
        \beta, \gamma` -- including our :math:`\gamma_2` --, ``M``, ``m``)
        i.i.d. standard normal; drawn on the CPU in float64 from ``seed``, one
        draw per layer (one in all when ``tied``). Other arguments as
        :meth:`from_algorithm`.

        Parameters
        ----------
        tau_scale : float, default 1
            Thresholds are drawn from :math:`(0, \text{tau\_scale}]`. With the
            paper's value 1 and data of the paper's model (``N = 20``,
            :math:`\|h\|_1 = 1`), the pre-activations :math:`\alpha_1
            Z\tilde g + \alpha_2\lambda` are typically below 0.2 in
            magnitude, so every sources sub-layer starts dead (:math:`x = 0`,
            no gradient for :math:`\alpha, \tau, \beta_3`) and the network
            learns through the filter and multiplier path only; a smaller
            ``tau_scale`` (e.g. 0.01) starts them alive.
        """
        net = cls._for_graph(graph, V, n_layers, d, output, tied)
        set_random_parameters(net, seed=seed, tau_scale=tau_scale)
        return net

    # ------------------------------------------------------------------ #
    # Forward pass
    # ------------------------------------------------------------------ #
    def _prepare(self, Y) -> tuple[Tensor, bool, Tensor, Tensor]:
        check_tensor("Y", Y, ndim=(2, 3), finite=False)
        N = self.n_nodes
        if Y.shape[-2] != N:
            raise ValueError(
                f"Y must have N={N} rows (one per node) in its shape (B, N, P) or (N, P), got {tuple(Y.shape)}"
            )
        if Y.shape[-1] == 0:
            raise ValueError(f"Y must have at least one signal (column), got shape {tuple(Y.shape)}")
        if Y.dtype != self.dtype:
            raise ValueError(f"Y has dtype {Y.dtype} but the network is {self.dtype}; convert Y or the network")
        if Y.device != self.V.device:
            raise ValueError(f"Y is on {Y.device} but the network is on {self.V.device}")
        check_tensor("Y", Y)
        single = Y.dim() == 2
        Yb = Y.unsqueeze(0) if single else Y
        Yt = self.V.T @ Yb
        z = Yt.pow(2).sum(dim=-1)
        if Yb.shape[0] and not (z > 0).all():
            if not bool(self.V.abs().sum() > 0):
                raise RuntimeError(
                    "the network has no graph: build it with SLoGNet.from_algorithm / random_init, "
                    "call set_graph, or load a saved one"
                )
            b, i = (z <= 0).nonzero()[0].tolist()
            raise ValueError(
                f"Y has no energy in graph frequency {i} (v_{i}^T Y = 0) in problem {b}: "
                "the filter sub-layer's matrix Z^T Z + rho2 M M^T may be singular"
            )
        return Yb, single, Yt, z

    def _layers(self, Yb: Tensor, Yt: Tensor, z: Tensor, n: int, full_last: bool):
        """Yield the :class:`SLoGState` of layers ``0 .. n-1``.

        The last layer computes only what the read-out needs unless ``full_last``.
        """
        B, N, P = Yb.shape
        x = torch.zeros_like(Yb)  # x^0
        lam = torch.zeros_like(Yb)  # lambda^0
        mu = Yb.new_zeros(B, self.d)  # mu^0
        q = Yb.new_zeros(B, N)  # Z^T x
        u = Yb.new_zeros(B, N)  # Z^T lambda
        V = self.V
        for k in range(n):
            last = k == n - 1
            rho1, rho2, M, m = self.rho1[k], self.rho2[k], self.M[k], self.m[k]
            # filter sub-layer (15)
            r = q - rho1 * u + (rho2 * m - rho1 * mu) @ M.T
            g = apply_filter_inverse(z, M, rho2, r)
            Zg = apply_Z(V, Yt, g)
            if last and not full_last and self.output == "filter":
                yield SLoGState(g, Zg, None, None, None)
                return
            # sources sub-layer (16)
            x = soft_threshold(self.alpha1[k] * Zg + self.alpha2[k] * lam, self.tau[k])
            if last and not full_last:
                yield SLoGState(g, Zg, x, None, None)
                return
            q_new = apply_Zt(V, Yt, x)
            # multipliers sub-layer (17)-(18'); Z^T lambda by linearity, Z^T Z g = z * g (Appendix B)
            b1, b2, b3 = self.beta1[k], self.beta2[k], self.beta3[k]
            lam = b1 * lam + b2 * Zg + b3 * x
            u = b1 * u + b2 * (z * g) + b3 * q_new
            q = q_new
            mu = self.gamma1[k] * mu + self.gamma2[k] * (g @ M - m)
            yield SLoGState(g, Zg, x, lam, mu)

    def _readout(self, state: SLoGState) -> Tensor:
        return state.Zg if self.output == "filter" else state.x

    def forward(self, Y: Tensor, return_layers: bool = False) -> Tensor | list[Tensor]:
        """Estimate the sources.

        Parameters
        ----------
        Y : Tensor
            ``(B, N, P)`` observations (one filter per problem) or a single
            ``(N, P)`` problem, of the network's dtype and device.
        return_layers : bool, default False
            Return the read-outs of all active layers ``[X^1, ..., X^K]``
            instead of the last one.

        Returns
        -------
        Tensor or list of Tensor
            Shaped like ``Y``.

        Raises
        ------
        ValueError
            On a bad ``Y`` (the message names it), including a ``Y`` with no
            energy in some graph frequency.
        """
        Yb, single, Yt, z = self._prepare(Y)
        outputs = []
        for k, state in enumerate(self._layers(Yb, Yt, z, self.active_layers, full_last=False)):
            if return_layers or k == self.active_layers - 1:
                outputs.append(self._readout(state))
        if single:
            outputs = [o.squeeze(0) for o in outputs]
        return outputs if return_layers else outputs[-1]

    def forward_with_filter(self, Y: Tensor) -> tuple[Tensor, Tensor]:
        """``(X_hat, g)``: the output and the last layer's inverse-filter response ``(B, N)`` (``(N,)`` unbatched)."""
        Yb, single, Yt, z = self._prepare(Y)
        for state in self._layers(Yb, Yt, z, self.active_layers, full_last=False):
            pass
        X, g = self._readout(state), state.g
        return (X[0], g[0]) if single else (X, g)

    def layer_states(self, Y: Tensor) -> list[SLoGState]:
        """Full states (``g``, ``Zg``, ``x``, ``lam``, ``mu``) after every active layer, batched ``(B, ...)``.

        Unlike :meth:`forward`, the last layer's sources and multipliers
        sub-layers are evaluated too. An unbatched ``Y`` gives ``B = 1``.
        """
        Yb, _, Yt, z = self._prepare(Y)
        return list(self._layers(Yb, Yt, z, self.active_layers, full_last=True))

    # ------------------------------------------------------------------ #
    # UnrolledNet interface
    # ------------------------------------------------------------------ #
    def _parameter_groups(self) -> list[LayerParameter]:
        return [getattr(self, n) for n in POSITIVE_SCALARS + REAL_SCALARS] + [self.M, self.m]

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        """Raw parameters of layer ``k`` (all of :math:`\\Theta^{(k)}`, also those the read-out does not use)."""
        return [p for group in self._parameter_groups() for p in group.layer_parameters(k)]

    def config(self) -> dict:
        return {
            "n_nodes": self.n_nodes,
            "n_layers": self.n_layers,
            "d": self.d,
            "output": self.output,
            "tied": self.tied,
            "dtype": dtype_name(self._dtype),
        }

    def extra_repr(self) -> str:
        return f"n_nodes={self.n_nodes}, n_layers={self.n_layers}, d={self.d}, output={self.output!r}, tied={self.tied}"
