"""Training a network's weights with an extended Kalman filter (EKF).

The review's box "Neural Network Training Using Extended Kalman Filter"
(eqs. (27)-(30), Fig. 14) and Sec. IV-B: the weights ``w`` are the state of the
state-space model

.. math::
    w_{k+1} = w_k + \\omega_k, \\qquad y_k = h_k(x_k; w_k) + \\nu_k,       \\qquad (27), (28)

with process noise covariance ``Q_k`` and measurement noise covariance ``R_k``;
the network is linearised around the current estimate (29), whose Jacobian
``H_k`` (the derivative of the outputs with respect to the weights) is obtained
by back-propagation, and the Kalman recursion (30) updates the weights and the
approximate error covariance ``P_k``.

A *measurement* is one mini-batch: the ``M = B * m`` entries of the outputs of
``B`` samples with ``m`` outputs each are observed together (the multi-stream
form of Feldkamp and Puskorius); ``B = 1`` is the sequential filter of the box.
For a model linear in its weights and ``Q = 0`` the filter is recursive least
squares, and the order and grouping of the samples do not matter.

Memory and time
---------------
With ``N_b`` weights in covariance block ``b`` (``decoupling``), ``N = sum N_b``
and ``M`` measurements per step, the optimiser stores ``sum_b N_b^2`` covariance
entries; one step holds the ``M x N`` Jacobian and an ``M x M`` innovation
covariance and costs ``O(M * sum_b N_b^2 + M^3)`` operations plus ``M``
vectorised backward passes. The global filter (one block) costs ``N^2``
entries, e.g. 5.8 M (46 MB in float64) for a 2,410-weight MLP; the decoupled
filter of [65] (one block per parameter tensor or per parameter group) keeps
memory at ``sum_b N_b^2``. ``max_block`` refuses blocks that would not fit.
"""

from __future__ import annotations

import math
import numbers
from typing import Iterable

import torch
from torch import Tensor

__all__ = ["EKF", "DECOUPLINGS", "output_jacobian", "flatten_outputs"]

#: Covariance structure: one block over every weight; one per parameter group; one per parameter tensor.
DECOUPLINGS = ("global", "group", "parameter")


