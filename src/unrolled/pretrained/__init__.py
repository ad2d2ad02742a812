"""Trained nets shipped inside the package: load one by name, no download, no pickle.

Each model is a folder ``unrolled/pretrained/<name>/`` holding ``model.safetensors`` and ``config.json`` (the
format of :func:`unrolled.core.io.save_model`) and ``card.json``: what the net solves, its data model and sizes,
the training command and budget, and the metrics it reaches on freshly simulated test problems, with the paper's
beside them. :func:`evaluate` re-measures those metrics (``unrolled evaluate pretrained:<name>`` on the command
line; ``tests/test_pretrained.py`` checks each against its card within the card's stated tolerance).

Shipped: LISTA-CPSS and ALISTA at 16 layers, noiseless (``lista-cpss-16``, ``alista-16``), the SBL family's GF-LSTMs (``sbl-gf-lstm-large-mf``, ``sbl-gf-lstm``, ``sbl-doa-gf-lstm``), SLoG-Net on one
ER graph (``slognet-er20``), LPALM on the X-ray mixtures (``lpalm-xray``), the deep IRLS-ADMM net of the
simulation (``deep-irls-admm-sim``), ADMM-CSNet for compressive MRI at 20 % radial sampling
(``admm-csnet-mri20``), DUBLID for blind deblurring (``dublid-deblur``), CORONA for ultrasound clutter suppression
(``corona-ultrasound``), deep NMF for speech enhancement (``deepnmf-speech``) and FCN + CRF-RNN for segmentation
(``crf-rnn-shapes``); one evaluation function per card ``kind`` (:data:`_KINDS`; the imaging, lowrank, nmf and
segmentation kinds live in ``_imaging``, ``_lowrank``, ``_nmf``, ``_segmentation``). How the models of those four
families were trained: :mod:`unrolled.pretrained.training`.

Examples
--------
>>> from unrolled.pretrained import list_pretrained, load_pretrained
>>> "sbl-gf-lstm-large-mf" in list_pretrained()
True
>>> net = load_pretrained("sbl-gf-lstm-large-mf")
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

from unrolled.pretrained import _imaging, _lowrank, _nmf, _segmentation  # the newer families' kinds
from unrolled.pretrained._common import per_problem

__all__ = ["list_pretrained", "load_pretrained", "model_card", "card", "model_dir", "evaluate", "tolerance",
           "support_f1", "PREFIX"]

ROOT = Path(__file__).resolve().parent
PREFIX = "pretrained:"
CARD_FILE = "card.json"


def list_pretrained() -> list[str]:
    """Names of the pretrained models shipped with the package (sorted)."""
    return sorted(p.name for p in ROOT.iterdir() if (p / "config.json").is_file() and (p / CARD_FILE).is_file())


def model_dir(name: str) -> Path:
    """Folder of the pretrained model ``name`` (``'pretrained:'`` prefix allowed)."""
    name = name[len(PREFIX):] if name.startswith(PREFIX) else name
    names = list_pretrained()
    if name not in names:
        raise ValueError(f"unknown pretrained model {name!r}; choose from {names}")
    return ROOT / name


def load_pretrained(name: str, *, device: str | torch.device = "cpu") -> nn.Module:
    """The pretrained model ``name``, rebuilt from its safetensors + JSON and put in eval mode.

    Parameters
    ----------
    name : str
        One of :func:`list_pretrained` (a ``'pretrained:'`` prefix is allowed).
    device : str or torch.device, default 'cpu'
    """
    from unrolled.core.io import load_model
    from unrolled.pretrained import nets  # noqa: F401  (registers the wrappers some cards' models are saved as)

    return load_model(model_dir(name), device=device).eval()


def card(name: str) -> dict:
    """The model card of ``name`` as a dict (``card.json``)."""
    return json.loads((model_dir(name) / CARD_FILE).read_text())


def model_card(name: str) -> str:
    """The model card of ``name`` as readable text."""
    c = card(name)
    ev = c["evaluation"]
    lines = [f"{name}: {c['title']}", "", c["solves"], "", f"data model: {c['data_model']}",
             f"net: {c['net']}", f"training: {c['training']}", f"command: {c['command']}", "",
             f"metrics on {ev['n_test']} fresh test problems per setting (generator seeds {ev['seed_note']}):"]
    for key, value in ev["metrics"].items():
        base = ev.get("baseline", {}).get(key)
        paper = ev.get("paper", {}).get(key)
        extra = (f"; {ev['baseline_name']} {base}" if base is not None else "") + (f"; paper {paper}" if paper is not None else "")
        lines.append(f"  {key}: {value}{extra}")
    if ev.get("baseline_note"):
        lines.append(f"baseline: {ev['baseline_note']}")
    if ev.get("untrained"):
        lines.append(f"untrained: {', '.join(f'{k} {v}' for k, v in ev['untrained'].items())} "
                     f"({ev.get('untrained_note', 'the net at its initialisation')})")
    if ev.get("paper_note"):
        lines.append(f"paper: {ev['paper_note']}")
    lines.append(f"tolerance of the test: {ev['tolerance_note']}")
    return "\n".join(lines)


# ---- evaluation on fresh data, one function per kind of card ------------------------------------------------------

def _sbl_support(net, ev, n_test, seed, baseline):
    from unrolled.experiments.sbl_common import scores
    from unrolled.sbl.data import CorrelatedSparseProblem
    from unrolled.sbl.metrics import loose_accuracy, strict_accuracy

    p = ev["problem"]
    out, base = {}, {}
    for d in ev["d_values"]:
        problem = CorrelatedSparseProblem(n=p["n"], m=p["m"], d=d, noise_std=p["noise_std"], seed=p["seed"])
        y, x = problem.sample(n_test, torch.Generator().manual_seed(seed + d))
        with torch.no_grad():
            s, _ = scores("gf-lstm", y, problem.Phi, d, net=net)
        out[f"strict_d{d}"] = float(strict_accuracy(s, x))
        out[f"loose_d{d}"] = float(loose_accuracy(s, x, p["n"]))
        if baseline:
            s, _ = scores("sbl", y, problem.Phi, d)
            base[f"strict_d{d}"] = float(strict_accuracy(s, x))
            base[f"loose_d{d}"] = float(loose_accuracy(s, x, p["n"]))
    return out, base


def _sbl_doa(net, ev, n_test, seed, baseline):
    from unrolled.sbl.data import DOAProblem
    from unrolled.sbl.metrics import chamfer_distance, peak_indices
    from unrolled.sbl.solvers import sbl

    p = ev["problem"]
    out, base = {}, {}
    for snr in ev["snr_values"]:
        problem = DOAProblem(p["n_sensors"], p["resolution"], p["n_sources"], snr_db=float(snr))
        y, x = problem.sample(n_test, torch.Generator().manual_seed(seed + int(snr * 10)))
        angles = problem.angles
        true = torch.sort(angles[(x != 0).nonzero()[:, 1].reshape(-1, p["n_sources"])], -1).values
        with torch.no_grad():
            s = net(y.to(torch.complex64)).to(torch.float64)
        c = chamfer_distance(angles[peak_indices(s, p["n_sources"])], true)
        out[f"chamfer_{snr:g}dB"] = float(c.mean())
        out[f"chamfer_{snr:g}dB_std"] = float(c.std())
        if baseline:
            lam = float((x @ problem.Phi.T).abs().pow(2).mean()) / 10.0 ** (snr / 10.0)
            g = sbl(y, problem.Phi, lam, update="mackay", max_iter=1000, tol=1e-6).gamma
            base[f"chamfer_{snr:g}dB"] = float(chamfer_distance(angles[peak_indices(g, p["n_sources"])], true).mean())
    return out, base


def _sparse_coding(net, ev, n_test, seed, baseline):
    """LISTA-type nets: NMSE (dB) at the last layer, pooled over the test set as in the reproduction (the ratio
    of summed squared errors to summed energies), with a bootstrap spread; baseline: FISTA at as many
    iterations as the net has layers, with the reproduction's lambda."""
    from unrolled.core import nmse_db
    from unrolled.pretrained._common import pooled
    from unrolled.sparse_coding import SparseCodingProblem
    from unrolled.sparse_coding.solvers import fista

    cfg = dict(ev["problem"])
    cfg["dtype"] = getattr(torch, cfg.get("dtype", "float64"))  # the dictionary A is drawn in this dtype
    problem = SparseCodingProblem(**cfg)
    y, x = problem.sample(n_test, torch.Generator().manual_seed(seed))
    dtype = next(net.parameters()).dtype
    key = f"nmse_db_layer{net.n_layers}"
    x_hat = net(y.to(dtype)).to(torch.float64)
    x = x.to(torch.float64)
    out, base = {}, {}
    pooled(out, key, lambda i: nmse_db(x_hat[i], x[i]), n_test)
    if baseline:
        r = fista(y.to(torch.float64), problem.A.to(torch.float64), ev["baseline_lam"], max_iter=net.n_layers, tol=0)
        base[key] = float(nmse_db(r.x, x))
    return out, base


