"""Unrolled networks of the sparse-coding family.

Each network maps measurements ``y`` of shape ``(B, m)`` (or ``(m,)``) to codes
``x`` of shape ``(B, n)``, starting from ``x^0 = 0``. Layer ``k`` generalises an
ISTA step

.. math:: x^{k+1} = \\eta_{\\lambda/L}\\big(x^k - \\tfrac1L A^\\top (A x^k - y)\\big).

==================  ==========================================================  ===================
network             layer ``k``                                                 learned
==================  ==========================================================  ===================
:class:`LISTA`      ``eta(W1_k y + W2_k x, theta_k)``                           W1, W2, theta
:class:`LISTACP`    ``eta(x + W_k^T (y - A x), theta_k)``                       W, theta
:class:`LISTACPSS`  LISTA-CP with support selection ``eta_ss^{p_k}``            W, theta
:class:`ALISTA`     ``eta_ss(x - gamma_k W^T (A x - y), theta_k)``, W analytic  gamma, theta
:class:`ISTALLT`    ``eta(x - gamma_k A^T (A x - y), theta_k)``                 gamma, theta
==================  ==========================================================  ===================

Thresholds and step sizes are positive by reparametrisation. Every network has
``from_algorithm(A, lam, n_layers, tied=False, ...)``; untrained, it reproduces
``n_layers`` ISTA iterations with step ``1/L`` (support selection switched off
for the SS variants).
"""

from __future__ import annotations

import torch
from torch import Tensor

from unrolled.core.io import register_model
from unrolled.core.unrolled_net import UnrolledNet, check_n_layers, dtype_from_name, dtype_name
from unrolled.core.validation import as_batch, check_positive, check_tensor
from unrolled.sparse_coding.alista_weight import analytic_weight
from unrolled.sparse_coding.data import lipschitz_constant
from unrolled.sparse_coding.iteration import SCALAR_LR_SCALE, ShrinkageIteration

__all__ = ["LISTA", "LISTACP", "LISTACPSS", "ALISTA", "ISTALLT", "NETWORKS", "SparseCodingNet", "support_fractions",
           "SCALAR_LR_SCALE"]

#: Support-selection schedule of the LISTA-CPSS paper (Chen et al. 2018, Sec. 5):
#: layer k (1-based) trusts ``min(k * SS_STEP, SS_MAX)`` of the entries.
SS_STEP = 0.012
SS_MAX = 0.13


def support_fractions(n_layers: int, step: float = SS_STEP, maximum: float = SS_MAX) -> list[float]:
    """Per-layer support-selection fractions ``p_k = min(k * step, maximum)``, ``k = 1..n_layers``."""
    if not (0 <= step <= 1 and 0 <= maximum <= 1):
        raise ValueError(f"support-selection step and maximum must be in [0, 1], got {step}, {maximum}")
    return [min((k + 1) * step, maximum) for k in range(n_layers)]


def _check_dictionary(A: Tensor) -> Tensor:
    check_tensor("A", A, ndim=2)
    return A