def _check_number(name: str, value, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def flatten_outputs(outputs, name: str = "outputs") -> Tensor:
    """Concatenate a tensor, or a tuple of tensors, into one vector (row-major, part after part)."""
    parts = (outputs,) if isinstance(outputs, Tensor) else outputs
    if not isinstance(parts, (tuple, list)) or not parts or not all(isinstance(t, Tensor) for t in parts):
        raise ValueError(f"{name} must be a tensor or a non-empty tuple of tensors, got {type(outputs).__name__}")
    return torch.cat([t.reshape(-1) for t in parts])


def output_jacobian(outputs: Tensor, params: list[Tensor]) -> list[Tensor]:
    """Jacobian of every output entry with respect to every parameter, by back-propagation.

    Parameters
    ----------
    outputs : Tensor
        ``(M,)`` outputs, still attached to the graph that produced them.
    params : list of Tensor
        The parameters; those that do not require a gradient, or that the
        outputs do not depend on, get a zero Jacobian.

    Returns
    -------
    list of Tensor
        One ``(M, *p.shape)`` tensor per parameter: row ``j`` is
        :math:`\\partial\\,\\text{outputs}_j / \\partial p`, i.e. the rows of
        :math:`H_k^\\top` in (29).

    Notes
    -----
    The ``M`` backward passes run vectorised (``is_grads_batched``, i.e.
    ``torch.func.vmap`` over the backward pass); for an operation vmap does not
    support they fall back to a loop of ``M`` backward passes.
    """
    M = outputs.numel()
    live = [i for i, p in enumerate(params) if p.requires_grad]
    jac = [torch.zeros((M, *p.shape), dtype=p.dtype, device=p.device) for p in params]
    if not live or outputs.grad_fn is None:
        return jac
    targets = [params[i] for i in live]
    eye = torch.eye(M, dtype=outputs.dtype, device=outputs.device)
    try:
        grads = torch.autograd.grad(outputs, targets, grad_outputs=eye, is_grads_batched=True,
                                    retain_graph=True, allow_unused=True)
    except RuntimeError:  # an operation without a batching rule
        rows = [torch.autograd.grad(outputs, targets, grad_outputs=eye[j], retain_graph=True, allow_unused=True)
                for j in range(M)]
        grads = tuple(None if rows[0][i] is None else torch.stack([r[i] for r in rows]) for i in range(len(targets)))
    for i, g in zip(live, grads):
        if g is not None:
            jac[i] = g
    return jac


class EKF(torch.optim.Optimizer):
    r"""Extended-Kalman-filter training of a network's weights (review, eqs. (27)-(30); [65]-[67]).

    Unlike gradient optimisers, a step needs the network's *outputs* (attached
    to the autograd graph) and the *targets*, not a scalar loss:
    ``optimizer.step(outputs, targets)``. The filter fits the outputs to the
    targets in least squares (the MSE loss of the box), whatever loss the
    caller monitors.

    .. math::
        \begin{aligned}
        &\textbf{input}: \hat w_0,\ \text{blocks } b = 1..G \text{ of weights},\ R > 0,\
            P_{0,b} = p_0 I \succ 0,\ Q_b = q I \succeq 0,\ \text{learning rates } \lambda_b > 0\\
        &\textbf{for } k = 0, 1, \dots \textbf{ do}\\
        &\quad \hat y_k = h_k(x_k; \hat w_k),\quad e_k = y_k - \hat y_k
            &&\text{innovation, } M \text{ entries}\\
        &\quad H_{k,b} = \sqrt{\lambda_b}\ \partial \hat y_k / \partial w_b\big|_{\hat w_k}
            &&(29),\ N_b \times M\\
        &\quad A_k = \big(R\, I_M + \textstyle\sum_b H_{k,b}^\top P_{k,b} H_{k,b}\big)^{-1}\\
        &\quad K_{k,b} = P_{k,b} H_{k,b} A_k &&\text{Kalman gain (30)}\\
        &\quad \hat w_{k+1,b} = \hat w_{k,b} + \sqrt{\lambda_b}\, K_{k,b}\, e_k &&(30)\\
        &\quad P_{k+1,b} = \operatorname{sym}\big(P_{k,b} - K_{k,b} H_{k,b}^\top P_{k,b}\big) + Q_b
            &&(30),\ \operatorname{sym}(X) = (X + X^\top)/2\\
        &\textbf{return } \hat w
        \end{aligned}

    With a single block (``decoupling='global'``) and one learning rate
    :math:`\lambda` this is exactly (30) with :math:`R_k = (R / \lambda) I`:
    the learning rate divides the measurement noise, the role [66] gives to
    the scaling of :math:`R_k`. With several blocks it is the decoupled EKF of
    [65] (block-diagonal :math:`P_k`, one shared :math:`A_k`); unequal
    learning rates :math:`\lambda_b` amount to the filter whose covariance
    blocks are :math:`\lambda_b P_{k,b}` (they scale the prior and process
    noise of block :math:`b`), which is how a per-group ``lr`` (e.g. the
    Trainer's ``lr_scale``) acts. When the innovation covariance dominates
    (:math:`R \gg H^\top P H`) a step is a gradient step of the squared error
    with step size :math:`\lambda_b P_b / R`.

    Parameters
    ----------
    params : iterable of Tensor or of dict
        Parameters, or parameter groups (dicts with ``params`` and optionally
        ``lr``, ``P0``, ``Q``).
    lr : float, default 1
        Learning rate :math:`\lambda > 0` (``R_k = R / lr``).
    R : float, default 1
        Measurement noise variance per output entry (``> 0``).
    Q : float, default 0
        Process noise variance per weight and step (``>= 0``), eq. (27); a
        small ``Q`` keeps ``P`` from collapsing to zero (learning stopping) and
        helps leave poor local minima [65].
    P0 : float, default 1
        Initial error covariance ``P_0 = P0 * I`` (``> 0``).
    decoupling : {'global', 'group', 'parameter'}, default 'group'
        One covariance block over every weight, one per parameter group (pass
        one group per layer for layer-wise decoupling), or one per parameter
        tensor.
    max_block : int, default 16384
        Largest number of weights one covariance block may hold (its ``P``
        has ``max_block**2`` entries); larger blocks raise ``ValueError``.

    Notes
    -----
    ``P`` is kept in the parameters' dtype and device, symmetrised after
    every update and stored in :attr:`state` under the block's first
    parameter (so ``state_dict`` / ``load_state_dict`` resume exactly). In
    exact arithmetic ``P`` stays positive definite since ``R > 0``; in float32
    a small ``Q > 0`` guards against round-off.

    Examples
    --------
    >>> model = torch.nn.Linear(3, 1)
    >>> opt = EKF(model.parameters(), lr=1.0, P0=10.0, Q=1e-6)
    >>> x, y = torch.randn(8, 3), torch.randn(8, 1)
    >>> err = opt.step(model(x), y)  # mean squared innovation before the update
    """

    def __init__(self, params: Iterable, lr: float = 1.0, *, R: float = 1.0, Q: float = 0.0, P0: float = 1.0,
                 decoupling: str = "group", max_block: int = 16384):
        _check_number("lr", lr, positive=True)
        _check_number("Q", Q, positive=False)
        _check_number("P0", P0, positive=True)
        self.R = _check_number("R", R, positive=True)
        if decoupling not in DECOUPLINGS:
            raise ValueError(f"decoupling must be one of {DECOUPLINGS}, got {decoupling!r}")
        if isinstance(max_block, bool) or not isinstance(max_block, numbers.Integral) or max_block < 1:
            raise ValueError(f"max_block must be an int >= 1, got {max_block!r}")
        self.decoupling, self.max_block = decoupling, int(max_block)
        super().__init__(params, {"lr": float(lr), "Q": float(Q), "P0": float(P0)})
        self.blocks()  # validates the block sizes now

    def add_param_group(self, param_group: dict) -> None:
        for key in ("lr", "P0"):
            if key in param_group:
                _check_number(f"{key} (parameter group)", param_group[key], positive=True)
        if "Q" in param_group:
            _check_number("Q (parameter group)", param_group["Q"], positive=False)
        super().add_param_group(param_group)
        for p in param_group["params"]:
            if not p.is_floating_point():
                raise ValueError(f"params must be floating-point tensors, got {p.dtype}")

    # ------------------------------------------------------------------ structure
    def blocks(self) -> list[list[tuple[dict, Tensor]]]:
        """The covariance blocks: each a list of ``(group, parameter)`` pairs, in parameter order."""
        pairs = [[(g, p) for p in g["params"]] for g in self.param_groups]
        if self.decoupling == "global":
            blocks = [[pair for group in pairs for pair in group]]
        elif self.decoupling == "group":
            blocks = [group for group in pairs if group]
        else:
            blocks = [[pair] for group in pairs for pair in group]
        for b in blocks:
            n = sum(p.numel() for _, p in b)
            if n > self.max_block:
                raise ValueError(f"a covariance block of {n} weights exceeds max_block={self.max_block} "
                                 f"({n}^2 entries); use decoupling='parameter' or smaller parameter groups, "
                                 f"or raise max_block")
        return blocks

    def covariance_numel(self) -> int:
        """Entries of the block-diagonal covariance ``P`` (``sum_b N_b^2``): the optimiser's memory."""
        return sum(sum(p.numel() for _, p in b) ** 2 for b in self.blocks())

    def covariances(self) -> list[Tensor]:
        """The current covariance blocks ``P_b`` (``(N_b, N_b)``, in :meth:`blocks` order); initialised if needed."""
        return [self._covariance(b) for b in self.blocks()]

    def _covariance(self, block: list[tuple[dict, Tensor]]) -> Tensor:
        state = self.state[block[0][1]]
        if "P" not in state:
            p0 = torch.cat([torch.full((p.numel(),), g["P0"], dtype=p.dtype, device=p.device) for g, p in block])
            state["P"] = torch.diag(p0)
            state["step"] = torch.zeros((), dtype=torch.float64)
        return state["P"]

    # ----------------------------------------------------------------------- step
    def step(self, outputs, targets) -> Tensor:  # type: ignore[override]
        """One filter update (30) from a mini-batch.

        Parameters
        ----------
        outputs : Tensor or tuple of Tensor
            The network's outputs ``h_k(x_k; w_k)`` for the batch, attached to
            the autograd graph (computed with gradients enabled).
        targets : Tensor or tuple of Tensor
            The observed ``y_k``, of the same shapes.

        Returns
        -------
        Tensor
            The mean squared innovation ``mean(e_k^2)`` before the update.
        """
        with torch.enable_grad():
            out = flatten_outputs(outputs, "outputs")
        tgt = flatten_outputs(targets, "targets").detach().to(dtype=out.dtype, device=out.device)
        shapes = [tuple(t.shape) for t in ((outputs,) if isinstance(outputs, Tensor) else outputs)]
        tshapes = [tuple(t.shape) for t in ((targets,) if isinstance(targets, Tensor) else targets)]
        if shapes != tshapes:
            raise ValueError(f"targets must have the shapes of outputs {shapes}, got {tshapes}")
        if out.grad_fn is None:
            raise ValueError("outputs must be attached to the autograd graph (computed with gradients enabled "
                             "from the optimised parameters)")
        blocks = self.blocks()
        with torch.enable_grad():
            jac = output_jacobian(out, [p for b in blocks for _, p in b])
        with torch.no_grad():
            return self._update(blocks, jac, (tgt - out.detach()).unsqueeze(1))

    def _update(self, blocks: list[list[tuple[dict, Tensor]]], jac: list[Tensor], e: Tensor) -> Tensor:
        """The recursion (30) given the Jacobian rows ``jac`` and the innovation ``e`` ``(M, 1)``."""
        dtype, device = e.dtype, e.device
        M = e.shape[0]
        covs, gains, scales, i = [], [], [], 0
        S = torch.eye(M, dtype=dtype, device=device) * self.R
        for b in blocks:
            Hb = torch.cat([jac[i + j].reshape(M, -1) for j in range(len(b))], dim=1)  # H_b^T, (M, N_b)
            i += len(b)
            sqrt_lr = torch.cat([torch.full((p.numel(),), math.sqrt(g["lr"]), dtype=p.dtype, device=p.device)
                                 for g, p in b])
            Hb = Hb * sqrt_lr
            P = self._covariance(b)
            G = P @ Hb.T  # P_b H_b, (N_b, M)
            S = S + Hb @ G
            covs.append(P)
            gains.append(G)
            scales.append(sqrt_lr)
        S = 0.5 * (S + S.T)
        L, info = torch.linalg.cholesky_ex(S)
        if int(info) != 0:
            raise RuntimeError("the innovation covariance R I + H^T P H is not positive definite (non-finite "
                               "Jacobian or covariance); lower lr or P0, or raise R or Q")
        v = torch.cholesky_solve(e, L)  # A_k e_k
        for b, P, G, sqrt_lr in zip(blocks, covs, gains, scales):
            dw = (G @ v).squeeze(1) * sqrt_lr  # sqrt(lr) K_b e
            offset = 0
            for _, p in b:
                n = p.numel()
                p.add_(dw[offset:offset + n].view_as(p))
                offset += n
            P_new = P - G @ torch.cholesky_solve(G.T, L)  # P - K H^T P
            P_new = 0.5 * (P_new + P_new.T)
            q = torch.cat([torch.full((p.numel(),), g["Q"], dtype=p.dtype, device=p.device) for g, p in b])
            P_new.diagonal().add_(q)
            state = self.state[b[0][1]]
            state["P"] = P_new
            state["step"] += 1
        return e.pow(2).mean()
