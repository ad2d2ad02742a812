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
:math:`\rho_{k,\cdot}`, :math:`F_{k,\cdot}`. ``tied=True`` shares one set
:math:`\{\rho_{i}, F_{i}\}_{i \le i_{max}}, t` across the outer layers.

The layer is :class:`~unrolled.classification.iteration.IRLSADMMIteration`
(the classic solver's outer step) run by the generic
:meth:`UnrolledNet.forward <unrolled.core.unrolled_net.UnrolledNet.forward>`
loop; :meth:`DeepIRLSADMMNet.layer_values` gathers each outer layer's inner
values into lists (the storage stays one scalar ``rho`` and one ``(p,)`` ``F``
per inner layer, so the state-dict keys ``rho.raw.j``, ``F.raw.j`` are those
of earlier versions; a tied net stores one ``(i_max,)`` ``rho`` and one
``(i_max, p)`` ``F``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from unrolled.classification.iteration import IRLSADMMIteration
from unrolled.classification.solvers import prepare_problem
from unrolled.core.io import register_model
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
    tied : bool, default False
        Share the parameters across the outer layers (``rho_{k,i} = rho_i``,
        ``F_{k,i} = F_i``, ``t_k = t``): ``rho`` and ``F`` are then one ``(i_max,)``
        and one ``(i_max, p)`` value instead of a scalar and a ``(p,)`` vector per
        inner layer.
    """

    def __init__(self, n_features: int, k_max: int = 3, i_max: int = 4, fit_intercept: bool = False,
                 sparse_direction: bool = False, dtype: str = "float64", tied: bool = False):
        check_int("k_max", k_max, minimum=1)
        super().__init__(k_max)
        self.n_features = check_int("n_features", n_features, minimum=1)
        self.k_max, self.i_max = k_max, check_int("i_max", i_max, minimum=1)
        self.fit_intercept, self.sparse_direction = bool(fit_intercept), bool(sparse_direction)
        self.tied = bool(tied)
        self.iteration = it = IRLSADMMIteration(self.i_max, sparse_direction=self.sparse_direction,
                                                fit_intercept=self.fit_intercept)
        dt = dtype_from_name(dtype)
        if self.tied:  # one (i_max,) rho and one (i_max, p) F shared by the outer layers
            self.rho = it.layer_parameter("rho", torch.full((self.i_max,), RHO_INIT, dtype=dt), k_max, tied=True)
            self.F = it.layer_parameter("F", torch.full((self.i_max, n_features), F_INIT, dtype=dt), k_max, tied=True)
        else:  # a scalar rho and a (p,) F per inner layer j = k * i_max + i
            n_inner = k_max * self.i_max
            self.rho = it.layer_parameter("rho", torch.tensor(RHO_INIT, dtype=dt), n_inner, tied=False)
            self.F = it.layer_parameter("F", torch.full((n_features,), F_INIT, dtype=dt), n_inner, tied=False)
        self.t = it.layer_parameter("t", torch.tensor(T_INIT, dtype=dt), k_max, tied=self.tied)
        mask = torch.ones(n_features + int(fit_intercept), dtype=dt)
        if fit_intercept:
            mask[-1] = 0.0
        self.register_buffer("penalty_mask", mask)

    @classmethod
    def from_algorithm(cls, n_features: int, w=F_INIT, *, rho: float = RHO_INIT, k_max: int = 3, i_max: int = 4,
                       fit_intercept: bool = False, sparse_direction: bool = False,
                       dtype: str = "float64", tied: bool = False) -> "DeepIRLSADMMNet":
        """The untrained net equal to :func:`~unrolled.classification.solvers.irls_admm` with ``max_iter=k_max``,
        ``inner_max_iter=i_max``, ``tol=inner_tol=0``, ``rho`` fixed, ``line_search=False``,
        ``warm_start=False`` and the same ``w``, ``fit_intercept`` and ``sparse_direction``.

        ``w`` (a positive number or ``(n_features,)`` tensor) initialises every ``F_{k,i}``,
        ``rho`` every ``rho_{k,i}``; ``t_k = 1``.
        """
        net = cls(n_features, k_max, i_max, fit_intercept, sparse_direction, dtype, tied)
        dt = dtype_from_name(dtype)
        wv = torch.as_tensor(w, dtype=dt)
        if wv.dim() == 0:
            wv = wv.expand(n_features).clone()
        if tuple(wv.shape) != (n_features,) or not bool((wv > 0).all()) or not bool(torch.isfinite(wv).all()):
            raise ValueError(f"w must be a positive number or {n_features} positive finite weights")
        rv = torch.tensor(check_positive("rho", rho), dtype=dt)
        if tied:
            wv, rv = wv.expand(i_max, n_features).clone(), rv.expand(i_max).clone()
        return net.set_algorithm_values(F=wv, rho=rv)

    def _inner(self, name: str, k: int) -> list[Tensor]:
        """Values of parameter ``name`` (``'rho'`` or ``'F'``) at the inner layers of outer layer ``k``."""
        p = getattr(self, name)
        if self.tied:
            return list(p[k].unbind(0))
        return [p[k * self.i_max + i] for i in range(self.i_max)]

    def weights(self, j: int) -> Tensor:
        """``F_j`` of inner layer ``j = k * i_max + i`` on all coordinates (0 on the intercept), ``(P,)``."""
        k, i = divmod(j, self.i_max)
        F = self.F[k][i] if self.tied else self.F[j]
        if self.fit_intercept:
            F = torch.cat([F, F.new_zeros(1)])
        return F

    def layer_values(self, k: int) -> dict:
        """Outer layer ``k``'s values for the step: ``t_k`` and the lists ``rho_{k,i}``, ``F_{k,i}`` over ``i``."""
        return {"rho": self._inner("rho", k), "F": self._inner("F", k), "t": self.t[k]}

    def prepare(self, inputs) -> tuple[dict, bool]:
        """Validate ``inputs = (X, y)`` and fold the labels into the design (``Xt``, see ``prepare_problem``)."""
        if not (isinstance(inputs, (tuple, list)) and len(inputs) == 2):
            raise ValueError("inputs must be a pair (X, y)")
        X, y = inputs
        try:
            if not isinstance(X, Tensor) or X.dim() not in (2, 3) or X.shape[-1] != self.n_features:
                shape = tuple(X.shape) if isinstance(X, Tensor) else type(X).__name__
                raise ValueError(f"X must be (B, N, {self.n_features}) or (N, {self.n_features}) ({self.n_features} "
                                 f"features), got {shape}")
            if X.is_floating_point() and X.dtype != self.dtype:
                raise ValueError(f"X has dtype {X.dtype} but the network is {self.dtype}; convert one of them")
            if X.dim() == 3 and X.shape[0] == 0:
                raise ValueError("X is an empty batch (0 data sets)")
            if X.shape[-2] == 0:
                raise ValueError("X has no samples (0 rows)")
            Xt, _, single = prepare_problem(X, y, 0.0, self.fit_intercept)
        except ValueError as e:
            raise ValueError(f"inputs (X, y): {e}") from None
        if Xt.device != self.penalty_mask.device:
            raise ValueError(f"inputs (X, y): X is on {Xt.device} but the network is on {self.penalty_mask.device}")
        return {"Xt": Xt}, single

    def forward(self, inputs: tuple[Tensor, Tensor], return_layers: bool = False) -> Tensor | list[Tensor]:
        """Run the network on labelled data (the generic loop of :class:`~unrolled.core.unrolled_net.UnrolledNet`).

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
        return super().forward(inputs, return_layers)

    def restricted(self, features) -> "DeepIRLSADMMNet":
        """A copy of the net on a subset of the features (their ``F`` entries; ``rho``, ``t`` shared values).

        Used to build the predictive model on the features a trained net selected (Sec. IV-A).
        """
        idx = torch.as_tensor(features, dtype=torch.long).reshape(-1)
        if idx.numel() == 0 or int(idx.min()) < 0 or int(idx.max()) >= self.n_features:
            raise ValueError(f"features must be a non-empty subset of range({self.n_features})")
        sub = DeepIRLSADMMNet(int(idx.numel()), self.k_max, self.i_max, self.fit_intercept, self.sparse_direction,
                              dtype_name(self.dtype), self.tied).to(self.penalty_mask.device)
        idx = idx.to(self.penalty_mask.device)
        with torch.no_grad():
            if self.tied:
                sub.set_algorithm_values(F=self.F[0][:, idx], rho=self.rho[0], t=self.t[0])
            else:
                sub.set_algorithm_values(F=[F[idx] for F in self.F.values()], rho=self.rho.values(),
                                         t=self.t.values())
        return sub

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        if not 0 <= k < self.k_max:
            raise IndexError(f"layer {k} out of range for {self.k_max} outer layers")
        params = list(self.t.layer_parameters(k))
        if self.tied:
            return params + self.rho.layer_parameters(k) + self.F.layer_parameters(k)
        for i in range(self.i_max):
            j = k * self.i_max + i
            params += self.rho.layer_parameters(j) + self.F.layer_parameters(j)
        return params

    def config(self) -> dict:
        return {"n_features": self.n_features, "k_max": self.k_max, "i_max": self.i_max,
                "fit_intercept": self.fit_intercept, "sparse_direction": self.sparse_direction,
                "dtype": dtype_name(self.dtype), "tied": self.tied}
