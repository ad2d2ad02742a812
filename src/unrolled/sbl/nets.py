"""Unrolled networks of the SBL family that reproduce their algorithm when untrained.

* :class:`SBLNet`: the LSTM-like SBL iterations (8)-(11) unrolled, with per-layer learned noise
  variance ``lam_k``, step ``mu_k`` (both positive), input-gate scale ``alpha_k`` (positive) and forget
  gate ``beta_k``. ``from_algorithm`` sets ``alpha = 1, beta = 0`` and the solver's ``lam, mu``: the
  untrained net equals ``K`` iterations of :func:`~unrolled.sbl.solvers.sbl` with ``update='lstm'``.
* :class:`IHTNet`: the IHT-inspired net of Fig. 3(a,b) ([34] in the paper), ``x <- H_d(W1_k y + W2_k x)``
  with learned ``W1, W2``; ``from_algorithm`` equals ``K`` steps of the foundation's
  :func:`~unrolled.sparse_coding.solvers.iht`.

Both output a code ``x`` ``(B, m)``; its magnitudes are the atom scores used for support decoding.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from unrolled.core.io import register_model
from unrolled.core.params import LayerParameter
from unrolled.core.prox import hard_threshold
from unrolled.core.unrolled_net import UnrolledNet, dtype_from_name, dtype_name
from unrolled.core.validation import as_batch, check_int, check_positive
from unrolled.sbl.solvers import check_dictionary, posterior
from unrolled.sparse_coding.data import lipschitz_constant

__all__ = ["SBLNet", "IHTNet"]

_DTYPES = {"float32": torch.float32, "float64": torch.float64, "complex64": torch.complex64,
           "complex128": torch.complex128}


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
        self.n, self.m, self.tied, self._dtype_name = n, m, bool(tied), dtype
        cdt = _DTYPES[dtype]
        real = torch.zeros((), dtype=cdt).real.dtype
        # safetensors has no complex dtypes: a complex dictionary is stored as its (n, m, 2) real view
        self._complex = cdt.is_complex
        self.register_buffer("phi_store", torch.zeros((n, m, 2) if self._complex else (n, m), dtype=real))
        one = torch.ones((), dtype=real)
        self.lam = LayerParameter(one, n_layers, tied=tied, constraint="positive")
        self.mu = LayerParameter(one, n_layers, tied=tied, constraint="positive")
        self.alpha = LayerParameter(one, n_layers, tied=tied, constraint="positive")
        self.beta = LayerParameter(torch.zeros((), dtype=real), n_layers, tied=tied)

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
        mu = 1.0 / float(torch.linalg.matrix_norm(Phi, ord=2) ** 2) if mu is None else check_positive("mu", mu)
        n, m = Phi.shape
        net = cls(n, m, n_layers, tied, str(Phi.dtype).replace("torch.", "")).to(Phi.device)
        net.phi_store.copy_(torch.view_as_real(Phi) if Phi.is_complex() else Phi)
        real = net.lam.raw[0].dtype
        net.lam.set_value(torch.tensor(lam, dtype=real))
        net.mu.set_value(torch.tensor(mu, dtype=real))
        return net

    def forward(self, y: Tensor, return_layers: bool = False, return_gamma: bool = False):
        """Run ``active_layers`` layers on ``y`` ``(B, n)`` (or ``(n,)``).

        Returns the posterior mean ``(B, m)`` at the last ``gamma`` (with ``return_gamma``, the pair
        ``(x, gamma)``); ``return_layers`` gives the list of per-layer posterior means instead.
        """
        yb, single = as_batch("y", y, self.n)
        if yb.dtype != self.Phi.dtype:
            raise ValueError(f"y has dtype {yb.dtype} but the network is {self.Phi.dtype}")
        real = self.lam.raw[0].dtype
        gamma = torch.ones(yb.shape[0], self.m, dtype=real, device=yb.device)
        x = torch.zeros(yb.shape[0], self.m, dtype=yb.dtype, device=yb.device)
        tiny = torch.finfo(real).tiny
        outputs = []
        for k in range(self.active_layers):
            lam, mu = self.lam[k], self.mu[k]
            u, q, _ = posterior(yb, self.Phi, gamma, lam)
            w = q.clamp_min(tiny).sqrt()
            nu = u + mu * (yb - u @ self.Phi.T) @ self.Phi.conj()
            mag = nu.abs()
            gate_in = self.alpha[k] * (mag - mu * lam * w).clamp_min(0.0)  # eq. (9), input gate
            x = self.beta[k] * x + gate_in * (nu / mag.clamp_min(tiny))  # eq. (10), sign(nu) candidate
            gamma = x.abs() / w  # eq. (11), output gate 1/w
            if return_layers:
                outputs.append(posterior(yb, self.Phi, gamma, self.lam[k])[0])
        out = outputs if return_layers else posterior(yb, self.Phi, gamma, self.lam[self.active_layers - 1])[0]
        if single:
            out = [o[0] for o in out] if return_layers else out[0]
            gamma = gamma[0]
        return (out, gamma) if return_gamma else out

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        return [p for lp in (self.lam, self.mu, self.alpha, self.beta) for p in lp.layer_parameters(k)]

    def config(self) -> dict:
        return {"n": self.n, "m": self.m, "n_layers": self.n_layers, "tied": self.tied, "dtype": self._dtype_name}


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
        self._dtype = dtype_from_name(dtype)
        self.W1 = LayerParameter(torch.zeros(m, n, dtype=self._dtype), n_layers, tied=tied)
        self.W2 = LayerParameter(torch.zeros(m, m, dtype=self._dtype), n_layers, tied=tied)

    @classmethod
    def from_algorithm(cls, Phi: Tensor, d: int, n_layers: int, *, tied: bool = False) -> "IHTNet":
        """``W1 = Phi^T / L``, ``W2 = I - Phi^T Phi / L`` (``L = ||Phi||_2^2``): ``n_layers`` IHT steps."""
        check_dictionary(Phi)
        if Phi.is_complex():
            raise ValueError("IHTNet takes a real dictionary")
        n, m = Phi.shape
        L = lipschitz_constant(Phi)
        net = cls(n, m, d, n_layers, tied, dtype_name(Phi.dtype)).to(Phi.device)
        net.W1.set_value(Phi.T / L)
        net.W2.set_value(torch.eye(m, dtype=Phi.dtype, device=Phi.device) - Phi.T @ Phi / L)
        return net

    def forward(self, y: Tensor, return_layers: bool = False):
        """``(B, m)`` codes with ``d`` non-zeros per row (the list of all layers with ``return_layers``)."""
        yb, single = as_batch("y", y, self.n)
        if yb.dtype != self._dtype:
            raise ValueError(f"y has dtype {yb.dtype} but the network is {self._dtype}")
        x = yb.new_zeros(yb.shape[0], self.m)
        outs = []
        for k in range(self.active_layers):
            x = hard_threshold(yb @ self.W1[k].T + x @ self.W2[k].T, self.d)
            outs.append(x[0] if single else x)
        return outs if return_layers else outs[-1]

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        return self.W1.layer_parameters(k) + self.W2.layer_parameters(k)

    def config(self) -> dict:
        return {"n": self.n, "m": self.m, "d": self.d, "n_layers": self.n_layers, "tied": self.tied,
                "dtype": dtype_name(self._dtype)}
