"""Shared pieces of the SBL-family reproductions: building, training and scoring every method.

A *method* maps a batch of measurements ``y`` to ``(B, m)`` atom scores whose ``d`` largest entries are the
estimated support (strict accuracy) and whose ``n`` largest are the loose guesses (Sec. 4.1):

* ``sbl``: SBL to convergence (MacKay update), scores ``gamma``;
* ``l1``: FISTA on the Lasso (foundation solver), scores ``|x|``;
* ``iht``: IHT with ``k = d`` (foundation solver), scores ``|x|``;
* ``lista``: LISTA (foundation net) trained with NMSE on ``x``, scores ``|x|``;
* ``iht-net``: the IHT-inspired net (:class:`~unrolled.sbl.nets.IHTNet`, keeps ``d_max`` entries), NMSE;
* ``maxsparsenet``: :class:`~unrolled.sbl.recurrent.MaxSparseNet`, support loss, scores = logits;
* ``gf-lstm`` / ``gf-gru`` / ``lstm`` / ``gru`` (+ ``-large``): :class:`~unrolled.sbl.recurrent.GatedFeedbackNet`;
  a further ``-mf`` (e.g. ``gf-lstm-large-mf``) adds the SBL E-step model feedback (``model_feedback=True``,
  this library's addition);
* ``<net>+sbl`` (e.g. ``gf-lstm+sbl``): SBL restricted to the ``screen_k`` (default ``2n``) atoms the trained
  ``<net>`` scores highest (:func:`~unrolled.sbl.screening.screened_sbl`, this library's addition), scores ``gamma``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor

from unrolled.core.io import load_model, read_config, save_model
from unrolled.core.metrics import nmse
from unrolled.core.stages import end_to_end
from unrolled.core.train import Trainer, TrainResult
from unrolled.sbl.metrics import SUPPORT_LOSSES
from unrolled.sbl.nets import IHTNet
from unrolled.sbl.recurrent import GatedFeedbackNet, MaxSparseNet, hidden_size
from unrolled.sbl.screening import screened_sbl
from unrolled.sbl.solvers import sbl
from unrolled.sparse_coding.nets import LISTA
from unrolled.sparse_coding.solvers import fista, iht

LABELS = {"sbl": "SBL", "l1": "l1 (FISTA)", "iht": "IHT", "lista": "LISTA (ISTA-net)", "iht-net": "IHT-net",
          "maxsparsenet": "MaxSparseNet", "gf-lstm": "GF-LSTM (ours)", "gf-gru": "GF-GRU", "lstm": "stacked LSTM",
          "gru": "stacked GRU", "gf-lstm-large": "GF-LSTM 4x", "gf-gru-large": "GF-GRU 4x", "lstm-large": "LSTM 4x",
          "gru-large": "GRU 4x", "gf-lstm+sbl": "GF-LSTM top-k + SBL", "maxsparsenet+sbl": "MaxSparseNet top-k + SBL",
          "gf-lstm-mf": "GF-LSTM + E-step feedback", "gf-lstm-large-mf": "GF-LSTM 4x + E-step feedback"}
SOLVER_METHODS = ("sbl", "l1", "iht")
SCREENED = "+sbl"


def label(method: str) -> str:
    """Display name of a method (``<net>+sbl`` methods: the net's name + 'top-k + SBL')."""
    if method in LABELS:
        return LABELS[method]
    base = net_of(method)
    return f"{LABELS.get(base, base)} top-k + SBL" if base != method else method


def net_of(method: str) -> str | None:
    """The trained net a method needs: itself, the ``<net>`` of ``<net>+sbl``, or ``None`` for a solver."""
    if method in SOLVER_METHODS:
        return None
    return method[: -len(SCREENED)] if method.endswith(SCREENED) else method


@dataclass
class NetSpec:
    """Sizes and training budget of the learned nets."""

    hidden: int = 128          # base hidden units of a 'small' recurrent layer
    n_steps: int = 10          # recurrent time steps
    unrolled_layers: int = 10  # LISTA / IHT-net layers
    msn_layers: int = 10       # MaxSparseNet layers
    msn_width: int = 256
    steps: int = 3000          # 0 with init_from: evaluate the saved nets as they are (no training, nothing saved)
    steps_baselines: int | None = None  # steps of LISTA / IHT-net / MaxSparseNet (default: ``steps``)
    lr: float = 3e-3
    batch_size: int = 256
    val_every: int = 100
    n_val: int = 1000
    lista_lam: float = 1e-3
    whiten: bool = True        # PCA input whitening of the support-loss nets, fitted on n_whiten samples
    n_whiten: int = 20000
    compile: bool = False      # torch.compile the training forward/backward (recurrent nets: ~1.2-1.5x faster on CPU)
    init_from: str | None = None  # output folder of an earlier run: nets start from its models/<method> (fine-tuning)
    data_seed: int | None = None  # seed of the online training stream (default: run seed + 7); set a new one with init_from
    loss: str = "softmax"      # support loss of the recurrent nets / MaxSparseNet: a key of SUPPORT_LOSSES
    init_method: str | None = None  # with init_from: start from models/<init_method> (default: the same method)
    widen_noise: float = 0.01  # a recurrent net started from a narrower one: noise on the copied units (widened)

    def __post_init__(self):
        if self.loss not in SUPPORT_LOSSES:
            raise ValueError(f"NetSpec.loss must be one of {sorted(SUPPORT_LOSSES)}, got {self.loss!r}")
        if self.init_method is not None and self.init_from is None:
            raise ValueError("NetSpec.init_method names the saved net to start from: it needs init_from")
        if self.widen_noise < 0:
            raise ValueError(f"NetSpec.widen_noise must be >= 0, got {self.widen_noise}")
        if self.steps < 0 or (self.steps_baselines is not None and self.steps_baselines < 0):
            raise ValueError(f"NetSpec.steps must be >= 0, got {self.steps} (baselines: {self.steps_baselines})")
        if 0 in (self.steps, self.steps_baselines) and self.init_from is None:
            raise ValueError("NetSpec.steps=0 (or steps_baselines=0) evaluates saved nets as they are: "
                             "it needs init_from")


def with_overrides(cfg, overrides: dict):
    """``cfg`` (a reproduction's config dataclass with a ``net: NetSpec`` field) with ``overrides`` applied; keys
    that name :class:`NetSpec` fields (``steps``, ``lr``, ``init_from``, ...) go to ``cfg.net``. Consumes
    ``overrides``."""
    net_over = {k: overrides.pop(k) for k in list(overrides) if k in NetSpec.__dataclass_fields__}
    cfg = replace(cfg, **overrides)
    return replace(cfg, net=replace(cfg.net, **net_over)) if net_over else cfg


def recurrent_spec(method: str) -> tuple[str, bool, str, bool]:
    """``(cell, gated_feedback, size, model_feedback)`` of a recurrent method name such as ``'gf-gru-large'``
    or ``'gf-lstm-large-mf'``."""
    model_feedback = method.endswith("-mf")
    method = method[: -len("-mf")] if model_feedback else method
    large = method.endswith("-large")
    base = method[: -len("-large")] if large else method
    gated = base.startswith("gf-")
    cell = base[3:] if gated else base
    if cell not in ("lstm", "gru"):
        raise ValueError(f"unknown recurrent method {method!r}")
    return cell, gated, "large" if large else "small", model_feedback


def build_net(method: str, Phi: Tensor, spec: NetSpec, d_max: int, *, complex_input: bool = False):
    """An untrained net for ``method`` and its training loss."""
    n, m = Phi.shape
    if method == "lista":
        return LISTA.from_algorithm(Phi, spec.lista_lam, spec.unrolled_layers), nmse
    if method == "iht-net":
        return IHTNet.from_algorithm(Phi, d_max, spec.unrolled_layers), nmse
    if method == "maxsparsenet":
        return MaxSparseNet(n, m, spec.msn_layers, spec.msn_width, complex_input=complex_input), SUPPORT_LOSSES[spec.loss]
    cell, gated, size, model_feedback = recurrent_spec(method)
    hidden = hidden_size(cell, size, spec.hidden)
    net = GatedFeedbackNet(n, m, hidden, spec.n_steps, cell, gated, complex_input=complex_input,
                           model_feedback=model_feedback)
    if model_feedback:
        net.set_dictionary(Phi)
    return net, SUPPORT_LOSSES[spec.loss]


def train_net(method: str, problem, spec: NetSpec, out_dir: Path, *, d_max: int, seed: int, device: str,
              progress: bool, complex_input: bool = False, log=print):
    """Build ``method`` (float32 for the recurrent nets, the problem's dtype for LISTA / IHT-net) and train it
    on online data from ``problem.sample``; saves it under ``out_dir/method``. Returns ``(net, TrainResult)``."""
    torch.manual_seed(seed)
    net, loss = build_net(method, problem.Phi, spec, d_max, complex_input=complex_input)
    if spec.init_from is not None:
        _warm_start(net, Path(spec.init_from) / "models" / (spec.init_method or method), problem, log,
                    widen_noise=spec.widen_noise, seed=seed)
    elif spec.whiten and hasattr(net, "set_input_whitening"):
        net.set_input_whitening(problem.sample(spec.n_whiten, torch.Generator().manual_seed(seed + 202))[0])
    net = net.to(device)
    val = problem.sample(spec.n_val, torch.Generator().manual_seed(seed + 101))
    baseline = method in ("lista", "iht-net", "maxsparsenet")
    steps = spec.steps_baselines if baseline and spec.steps_baselines is not None else spec.steps
    if steps == 0:  # evaluation only: the saved net as it is (at spec.n_steps time steps), not trained or saved
        net.eval()
        with torch.no_grad():
            val_loss = float(loss(net(val[0]), val[1]))
        log(f"  evaluating {label(method)} as saved (steps=0, not trained, not saved again): "
            f"val loss {val_loss:.4f}")
        return net, TrainResult(best_val=val_loss, n_steps=0)
    trainer = Trainer(net, loss, problem.sample, val, stages=end_to_end(spec.lr if loss is not nmse else spec.lr / 3,
                      steps), batch_size=spec.batch_size, val_every=spec.val_every, schedule="cosine",
                      grad_clip=5.0, checkpoint_dir=out_dir / "checkpoints" / method,
                      seed=seed + 7 if spec.data_seed is None else spec.data_seed, device=device,
                      progress=progress, compile=spec.compile and not baseline)
    t0 = time.perf_counter()
    result = trainer.fit()
    log(f"  trained {label(method)}: {result.n_steps} steps, best val loss {result.best_val:.4f}, "
        f"{time.perf_counter() - t0:.0f} s")
    save_model(net, out_dir / "models" / method, metadata={"method": method, "problem": problem.config(),
                                                            "steps": result.n_steps, "init_from": spec.init_from})
    return net.eval(), result


def _warm_start(net, saved: Path, problem, log=print, *, widen_noise: float = 0.01, seed: int = 0) -> None:
    """Copy the weights of the net saved at ``saved`` into ``net`` (same architecture, same dictionary).

    The new run trains on with its own schedule (and may draw x with another d or noise level); its input
    whitening is the saved one, not refitted. A recurrent net (weights shared across time steps) may run
    for another number of time steps ``NetSpec.n_steps`` than it was trained with, and with more hidden
    units than the saved one: it then starts from :meth:`GatedFeedbackNet.widened` (same scores up to the
    ``widen_noise`` that lets the copied units drift apart), and may add the SBL E-step model feedback the
    saved one lacks (:meth:`GatedFeedbackNet.with_model_feedback`: same scores at the start).
    """
    if not (saved / "config.json").is_file():
        raise FileNotFoundError(f"init_from: no saved net at {saved}")
    meta = read_config(saved)["metadata"]
    # the dictionary must be the same; the sampling of x and noise (d, noise level, SNR) may change
    sampling = ("d", "d_weights", "noise_std", "snr_db", "n_sources")
    theirs = {k: v for k, v in meta.get("problem", {}).items() if k not in sampling}
    ours = {k: v for k, v in json.loads(json.dumps(problem.config())).items() if k not in sampling}
    if theirs != ours:
        raise ValueError(f"init_from: the net at {saved} was trained on another data model "
                         f"({theirs}) than this run's ({ours})")
    old = load_model(saved)
    # a recurrent net shares its weights across time steps (any n_steps) and can be widened (more hidden units)
    free = ("n_steps", "hidden", "model_feedback") if isinstance(net, GatedFeedbackNet) else ()
    theirs, ours = ({k: v for k, v in c.items() if k not in free} for c in (old.config(), net.config()))
    if type(old) is not type(net) or theirs != ours or (free and (old.hidden > net.hidden or
                                                                   old.model_feedback > net.model_feedback)):
        raise ValueError(f"init_from: the net at {saved} ({type(old).__name__} {old.config()}) does not match "
                         f"this run's ({type(net).__name__} {net.config()})")
    more = f"; time steps {old.n_layers} -> {net.n_layers}" if free and old.n_layers != net.n_layers else ""
    if free and old.hidden < net.hidden:
        more += f"; widened from {old.hidden} to {net.hidden} units per layer, noise {widen_noise}"
        old = old.widened(net.hidden, noise=widen_noise, generator=torch.Generator().manual_seed(seed + 303))
    if free and net.model_feedback and not old.model_feedback:
        more += "; SBL E-step model feedback added (zero weights on its inputs)"
        old = old.with_model_feedback(problem.Phi)
    net.load_state_dict(old.state_dict())
    log(f"  {label(meta.get('method', '?'))}: starting from {saved} "
        f"({meta.get('steps', 'unknown')} steps in the run that saved it{more})")


def warm_start_note(spec: NetSpec) -> list[str]:
    """Markdown lines saying where a warm-started run's nets began (empty for a run from scratch)."""
    if spec.init_from is None:
        return []
    if spec.steps == 0:
        return [f"Evaluation only: the nets are those saved in `{spec.init_from}` (`init_from`"
                + (f", the `{spec.init_method}` net" if spec.init_method else "")
                + f"), run for {spec.n_steps} time steps where recurrent, not trained here (`steps=0`).", ""]
    source = (f" (the `{spec.init_method}` net, widened where this run's is wider and given the E-step model feedback "
              f"where this run's has it)" if spec.init_method else "")
    return [f"Warm start: the nets began from those saved in `{spec.init_from}`{source} (`init_from`), with a fresh "
            f"schedule and online data stream (`data_seed` {spec.data_seed}); the steps above are this run's only.", ""]


def _solver_stats(res) -> dict:
    """Mean iterations and share of converged problems of a batched solver result."""
    return {"mean_iter": float(res.n_iter.double().mean()), "converged": float(res.converged.double().mean())}


@torch.no_grad()
def scores(method: str, y: Tensor, Phi: Tensor, d: int, *, net=None, sbl_lam: float = 1e-7,
           sbl_max_iter: int = 2000, sbl_tol: float = 1e-6, l1_lam: float = 1e-3,
           screen_k: int | None = None) -> tuple[Tensor, dict]:
    """Atom scores ``(B, m)`` of ``method`` on ``y`` (and solver statistics when it is a solver).

    ``net`` is the trained net of ``net_of(method)``; ``screen_k`` (default ``min(2n, m)``) the candidates
    that a ``<net>+sbl`` method keeps.
    """
    if method == "sbl":
        res = sbl(y, Phi, sbl_lam, update="mackay", max_iter=sbl_max_iter, tol=sbl_tol)
        return res.gamma, _solver_stats(res)
    if method.endswith(SCREENED):
        net_scores, _ = scores(net_of(method), y, Phi, d, net=net)
        k = screen_k or min(2 * Phi.shape[0], Phi.shape[1])
        res = screened_sbl(y, Phi, net_scores, k, sbl_lam, update="mackay",
                           max_iter=sbl_max_iter, tol=sbl_tol)
        return res.gamma, _solver_stats(res)
    if method == "l1":
        res = fista(y, Phi, l1_lam, max_iter=3000, tol=1e-5)
        return res.x.abs(), _solver_stats(res)
    if method == "iht":
        res = iht(y, Phi, d, max_iter=1000, tol=1e-6)
        return res.x.abs(), _solver_stats(res)
    dtype = next(net.parameters()).dtype
    out = net(y.to(dtype))
    return (out.abs() if isinstance(net, (LISTA, IHTNet)) else out).to(torch.float64), {}


def time_side_by_side(fn_a, fn_b, repeats: int = 3) -> tuple[float, float]:
    """Best-of-``repeats`` wall-clock seconds of two callables, measured alternately in the same process."""
    ta, tb = [], []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn_a(); ta.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); fn_b(); tb.append(time.perf_counter() - t0)
    return min(ta), min(tb)
