r"""Source-community recovery on SBM graphs (SLoG-Net paper, Sec. V-D).

The paper casts a simple community detection as *structured* source
localization: on an SBM graph with :math:`N_c` communities, every signal
:math:`x_i` has its ``S`` sources inside one community :math:`c_i` drawn
uniformly at random, the ``S`` active nodes drawn uniformly among that
community's members and their values i.i.d. :math:`\mathcal N(0, 1)`
(``N = 20``, :math:`N_c = 3`, ``S = 3`` in the paper).

* :class:`CommunityDiffusionProblem` is a :class:`GraphDiffusionProblem` whose
  sources follow that model (everything else -- filters, diffusion, noise,
  batch layout -- unchanged), so SLoG-Net, ADMM and the shared trainer use it
  as they use the Bernoulli-Gaussian problem.
* :func:`community_from_estimate` is the paper's decision rule for a method
  that recovers :math:`\hat X` (SLoG-Net, ADMM): the estimated community of
  signal ``i`` is the community of the node where :math:`|\hat x_i|` is
  largest. The rule is invariant to the scale and sign of :math:`\hat X`, so
  ADMM's arbitrary output scale does not matter here.
* :class:`GraphConvClassifier` is the torch-only GNN baseline trained with
  community labels: the selection GNN of Gama et al. [10] that the paper
  compares against -- polynomial graph-filter layers :math:`Z_{l+1} =
  \mathrm{ReLU}(\sum_{k<K} S^k Z_l W_{l,k} + b_l)` on the data model's shift
  ``S``, neighbourhood max-pooling and zero-padded node selection, then a
  fully connected read-out of the kept nodes' features to :math:`N_c` logits.

Import this module before :func:`unrolled.core.io.load_model` reads a saved
:class:`GraphConvClassifier` (it is not imported by ``unrolled.graph``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from unrolled.core.io import register_model
from unrolled.core.validation import check_int
from unrolled.graph.data import GraphDiffusionProblem

__all__ = [
    "CommunityDiffusionProblem",
    "community_from_estimate",
    "community_accuracy",
    "GraphConvClassifier",
]


def _membership_tensor(membership) -> Tensor:
    m = torch.as_tensor(membership, dtype=torch.long)
    if m.dim() != 1 or m.numel() == 0:
        raise ValueError(f"membership must be a non-empty 1-D sequence of community indices, got shape {tuple(m.shape)}")
    if (m < 0).any():
        raise ValueError("membership must hold non-negative community indices")
    return m


def community_from_estimate(X_hat: Tensor, membership) -> Tensor:
    r"""The paper's decision rule: community of the node where :math:`|\hat x_i|` is largest.

    Parameters
    ----------
    X_hat : Tensor
        ``(..., N, P)`` estimated sources (node index, then signal index; the
        batch-first layout of :mod:`unrolled.graph.data`).
    membership : sequence of int or Tensor
        ``(N,)`` community of every node.

    Returns
    -------
    Tensor
        ``(..., P)`` long tensor of estimated communities. Ties (including an
        all-zero estimate) go to the first node of largest magnitude.
    """
    m = _membership_tensor(membership)
    if X_hat.dim() < 2 or X_hat.shape[-2] != m.numel():
        raise ValueError(f"X_hat must be (..., N={m.numel()}, P), got shape {tuple(X_hat.shape)}")
    node = X_hat.abs().argmax(dim=-2)
    return m.to(node.device)[node]


def community_accuracy(predicted: Tensor, labels: Tensor) -> float:
    """Fraction of signals whose community is right (shapes must match)."""
    if predicted.shape != labels.shape:
        raise ValueError(f"shapes differ: {tuple(predicted.shape)} vs {tuple(labels.shape)}")
    if predicted.numel() == 0:
        raise ValueError("no signals")
    return float((predicted == labels.to(predicted.device)).double().mean())


@dataclass
class CommunityDiffusionProblem(GraphDiffusionProblem):
    """Graph diffusion with community-structured sources (paper Sec. V-D).

    Defaults are the paper's: the ``"sbm"`` ensemble (``N = 20``, 3 blocks,
    ``p_in = 0.8``, ``p_out = 0.2``) and ``S = n_sources = 3`` sources per
    signal, all in one community drawn uniformly. ``graph`` may also be a
    networkx graph with a ``G.graph["partition"]`` (list of node sets), or any
    graph with ``membership`` given.

    Parameters
    ----------
    membership : list of int, optional
        Community of every node; default: the partition stored by the SBM generator.
    (others) : see :class:`GraphDiffusionProblem`.
    """

    graph: object = "sbm"
    n_sources: int | None = 3
    membership: list | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.membership is None:
            partition = self.nx_graph.graph.get("partition")
            if partition is None:
                raise ValueError("the graph has no stored partition; pass membership")
            m = [0] * self.N
            for c, block in enumerate(partition):
                for node in block:
                    m[int(node)] = c
            self.membership = m
        m = _membership_tensor(self.membership)
        if m.numel() != self.N:
            raise ValueError(f"membership must have N={self.N} entries, got {m.numel()}")
        self.membership = [int(v) for v in m]
        self.n_communities = int(m.max()) + 1
        self.communities = [torch.nonzero(m == c).flatten() for c in range(self.n_communities)]
        if any(len(c) == 0 for c in self.communities):
            raise ValueError("membership must use every community index 0 .. Nc-1")
        if self.n_sources is None:
            raise ValueError("n_sources (S, sources per signal) must be set")
        smallest = min(len(c) for c in self.communities)
        if self.n_sources > smallest:
            raise ValueError(f"n_sources must be <= the smallest community ({smallest} nodes), got {self.n_sources}")

    @property
    def membership_tensor(self) -> Tensor:
        """``(N,)`` long tensor of the nodes' communities."""
        return torch.tensor(self.membership, dtype=torch.long)

    def sample_sources(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``(n, N, P)`` sources: per signal ``S`` N(0,1) values on random members of one random community."""
        check_int("n", n, minimum=1)
        P, N, S = self.n_signals, self.N, self.n_sources
        labels = torch.randint(self.n_communities, (n, P), generator=generator)
        keys = torch.rand(n, P, N, generator=generator, dtype=torch.float64)
        member = self.membership_tensor[None, None, :] == labels[..., None]  # (n, P, N)
        keys = torch.where(member, keys, torch.full_like(keys, 2.0))  # non-members sort last
        idx = keys.argsort(dim=-1)[..., :S]
        support = torch.zeros(n, P, N, dtype=torch.bool).scatter_(-1, idx, True).transpose(1, 2)
        values = torch.randn(n, N, P, generator=generator, dtype=torch.float64)
        return values * support

    def labels(self, X: Tensor) -> Tensor:
        """``(..., P)`` true communities of sources ``X`` ``(..., N, P)`` drawn by :meth:`sample_sources`.

        Every source of a signal lies in its community, so the rule of
        :func:`community_from_estimate` applied to the truth returns it exactly.
        """
        return community_from_estimate(X, self.membership)

    def sample_signals(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``n`` single signals, each with its own filter (the GNN's setting): ``(Y (n, N), labels (n,))``."""
        check_int("n", n, minimum=1)
        P = self.n_signals
        self.n_signals = 1
        try:
            batch = self.sample_batch(n, generator)
        finally:
            self.n_signals = P
        return batch.Y[..., 0], self.labels(batch.X)[..., 0].to(batch.Y.device)

    def config(self) -> dict:
        cfg = super().config()
        cfg["membership"] = list(self.membership)
        return cfg


@register_model
class GraphConvClassifier(nn.Module):
    r"""The selection GNN baseline (Gama et al. [10]): graph-filter banks, max-pooling, node selection, read-out.

    Layer ``l`` maps node features :math:`Z_l` (``N x F_l``, zero outside the
    nodes kept so far) to :math:`\mathrm{ReLU}(\sum_{k=0}^{K-1} S^k Z_l W_{l,k} + b_l)`
    (a bank of ``K``-tap graph filters on the shift ``S``), then -- when
    ``selected`` asks for fewer nodes -- pools every node's features by the
    maximum over its ``pool_hops``-hop neighbourhood and keeps only the first
    ``selected[l]`` nodes of a fixed order (largest degree first), zeroing the
    others. This is Gama et al.'s *selection GNN with zero padding*: the
    signal stays on the original graph, so later filters still use ``S``. The
    read-out is a linear map from the ``selected[-1] * F`` features of the last
    kept nodes to ``n_classes`` logits. ``selected=None`` keeps every node (no
    pooling): a plain polynomial graph-convolution network.

    Parameters
    ----------
    shift : list of lists or Tensor
        ``(N, N)`` graph shift (the problem's ``S``).
    n_classes : int
        Number of communities.
    hidden : int
        Features per node in every layer.
    n_layers : int
        Graph-filter layers.
    taps : int
        ``K``, taps of every graph filter.
    selected : list of int, optional
        Nodes kept after each layer (non-increasing, between 1 and ``N``).
    pool_hops : int
        Radius of the max-pooling neighbourhoods (in hops of ``S``).
    """

    def __init__(self, shift, n_classes: int = 3, hidden: int = 32, n_layers: int = 2, taps: int = 3,
                 selected: list[int] | None = None, pool_hops: int = 1):
        super().__init__()
        S = torch.as_tensor(shift, dtype=torch.float32)
        if S.dim() != 2 or S.shape[0] != S.shape[1]:
            raise ValueError(f"shift must be a square matrix, got shape {tuple(S.shape)}")
        self.n_classes = check_int("n_classes", n_classes, minimum=2)
        self.hidden = check_int("hidden", hidden, minimum=1)
        self.n_layers = check_int("n_layers", n_layers, minimum=1)
        self.taps = check_int("taps", taps, minimum=1)
        self.pool_hops = check_int("pool_hops", pool_hops, minimum=1)
        N = S.shape[0]
        kept = [N] * n_layers if selected is None else [int(v) for v in selected]
        if len(kept) != n_layers or any(not 1 <= v <= N for v in kept) or any(b > a for a, b in zip(kept, kept[1:])):
            raise ValueError(f"selected must list {n_layers} non-increasing node counts in [1, {N}], got {selected}")
        self.selected = kept
        self.register_buffer("S", S)
        # node order for selection: largest degree (sum of |S| over the row) first, ties by index
        degree = S.abs().sum(1)
        self.register_buffer("order", torch.argsort(-degree, stable=True))
        reach = (S != 0) | torch.eye(N, dtype=torch.bool)
        hop = reach.clone()
        for _ in range(pool_hops - 1):
            hop = (hop.float() @ reach.float()) > 0
        self.register_buffer("neighbourhood", hop)
        dims = [1] + [hidden] * n_layers
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(taps, fi, fo) / (taps * fi) ** 0.5) for fi, fo in zip(dims[:-1], dims[1:])
        )
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(fo)) for fo in dims[1:])
        self.readout = nn.Linear(kept[-1] * hidden, n_classes)

    @property
    def n_nodes(self) -> int:
        return self.S.shape[0]

    def _pool_and_select(self, z: Tensor, keep: int) -> Tensor:
        if keep == self.n_nodes:
            return z
        # max over each node's neighbourhood (ReLU outputs are >= 0, so masked entries can be 0)
        pooled = (z[:, None, :, :] * self.neighbourhood[None, :, :, None].to(z.dtype)).amax(dim=2)
        mask = torch.zeros(self.n_nodes, 1, dtype=z.dtype, device=z.device)
        mask[self.order[:keep]] = 1.0
        return pooled * mask

    def forward(self, y: Tensor) -> Tensor:
        """Logits ``(..., n_classes)`` for signals ``y`` ``(..., N)``."""
        if y.shape[-1] != self.n_nodes:
            raise ValueError(f"y must be (..., N={self.n_nodes}), got shape {tuple(y.shape)}")
        lead = y.shape[:-1]
        z = y.reshape(-1, self.n_nodes, 1).to(self.S.dtype)  # (B, N, F)
        for W, b, keep in zip(self.weights, self.biases, self.selected):
            out, shifted = z @ W[0], z
            for k in range(1, self.taps):
                shifted = self.S @ shifted
                out = out + shifted @ W[k]
            z = self._pool_and_select(torch.relu(out + b), keep)
        z = z[:, self.order[: self.selected[-1]], :]
        return self.readout(z.flatten(1)).reshape(*lead, self.n_classes)

    def predict(self, y: Tensor) -> Tensor:
        """Estimated communities ``(...)`` of signals ``y`` ``(..., N)``."""
        return self.forward(y).argmax(-1)

    def config(self) -> dict:
        return {"shift": self.S.tolist(), "n_classes": self.n_classes, "hidden": self.hidden,
                "n_layers": self.n_layers, "taps": self.taps, "selected": list(self.selected),
                "pool_hops": self.pool_hops}
