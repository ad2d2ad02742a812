"""Evaluation kind of the lowrank family's pretrained model: CORONA on simulated ultrasound movies."""

from __future__ import annotations

import torch

from unrolled.pretrained._common import pooled, without_std


def ultrasound(net, ev, n_test, seed, baseline):
    """CORONA (review box, eqs. (16)-(18)): NMSE (dB, pooled over the movies as in the reproduction) of the blood
    ``S`` and the tissue ``L`` on fresh movies; (``baseline``) FISTA-RPCA to convergence with the card's penalties
    (tuned on validation movies by the training run) and the untrained net's ISTA iterations."""
    from unrolled.lowrank.data import UltrasoundMovieProblem
    from unrolled.lowrank.metrics import nmse_db
    from unrolled.lowrank.solvers import rpca_ista

    p = ev["problem"]
    problem = UltrasoundMovieProblem(height=p["height"], width=p["width"], frames=p["frames"], dtype="float32",
                                     seed=p["seed"])
    D, Y = problem.sample(n_test, torch.Generator().manual_seed(seed))

    def score(est, res, boot_seed):
        pooled(res, "nmse_s_db", lambda i: nmse_db(est[i, 1], Y[i, 1]), n_test, seed=boot_seed)
        pooled(res, "nmse_l_db", lambda i: nmse_db(est[i, 0], Y[i, 0]), n_test, seed=boot_seed + 1)
        return res

    out = score(net(D), {}, seed)
    base = {}
    if baseline:
        r = rpca_ista(D, ev["lam1"], ev["lam2"], max_iter=ev["fista_max_iter"], tol=ev["fista_tol"])
        base = without_std(score(r.x, {}, seed))
    return out, base