def _median_db(out: dict, key: str, values: torch.Tensor) -> None:
    """Median of per-problem ``values`` in dB as ``key``; ``key_std`` is sqrt(pi/2) x the std of the dB values
    (the large-sample standard error of a median is that effective std over sqrt(n))."""
    db = 10 * torch.log10(values.to(torch.float64).clamp_min(1e-300))
    out[key] = float(db.median())
    out[f"{key}_std"] = math.sqrt(math.pi / 2) * float(db.std())


def support_f1(estimate: torch.Tensor, target: torch.Tensor, kappa: float = 0.1) -> torch.Tensor:
    """Per-problem F1 score of the recovered support ``|estimate| >= kappa`` against ``|target| >= kappa``.

    Unlike the support accuracy ACC (true positives *and* true negatives over all entries, which an all-zero
    estimate already scores about 0.86 on Bernoulli(0.15) sources), F1 = 2 TP / (2 TP + FP + FN) is 0 for zeros.
    """
    e = (estimate.abs() >= kappa).reshape(estimate.shape[0], -1)
    t = (target.abs() >= kappa).reshape(target.shape[0], -1)
    tp = (e & t).sum(-1).to(torch.float64)
    fp = (e & ~t).sum(-1).to(torch.float64)
    fn = (~e & t).sum(-1).to(torch.float64)
    return 2 * tp / (2 * tp + fp + fn).clamp_min(1.0)


