r"""Graphs of the graph-diffusion family and their spectral description.

Graph ensembles (SLoG-Net paper, Sec. V-A/V-C)
----------------------------------------------
==============  ===========================================================  ===========================
name            ensemble                                                     defaults
==============  ===========================================================  ===========================
``"er"``        Erdős–Rényi :math:`G(N, p)`                                  ``n=20, p=0.3``
``"sbm"``       stochastic block model, near-equal blocks                    ``n=20, 3 blocks, 0.8/0.2``
``"ba"``        Barabási–Albert preferential attachment                      ``n=20, m=2``
``"rg"``        random geometric graph in the unit square (Euclidean)        ``n=20, radius=0.2``
``"karate"``    Zachary's karate club (shipped with networkx), unweighted    34 nodes, 78 edges
``"dolphins"``  Lusseau's dolphin network (shipped in ``unrolled/data``)     62 nodes, 159 edges
==============  ===========================================================  ===========================

The paper does not give the Barabási–Albert attachment parameter; we use
``m = 2`` (each new node attaches to two existing nodes, so the graph has
``2 (N - 2)`` edges: 36 for ``N = 20``). The SBM splits the ``N`` nodes into
blocks of near-equal size, the first ``N mod k`` blocks one node larger
(``7, 7, 6`` for ``N = 20``); the block of each node is stored in its
``"block"`` attribute and the partition in ``G.graph["partition"]``.

Only connected graphs are returned. A random ensemble is **redrawn until the
draw is connected**, at most ``max_tries`` times, after which a
:class:`RuntimeError` says so (the graph seen by the experiments is therefore
a draw of the ensemble *conditioned on connectivity*). This matters for the
random geometric graph: with ``N = 20`` and radius ``0.2`` only about 3 draws
in 10,000 are connected, so the connected draws are much sparser and more
path-like than a typical draw; its default ``max_tries`` is 200,000 (a few
seconds at most; about 0.1 s on average, since connectivity is tested on the
positions before networkx builds the graph). ER (:math:`p = 0.3`) is connected
about 98% of the time, SBM essentially always and BA always. Every draw is
seeded: the same ``seed`` gives the same graph.

Spectral description (Sec. II-A)
--------------------------------
The shift is the degree-normalised adjacency
:math:`S = D^{-1/2} A D^{-1/2}` (:func:`normalized_adjacency`), symmetric with
eigenvalues in :math:`[-1, 1]`. :func:`graph_fourier_basis` returns
:math:`S = V \operatorname{diag}(\lambda) V^\top` and :func:`vandermonde` the
:math:`N \times L` matrix :math:`\Psi_L` with :math:`[\Psi_L]_{ij} =
\lambda_i^{\,j-1}`, so a filter :math:`H = \sum_{l<L} h_l S^l` has frequency
response :math:`\tilde h = \Psi_L h` and :math:`H = V\operatorname{diag}(\tilde
h) V^\top`.
"""

from __future__ import annotations

from importlib import resources

import networkx as nx
import numpy as np
import torch
from scipy.sparse.csgraph import connected_components
from torch import Tensor

from unrolled.core.validation import check_int, check_tensor

__all__ = [
    "ENSEMBLES",
    "make_graph",
    "erdos_renyi",
    "stochastic_block",
    "barabasi_albert",
    "random_geometric",
    "karate_club",
    "dolphins",
    "adjacency_matrix",
    "check_adjacency",
    "check_shift",
    "normalized_adjacency",
    "graph_fourier_basis",
    "shift_and_basis",
    "vandermonde",
]


# --------------------------------------------------------------------------- #
# Redraw-until-connected policy
# --------------------------------------------------------------------------- #
def _check_probability(name: str, p) -> float:
    try:
        v = float(p)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1], got {p!r}") from None
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {p!r}")
    return v


def _connected_draw(draw, seed: int, max_tries: int, what: str) -> nx.Graph:
    """Call ``draw(rng)`` until it returns a connected graph (``None`` = rejected early)."""
    check_int("max_tries", max_tries, minimum=1)
    rng = np.random.default_rng(seed)
    for _ in range(max_tries):
        G = draw(rng)
        if G is not None and G.number_of_nodes() > 0 and nx.is_connected(G):
            return G
    raise RuntimeError(
        f"no connected {what} in {max_tries} draws (seed={seed}); the ensemble is rarely connected "
        "with these parameters: raise max_tries, or make the graph denser"
    )


def _int_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


