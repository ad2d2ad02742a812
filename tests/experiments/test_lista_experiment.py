"""The LISTA reproduction pipeline, run in its --quick form."""

import json

import pytest
import torch

from unrolled.core.io import load_model
from unrolled.experiments.lista import QUICK, reproduce
from unrolled.sparse_coding.data import SparseCodingProblem
from unrolled.sparse_coding.solvers import fista, ista


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lista-quick")
    payload = reproduce(out, quick=True, progress=False)
    return out, payload


def test_outputs_written(quick_run):
    out, payload = quick_run
    for name in ("results.json", "results.md", "nmse_vs_layer.png"):
        assert (out / name).is_file(), name
    data = json.loads((out / "results.json").read_text())
    methods = {r["method"] for r in data["rows"]}
    assert methods == set(QUICK.methods)
    for setting in QUICK.settings:
        for method in QUICK.methods:
            layers = [r["layer"] for r in data["rows"] if r["method"] == method and r["setting"] == setting]
            assert layers == list(range(1, QUICK.n_layers + 1))
    assert all(isinstance(r["nmse_db"], float) for r in data["rows"])
    # nets trained layer-wise also report the depth-k networks (validation set); solvers do not
    for r in data["rows"]:
        if r["method"] in ("ista", "fista"):
            assert r["depth_k_val_nmse_db"] is None
        else:
            assert isinstance(r["depth_k_val_nmse_db"], float)
    md = (out / "results.md").read_text()
    assert "LISTA-CPSS" in md and "noiseless" in md and "snr40" in md


def _final(payload, method, setting):
    return [r["nmse_db"] for r in payload["rows"] if r["method"] == method and r["setting"] == setting][-1]


def test_solver_rows_match_solvers(quick_run):
    """The ISTA/FISTA rows are k solver iterations on the regenerated test set."""
    _, payload = quick_run
    prob = SparseCodingProblem(m=QUICK.m, n=QUICK.n, p=QUICK.p, snr_db=None, seed=0, dtype=torch.float32)
    y, x = prob.sample(QUICK.n_test, torch.Generator().manual_seed(2))
    for name, solver in (("ista", ista), ("fista", fista)):
        xk = solver(y, prob.A, QUICK.lam, max_iter=QUICK.n_layers, tol=0.0).x
        expected = float(10 * torch.log10(((xk - x) ** 2).sum() / (x**2).sum()))
        assert _final(payload, name, "noiseless") == pytest.approx(expected, abs=1e-3)


def test_training_beats_the_algorithm_it_came_from(quick_run):
    """Each trained net is better at K layers than K iterations of ISTA (its initialisation)."""
    _, payload = quick_run
    for setting in QUICK.settings:
        ista_db = _final(payload, "ista", setting)
        for method in ("lista", "lista-cp", "lista-cpss", "alista", "ista-llt"):
            assert _final(payload, method, setting) < ista_db - 0.3, (method, setting)


def test_saved_models_reload_and_reproduce_rows(quick_run):
    out, payload = quick_run
    prob = SparseCodingProblem(m=QUICK.m, n=QUICK.n, p=QUICK.p, snr_db=40.0, seed=0, dtype=torch.float32)
    y, x = prob.sample(QUICK.n_test, torch.Generator().manual_seed(2))
    net = load_model(out / "snr40" / "alista" / "model")
    with torch.no_grad():
        got = float(10 * torch.log10(((net(y) - x) ** 2).sum() / (x**2).sum()))
    assert got == pytest.approx(_final(payload, "alista", "snr40"), abs=1e-4)


def test_rerun_resumes_from_checkpoints(quick_run, tmp_path):
    """A second run in the same folder resumes finished training instead of redoing it."""
    out, payload = quick_run
    ckpt = out / "noiseless" / "lista-cp" / "checkpoints" / "checkpoint.pt"
    mtime = ckpt.stat().st_mtime_ns
    again = reproduce(out, quick=True, progress=False, settings=("noiseless",), methods=("lista-cp",))
    assert _final(again, "lista-cp", "noiseless") == pytest.approx(_final(payload, "lista-cp", "noiseless"), abs=1e-6)
    assert ckpt.stat().st_mtime_ns == mtime  # nothing was trained again
    before = {(r["method"], r["setting"]): r for r in payload["timings"]}
    row = again["timings"][0]
    assert row["train_steps"] == before[("lista-cp", "noiseless")]["train_steps"]
    assert row["seconds"] == pytest.approx(before[("lista-cp", "noiseless")]["seconds"])


def test_unknown_method_or_setting(tmp_path):
    with pytest.raises(ValueError, match="unknown methods"):
        reproduce(tmp_path, quick=True, methods=("nope",))
    with pytest.raises(ValueError, match="unknown setting"):
        reproduce(tmp_path, quick=True, settings=("snr3",), methods=("ista",))
