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


# --------------------------------------------------------------------------
# lista-papers: the papers' recipe (patience per stage, wall-clock budget)
# --------------------------------------------------------------------------


def test_papers_recipe_quick_run(tmp_path):
    from unrolled.experiments.lista import PAPERS, PAPERS_QUICK, reproduce_papers

    assert PAPERS.n_val == 1000 and PAPERS.n_test == 1000 and PAPERS.batch_size == 64
    assert PAPERS.lr == 5e-4 and PAPERS.decays == (0.2, 0.02) and PAPERS.patience is not None
    assert PAPERS.time_budget == 3 * 3600.0 and set(PAPERS.train_order) == {
        "lista", "lista-cp", "lista-cpss", "alista", "ista-llt"}
    payload = reproduce_papers(tmp_path, quick=True, progress=False, settings=("noiseless",),
                               methods=("ista", "lista-cp", "alista"))
    assert payload["experiment"] == "lista-papers"
    for name in ("results.json", "results.md", "nmse_vs_layer.png", "learning_curves.png"):
        assert (tmp_path / name).is_file(), name
    timings = {t["method"]: t for t in payload["timings"]}
    for net in ("lista-cp", "alista"):
        t = timings[net]
        assert not t["time_limited"] and t["stages_skipped"] == 0
        assert len(t["stage_steps"]) == 3 * PAPERS_QUICK.n_layers
        assert sum(t["stage_steps"]) == t["train_steps"]
        assert all(1 <= s <= PAPERS_QUICK.steps_per_stage for s in t["stage_steps"])
        # every stage ended by its patience or at its step cap (the quick nets still improve at every
        # validation: patience itself is tested with the Trainer)
        assert (t["stages_stopped_early"] + t["stages_at_step_cap"] + t["stages_out_of_time_share"]
                == 3 * PAPERS_QUICK.n_layers)
        assert _final(payload, net, "noiseless") < _final(payload, "ista", "noiseless") - 0.3
    # the cheapest net trains first and gets its share of the budget; the next one the budget left over
    assert timings["alista"]["time_limit_s"] == pytest.approx(PAPERS_QUICK.time_budget / 2)
    assert timings["lista-cp"]["time_limit_s"] == pytest.approx(
        PAPERS_QUICK.time_budget - timings["alista"]["seconds"])
    md = (tmp_path / "results.md").read_text()
    assert "stages stopped by patience" in md and "LISTA-CP" in md
    # re-running the same call resumes the finished checkpoints: same numbers, nothing retrained
    again = reproduce_papers(tmp_path, quick=True, progress=False, settings=("noiseless",),
                             methods=("ista", "lista-cp", "alista"))
    assert again["rows"] == payload["rows"]
    assert [t.get("train_steps") for t in again["timings"]] == [t.get("train_steps") for t in payload["timings"]]


def test_papers_recipe_publishes_what_a_spent_budget_reached(tmp_path):
    from unrolled.experiments.lista import PAPERS_QUICK, reproduce_papers

    payload = reproduce_papers(tmp_path, quick=True, progress=False, settings=("noiseless",),
                               methods=("ista", "ista-llt"), time_budget=1e-6)
    t = next(t for t in payload["timings"] if t["method"] == "ista-llt")
    # its first stage's share of the budget is spent by its first validation; the net's, too
    assert t["time_limited"] and t["train_steps"] == PAPERS_QUICK.val_every
    assert t["stages_skipped"] == 3 * PAPERS_QUICK.n_layers - 1
    rows = [r for r in payload["rows"] if r["method"] == "ista-llt"]
    assert [r["layer"] for r in rows] == list(range(1, PAPERS_QUICK.n_layers + 1))  # every layer evaluated
    assert all(r["depth_k_val_nmse_db"] is None for r in rows[1:])  # depths never trained
    assert "| ISTA-LLT |" in (tmp_path / "results.md").read_text()
    with pytest.raises(ValueError, match="train_order"):
        reproduce_papers(tmp_path, quick=True, train_order=("nope",))
