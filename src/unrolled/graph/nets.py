r"""SLoG-Net (Source Localization on Graphs Network): ADMM (11)–(14) unrolled (paper Sec. IV).

Each layer is one step of :class:`~unrolled.graph.iteration.GraphADMMIteration`
(filter, sources and multipliers sub-layers, (15)–(18'); the step, its
parameters and the deviation from the printed (18) are in
:mod:`unrolled.graph.iteration`), with per-layer (untied by default)
learnable :math:`\rho_1, \rho_2, \tau > 0` (exponential reparametrisation,
:class:`~unrolled.core.params.LayerParameter`), :math:`\alpha_{1,2},
\beta_{1,2,3}, \gamma_{1,2} \in \mathbb R`, :math:`M \in \mathbb R^{N\times d}`
and :math:`m \in \mathbb R^d`; the forward pass is
:meth:`UnrolledNet.forward <unrolled.core.unrolled_net.UnrolledNet.forward>`,
the same loop for every family. The state starts at zero. The output is the
paper's read-out :math:`\hat X = \operatorname{unvec}(Z\tilde g^{(K)}) =
V\operatorname{diag}(\tilde g^{(K)})V^\top Y` (``output='filter'``), or the
last thresholded iterate :math:`x^{(K)}` (``output='sources'``, what
:func:`~unrolled.graph.solvers.admm` returns as ``x``).

Initialisations
---------------
:meth:`SLoGNet.from_algorithm` (the untrained network is ADMM) and
:meth:`SLoGNet.random_init` (the paper's Sec. V-A draw). The mapping to ADMM
is :func:`~unrolled.graph.iteration.algorithm_values` (the values the solver
runs the step at); the random draw and the calibrated penalties are in
:mod:`unrolled.graph.net_init`.

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
  its sources sub-layer (:math:`\alpha_{1,2}, \tau`) too.

The last layer computes these sub-layers all the same (the step is one
definition, shared with the solver): one product with ``V`` and a few
``O(NP)`` passes that nothing reads and that stay out of the backward pass:
a 5-layer forward pass takes 2-12% longer than with the former hand-written
loop, which skipped them, and forward plus backward 4-12% (CPU, float64).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from unrolled.core.io import register_model
from unrolled.core.unrolled_net import UnrolledNet, dtype_from_name, dtype_name
from unrolled.core.validation import check_int, check_tensor
from unrolled.graph.graphs import shift_and_basis
from unrolled.graph.iteration import OUTPUTS, SCALAR_LR_SCALE, GraphADMMIteration, deconvolution_data
from unrolled.graph.net_init import (
    POSITIVE_SCALARS,
    median_default_penalties,
    set_admm_parameters,
    set_random_parameters,
)

__all__ = ["SLoGNet", "SLoGState", "OUTPUTS", "SCALAR_LR_SCALE"]


class SLoGState(NamedTuple):
    """State after one SLoG-Net layer (batched).

    Attributes
    ----------
    g : Tensor
        ``(B, N)`` inverse-filter frequency response :math:`\\tilde g`.
    Zg : Tensor
        ``(B, N, P)`` :math:`V\\operatorname{diag}(\\tilde g)V^\\top Y`, the read-out.
    x : Tensor
        ``(B, N, P)`` thresholded sources.
    lam : Tensor
        ``(B, N, P)`` multiplier :math:`\\lambda`.
    mu : Tensor
        ``(B, d)`` multiplier :math:`\\mu`.
    """

    g: Tensor
    Zg: Tensor
    x: Tensor
    lam: Tensor
    mu: Tensor


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
        self.iteration = GraphADMMIteration(output)  # checks output
        if not isinstance(tied, bool):
            raise ValueError(f"tied must be a bool, got {tied!r}")
        self.tied = tied
        self._dtype = dtype_from_name(dtype)
        dt, N = self._dtype, n_nodes
        shapes = {"M": (N, d), "m": (d,)}
        for name in self.param_names:
            init = torch.ones((), dtype=dt) if name in POSITIVE_SCALARS else torch.zeros(shapes.get(name, ()), dtype=dt)
            setattr(self, name, self.iteration.layer_parameter(name, init, n_layers, tied=tied))
        self.register_buffer("S", torch.zeros(N, N, dtype=dt))
        self.register_buffer("V", torch.zeros(N, N, dtype=dt))
        self.register_buffer("eigvals", torch.zeros(N, dtype=dt))

    @property
    def output(self) -> str:
        """The read-out, ``'filter'`` or ``'sources'`` (the iteration's)."""
        return self.iteration.output

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
    def prepare(self, Y) -> tuple[dict, bool]:
        """Validate ``Y`` ``(B, N, P)`` or ``(N, P)`` and build the iteration's data from it and the graph."""
        check_tensor("Y", Y, ndim=(2, 3), finite=False)
        N = self.n_nodes
        if Y.shape[-2] != N:
            raise ValueError(
                f"Y must have N={N} rows (one per node) in its shape (B, N, P) or (N, P), got {tuple(Y.shape)}"
            )
        if Y.shape[-1] == 0:
            raise ValueError(f"Y must have at least one signal (column), got shape {tuple(Y.shape)}")
        if Y.dim() == 3 and Y.shape[0] == 0:
            raise ValueError("Y is an empty batch (0 problems)")
        if Y.dtype != self.dtype:
            raise ValueError(f"Y has dtype {Y.dtype} but the network is {self.dtype}; convert Y or the network")
        if Y.device != self.V.device:
            raise ValueError(f"Y is on {Y.device} but the network is on {self.V.device}")
        check_tensor("Y", Y)
        single = Y.dim() == 2
        try:
            data = deconvolution_data(Y.unsqueeze(0) if single else Y, self.V,
                                      "the filter sub-layer's matrix Z^T Z + rho2 M M^T may be singular")
        except ValueError:
            if not bool(self.V.abs().sum() > 0):
                raise RuntimeError(
                    "the network has no graph: build it with SLoGNet.from_algorithm / random_init, "
                    "call set_graph, or load a saved one"
                ) from None
            raise
        return data, single

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
        return super().forward(Y, return_layers)

    def forward_with_filter(self, Y: Tensor) -> tuple[Tensor, Tensor]:
        """``(X_hat, g)``: the output and the last layer's inverse-filter response ``(B, N)`` (``(N,)`` unbatched)."""
        for state, data, single in self.iterate(Y):
            pass
        return self.finish((self.iteration.readout(state, data), state["g"]), single)

    def layer_states(self, Y: Tensor) -> list[SLoGState]:
        """Full states (``g``, ``Zg``, ``x``, ``lam``, ``mu``) after every active layer, batched ``(B, ...)``.

        An unbatched ``Y`` gives ``B = 1``.
        """
        return [SLoGState(*(st[f] for f in SLoGState._fields)) for st, _, _ in self.iterate(Y)]

    # ------------------------------------------------------------------ #
    # UnrolledNet interface
    # ------------------------------------------------------------------ #
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
