"""The learned gated recurrent nets of He et al. (2017), Sec. 3, and the MaxSparseNet baseline.

:class:`GatedFeedbackNet` stacks two gated recurrent layers (LSTM or GRU cells) run for ``n_steps`` time
steps with the observation ``y`` as the constant input of every step and weights shared across steps.
With ``gated_feedback=True`` the layers talk through the global reset gates of the gated-feedback RNN
(Chung et al. 2015): the recurrent contribution to layer ``j``'s candidate is
``sum_i g^{i->j} U^{i->j} h_i^{t-1}`` with scalar gates ``g^{i->j} = sigmoid(w^{i->j} . x_j^t +
u^{i->j} . [h_1^{t-1}; h_2^{t-1}])`` (``x_j^t`` is layer ``j``'s input: ``y`` or ``h_1^t``). Without it,
the net is a plain stacked LSTM/GRU. The final hidden states of both layers feed one linear layer with
``m`` outputs, the atom scores, trained with the multi-label support loss
(:func:`~unrolled.sbl.metrics.support_loss`).

With ``model_feedback=True`` (this library's addition, not in the paper) every time step also reads an SBL
E-step computed with the known dictionary: the net's current scores ``s_t`` (the read-out of its hidden
states) set the prior variances ``gamma_t = c * softmax(s_t)``, and the posterior quantities at ``gamma_t``
(eq. 4 with the learned noise variance ``lam``, for ``y`` scaled to unit norm) join ``y`` as the first
layer's input: the posterior mean and the residual ``y - Phi mean`` as a direction and a log-norm. The paper
(Sec. 2.4) reads the LSTM's hidden cell update as an analogue of SBL's E-step; here that E-step is computed
exactly from the model, and the recurrent layers learn the rest. ``c`` and ``lam`` are learned through their
logarithms, so they stay positive. :meth:`with_model_feedback` turns a trained net into one with zero weights
on the new inputs, which computes the same scores.

Complex data (DOA): the input is ``[Re y, Im y]`` (real/imag stacking, ``n_in = 2n``); the scores stay
real (one per grid angle). Inputs are divided by their per-sample norm (the support does not depend on
the scale of ``y``) and then go through a fixed affine map, the identity unless
:meth:`set_input_whitening` fits a PCA whitening on training samples (saved with the weights).

These nets generalise SBL's structure (Sec. 2.4) rather than reproduce its iterations, so they have no
``from_algorithm``; :class:`~unrolled.sbl.nets.SBLNet` is the exact unrolling.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from unrolled.core.io import register_model
from unrolled.core.unrolled_net import UnrolledNet, dtype_from_name, dtype_name
from unrolled.core.validation import check_int
from unrolled.sbl.solvers import check_dictionary, sigma_y

__all__ = ["GatedFeedbackNet", "MaxSparseNet", "hidden_size", "net_input"]

CELLS = ("lstm", "gru")


def hidden_size(cell: str, size: str, base: int = 128) -> int:
    """Hidden units per layer for ``size`` 'small' / 'large' (4x the parameters: 2x the units).

    GRU layers get ``sqrt(4/3)`` more units than LSTM ones, so the two cells have about the same number
    of parameters at each size (as in the paper's ablation, Sec. 4.1).
    """
    if cell not in CELLS or size not in ("small", "large"):
        raise ValueError(f"cell must be in {CELLS} and size 'small' or 'large', got {cell!r}, {size!r}")
    h = base * (2 if size == "large" else 1)
    return int(round(h * math.sqrt(4.0 / 3.0))) if cell == "gru" else h


def net_input(y: Tensor, n: int) -> Tensor:
    """Real network input from ``y`` ``(B, n)``: ``[Re y, Im y]`` for complex data, normalised per sample."""
    if not isinstance(y, Tensor) or y.dim() != 2 or y.shape[-1] != n:
        raise ValueError(f"y must be a (B, {n}) tensor, got {getattr(y, 'shape', type(y))}")
    if not torch.isfinite(torch.view_as_real(y) if y.is_complex() else y).all():
        raise ValueError("y contains NaN or inf")
    z = torch.cat([y.real, y.imag], dim=-1) if y.is_complex() else y
    return z / torch.linalg.vector_norm(z, dim=-1, keepdim=True).clamp_min(1e-12)


class _WhitenedInput(nn.Module):
    """Holds a fixed affine input map ``z -> (z - shift) @ mat`` (identity until :meth:`set_input_whitening`)."""

    def _init_whitening(self, n_in: int) -> None:
        self.register_buffer("in_shift", torch.zeros(n_in))
        self.register_buffer("in_mat", torch.eye(n_in))

    @torch.no_grad()
    def set_input_whitening(self, y: Tensor, eps: float = 1e-6) -> None:
        """PCA-whiten the (normalised) inputs with the mean and covariance of the sample ``y`` ``(N, n)``.

        Ordinary input standardisation, estimated from training samples: the correlated dictionary of
        Sec. 4.1 puts most of the information in directions of ``y`` whose variance is ~1e-4 of the
        largest, which plain SGD reaches only slowly.
        """
        z = net_input(y, self.n).to(torch.float64)
        mean = z.mean(0)
        cov = torch.cov((z - mean).T)
        evals, evecs = torch.linalg.eigh(cov)
        mat = evecs @ torch.diag((evals.clamp_min(0) + eps * evals.max()).rsqrt()) @ evecs.T
        self.in_shift.copy_(mean.to(self.in_shift.dtype))
        self.in_mat.copy_(mat.to(self.in_mat.dtype))

    def _input(self, y: Tensor) -> Tensor:
        z = net_input(y, self.n).to(self.in_mat.dtype)
        return (z - self.in_shift) @ self.in_mat


class _GatedLayer(nn.Module):
    """One LSTM or GRU layer whose candidate may receive gated feedback from all layers."""

    def __init__(self, cell: str, n_in: int, hidden: int, n_layers: int, gated_feedback: bool):
        super().__init__()
        self.cell, self.hidden, self.gated_feedback = cell, hidden, gated_feedback
        n_gates = 3 if cell == "lstm" else 2  # (i, f, o) or (z, r)
        self.gates_in = nn.Linear(n_in, n_gates * hidden)
        self.gates_rec = nn.Linear(hidden, n_gates * hidden, bias=False)
        self.cand_in = nn.Linear(n_in, hidden)
        n_src = n_layers if gated_feedback else 1
        self.cand_rec = nn.ModuleList([nn.Linear(hidden, hidden, bias=False) for _ in range(n_src)])
        if gated_feedback:  # global reset gates g^{i->j}, one scalar per source layer i
            self.fb_in = nn.Linear(n_in, n_layers)
            self.fb_rec = nn.Linear(n_layers * hidden, n_layers, bias=False)

    def forward(self, x: Tensor, h_all: list[Tensor], j: int, c: Tensor | None):
        h = h_all[j]
        gates = torch.sigmoid(self.gates_in(x) + self.gates_rec(h))
        if self.gated_feedback:
            g = torch.sigmoid(self.fb_in(x) + self.fb_rec(torch.cat(h_all, dim=-1)))  # (B, n_layers)
            rec = sum(g[:, i : i + 1] * self.cand_rec[i](h_i) for i, h_i in enumerate(h_all))
        else:
            rec = self.cand_rec[0](h)
        if self.cell == "lstm":
            i_g, f_g, o_g = gates.chunk(3, dim=-1)
            c_new = f_g * c + i_g * torch.tanh(self.cand_in(x) + rec)
            return o_g * torch.tanh(c_new), c_new
        z_g, r_g = gates.chunk(2, dim=-1)
        cand = torch.tanh(self.cand_in(x) + r_g * rec)
        return (1 - z_g) * h + z_g * cand, None


@register_model
class GatedFeedbackNet(UnrolledNet, _WhitenedInput):
    """GF-LSTM / GF-GRU (or plain stacked LSTM/GRU) mapping ``y`` to ``m`` atom scores.

    Parameters
    ----------
    n : int
        Length of ``y`` (complex ``y`` is stacked to ``2n`` real inputs when ``complex_input``).
    m : int
        Atoms (outputs).
    hidden : int
        Units per recurrent layer.
    n_steps : int
        Time steps (the unrolled "iterations"; weights are shared across them).
    cell : {'lstm', 'gru'}
    gated_feedback : bool
        Gated feedback between the layers (GF-RNN) or a plain stacked RNN.
    complex_input : bool
        ``y`` is complex (DOA).
    n_rnn_layers : int
        Stacked recurrent layers (the paper: 2).
    dtype : {'float32', 'float64'}
    model_feedback : bool
        Feed an SBL E-step at the net's current scores into every time step (see the module docstring);
        the dictionary is set with :meth:`set_dictionary` (saved with the weights). Real data only.
    """

    def __init__(self, n: int, m: int, hidden: int = 128, n_steps: int = 10, cell: str = "lstm",
                 gated_feedback: bool = True, complex_input: bool = False, n_rnn_layers: int = 2,
                 dtype: str = "float32", model_feedback: bool = False):
        super().__init__(n_steps)
        for name, v in (("n", n), ("m", m), ("hidden", hidden), ("n_rnn_layers", n_rnn_layers)):
            check_int(name, v, minimum=1)
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
        self.n, self.m, self.hidden, self.cell = n, m, hidden, cell
        self.gated_feedback, self.complex_input, self.n_rnn_layers = bool(gated_feedback), bool(complex_input), n_rnn_layers
        self.model_feedback = bool(model_feedback)
        if self.model_feedback and self.complex_input:
            raise ValueError("model_feedback supports real data only (complex_input=False)")
        n_in = 2 * n if complex_input else n
        dt = dtype_from_name(dtype)
        n_first = n_in + (self.n_feedback if self.model_feedback else 0)
        self.layers = nn.ModuleList([
            _GatedLayer(cell, n_first if j == 0 else hidden, hidden, n_rnn_layers, self.gated_feedback)
            for j in range(n_rnn_layers)
        ])
        self.readout = nn.Linear(n_rnn_layers * hidden, m)
        self._init_whitening(n_in)
        if self.model_feedback:
            # the E-step's dictionary (zero until set_dictionary) and its positive scales, as logarithms
            self.register_buffer("mf_Phi", torch.zeros(n, m))
            self.mf_log_scale = nn.Parameter(torch.zeros(()))              # c = sum of gamma_t: 1
            self.mf_log_lam = nn.Parameter(torch.tensor(math.log(1e-3)))  # lam, relative to ||y|| = 1
        self.to(dt)

    @property
    def n_feedback(self) -> int:
        """Inputs the E-step adds to the first layer: posterior mean (m), residual direction (n), log-norm (1)."""
        return self.m + self.n + 1

    @torch.no_grad()
    def set_dictionary(self, Phi: Tensor) -> None:
        """Set the ``(n, m)`` real dictionary of the model-feedback E-step (checked: finite, no zero column)."""
        if not self.model_feedback:
            raise ValueError("set_dictionary: this net has model_feedback=False")
        if not isinstance(Phi, Tensor) or Phi.shape != (self.n, self.m) or Phi.is_complex():
            raise ValueError(f"Phi must be a real ({self.n}, {self.m}) tensor, got {getattr(Phi, 'shape', type(Phi))}")
        check_dictionary(Phi)
        self.mf_Phi.copy_(Phi.to(self.mf_Phi.dtype))

    def _e_step(self, y_unit: Tensor, s: Tensor) -> Tensor:
        """``(B, n_feedback)`` E-step features at ``gamma = c softmax(s)`` for unit-norm ``y_unit`` (float64 inside).

        Posterior mean ``Gamma Phi^T Sigma_y^{-1} y`` with ``Sigma_y = lam I + Phi Gamma Phi^T`` (eq. 4), and the
        residual ``y - Phi mean = lam Sigma_y^{-1} y`` as a unit direction and its log10-norm.
        """
        Phi = self.mf_Phi.to(torch.float64)
        gamma = torch.exp(self.mf_log_scale.to(torch.float64)) * torch.softmax(s.to(torch.float64), dim=-1)
        lam = torch.exp(self.mf_log_lam.to(torch.float64)) + 1e-9
        v = torch.linalg.solve(sigma_y(Phi, gamma, lam), y_unit)  # Sigma_y^{-1} y
        resid = lam * v
        r_norm = torch.linalg.vector_norm(resid, dim=-1, keepdim=True).clamp_min(1e-30)
        feats = torch.cat([gamma * (v @ Phi), resid / r_norm, torch.log10(r_norm)], dim=-1)
        return feats.to(s.dtype)

    def forward(self, y: Tensor) -> Tensor:
        """``(B, m)`` atom scores (logits) for ``y`` ``(B, n)`` (real, or complex with ``complex_input``)."""
        if y.is_complex() != self.complex_input:
            raise ValueError(f"this net takes {'complex' if self.complex_input else 'real'} y, got dtype {y.dtype}")
        single = y.dim() == 1
        yb = y.unsqueeze(0) if single else y
        z = self._input(yb)
        B = z.shape[0]
        h = [z.new_zeros(B, self.hidden) for _ in self.layers]
        c = [z.new_zeros(B, self.hidden) if self.cell == "lstm" else None for _ in self.layers]
        if self.model_feedback:
            # reading the buffer is a data-dependent check: eager calls only (as in pairwise_support_loss)
            if not torch.compiler.is_compiling() and not bool(self.mf_Phi.any()):
                raise RuntimeError("model_feedback net has no dictionary: call set_dictionary(Phi) first")
            y64 = yb.to(torch.float64)
            y_unit = y64 / torch.linalg.vector_norm(y64, dim=-1, keepdim=True).clamp_min(1e-30)
        for _ in range(self.active_layers):
            h_prev = list(h)
            inp = z
            if self.model_feedback:
                inp = torch.cat([z, self._e_step(y_unit, self.readout(torch.cat(h, dim=-1)))], dim=-1)
            for j, layer in enumerate(self.layers):
                h[j], c[j] = layer(inp, h_prev, j, c[j])
                inp = h[j]
        out = self.readout(torch.cat(h, dim=-1))
        return out[0] if single else out

    @torch.no_grad()
    def with_model_feedback(self, Phi: Tensor) -> "GatedFeedbackNet":
        """A copy with ``model_feedback=True`` and dictionary ``Phi`` that computes the same scores (up to rounding).

        The first layer's weights on the new E-step inputs start at zero (every other weight is copied),
        so training begins from this net's function and learns how much to use the model.
        """
        if self.model_feedback:
            raise ValueError("this net already has model_feedback=True")
        new = GatedFeedbackNet(**{**self.config(), "model_feedback": True})
        state = dict(self.state_dict())
        first = new.layers[0]
        for name in ("gates_in", "cand_in", "fb_in"):
            key = f"layers.0.{name}.weight"
            if key in state:
                w = getattr(first, name).weight
                state[key] = torch.cat([state[key], w.new_zeros(w.shape[0], new.n_feedback)], dim=1)
        state.update({k: v for k, v in new.state_dict().items() if k.startswith("mf_")})
        new.load_state_dict(state)
        new.set_dictionary(Phi)
        return new

    @torch.no_grad()
    def widened(self, hidden: int, *, noise: float = 0.0, generator: torch.Generator | None = None) -> "GatedFeedbackNet":
        """A copy with ``hidden`` units per recurrent layer that computes the same scores (Net2WiderNet).

        Every new unit copies the incoming weights of an existing unit of its layer (the first ``self.hidden``
        keep their own; the others pick units at random), so it carries the same gate, cell and hidden
        trajectories as its original; every weight reading a hidden state is divided among the copies of its
        unit, so each consumer (gates, candidates, feedback gates, the next layer, the read-out) gets the same
        sum. The copies then get identical gradients, so ``noise > 0`` adds ``N(0, (noise * std)^2)`` to the
        copied incoming weights (``std`` of each weight matrix) to let them drift apart; with ``noise = 0`` the
        scores are unchanged up to rounding.
        """
        check_int("hidden", hidden, minimum=self.hidden)
        old_h = self.hidden
        wide = GatedFeedbackNet(**{**self.config(), "hidden": hidden})
        wide.in_shift.copy_(self.in_shift)
        wide.in_mat.copy_(self.in_mat)
        if self.model_feedback:
            wide.mf_Phi.copy_(self.mf_Phi)
            wide.mf_log_scale.copy_(self.mf_log_scale)
            wide.mf_log_lam.copy_(self.mf_log_lam)
        extra = torch.randint(old_h, (len(self.layers), hidden - old_h), generator=generator)
        src = [torch.cat([torch.arange(old_h), extra[j]]) for j in range(len(self.layers))]  # new unit -> old unit
        share = [1.0 / torch.bincount(s, minlength=old_h)[s].to(self.readout.weight.dtype) for s in src]

        def rows(w, j, blocks):  # duplicate the output units of layer j (in each gate block)
            idx = torch.cat([b * old_h + src[j] for b in range(blocks)])
            return w[idx]

        def cols(w, layers):  # split the columns that read the hidden states of ``layers`` (concatenated)
            return torch.cat([w[:, k * old_h + src[j]] * share[j] for k, j in enumerate(layers)], dim=1)

        def jitter(w, fresh):
            if noise > 0:
                scale = noise * float(w.std()) if w.numel() > 1 else noise
                w = w + scale * torch.randn(w.shape, generator=generator, dtype=w.dtype) * fresh
            return w

        n_layers = len(self.layers)
        for j, (old, new) in enumerate(zip(self.layers, wide.layers)):
            blocks = 3 if self.cell == "lstm" else 2
            fresh_g = (torch.cat([torch.arange(hidden) >= old_h] * blocks)).to(new.gates_in.weight.dtype)[:, None]
            fresh_c = (torch.arange(hidden) >= old_h).to(new.gates_in.weight.dtype)[:, None]
            w_in = rows(old.gates_in.weight, j, blocks)
            new.gates_in.weight.copy_(jitter(w_in if j == 0 else cols(w_in, [j - 1]), fresh_g))
            new.gates_in.bias.copy_(rows(old.gates_in.bias, j, blocks))
            new.gates_rec.weight.copy_(jitter(cols(rows(old.gates_rec.weight, j, blocks), [j]), fresh_g))
            w_in = rows(old.cand_in.weight, j, 1)
            new.cand_in.weight.copy_(jitter(w_in if j == 0 else cols(w_in, [j - 1]), fresh_c))
            new.cand_in.bias.copy_(rows(old.cand_in.bias, j, 1))
            for i, (lin_old, lin_new) in enumerate(zip(old.cand_rec, new.cand_rec)):
                source = i if self.gated_feedback else j  # gated feedback: layer i -> j; plain: j -> j
                lin_new.weight.copy_(jitter(cols(rows(lin_old.weight, j, 1), [source]), fresh_c))
            if self.gated_feedback:
                new.fb_in.weight.copy_(old.fb_in.weight if j == 0 else cols(old.fb_in.weight, [j - 1]))
                new.fb_in.bias.copy_(old.fb_in.bias)
                new.fb_rec.weight.copy_(cols(old.fb_rec.weight, list(range(n_layers))))
        wide.readout.weight.copy_(cols(self.readout.weight, list(range(n_layers))))
        wide.readout.bias.copy_(self.readout.bias)
        return wide

    def layer_parameters(self, k: int) -> list[nn.Parameter]:
        """Weights are shared by all time steps: every step owns all parameters."""
        return list(self.parameters())

    def config(self) -> dict:
        return {"n": self.n, "m": self.m, "hidden": self.hidden, "n_steps": self.n_layers, "cell": self.cell,
                "gated_feedback": self.gated_feedback, "complex_input": self.complex_input,
                "n_rnn_layers": self.n_rnn_layers, "dtype": dtype_name(self.readout.weight.dtype),
                "model_feedback": self.model_feedback}


@register_model
class MaxSparseNet(_WhitenedInput):
    """The maximal-sparsity residual net (Xin et al. 2016), the paper's strongest DNN baseline.

    IHT-like untied layers ``h^{k+1} = relu(BN(W_k y + S_k h^k))`` on an ``m``-dimensional state, with a
    residual (skip) connection every two layers, and a linear read-out to ``m`` atom scores trained with
    the multi-label support loss.

    Parameters
    ----------
    n, m : int
        Input length and atoms.
    n_layers : int
        Number of IHT-like layers.
    width : int
        State size (``m`` in Xin et al.; configurable).
    complex_input : bool
        Stack ``[Re y, Im y]`` as for :class:`GatedFeedbackNet`.
    dtype : {'float32', 'float64'}
    """

    def __init__(self, n: int, m: int, n_layers: int = 6, width: int = 100, complex_input: bool = False,
                 dtype: str = "float32"):
        super().__init__()
        for name, v in (("n", n), ("m", m), ("n_layers", n_layers), ("width", width)):
            check_int(name, v, minimum=1)
        self.n, self.m, self.n_layers, self.width, self.complex_input = n, m, n_layers, width, bool(complex_input)
        n_in = 2 * n if complex_input else n
        self.W = nn.ModuleList([nn.Linear(n_in, width) for _ in range(n_layers)])
        self.S = nn.ModuleList([nn.Linear(width, width, bias=False) for _ in range(n_layers)])
        self.bn = nn.ModuleList([nn.BatchNorm1d(width) for _ in range(n_layers)])
        self.readout = nn.Linear(width, m)
        self._init_whitening(n_in)
        self.to(dtype_from_name(dtype))

    def forward(self, y: Tensor) -> Tensor:
        """``(B, m)`` atom scores for ``y`` ``(B, n)``."""
        if y.is_complex() != self.complex_input:
            raise ValueError(f"this net takes {'complex' if self.complex_input else 'real'} y, got dtype {y.dtype}")
        z = self._input(y)
        h = z.new_zeros(z.shape[0], self.width)
        skip = h
        for k in range(self.n_layers):
            h_new = torch.relu(self.bn[k](self.W[k](z) + self.S[k](h)))
            if k % 2 == 1:  # residual connection every two layers
                h_new, skip = h_new + skip, h_new + skip
            h = h_new
        return self.readout(h)

    def config(self) -> dict:
        return {"n": self.n, "m": self.m, "n_layers": self.n_layers, "width": self.width,
                "complex_input": self.complex_input, "dtype": dtype_name(self.readout.weight.dtype)}