def _graph(net, ev, n_test, seed, baseline):
    """SLoG-Net: mean RE of X, ACC and support F1 (kappa = 0.1) on fresh problems of the card's graph."""
    from unrolled.experiments.slognet_scoring import _second_moment, _scale, prior_scale
    from unrolled.graph.data import GraphDiffusionProblem
    from unrolled.graph.metrics import relative_error, support_accuracy
    from unrolled.graph.solvers import admm

    p = ev["problem"]
    dtype = next(net.parameters()).dtype
    problem = GraphDiffusionProblem(p["graph"], n_signals=p["n_signals"], graph_seed=p["graph_seed"], dtype=dtype)
    batch = problem.sample_batch(n_test, torch.Generator().manual_seed(seed))
    Y, X = batch.Y, batch.X

    def score(X_hat):
        res = {}
        per_problem(res, "mre_x", relative_error(X_hat, X, reduction="none"))
        per_problem(res, "acc", support_accuracy(X_hat, X, reduction="none"))
        per_problem(res, "f1", support_f1(X_hat, X))
        return res

    out = score(net(Y))
    base = {}
    if baseline:
        n_b = min(n_test, int(ev.get("baseline_n_test", n_test)))
        Yb, Xb = Y[:n_b], X[:n_b]
        res = admm(Yb, problem.S, V=problem.V, max_iter=ev["admm_max_iter"], tol=ev["admm_tol"])
        X_adm = _scale(res.x, prior_scale(res.x, _second_moment(problem)))
        base = {"mre_x": float(relative_error(X_adm, Xb)), "acc": float(support_accuracy(X_adm, Xb)),
                "f1": float(support_f1(X_adm, Xb).mean())}
    return out, base