class SparseCodingNet(UnrolledNet):
    """Shared forward pass: ``x^0 = 0``, then ``active_layers`` steps of :class:`ShrinkageIteration`."""

    def __init__(self, m: int, n: int, n_layers: int, tied: bool, dtype: str):
        super().__init__(n_layers)
        self.iteration = ShrinkageIteration()
        for name, v in (("m", m), ("n", n)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        self.m, self.n, self.tied = m, n, bool(tied)
        self._dtype = dtype_from_name(dtype)

    def prepare(self, y: Tensor) -> tuple[dict, bool]:
        """Validate the measurements ``y`` ``(B, m)`` or ``(m,)`` and pair them with the net's buffers."""
        yb, single = as_batch("y", y, self.m)
        if yb.dtype != self.dtype:
            raise ValueError(f"y has dtype {yb.dtype} but the network is {self.dtype}; convert y or the network")
        if yb.device != self._device():
            raise ValueError(f"y is on {yb.device} but the network is on {self._device()}")
        if yb.shape[0] == 0:
            raise ValueError("y is an empty batch (0 rows)")
        data = {"y": yb}
        A = getattr(self, "A", None)
        if A is not None:
            data.update(A=A, At=A.T)
        else:  # LISTA: no dictionary, only the shapes are needed
            data.update(A=yb.new_empty(self.m, self.n), At=None)
        return data, single

    def forward(self, y: Tensor, return_layers: bool = False) -> Tensor | list[Tensor]:
        """Run the network.

        Parameters
        ----------
        y : Tensor
            Measurements ``(B, m)`` or ``(m,)``, of the network's dtype and device.
        return_layers : bool, default False
            Return the list of all layer outputs ``[x^1, ..., x^K]`` instead of
            the last one.

        Returns
        -------
        Tensor or list of Tensor
            ``(B, n)`` codes (``(n,)`` for unbatched input).
        """
        return super().forward(y, return_layers)

    def _device(self) -> torch.device:
        for t in list(self.parameters()) + list(self.buffers()):
            return t.device
        return torch.device("cpu")

    def _base_config(self) -> dict:
        return {"m": self.m, "n": self.n, "n_layers": self.n_layers, "tied": self.tied, "dtype": dtype_name(self._dtype)}


def _init_common(A: Tensor, lam: float, n_layers: int) -> tuple[Tensor, float, float]:
    check_n_layers(n_layers)
    _check_dictionary(A)
    lam = check_positive("lam", lam)
    L = lipschitz_constant(A)
    return A, lam, L


@register_model
class LISTA(SparseCodingNet):
    """LISTA (Gregor & LeCun 2010): ``x^{k+1} = eta(W1_k y + W2_k x^k, theta_k)``.

    Parameters
    ----------
    m, n : int
        Measurement and code sizes.
    n_layers : int
        Number of layers.
    tied : bool, default False
        Share ``W1, W2, theta`` across layers.
    dtype : {'float64', 'float32'}
        Parameter dtype.

    Notes
    -----
    The constructor gives placeholder weights (zeros) meant to be overwritten
    by :func:`unrolled.core.io.load_model`; build a usable network with
    :meth:`from_algorithm`.
    """

    def __init__(self, m: int, n: int, n_layers: int, tied: bool = False, dtype: str = "float64"):
        super().__init__(m, n, n_layers, tied, dtype)
        dt = self._dtype
        new = self.iteration.layer_parameter
        self.W1 = new("W1", torch.zeros(n, m, dtype=dt), n_layers, tied=tied)
        self.W2 = new("W2", torch.zeros(n, n, dtype=dt), n_layers, tied=tied)
        self.theta = new("theta", torch.ones((), dtype=dt), n_layers, tied=tied)

    @classmethod
    def from_algorithm(cls, A: Tensor, lam: float, n_layers: int, tied: bool = False) -> "LISTA":
        """Initialise from ISTA: ``W1 = A^T / L``, ``W2 = I - A^T A / L``, ``theta = lam / L``."""
        A, lam, L = _init_common(A, lam, n_layers)
        m, n = A.shape
        net = cls(m, n, n_layers, tied, dtype_name(A.dtype)).to(A.device)
        net.W1.set_value(A.T / L)
        net.W2.set_value(torch.eye(n, dtype=A.dtype, device=A.device) - A.T @ A / L)
        net.theta.set_value(torch.tensor(lam / L, dtype=A.dtype))
        return net

    param_names = ("W1", "W2", "theta")

    def config(self) -> dict:
        return self._base_config()


class _CoupledNet(SparseCodingNet):
    """Networks that keep the dictionary ``A`` as a fixed buffer (LISTA-CP and after)."""

    def __init__(self, m: int, n: int, n_layers: int, tied: bool, dtype: str, ss_fractions: list[float] | None):
        super().__init__(m, n, n_layers, tied, dtype)
        self.register_buffer("A", torch.zeros(m, n, dtype=self._dtype))
        fr = [0.0] * n_layers if ss_fractions is None else [float(f) for f in ss_fractions]
        if len(fr) != n_layers or any(not 0.0 <= f <= 1.0 for f in fr):
            raise ValueError(f"ss_fractions must be {n_layers} numbers in [0, 1], got {ss_fractions!r}")
        self.ss_fractions = fr

    def layer_constants(self, k: int) -> dict:
        return {"ss": self.ss_fractions[k]}

    def config(self) -> dict:
        return {**self._base_config(), "ss_fractions": list(self.ss_fractions)}


@register_model
class LISTACP(_CoupledNet):
    """LISTA-CP (Chen et al. 2018): ``x^{k+1} = eta(x^k + W_k^T (y - A x^k), theta_k)``.

    The weight coupling ``W2 = I - W^T A`` of the paper's Theorem 1 leaves one
    ``(m, n)`` matrix and one threshold per layer. Arguments as :class:`LISTA`;
    ``ss_fractions`` (per-layer support-selection fractions) is used by
    :class:`LISTACPSS`.
    """

    def __init__(
        self,
        m: int,
        n: int,
        n_layers: int,
        tied: bool = False,
        dtype: str = "float64",
        ss_fractions: list[float] | None = None,
    ):
        super().__init__(m, n, n_layers, tied, dtype, ss_fractions)
        dt = self._dtype
        self.W = self.iteration.layer_parameter("W", torch.zeros(m, n, dtype=dt), n_layers, tied=tied)
        self.theta = self.iteration.layer_parameter("theta", torch.ones((), dtype=dt), n_layers, tied=tied)

    @classmethod
    def from_algorithm(cls, A: Tensor, lam: float, n_layers: int, tied: bool = False, **kwargs) -> "LISTACP":
        """Initialise from ISTA: ``W_k = A / L``, ``theta_k = lam / L``."""
        A, lam, L = _init_common(A, lam, n_layers)
        m, n = A.shape
        net = cls(m, n, n_layers, tied, dtype_name(A.dtype), **kwargs).to(A.device)
        net.A.copy_(A)
        net.W.set_value(A / L)
        net.theta.set_value(torch.tensor(lam / L, dtype=A.dtype))
        return net

    param_names = ("W", "theta")

    def layer_constants(self, k: int) -> dict:
        return {"gamma": 1.0, "ss": self.ss_fractions[k]}  # x + W^T (y - A x): unit step


@register_model
class LISTACPSS(LISTACP):
    """LISTA-CPSS (Chen et al. 2018): LISTA-CP with support selection.

    In layer ``k`` the ``p_k`` fraction of largest entries bypasses the
    shrinkage, with the paper's schedule ``p_k = min(1.2% * k, 13%)``
    (:func:`support_fractions`).
    """

    def __init__(
        self,
        m: int,
        n: int,
        n_layers: int,
        tied: bool = False,
        dtype: str = "float64",
        ss_fractions: list[float] | None = None,
    ):
        if ss_fractions is None:
            ss_fractions = support_fractions(n_layers)
        super().__init__(m, n, n_layers, tied, dtype, ss_fractions)

    @classmethod
    def from_algorithm(
        cls,
        A: Tensor,
        lam: float,
        n_layers: int,
        tied: bool = False,
        ss_fractions: list[float] | None = None,
    ) -> "LISTACPSS":
        """As :meth:`LISTACP.from_algorithm`; ``ss_fractions=[0]*n_layers`` switches selection off."""
        return super().from_algorithm(A, lam, n_layers, tied, ss_fractions=ss_fractions)


@register_model
class ALISTA(_CoupledNet):
    """ALISTA (Liu et al. 2019): ``x^{k+1} = eta_ss(x^k - gamma_k W^T (A x^k - y), theta_k)``.

    ``W`` is fixed, computed from ``A`` by
    :func:`~unrolled.sparse_coding.alista_weight.analytic_weight`; only the
    ``2 * n_layers`` step sizes and thresholds are learned. Support selection
    follows the LISTA-CPSS schedule unless ``ss_fractions`` says otherwise.
    """

    def __init__(
        self,
        m: int,
        n: int,
        n_layers: int,
        tied: bool = False,
        dtype: str = "float64",
        ss_fractions: list[float] | None = None,
    ):
        if ss_fractions is None:
            ss_fractions = support_fractions(n_layers)
        super().__init__(m, n, n_layers, tied, dtype, ss_fractions)
        dt = self._dtype
        self.register_buffer("W", torch.zeros(m, n, dtype=dt))
        self.gamma = self.iteration.layer_parameter("gamma", torch.ones((), dtype=dt), n_layers, tied=tied)
        self.theta = self.iteration.layer_parameter("theta", torch.ones((), dtype=dt), n_layers, tied=tied)

    @classmethod
    def from_algorithm(
        cls,
        A: Tensor,
        lam: float,
        n_layers: int,
        tied: bool = False,
        weight: str = "analytic",
        ss_fractions: list[float] | None = None,
    ) -> "ALISTA":
        """Initialise from ``A``.

        Parameters
        ----------
        weight : {'analytic', 'A'}
            ``'analytic'``: ALISTA's weight; step ``gamma = 1 / ||W^T A||_2``.
            ``'A'``: ``W = A`` and ``gamma = 1/L`` (with ``ss_fractions`` all
            zero the network is then exactly ISTA).
        ss_fractions : list of float, optional
            Per-layer support-selection fractions (default: paper schedule).
        """
        A, lam, L = _init_common(A, lam, n_layers)
        m, n = A.shape
        if weight == "analytic":
            W = analytic_weight(A)
        elif weight == "A":
            W = A
        else:
            raise ValueError(f"weight must be 'analytic' or 'A', got {weight!r}")
        step = 1.0 / float(torch.linalg.matrix_norm(W.T @ A, ord=2))
        net = cls(m, n, n_layers, tied, dtype_name(A.dtype), ss_fractions).to(A.device)
        net.A.copy_(A)
        net.W.copy_(W)
        net.gamma.set_value(torch.tensor(step, dtype=A.dtype))
        net.theta.set_value(torch.tensor(lam * step, dtype=A.dtype))
        return net

    param_names = ("gamma", "theta")

    def layer_constants(self, k: int) -> dict:
        return {"W": self.W, "ss": self.ss_fractions[k]}


@register_model
class ISTALLT(_CoupledNet):
    """ISTA with learned per-layer step and threshold:
    ``x^{k+1} = eta(x^k - gamma_k A^T (A x^k - y), theta_k)``.
    """

    def __init__(self, m: int, n: int, n_layers: int, tied: bool = False, dtype: str = "float64"):
        super().__init__(m, n, n_layers, tied, dtype, None)
        dt = self._dtype
        self.gamma = self.iteration.layer_parameter("gamma", torch.ones((), dtype=dt), n_layers, tied=tied)
        self.theta = self.iteration.layer_parameter("theta", torch.ones((), dtype=dt), n_layers, tied=tied)

    @classmethod
    def from_algorithm(cls, A: Tensor, lam: float, n_layers: int, tied: bool = False) -> "ISTALLT":
        """Initialise from ISTA: ``gamma_k = 1/L``, ``theta_k = lam/L``."""
        A, lam, L = _init_common(A, lam, n_layers)
        m, n = A.shape
        net = cls(m, n, n_layers, tied, dtype_name(A.dtype)).to(A.device)
        net.A.copy_(A)
        net.gamma.set_value(torch.tensor(1.0 / L, dtype=A.dtype))
        net.theta.set_value(torch.tensor(lam / L, dtype=A.dtype))
        return net

    param_names = ("gamma", "theta")

    def layer_constants(self, k: int) -> dict:
        return {"W": self.A, "ss": 0.0}

    def config(self) -> dict:
        return self._base_config()


#: Networks of the family by their CLI names.
NETWORKS: dict[str, type[SparseCodingNet]] = {
    "lista": LISTA,
    "lista-cp": LISTACP,
    "lista-cpss": LISTACPSS,
    "alista": ALISTA,
    "ista-llt": ISTALLT,
}
