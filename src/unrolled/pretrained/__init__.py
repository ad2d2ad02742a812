"""Trained nets shipped inside the package: load one by name, no download, no pickle.

Each model is a folder ``unrolled/pretrained/<name>/`` holding ``model.safetensors`` and ``config.json`` (the
format of :func:`unrolled.core.io.save_model`) and ``card.json``: what the net solves, its data model and sizes,
the training command and budget, and the metrics it reaches on freshly simulated test problems, with the paper's
beside them. :func:`evaluate` re-measures those metrics (``unrolled evaluate pretrained:<name>`` on the command
line; ``tests/test_pretrained.py`` checks each against its card within the card's stated tolerance).

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

__all__ = ["list_pretrained", "load_pretrained", "model_card", "card", "model_dir", "evaluate", "PREFIX"]

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
    from unrolled.core import nmse_db
    from unrolled.sparse_coding import SparseCodingProblem
    from unrolled.sparse_coding.solvers import fista

    problem = SparseCodingProblem(**ev["problem"])
    y, x = problem.sample(n_test, torch.Generator().manual_seed(seed))
    dtype = next(net.parameters()).dtype
    with torch.no_grad():
        out = {f"nmse_db_layer{net.n_layers}": float(nmse_db(net(y.to(dtype)), x.to(dtype)))}
    base = {}
    if baseline:
        r = fista(y, problem.A, ev["baseline_lam"], max_iter=net.n_layers, tol=0)
        base[f"nmse_db_layer{net.n_layers}"] = float(nmse_db(r.x, x))
    return out, base


_KINDS = {"sbl-support": _sbl_support, "sbl-doa": _sbl_doa, "sparse-coding": _sparse_coding}


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
        metrics, base = _KINDS[ev["kind"]](net, ev, n_test, seed, baseline)
    return {"metrics": metrics, "baseline": base, "card": ev["metrics"], "tolerance": tolerance(ev, n_test)}


def tolerance(ev: dict, n_test: int) -> dict:
    """Absolute tolerance per card metric for a re-measurement on ``n_test`` problems (see the card's note).

    Accuracies: 4 binomial standard errors of the difference between two independent estimates (the card's on
    ``ev['n_test']`` problems and the new one on ``n_test``) plus 0.005; Chamfer distances and NMSE: 4 standard
    errors from the card's per-problem standard deviation, plus the card's ``abs_floor``.
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
