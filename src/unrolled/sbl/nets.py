"""Unrolled networks of the SBL family that reproduce their algorithm when untrained.

* :class:`SBLNet`: the LSTM-like SBL iterations (8)-(11) unrolled, with per-layer learned noise
  variance ``lam_k``, step ``mu_k`` (both positive), input-gate scale ``alpha_k`` (positive) and forget
  gate ``beta_k``: layer ``k`` is one step of :class:`~unrolled.sbl.iteration.SBLIteration` (the step
  :func:`~unrolled.sbl.solvers.sbl` runs). ``from_algorithm`` sets ``alpha = 1, beta = 0`` and the solver's
  ``lam, mu``: the untrained net equals ``K`` iterations of ``sbl(..., update='lstm')``.
* :class:`IHTNet`: the IHT-inspired net of Fig. 3(a,b) ([34] in the paper), ``x <- H_d(W1_k y + W2_k x)``
  with learned ``W1, W2``: the uncoupled form of the sparse-coding family's
  :class:`~unrolled.sparse_coding.iteration.ShrinkageIteration` with the hard threshold;
  ``from_algorithm`` equals ``K`` steps of the foundation's :func:`~unrolled.sparse_coding.solvers.iht`.

Both run the generic :meth:`~unrolled.core.unrolled_net.UnrolledNet.forward` loop and output a code ``x``
``(B, m)`` for ``y`` ``(B, n)`` and ``Phi`` ``(n, m)``; its magnitudes are the atom scores used for support
decoding.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from unrolled.core.io import register_model
from unrolled.core.unrolled_net import UnrolledNet, dtype_from_name, dtype_name
from unrolled.core.validation import as_batch, check_int, check_positive
from unrolled.sbl.iteration import SBLIteration
from unrolled.sbl.solvers import check_dictionary, default_mu
from unrolled.sparse_coding.data import lipschitz_constant
from unrolled.sparse_coding.iteration import ShrinkageIteration

__all__ = ["SBLNet", "IHTNet"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64, "complex64": torch.complex64,
           "complex128": torch.complex128}


class _WithGamma(NamedTuple):
    """Input marker of ``SBLNet(y, return_gamma=True)``: the readout is the pair ``(x, gamma)``."""

    y: Tensor


def _measurements(y, n: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, bool]:
    """Validate ``y`` ``(B, n)`` or ``(n,)`` of the net's dtype and device; a batch of it."""
    yb, single = as_batch("y", y, n)
    if yb.dtype != dtype:
        raise ValueError(f"y has dtype {yb.dtype} but the network is {dtype}; convert y or the network")
    if yb.device != device:
        raise ValueError(f"y is on {yb.device} but the network is on {device}")
    if yb.shape[0] == 0:
        raise ValueError("y is an empty batch (0 rows)")
    return yb, single


@register_model
class SBLNet(UnrolledNet):
    """SBL iterations (8)-(11) unrolled into ``n_layers`` LSTM-like layers.

    Parameters
    ----------
    n, m : int
        Dictionary shape.
    n_layers : int
        Number of unrolled iterations.
    tied : bool
        Share the scalars across layers.
    dtype : {'float64', 'float32', 'complex128', 'complex64'}
        Dtype of the dictionary (and of ``y``); the learned scalars are real.

    Notes
    -----
    Layer ``k`` maps ``(x, gamma)`` to ``(x', gamma')``: ``u, q`` = posterior mean and
    ``diag(Phi^H Sigma_y^{-1} Phi)`` at ``(gamma, lam_k)``, ``w = q^{1/2}``,
    ``nu = u + mu_k Phi^H (y - Phi u)``, ``x' = beta_k x + alpha_k sign(nu) [|nu| - mu_k lam_k w]_+``,
    ``gamma' = |x'| / w``. The output is the posterior mean (4) at the last ``gamma``. Build usable
    nets with :meth:`from_algorithm` (the constructor's placeholders are for :func:`load_model`).
    """

    def __init__(self, n: int, m: int, n_layers: int, tied: bool = False, dtype: str = "float64"):
        super().__init__(n_layers)
        check_int("n", n, minimum=1)
        check_int("m", m, minimum=1)
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        self.iteration = SBLIteration("lstm")
        self.n, self.m, self.tied = n, m, bool(tied)
        cdt = _DTYPES[dtype]
        real = torch.zeros((), dtype=cdt).real.dtype
        # safetensors has no complex dtypes: a complex dictionary is stored as its (n, m, 2) real view
        self._complex = cdt.is_complex
        self.register_buffer("phi_store", torch.zeros((n, m, 2) if self._complex else (n, m), dtype=real))
        one = torch.ones((), dtype=real)
        new = self.iteration.layer_parameter
        self.lam = new("lam", one, n_layers, tied=tied)
        self.mu = new("mu", one, n_layers, tied=tied)
        self.alpha = new("alpha", one, n_layers, tied=tied)
        self.beta = new("beta", torch.zeros((), dtype=real), n_layers, tied=tied)

    @property
    def Phi(self) -> Tensor:
        """The ``(n, m)`` dictionary (complex for complex dtypes)."""
        return torch.view_as_complex(self.phi_store) if self._complex else self.phi_store

    @classmethod
    def from_algorithm(cls, Phi: Tensor, lam: float, n_layers: int, *, mu: float | None = None,
                       tied: bool = False) -> "SBLNet":
        """Untrained net = ``n_layers`` iterations of ``sbl(..., update='lstm', lam=lam, mu=mu)`` from ``gamma = 1``."""
        check_dictionary(Phi)
        lam = check_positive("lam", lam)
        mu = default_mu(Phi) if mu is None else check_positive("mu", mu)
        n, m = Phi.shape
        net = cls(n, m, n_layers, tied, str(Phi.dtype).replace("torch.", "")).to(Phi.device)
        real = net.lam.raw[0].dtype
        return net.set_algorithm_values(phi_store=torch.view_as_real(Phi) if Phi.is_complex() else Phi,
                                        lam=torch.tensor(lam, dtype=real), mu=torch.tensor(mu, dtype=real))

    def prepare(self, inputs) -> tuple[dict, bool]:
        """Validate ``y`` ``(B, n)`` or ``(n,)`` (the network's dtype and device) and pair it with ``Phi``."""
        which = "both" if isinstance(inputs, _WithGamma) else "x"
        Phi = self.Phi
        yb, single = _measurements(inputs.y if which == "both" else inputs, self.n, Phi.dtype, Phi.device)
        return {"y": yb, "Phi": Phi, "readout": which}, single

    def forward(self, y: Tensor, return_layers: bool = False, return_gamma: bool = False):
        """Run ``active_layers`` layers on ``y`` ``(B, n)`` (or ``(n,)``): the generic loop.

        Returns the posterior mean ``(B, m)`` at the last ``gamma`` (with ``return_gamma``, the pair
        ``(x, gamma)``); ``return_layers`` gives the list of per-layer posterior means instead (with
        ``return_gamma``, that list and the last ``gamma``). This override only adds ``return_gamma``
        (the readout of the pair) to :meth:`UnrolledNet.forward <unrolled.core.unrolled_net.UnrolledNet.forward>`.
        """
        if not return_gamma:
            return super().forward(y, return_layers)
        out = super().forward(_WithGamma(y), return_layers)
        return ([o[0] for o in out], out[-1][1]) if return_layers else out

    def config(self) -> dict:
        real = dtype_name(self.phi_store.dtype)  # the current dtype (after .float(), say), not the constructor's
        dtype = {"float32": "complex64", "float64": "complex128"}[real] if self._complex else real
        return {"n": self.n, "m": self.m, "n_layers": self.n_layers, "tied": self.tied, "dtype": dtype}


