"""Registers the separation family with :mod:`unrolled.core.registry` (entry point ``separation`` in ``pyproject.toml``).

Two LPALM nets are registered (both :class:`~unrolled.separation.nets.LPALM`,
both running :class:`~unrolled.separation.iteration.PALMIteration`):

* ``lpalm``: the paper's variant (LISTA-CP S-update, learned ISTA-LL A-step),
  initialised as in the paper (appendix A) from the problem's reference
  training pair ``(A_ref, S_ref)``: every layer ``W = A_ref / L_S``,
  ``theta = lam / L_S``, ``gamma_a = 1 / L_A``. The algorithm it equals is
  that PALM-type iteration with those fixed weights (PALM's S-step linearised
  at ``A_ref``), run by :func:`~unrolled.core.solve.solve`.
* ``lpalm-ista-llt``: ISTA-LLT S-update with PALM's explicit A-step, started
  from ``A_ref``; with ``gamma_s = 1 / (1.01 n)`` and ``theta = lam gamma_s``
  it *is* PALM with the S-step from the bound ``||A^T A||_2 <= ||A||_F^2 <= n``
  that holds for every iterate (unit-ball columns), on every mixture.
"""

from __future__ import annotations

import torch

from unrolled.core.registry import Family, NetSpec, register_family, register_net
from unrolled.core.unrolled_net import dtype_from_name
from unrolled.separation.data import SeparationProblem
from unrolled.separation.iteration import STEP_FACTOR, PALMIteration, lipschitz_a, lipschitz_s
from unrolled.separation.metrics import separation_nmse
from unrolled.separation.nets import LPALM, palm_layer_values
from unrolled.separation.solvers import check_mixtures, constant_mixing, palm, pinv_init, run_iteration
from unrolled.separation.training import loss_s_and_a

FAMILY = register_family(Family(
    "separation", "unrolled.separation",
    "sparse semi-blind source separation: X = A S + N, A of unit-norm spectra (LPALM)", ("palm",),
))

#: LPALM's initial threshold parameter (paper, appendix A).
LAM_INIT = 1e-5
#: PALM's lambda for the baselines (about the best of Table 1's grid).
PALM_LAM = 2e-3


def problem(seed: int = 0, small: bool = False, *, t: int | None = None, n_matrices: int | None = None,
            channel_step: int | None = None, beta: float = 0.3, snr_db: float | None = 30.0,
            dtype: str = "float64") -> SeparationProblem:
    """The synthetic data of Sec. 3.1 (65 channels, 4 sources, t = 500); ``small``: 17 channels, t = 20, 40 matrices."""
    return SeparationProblem(
        t if t is not None else (20 if small else 500),
        n_matrices=n_matrices if n_matrices is not None else (40 if small else 900),
        channel_step=channel_step if channel_step is not None else (4 if small else 1),
        beta=beta, snr_db=snr_db, seed=seed, dtype=dtype_from_name(dtype))


def problem_config(prob: SeparationProblem) -> dict:
    return prob.config()


def _reference_constants(prob: SeparationProblem) -> tuple[float, float]:
    A, S = prob.A_ref.to(torch.float64), prob.S_ref.to(torch.float64)
    return float(lipschitz_s(A[None])[0]), float(lipschitz_a(S[None])[0])


# ---------------------------------------------------------------- lpalm (the paper's variant)
def _lpalm_from_algorithm(prob, n_layers, tied, options):
    return LPALM.from_training_pair(prob.A_ref, prob.S_ref, n_layers, lam=options["lam"], tied=tied,
                                    dtype="float64")


def _lpalm_solver(prob, X, max_iter, tol, callback, options):
    """The iteration the untrained ``lpalm`` runs: LISTA-CP / ISTA-LL steps at the paper's fixed weights."""
    Xb = check_mixtures(X, prob.n)
    L_S, L_A = _reference_constants(prob)
    params = palm_layer_values("lista-cp", "ista-ll", prob.A_ref.to(Xb.dtype), L_S, L_A, options["lam"])
    A0 = constant_mixing(Xb.shape[1], prob.n, batch=Xb.shape[0], dtype=Xb.dtype, device=Xb.device)
    return run_iteration(PALMIteration("lista-cp", "ista-ll"), Xb, A0, None, params, max_iter=max_iter, tol=tol,
                         callback=callback)


