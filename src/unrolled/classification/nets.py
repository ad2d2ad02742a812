r"""The deep IRLS-ADMM network (paper, Sec. II-B.2 and III; Fig. 1-2).

``k_max`` outer layers (IRLS / Newton steps) of ``i_max`` inner ADMM layers
each. Outer layer ``k`` builds :math:`A^k, b^k` from :math:`\beta^{k}` (nodes
a-d), runs ``i_max`` inner layers

.. math::
    \Omega^{k,i} &= (A^{k\top}A^k + \rho_{k,i}F_{k,i}^2)^{-1}(A^{k\top}b^k + \rho_{k,i}F_{k,i}(z^{k,i-1} - u^{k,i-1})), \\
    C^{k,i} &= F_{k,i}\Omega^{k,i},\quad z^{k,i} = S_{1/\rho_{k,i}}(C^{k,i} + u^{k,i-1}),\quad
    u^{k,i} = u^{k,i-1} + C^{k,i} - z^{k,i},

from :math:`z^{k,0} = u^{k,0} = 0` (nodes e-m, q-s), and moves
:math:`\beta^{k+1} = (1 - t_k)\beta^k + t_k\Omega^{k,i_{max}}` (nodes n-p), from
:math:`\beta^0 = 0`. The learned parameters :math:`\Theta = \{\rho_{k,i},
F_{k,i}, t_k\}` are positive by the exponential reparametrisation of
:class:`~unrolled.core.params.LayerParameter`; the paper initialises
:math:`\rho = t = 1`, :math:`F = 10 I` (Sec. IV-A), which is what the constructor
gives. Gradients come from autograd through these operations (the paper
derives them by hand in Appendix A).

An unpenalised intercept (``fit_intercept=True``) is an extra coordinate whose
``F`` entry is fixed at zero (a buffer mask), exactly as in the classic solver.
The ``n_layers`` of :class:`~unrolled.core.unrolled_net.UnrolledNet` are the
``k_max`` outer layers; layer ``k`` owns :math:`t_k` and its
:math:`\rho_{k,\cdot}`, :math:`F_{k,\cdot}`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from unrolled.classification.layers import (
    beta_update,
    omega_update,
    u_update,
    weighted_system,
    z_update,
)
from unrolled.classification.solvers import prepare_problem
from unrolled.core.io import register_model
from unrolled.core.params import LayerParameter
from unrolled.core.unrolled_net import UnrolledNet, dtype_from_name, dtype_name
from unrolled.core.validation import check_int, check_positive

#: The paper's initialisation (Sec. IV-A).
F_INIT, RHO_INIT, T_INIT = 10.0, 1.0, 1.0


@register_model
class DeepIRLSADMMNet(UnrolledNet):
    """Deep IRLS-ADMM net: maps a labelled data set ``(X, y)`` to coefficients ``beta``.

    Parameters
    ----------
    n_features : int
        Number of features ``p`` (``F`` has one entry per feature).
    k_max, i_max : int, default 3 and 4
        Outer (IRLS) and inner (ADMM) layers, as in the paper's Fig. 1.
    fit_intercept : bool, default False
        Add an unpenalised intercept coordinate (last entry of ``beta``).
    sparse_direction : bool, default False
        ``True``: each outer layer uses :math:`\\Omega^{k,i_{max}}` restricted to the
        support of :math:`z^{k,i_{max}}` (exact zeros, as the classic solver's
        default). ``False``: the paper's layer as printed.
    dtype : {'float64', 'float32'}
    """

    def __init__(self, n_features: int, k_max: int = 3, i_max: int = 4, fit_intercept: bool = False,
                 sparse_direction: bool = False, dtype: str = "float64"):
        check_int("k_max", k_max, minimum=1)
        super().__init__(k_max)
        self.n_features = check_int("n_features", n_features, minimum=1)
        self.k_max, self.i_max = k_max, check_int("i_max", i_max, minimum=1)
        self.fit_intercept, self.sparse_direction = bool(fit_intercept), bool(sparse_direction)
        dt = dtype_from_name(dtype)
        n_inner = k_max * self.i_max
        self.rho = LayerParameter(torch.tensor(RHO_INIT, dtype=dt), n_inner, constraint="positive")
        self.F = LayerParameter(torch.full((n_features,), F_INIT, dtype=dt), n_inner, constraint="positive")
        self.t = LayerParameter(torch.tensor(T_INIT, dtype=dt), k_max, constraint="positive")
        mask = torch.ones(n_features + int(fit_intercept), dtype=dt)
        if fit_intercept:
            mask[-1] = 0.0
        self.register_buffer("penalty_mask", mask)

    @classmethod
    def from_algorithm(cls, n_features: int, w=F_INIT, *, rho: float = RHO_INIT, k_max: int = 3, i_max: int = 4,
                       fit_intercept: bool = False, sparse_direction: bool = False,
                       dtype: str = "float64") -> "DeepIRLSADMMNet":
        """The untrained net equal to :func:`~unrolled.classification.solvers.irls_admm` with ``max_iter=k_max``,
        ``inner_max_iter=i_max``, ``tol=inner_tol=0``, ``rho`` fixed, ``line_search=False``,
        ``warm_start=False`` and the same ``w``, ``fit_intercept`` and ``sparse_direction``.

        ``w`` (a positive number or ``(n_features,)`` tensor) initialises every ``F_{k,i}``,
        ``rho`` every ``rho_{k,i}``; ``t_k = 1``.
        """
        net = cls(n_features, k_max, i_max, fit_intercept, sparse_direction, dtype)
        dt = dtype_from_name(dtype)
        wv = torch.as_tensor(w, dtype=dt)
        if wv.dim() == 0:
            wv = wv.expand(n_features).clone()
        if tuple(wv.shape) != (n_features,) or not bool((wv > 0).all()) or not bool(torch.isfinite(wv).all()):
            raise ValueError(f"w must be a positive number or {n_features} positive finite weights")
        net.F.set_value(wv)
        net.rho.set_value(torch.tensor(check_positive("rho", rho), dtype=dt))
        return net

    def weights(self, j: int) -> Tensor:
        """``F_j`` of inner layer ``j = k * i_max + i`` on all coordinates (0 on the intercept), ``(P,)``."""
        F = self.F[j]
        if self.fit_intercept:
            F = torch.cat([F, F.new_zeros(1)])
        return F

    def forward(self, inputs: tuple[Tensor, Tensor], return_layers: bool = False) -> Tensor | list[Tensor]:
        """Run the network on labelled data.

        Parameters
        ----------
        inputs : (X, y)
            ``X`` ``(B, N, p)`` or ``(N, p)``; ``y`` ``(B, N)`` or ``(N,)`` in {-1, +1}.
        return_layers : bool
            Return the list of the outer layers' outputs :math:`\\beta^1..\\beta^K`.

        Returns
        -------
        Tensor
            ``(B, P)`` coefficients, ``P = p + fit_intercept`` (intercept last);
            ``(P,)`` for an unbatched input.
        """
        if not (isinstance(inputs, (tuple, list)) and len(inputs) == 2):
            raise ValueError("inputs must be a pair (X, y)")
        X, y = inputs
        if X.shape[-1] != self.n_features:
            raise ValueError(f"X must have {self.n_features} features, got shape {tuple(X.shape)}")
        if X.dtype != self.dtype:
            raise ValueError(f"X has dtype {X.dtype} but the network is {self.dtype}; convert one of them")
        Xt, _, single = prepare_problem(X, y, 0.0, self.fit_intercept)
        B, _, P = Xt.shape
        beta = Xt.new_zeros(B, P)
        outputs = []
        for k in range(self.active_layers):
            margin = (Xt @ beta.unsqueeze(-1)).squeeze(-1)
            gram, rhs, _, _ = weighted_system(Xt, margin)
            z = u = torch.zeros_like(beta)
            for i in range(self.i_max):
                j = k * self.i_max + i
                rho, F = self.rho[j], self.weights(j)
                omega = omega_update(gram, rhs, rho, F, z, u)
                C = F * omega
                z = z_update(C, u, rho)
                u = u_update(u, C, z)
            if self.sparse_direction:
                omega = torch.where((z != 0) | (self.penalty_mask == 0), omega, torch.zeros_like(omega))
            beta = beta_update(beta, omega, self.t[k])
            outputs.append(beta[0] if single else beta)
        return outputs if return_layers else outputs[-1]

    def restricted(self, features) -> "DeepIRLSADMMNet":
        """A copy of the net on a subset of the features (their ``F`` entries; ``rho``, ``t`` shared values).

        Used to build the predictive model on the features a trained net selected (Sec. IV-A).
        """
        idx = torch.as_tensor(features, dtype=torch.long).reshape(-1)
        if idx.numel() == 0 or int(idx.min()) < 0 or int(idx.max()) >= self.n_features:
            raise ValueError(f"features must be a non-empty subset of range({self.n_features})")
        sub = DeepIRLSADMMNet(int(idx.numel()), self.k_max, self.i_max, self.fit_intercept, self.sparse_direction,
                              dtype_name(self.dtype)).to(self.penalty_mask.device)
        with torch.no_grad():
            for j in range(self.k_max * self.i_max):
                sub.F.set_value(self.F[j][idx.to(self.penalty_mask.device)], j)
                sub.rho.set_value(self.rho[j], j)
            for k in range(self.k_max):
                sub.t.set_value(self.t[k], k)
        return sub

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        if not 0 <= k < self.k_max:
            raise IndexError(f"layer {k} out of range for {self.k_max} outer layers")
        params = list(self.t.layer_parameters(k))
        for i in range(self.i_max):
            j = k * self.i_max + i
            params += self.rho.layer_parameters(j) + self.F.layer_parameters(j)
        return params

    def config(self) -> dict:
        return {"n_features": self.n_features, "k_max": self.k_max, "i_max": self.i_max,
                "fit_intercept": self.fit_intercept, "sparse_direction": self.sparse_direction,
                "dtype": dtype_name(self.dtype)}