def _separation(net, ev, n_test, seed, baseline):
    """LPALM: median NMSE(S) and NMSE(A) in dB (after permutation/scale correction) on fresh mixtures."""
    from unrolled.separation.data import SeparationProblem
    from unrolled.separation.metrics import separation_nmse
    from unrolled.separation.solvers import palm, pinv_init
    from unrolled.separation.training import predict

    p = ev["problem"]
    problem = SeparationProblem(p["t"], n_matrices=p["n_matrices"], channel_step=p["channel_step"], beta=p["beta"],
                                snr_db=p["snr_db"], seed=p["seed"], dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    X, (A, S, _) = problem.sample(n_test, gen)
    A_net, S_net = predict(net, X.to(net.dtype))
    err = separation_nmse(A_net.double(), S_net.double(), A, S)
    out = {}
    _median_db(out, "median_nmse_s_db", err["S"])
    _median_db(out, "median_nmse_a_db", err["A"])
    base = {}
    if baseline:
        n_b = min(n_test, int(ev.get("baseline_n_test", n_test)))
        idx = torch.randint(problem.n_matrices, (n_b,), generator=torch.Generator().manual_seed(seed + 1))
        A0 = problem.pool[idx].to(torch.float64)  # PALM's start (Sec. 3.1.2): a random matrix of the pool, A0^+ X
        res = palm(X[:n_b], A0, pinv_init(X[:n_b], A0), ev["baseline_lam"], max_iter=ev["palm_max_iter"],
                   tol=ev["palm_tol"])
        e = separation_nmse(res.A, res.S, A[:n_b], S[:n_b])
        base = {"median_nmse_s_db": float(10 * torch.log10(e["S"].median())),
                "median_nmse_a_db": float(10 * torch.log10(e["A"].median())),
                "palm_capped_fraction": float((~res.converged).double().mean())}
    return out, base


def _classification(net, ev, n_test, seed, baseline):
    """Deep IRLS-ADMM net: cosine to the true weights, held-out accuracy, true features in the top 2 n_true."""
    from unrolled.classification.data import CorrelatedFeaturesProblem
    from unrolled.classification.solvers import irls_admm, lambda_max, prepare_problem

    p = ev["problem"]
    n_fit, n_hold = p["n_samples"], ev["n_holdout"]
    problem = CorrelatedFeaturesProblem(n_samples=n_fit + n_hold, n_features=p["n_features"], n_true=p["n_true"],
                                        noise_std=p["noise_std"], corr_std=p["corr_std"], seed=p["seed"])
    (Phi, y), beta_true = problem.sample(n_test, torch.Generator().manual_seed(seed))
    Xf, yf, Xh, yh = Phi[:, :n_fit], y[:, :n_fit], Phi[:, n_fit:], y[:, n_fit:]
    k = 2 * p["n_true"]

    def score(beta):
        res = {}
        per_problem(res, "cosine", torch.nn.functional.cosine_similarity(beta, beta_true, dim=-1, eps=1e-12))
        per_problem(res, "holdout_accuracy", (((Xh @ beta[..., None])[..., 0] * yh) > 0).double().mean(-1))
        top = beta.abs().argsort(-1, descending=True)[:, :k]
        per_problem(res, f"true_in_top{k}", (top < k).double().mean(-1))
        return res

    dtype = next(net.parameters()).dtype
    out = score(net((Xf.to(dtype), yf.to(dtype))).to(torch.float64))
    base = {}
    if baseline:
        lam = ev["baseline_lam_frac"] * lambda_max(prepare_problem(Xf, yf, 0.0, False)[0])  # (B,), per data set
        b = irls_admm(Xf, yf, lam[:, None].expand(-1, p["n_features"]).contiguous()).beta
        base = {key: v for key, v in score(b).items() if not key.endswith("_std")}
    return out, base


_KINDS = {"sbl-support": _sbl_support, "sbl-doa": _sbl_doa, "sparse-coding": _sparse_coding,
          "graph-source-localization": _graph, "separation": _separation, "classification": _classification,
          "csmri": _imaging.csmri, "blind-deblur": _imaging.deblur, "ultrasound-clutter": _lowrank.ultrasound,
          "speech-enhancement": _nmf.speech, "segmentation": _segmentation.shapes}


def evaluate(name: str, *, n_test: int | None = None, seed: int | None = None, baseline: bool = False,
             device: str | torch.device = "cpu") -> dict:
    """Re-measure the card's metrics of ``name`` on freshly simulated problems.

    Parameters
    ----------
    name : str
        A pretrained model.
    n_test : int, optional
        Test problems per setting (default: the card's).
    seed : int, optional
        Base generator seed of the test problems (default: the card's, which no training run used).
    baseline : bool, default False
        Also score the card's baseline solver on the same problems.

    Returns
    -------
    dict
        ``{"metrics": {...}, "baseline": {...}, "card": {...}, "tolerance": {...}}``; ``tolerance`` is the
        absolute tolerance per metric that the test allows at this ``n_test``.
    """
    c = card(name)
    ev = c["evaluation"]
    n_test = int(n_test or ev["n_test"])
    seed = int(ev["seed"] if seed is None else seed)
    net = load_pretrained(name, device=device)
    with torch.no_grad():
        # the kinds whose baseline needs the solver's own weights read them from beside the model
        metrics, base = _KINDS[ev["kind"]](net, {**ev, "model_dir": str(model_dir(name))}, n_test, seed, baseline)
    return {"metrics": metrics, "baseline": base, "card": ev["metrics"], "tolerance": tolerance(ev, n_test)}


def tolerance(ev: dict, n_test: int) -> dict:
    """Absolute tolerance per card metric for a re-measurement on ``n_test`` problems (see the card's note).

    SBL accuracies: 4 binomial standard errors of the difference between two independent estimates (the card's on
    ``ev['n_test']`` problems and the new one on ``n_test``) plus 0.005; every other kind (Chamfer distances, NMSE,
    relative error, ACC, F1, cosine, held-out accuracy, medians in dB): 4 standard errors from the card's
    per-problem standard deviation ``<metric>_std``, plus the card's ``abs_floor``. For a median the card stores
    sqrt(pi/2) x the per-problem standard deviation (the large-sample standard error of a median of a roughly
    normal quantity is that over sqrt(n)).
    """
    out = {}
    n0 = ev["n_test"]
    floor = float(ev.get("abs_floor", 0.005))
    for key, value in ev["metrics"].items():
        if key.endswith("_std"):
            continue
        if ev["kind"] == "sbl-support":
            se = math.sqrt(max(value * (1 - value), 1e-4) * (1 / n0 + 1 / n_test))
        else:
            std = ev["metrics"].get(f"{key}_std", ev.get("std", {}).get(key, 0.0))
            se = std * math.sqrt(1 / n0 + 1 / n_test)
        out[key] = 4 * se + floor
    return out