# ---------------------------------------------------------------- lpalm-ista-llt (PALM itself)
def _llt_step(prob) -> float:
    return 1.0 / (STEP_FACTOR * prob.n)


def _llt_from_algorithm(prob, n_layers, tied, options):
    net = LPALM(prob.m, prob.n, n_layers, "ista-llt", "explicit", tied=tied, dtype="float64")
    gamma = _llt_step(prob)
    return net.set_algorithm_values(A_init=prob.A_ref, gamma_s=torch.tensor(gamma, dtype=torch.float64),
                                    theta=torch.tensor(options["lam"] * gamma, dtype=torch.float64))


def _llt_solver(prob, X, max_iter, tol, callback, options):
    """PALM from ``A_ref`` (S0 = 0) with the S-step ``1 / (1.01 n)`` and PALM's own A-step."""
    Xb = check_mixtures(X, prob.n)
    gamma = _llt_step(prob)
    A0 = prob.A_ref.to(Xb.dtype).expand(Xb.shape[0], -1, -1)
    return run_iteration(PALMIteration("ista-llt", "explicit"), Xb, A0, None,
                         {"gamma_s": gamma, "theta": options["lam"] * gamma}, max_iter=max_iter, tol=tol,
                         callback=callback)


# ---------------------------------------------------------------- shared
def _palm_baseline(prob, X, max_iter, tol, callback, options):
    """PALM (Eq. 6) from ``A_ref`` and ``S0 = A_ref^+ X`` (the semi-blind start of Sec. 3.1.1)."""
    Xb = check_mixtures(X, prob.n)
    A0 = prob.A_ref.to(Xb.dtype).expand(Xb.shape[0], -1, -1)
    return palm(Xb, A0, pinv_init(Xb, A0), options.get("palm_lam", PALM_LAM), max_iter=max_iter, tol=tol,
                callback=callback)


def _metric(pred, target) -> float:
    """Mean over the batch of NMSE(S) + NMSE(A) after permutation/scale correction (Eq. 10)."""
    A, S = (t.detach().double() for t in pred)
    err = separation_nmse(A, S, target[0].detach().double(), target[1].detach().double())
    return float((err["A"] + err["S"]).mean())


_COMMON = dict(family="separation", cls=LPALM, problem=problem, loss=loss_s_and_a, metric=_metric,
               metric_name="NMSE(S) + NMSE(A)", input_name="X", problem_config=problem_config, default_layers=25)

register_net(NetSpec(
    name="lpalm", from_algorithm=_lpalm_from_algorithm, solver=_lpalm_solver,
    options={"lam": LAM_INIT, "palm_lam": PALM_LAM}, baselines={"PALM": _palm_baseline}, **_COMMON,
    notes="PALM's steps 1/(1.01 L) follow its iterates, so no net with fixed per-layer weights equals PALM on every "
          "mixture. The paper's initialisation (every layer W = A_ref / L_S, theta = lam / L_S, gamma_a = 1 / L_A "
          "from a reference training pair) is the generalised PALM step at fixed weights, and that iteration, run "
          "by solve() from A0 = ones / sqrt(m), S0 = 0, is the solver the untrained net equals. PALM itself is the "
          "baseline (and LPALM.from_algorithm gives the untied net equal to PALM on one reference mixture).",
))

register_net(NetSpec(
    name="lpalm-ista-llt", from_algorithm=_llt_from_algorithm, solver=_llt_solver,
    options={"lam": PALM_LAM, "palm_lam": PALM_LAM}, baselines={"PALM": _palm_baseline, "PALM, S-step 1/(1.01 n)":
                                                               _llt_solver}, **_COMMON,
    notes="Equals PALM started from the reference mixing matrix A_ref with S0 = 0 and the S-step 1/(1.01 n) "
          "(n sources: ||A^T A||_2 <= n for unit-ball columns) instead of 1/(1.01 ||A^T A||_2); the A-step is "
          "PALM's own.",
))

import unrolled.experiments.lpalm_registry  # noqa: E402,F401  (its experiments, benchmarks and demo part register)