# --------------------------------------------------------------------------- #
# Ensembles
# --------------------------------------------------------------------------- #
def erdos_renyi(n: int = 20, p: float = 0.3, *, seed: int = 0, max_tries: int = 1000) -> nx.Graph:
    """Connected Erdős–Rényi graph :math:`G(n, p)` (redrawn until connected)."""
    check_int("n", n, minimum=1)
    p = _check_probability("p", p)
    G = _connected_draw(
        lambda rng: nx.gnp_random_graph(n, p, seed=_int_seed(rng)), seed, max_tries, f"ER(n={n}, p={p})"
    )
    G.graph["name"] = "er"
    return G


def stochastic_block(
    n: int = 20,
    n_blocks: int = 3,
    p_in: float = 0.8,
    p_out: float = 0.2,
    *,
    seed: int = 0,
    max_tries: int = 1000,
) -> nx.Graph:
    """Connected SBM with ``n_blocks`` near-equal blocks, edge probabilities ``p_in`` / ``p_out``.

    Nodes ``0 .. n-1`` are numbered block by block; ``G.nodes[i]["block"]`` is
    the block of node ``i`` and ``G.graph["partition"]`` the list of blocks.
    """
    check_int("n", n, minimum=1)
    check_int("n_blocks", n_blocks, minimum=1)
    if n_blocks > n:
        raise ValueError(f"n_blocks must be <= n={n}, got {n_blocks}")
    p_in = _check_probability("p_in", p_in)
    p_out = _check_probability("p_out", p_out)
    sizes = [n // n_blocks + (1 if b < n % n_blocks else 0) for b in range(n_blocks)]
    probs = [[p_in if a == b else p_out for b in range(n_blocks)] for a in range(n_blocks)]
    G = _connected_draw(
        lambda rng: nx.stochastic_block_model(sizes, probs, seed=_int_seed(rng)),
        seed,
        max_tries,
        f"SBM(sizes={sizes}, p_in={p_in}, p_out={p_out})",
    )
    G.graph["name"] = "sbm"
    return G


def barabasi_albert(n: int = 20, m: int = 2, *, seed: int = 0) -> nx.Graph:
    """Barabási–Albert graph with ``n`` nodes and attachment ``m`` (always connected).

    The paper does not state ``m``; ``m = 2`` is our choice (``2 (n - 2)`` edges).
    """
    check_int("n", n, minimum=2)
    check_int("m", m, minimum=1)
    if m >= n:
        raise ValueError(f"m must be < n={n}, got {m}")
    G = _connected_draw(lambda rng: nx.barabasi_albert_graph(n, m, seed=_int_seed(rng)), seed, 1, f"BA(n={n}, m={m})")
    G.graph["name"] = "ba"
    return G


def random_geometric(n: int = 20, radius: float = 0.2, *, seed: int = 0, max_tries: int = 200_000) -> nx.Graph:
    """Connected random geometric graph: ``n`` uniform points in the unit square, edges at distance ``<= radius``.

    Redrawn until connected (see the module docstring: at ``n=20, radius=0.2``
    only ~0.03% of the draws are). Positions come from a NumPy generator seeded
    with ``seed``, in blocks of 512 layouts; connectivity is tested on them
    first (vectorised rejection of layouts with an isolated node, then a
    connected-components check) and networkx then builds the first accepted
    graph from the same positions (``G.nodes[i]["pos"]``).
    """
    check_int("n", n, minimum=1)
    try:
        r = float(radius)
    except (TypeError, ValueError):
        raise ValueError(f"radius must be a number, got {radius!r}") from None
    if not r >= 0.0:
        raise ValueError(f"radius must be >= 0, got {radius!r}")

    check_int("max_tries", max_tries, minimum=1)
    rng = np.random.default_rng(seed)
    block = 512  # candidate layouts drawn (and screened) per NumPy call
    tried = 0
    while tried < max_tries:
        k = min(block, max_tries - tried)
        pos = rng.random((k, n, 2))
        adj = ((pos[:, :, None, :] - pos[:, None, :, :]) ** 2).sum(-1) <= r * r
        no_isolated = (adj.sum(-1) > 1).all(-1) if n > 1 else np.ones(k, dtype=bool)  # diagonal counts once
        for j in np.flatnonzero(no_isolated):
            if connected_components(adj[j], directed=False)[0] == 1:
                G = nx.random_geometric_graph(n, r, pos={i: tuple(pos[j, i]) for i in range(n)})
                if nx.is_connected(G):
                    G.graph["name"] = "rg"
                    return G
        tried += k
    raise RuntimeError(
        f"no connected random geometric graph(n={n}, radius={r}) in {max_tries} draws (seed={seed}); the "
        "ensemble is rarely connected with these parameters: raise max_tries, or make the graph denser"
    )


def karate_club() -> nx.Graph:
    """Zachary's karate club (34 nodes, 78 edges), unweighted (networkx's edge weights dropped)."""
    G0 = nx.karate_club_graph()
    G = nx.Graph(name="karate")
    G.add_nodes_from(sorted(G0.nodes))
    G.add_edges_from(G0.edges)
    return G


def dolphins() -> nx.Graph:
    """Lusseau's bottlenose dolphin network (62 nodes, 159 edges), read from the package data."""
    text = resources.files("unrolled").joinpath("data", "dolphins.edgelist").read_text(encoding="utf-8")
    edges = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            u, v = line.split()[:2]
            edges.append((int(u), int(v)))
    G = nx.Graph(name="dolphins")
    G.add_nodes_from(range(1 + max(max(e) for e in edges)))
    G.add_edges_from(edges)
    return G


#: name -> (constructor, whether it is random and accepts ``n``/``seed``)
ENSEMBLES = {
    "er": (erdos_renyi, True),
    "sbm": (stochastic_block, True),
    "ba": (barabasi_albert, True),
    "rg": (random_geometric, True),
    "karate": (karate_club, False),
    "dolphins": (dolphins, False),
}


def make_graph(name: str, *, n_nodes: int | None = None, seed: int = 0, **params) -> nx.Graph:
    """Build a graph of the named ensemble (see the module docstring for the names).

    Parameters
    ----------
    name : str
        One of :data:`ENSEMBLES`.
    n_nodes : int, optional
        Number of nodes of a random ensemble (its default, 20, when ``None``).
        Not allowed for the fixed real networks, except equal to their size.
    seed : int
        Seed of a random ensemble (ignored by the fixed networks).
    **params
        Other keyword arguments of the ensemble's constructor (``p``,
        ``n_blocks``, ``p_in``, ``p_out``, ``m``, ``radius``, ``max_tries``).

    Returns
    -------
    networkx.Graph
        Connected, nodes ``0 .. N-1``, ``G.graph["name"] == name``.
    """
    if not isinstance(name, str) or name not in ENSEMBLES:
        raise ValueError(f"graph must be one of {sorted(ENSEMBLES)}, got {name!r}")
    fn, random = ENSEMBLES[name]
    if random:
        if n_nodes is not None:
            params["n"] = n_nodes
        return fn(seed=seed, **params)
    if params:
        raise ValueError(f"the {name!r} graph takes no parameters, got {sorted(params)}")
    G = fn()
    if n_nodes is not None and n_nodes != G.number_of_nodes():
        raise ValueError(f"n_nodes must be None or {G.number_of_nodes()} for the {name!r} graph, got {n_nodes}")
    return G


# --------------------------------------------------------------------------- #
# Matrices
# --------------------------------------------------------------------------- #
def adjacency_matrix(
    G: nx.Graph, *, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
) -> Tensor:
    """Unweighted symmetric 0/1 adjacency of ``G`` (rows in sorted node order; self-loops dropped)."""
    if not isinstance(G, nx.Graph) or G.is_directed():
        raise ValueError(f"graph must be an undirected networkx.Graph, got {type(G).__name__}")
    nodes = sorted(G.nodes)
    A = nx.to_numpy_array(G, nodelist=nodes, weight=None, dtype=np.float64)
    np.fill_diagonal(A, 0.0)
    return torch.as_tensor(A, dtype=dtype, device=device)


def _symmetric_tolerance(M: Tensor) -> float:
    scale = float(M.abs().max()) if M.numel() else 0.0
    return 100.0 * torch.finfo(M.dtype).eps * max(scale, 1.0)


def check_shift(S, name: str = "S") -> Tensor:
    """Check that ``S`` is a real, finite, square, symmetric ``(N, N)`` matrix."""
    check_tensor(name, S, ndim=2, finite=False)
    if S.is_complex():
        raise ValueError(f"{name} must be real, got dtype {S.dtype}")
    if S.shape[0] != S.shape[1] or S.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty square matrix, got shape {tuple(S.shape)}")
    check_tensor(name, S)
    if (S - S.T).abs().max() > _symmetric_tolerance(S):
        raise ValueError(f"{name} must be symmetric (an undirected graph)")
    return S


def check_adjacency(A, name: str = "A", *, connected: bool = True) -> Tensor:
    """Check an adjacency matrix: square, symmetric, finite, non-negative and (by default) connected."""
    check_shift(A, name)
    if (A < 0).any():
        raise ValueError(f"{name} must have non-negative entries (edge weights)")
    if connected:
        n_comp = connected_components((A != 0).cpu().numpy(), directed=False)[0]
        if n_comp != 1:
            raise ValueError(f"{name} must be a connected graph, got {n_comp} connected components")
    return A


def normalized_adjacency(A: Tensor) -> Tensor:
    r"""Degree-normalised adjacency :math:`S = D^{-1/2} A D^{-1/2}`, :math:`D = \operatorname{diag}(A 1)`.

    ``A`` must be a valid connected adjacency (:func:`check_adjacency`), so
    every degree is positive.
    """
    check_adjacency(A, "A")
    d = A.sum(dim=1)
    if (d <= 0).any():  # only reachable for a single isolated node
        raise ValueError("A must have no isolated node (a zero degree)")
    s = d.rsqrt()
    S = s[:, None] * A * s[None, :]
    return 0.5 * (S + S.T)  # exactly symmetric


def graph_fourier_basis(S: Tensor) -> tuple[Tensor, Tensor]:
    r"""Eigendecomposition :math:`S = V \operatorname{diag}(\lambda) V^\top` of a symmetric shift.

    Computed in float64 (``torch.linalg.eigh``) on ``S``'s device and returned
    in ``S``'s dtype: eigenvalues ``(N,)`` in ascending order and the
    orthonormal eigenvectors as the columns of ``V`` ``(N, N)``.
    """
    check_shift(S, "S")
    lam, V = torch.linalg.eigh(S.to(torch.float64))
    return lam.to(S.dtype), V.to(S.dtype)


def vandermonde(eigvals: Tensor, L: int) -> Tensor:
    r""":math:`N \times L` Vandermonde matrix :math:`[\Psi_L]_{ij} = \lambda_i^{\,j-1}` (first column ones)."""
    check_tensor("eigvals", eigvals, ndim=1)
    check_int("L", L, minimum=1)
    cols = [torch.ones_like(eigvals)]
    for _ in range(1, L):
        cols.append(cols[-1] * eigvals)
    return torch.stack(cols, dim=1)


def shift_and_basis(graph, V: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """``(S, V, eigvals)`` from a shift ``S`` or a problem with ``S`` and ``V`` attributes, validated.

    ``V`` (default: the problem's, else :func:`graph_fourier_basis` of ``S``)
    must be orthonormal and diagonalise ``S``; ``S`` must be a float32/float64
    symmetric square matrix.
    """
    if not isinstance(graph, Tensor):
        if not (hasattr(graph, "S") and hasattr(graph, "V")):
            raise ValueError(
                f"graph must be a shift matrix S (Tensor) or a GraphDiffusionProblem, got {type(graph).__name__}"
            )
        if V is None:
            V = graph.V
        graph = graph.S
    S = check_shift(graph, "S")
    if S.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"S must be float32 or float64, got {S.dtype}")
    N = S.shape[0]
    if V is None:
        lam, V = graph_fourier_basis(S)
        return S, V, lam
    check_tensor("V", V, ndim=2)
    if V.dtype != S.dtype or V.device != S.device:
        raise ValueError(f"V must have the dtype and device of S ({S.dtype}, {S.device}), got ({V.dtype}, {V.device})")
    if tuple(V.shape) != (N, N):
        raise ValueError(f"V must have shape ({N}, {N}) like S, got {tuple(V.shape)}")
    V64, S64 = V.to(torch.float64), S.to(torch.float64)
    tol = 1e3 * torch.finfo(V.dtype).eps * N
    if (V64.T @ V64 - torch.eye(N, dtype=torch.float64, device=V.device)).abs().max() > tol:
        raise ValueError("V must be orthonormal (the eigenvectors of S as columns)")
    D = V64.T @ S64 @ V64
    lam = torch.diagonal(D)
    if (D - torch.diag_embed(lam)).abs().max() > tol * max(1.0, float(S64.abs().max())):
        raise ValueError("V must diagonalise S (its columns are the eigenvectors of S)")
    return S, V, lam.to(S.dtype)
