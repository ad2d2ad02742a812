r"""Data model of the graph-diffusion family (SLoG-Net paper, Sec. II and V-A).

On a fixed connected graph with shift :math:`S = D^{-1/2} A D^{-1/2} = V
\operatorname{diag}(\lambda) V^\top`, one *problem* is a set of ``P`` diffused
signals that share one unknown filter:

.. math::
    Y = H X + \eta N, \qquad H = V \operatorname{diag}(\Psi_L h) V^\top,
    \qquad h = \frac{e_1 + \phi b}{\|e_1 + \phi b\|_1},\ b \sim \mathcal N(0, I_L),

with sources :math:`X = \Omega \circ R`, :math:`\Omega_{ij} \sim
\mathrm{Bernoulli}(\theta)` and :math:`R_{ij} \sim \mathcal N(0, 1)` (or,
optionally, exactly ``n_sources`` non-zeros per signal at uniformly random
nodes), and noise :math:`N_{ij} \sim \mathrm{Uniform}(-1, 1)` as in the paper's
test protocol (Gaussian on request).

Layout
------
Everything is batch-first: a batch of ``B`` problems is ``Y`` and ``X`` of shape
``(B, N, P)`` (problem ``b`` is the paper's ``N x P`` matrix ``Y_b``: node
index, then signal index), with **one filter per problem** (``h`` is ``(B, L)``,
its frequency response ``h_freq`` :math:`= \Psi_L h` is ``(B, N)``). All the
problems of a :class:`GraphDiffusionProblem` live on its one graph, whose
``S``, ``V``, ``eigvals`` and ``Psi`` are attributes of the problem and are
what :func:`unrolled.graph.solvers.admm` needs besides ``Y``.

The paper does not redraw filters that are nearly singular (some
:math:`|\tilde h_i|` close to 0); neither do we.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import networkx as nx
import numpy as np
import torch
from torch import Tensor

from unrolled.core.validation import check_int, check_positive, check_tensor
from unrolled.graph.graphs import (
    ENSEMBLES,
    adjacency_matrix,
    check_adjacency,
    graph_fourier_basis,
    make_graph,
    normalized_adjacency,
    vandermonde,
)
from unrolled.core.unrolled_net import dtype_from_name

__all__ = ["DiffusionBatch", "GraphDiffusionProblem", "exact_recovery_target"]


class DiffusionBatch(NamedTuple):
    """A batch of diffusion problems (all batch-first).

    Attributes
    ----------
    Y : Tensor
        ``(B, N, P)`` observations.
    X : Tensor
        ``(B, N, P)`` sources.
    h : Tensor
        ``(B, L)`` filter coefficients (one filter per problem).
    h_freq : Tensor
        ``(B, N)`` filter frequency responses :math:`\\Psi_L h`.
    """

    Y: Tensor
    X: Tensor
    h: Tensor
    h_freq: Tensor


def exact_recovery_target(X: Tensor, h_freq: Tensor, c: float = 1.0) -> tuple[Tensor, Tensor]:
    r"""The solution of problem (8) when it recovers the truth: ``(x, g)``.

    With noiseless ``Y = H X``, the true inverse filter has response
    :math:`1/\tilde h`; the constraint :math:`1^\top \tilde g = c` fixes its
    scale, so :math:`\tilde g = c\,(1/\tilde h)/s` and :math:`\hat X = (c/s) X`
    with :math:`s = \sum_i 1/\tilde h_i` (a negative ``s`` flips the sign).

    Parameters
    ----------
    X : Tensor
        ``(B, N, P)`` (or ``(N, P)``) true sources.
    h_freq : Tensor
        ``(B, N)`` (or ``(N,)``) filter frequency responses (all non-zero).
    c : float
        The constant of the normalisation constraint.

    Returns
    -------
    x, g : Tensor
        Shaped like ``X`` and ``h_freq``.
    """
    inv = 1.0 / h_freq
    s = inv.sum(dim=-1, keepdim=True)
    return X * (c / s)[..., None], c * inv / s


@dataclass
class GraphDiffusionProblem:
    """Blind deconvolution of graph diffusion on one fixed graph.

    Parameters
    ----------
    graph : str, networkx.Graph or Tensor
        The name of an ensemble of :mod:`unrolled.graph.graphs` (``"er"``,
        ``"sbm"``, ``"ba"``, ``"rg"``, ``"karate"``, ``"dolphins"``), an
        undirected connected networkx graph (used unweighted; nodes in sorted
        order), or a connected symmetric non-negative ``(N, N)`` adjacency
        matrix (weights kept).
    n_nodes : int, optional
        Size of a random ensemble (default 20); only with an ensemble name.
    graph_seed : int
        Seed of a random ensemble.
    n_signals : int
        ``P``, the number of signals per problem (columns of ``Y``).
    L : int
        Filter order (number of taps), ``1 <= L <= N``.
    phi : float
        Weight of the random part of the filter taps (``phi=0`` is the identity filter).
    theta : float
        Bernoulli probability that a node is a source (ignored when
        ``n_sources`` is set).
    n_sources : int, optional
        If set, every signal has exactly this many sources, at distinct nodes
        drawn uniformly.
    eta : float
        Noise level (``0`` is noiseless).
    noise : {"uniform", "gaussian"}
        ``Uniform(-1, 1)`` (the paper's test protocol) or ``N(0, 1)`` entries, times ``eta``.
    dtype, device
        Of the matrices and of the samples.

    Attributes
    ----------
    A, S, V, eigvals, Psi : Tensor
        Adjacency and shift ``(N, N)``, eigenbasis ``(N, N)``, eigenvalues
        ``(N,)`` (ascending) and Vandermonde ``(N, L)``.
    nx_graph : networkx.Graph
        The graph (nodes relabelled ``0 .. N-1``).

    Examples
    --------
    >>> prob = GraphDiffusionProblem("er", n_signals=100, graph_seed=0)
    >>> Y, X = prob.sample(8, torch.Generator().manual_seed(1))
    >>> Y.shape, X.shape
    (torch.Size([8, 20, 100]), torch.Size([8, 20, 100]))
    """

    graph: object = "er"
    n_nodes: int | None = None
    graph_seed: int = 0
    n_signals: int = 400
    L: int = 5
    phi: float = 1.0
    theta: float = 0.15
    n_sources: int | None = None
    eta: float = 0.0
    noise: str = "uniform"
    dtype: torch.dtype = torch.float64
    device: str = "cpu"
    nx_graph: nx.Graph = field(init=False, repr=False)
    A: Tensor = field(init=False, repr=False)
    S: Tensor = field(init=False, repr=False)
    V: Tensor = field(init=False, repr=False)
    eigvals: Tensor = field(init=False, repr=False)
    Psi: Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {self.dtype}")
        check_int("graph_seed", self.graph_seed)
        A64 = self._build_adjacency()
        N = A64.shape[0]
        check_int("n_signals", self.n_signals, minimum=1)
        check_int("L", self.L, minimum=1)
        if self.L > N:
            raise ValueError(f"L must be <= N={N} (filter order at most the number of nodes), got {self.L}")
        check_positive("phi", self.phi, allow_zero=True)
        if self.n_sources is None:
            try:
                ok = 0.0 < float(self.theta) <= 1.0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"theta must be in (0, 1], got {self.theta!r}")
        else:
            check_int("n_sources", self.n_sources, minimum=1)
            if self.n_sources > N:
                raise ValueError(f"n_sources must be <= N={N}, got {self.n_sources}")
        check_positive("eta", self.eta, allow_zero=True)
        if self.noise not in ("uniform", "gaussian"):
            raise ValueError(f"noise must be 'uniform' or 'gaussian', got {self.noise!r}")

        S64 = normalized_adjacency(A64)
        lam64, V64 = graph_fourier_basis(S64)
        # float64 CPU copies used for sampling, so float32 and float64 problems draw the same data.
        self._V64, self._Psi64 = V64, vandermonde(lam64, self.L)
        self.A = A64.to(self.dtype).to(self.device)
        self.S = S64.to(self.dtype).to(self.device)
        self.V = V64.to(self.dtype).to(self.device)
        self.eigvals = lam64.to(self.dtype).to(self.device)
        self.Psi = self._Psi64.to(self.dtype).to(self.device)

    def _build_adjacency(self) -> Tensor:
        g = self.graph
        if isinstance(g, str):
            if g not in ENSEMBLES:
                raise ValueError(f"graph must be one of {sorted(ENSEMBLES)} or a graph, got {g!r}")
            self.nx_graph = make_graph(g, n_nodes=self.n_nodes, seed=self.graph_seed)
            return adjacency_matrix(self.nx_graph)
        if self.n_nodes is not None:
            raise ValueError("n_nodes is only used with an ensemble name; leave it None for a given graph")
        if isinstance(g, nx.Graph):
            if g.is_directed():
                raise ValueError("graph must be undirected")
            if g.number_of_nodes() == 0:
                raise ValueError("graph must have at least one node")
            A = adjacency_matrix(g)
            check_adjacency(A, "graph")
            self.nx_graph = nx.relabel_nodes(g, {u: i for i, u in enumerate(sorted(g.nodes))})
            return A
        if isinstance(g, np.ndarray):
            g = torch.as_tensor(g)
        if isinstance(g, Tensor):
            if not (g.is_floating_point() or g.is_complex()):  # 0/1 integer or boolean adjacency
                g = g.to(torch.float64)
            check_tensor("graph", g, ndim=2, finite=False)
            A = g.detach().to(device="cpu", dtype=torch.float64)
            check_adjacency(A, "graph")
            A = A.clone()
            A.fill_diagonal_(0.0)
            self.nx_graph = nx.from_numpy_array(A.numpy())
            return A
        raise ValueError(
            f"graph must be an ensemble name, a networkx.Graph or an adjacency matrix, got {type(g).__name__}"
        )

    # ------------------------------------------------------------------ #
    @property
    def N(self) -> int:
        """Number of nodes."""
        return self.A.shape[0]

    def sample_filters(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``(n, L)`` filter taps :math:`h = (e_1 + \\phi b)/\\|e_1 + \\phi b\\|_1` (float64, CPU)."""
        check_int("n", n, minimum=1)
        b = torch.randn(n, self.L, generator=generator, dtype=torch.float64)
        h = self.phi * b
        h[:, 0] += 1.0
        return h / h.abs().sum(dim=1, keepdim=True)

    def sample_sources(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``(n, N, P)`` sparse sources (float64, CPU)."""
        check_int("n", n, minimum=1)
        shape = (n, self.N, self.n_signals)
        if self.n_sources is None:
            support = torch.rand(shape, generator=generator, dtype=torch.float64) < self.theta
        else:
            keys = torch.rand(n, self.n_signals, self.N, generator=generator, dtype=torch.float64)
            idx = keys.argsort(dim=-1)[..., : self.n_sources]
            support = torch.zeros(n, self.n_signals, self.N, dtype=torch.bool).scatter_(-1, idx, True)
            support = support.transpose(1, 2)
        values = torch.randn(shape, generator=generator, dtype=torch.float64)
        return values * support

    def filter_matrix(self, h: Tensor) -> Tensor:
        """``(..., N, N)`` filters :math:`V \\operatorname{diag}(\\Psi_L h) V^\\top` for taps ``h`` ``(..., L)``."""
        check_tensor("h", h)
        if h.shape[-1] != self.L:
            raise ValueError(f"h must have last dimension L={self.L}, got shape {tuple(h.shape)}")
        V, Psi = self.V.to(h.dtype).to(h.device), self.Psi.to(h.dtype).to(h.device)
        resp = h @ Psi.T
        return (V * resp[..., None, :]) @ V.T

    def sample_batch(self, n: int, generator: torch.Generator | None = None) -> DiffusionBatch:
        """Draw ``n`` problems: see :class:`DiffusionBatch`.

        Random numbers are drawn on the CPU in float64 from ``generator``, in
        the order filters, sources, noise (so a seed gives the same data on
        every device and in both dtypes), then cast and moved.
        """
        check_int("n", n, minimum=1)
        h = self.sample_filters(n, generator)
        X = self.sample_sources(n, generator)
        h_freq = h @ self._Psi64.T  # (n, N)
        V = self._V64
        Y = V @ (h_freq[:, :, None] * (V.T @ X))
        if self.eta > 0:
            if self.noise == "uniform":
                w = 2.0 * torch.rand(Y.shape, generator=generator, dtype=torch.float64) - 1.0
            else:
                w = torch.randn(Y.shape, generator=generator, dtype=torch.float64)
            Y = Y + self.eta * w

        def out(t: Tensor) -> Tensor:
            return t.to(self.dtype).to(self.device)

        return DiffusionBatch(out(Y), out(X), out(h), out(h_freq))

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Draw ``n`` problems: returns ``(Y, X)``, both ``(n, N, P)`` (see :meth:`sample_batch`)."""
        batch = self.sample_batch(n, generator)
        return batch.Y, batch.X

    def config(self) -> dict:
        """JSON-serialisable description that rebuilds the same problem."""
        if isinstance(self.graph, str):
            graph = self.graph
        else:  # a given graph: store its weighted edge list
            A = self.A.cpu().to(torch.float64)
            iu = torch.triu_indices(self.N, self.N, offset=1)
            mask = A[iu[0], iu[1]] != 0
            graph = {
                "n_nodes": self.N,
                "edges": [[int(i), int(j), float(A[i, j])] for i, j in iu[:, mask].T.tolist()],
            }
        return {
            "graph": graph,
            "n_nodes": self.n_nodes,
            "graph_seed": self.graph_seed,
            "n_signals": self.n_signals,
            "L": self.L,
            "phi": self.phi,
            "theta": self.theta,
            "n_sources": self.n_sources,
            "eta": self.eta,
            "noise": self.noise,
            "dtype": str(self.dtype).replace("torch.", ""),
        }

    @classmethod
    def from_config(cls, config: dict, *, device: str = "cpu") -> "GraphDiffusionProblem":
        """Rebuild a problem from :meth:`config`."""
        cfg = dict(config)
        graph = cfg.pop("graph")
        if isinstance(graph, dict):
            n = int(graph["n_nodes"])
            A = torch.zeros(n, n, dtype=torch.float64)
            for i, j, w in graph["edges"]:
                A[i, j] = A[j, i] = w
            graph = A
        dtype = dtype_from_name(cfg.pop("dtype", "float64"))
        return cls(graph=graph, dtype=dtype, device=device, **cfg)