@register_model
class IHTNet(UnrolledNet):
    """IHT-inspired net: ``x^{k+1} = H_d(W1_k y + W2_k x^k)``, ``x^0 = 0`` (real data).

    Parameters
    ----------
    n, m : int
        Dictionary shape.
    d : int
        Entries kept by the hard threshold ``H_d`` (the sparsity level).
    n_layers : int
        Number of layers.
    tied : bool
        Share ``W1, W2`` across layers.
    dtype : {'float64', 'float32'}
        Parameter dtype.
    """

    def __init__(self, n: int, m: int, d: int, n_layers: int, tied: bool = False, dtype: str = "float64"):
        super().__init__(n_layers)
        check_int("n", n, minimum=1)
        check_int("m", m, minimum=1)
        check_int("d", d, minimum=1)
        if d > m:
            raise ValueError(f"d must be <= m={m}, got {d}")
        self.n, self.m, self.d, self.tied = n, m, d, bool(tied)
        self.iteration = ShrinkageIteration(None, hard=d)
        dt = dtype_from_name(dtype)
        new = self.iteration.layer_parameter
        self.W1 = new("W1", torch.zeros(m, n, dtype=dt), n_layers, tied=tied)
        self.W2 = new("W2", torch.zeros(m, m, dtype=dt), n_layers, tied=tied)

    param_names = ("W1", "W2")

    @classmethod
    def from_algorithm(cls, Phi: Tensor, d: int, n_layers: int, *, tied: bool = False) -> "IHTNet":
        """``W1 = Phi^T / L``, ``W2 = I - Phi^T Phi / L`` (``L = ||Phi||_2^2``): ``n_layers`` IHT steps."""
        check_dictionary(Phi)
        if Phi.is_complex():
            raise ValueError("IHTNet takes a real dictionary")
        n, m = Phi.shape
        L = lipschitz_constant(Phi)
        net = cls(n, m, d, n_layers, tied, dtype_name(Phi.dtype)).to(Phi.device)
        return net.set_algorithm_values(W1=Phi.T / L,
                                        W2=torch.eye(m, dtype=Phi.dtype, device=Phi.device) - Phi.T @ Phi / L)

    def prepare(self, y) -> tuple[dict, bool]:
        """Validate ``y`` ``(B, n)`` or ``(n,)`` (real, the network's dtype and device)."""
        W1 = self.W1.raw[0]
        yb, single = _measurements(y, self.n, W1.dtype, W1.device)
        # the uncoupled step needs no dictionary, only the code size (the sparse-coding A is (n, m) here)
        return {"y": yb, "A": yb.new_empty(self.n, self.m)}, single

    def forward(self, y: Tensor, return_layers: bool = False):
        """``(B, m)`` codes with ``d`` non-zeros per row (the list of all layers with ``return_layers``)."""
        return super().forward(y, return_layers)

    def config(self) -> dict:
        return {"n": self.n, "m": self.m, "d": self.d, "n_layers": self.n_layers, "tied": self.tied,
                "dtype": dtype_name(self.W1.raw[0].dtype)}
