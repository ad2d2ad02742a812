"""The SBL-family reproductions and demo, run in their quick forms."""

from __future__ import annotations

import json

import pytest
import torch

from unrolled.core.io import load_model
from unrolled.experiments.registry import Experiment
from unrolled.experiments.sbl_fig3 import QUICK, reproduce_fig3ab
from unrolled.experiments.sbl_registry import EXPERIMENTS
from unrolled.sbl.data import CorrelatedSparseProblem
from unrolled.sbl.metrics import strict_accuracy
from unrolled.sbl.screening import screened_sbl
from unrolled.sbl.solvers import sbl

QUIET = {"quick": True, "progress": False, "log": lambda *a: None}


def test_registry_entries():
    assert set(EXPERIMENTS) == {"sbl-fig3ab", "sbl-fig3ab-fresh", "sbl-fig3c", "sbl-fig3d", "sbl-photometric",
                                "sbl-timing"}
    for name, exp in EXPERIMENTS.items():
        assert isinstance(exp, Experiment) and exp.name == name and callable(exp.run)


@pytest.fixture(scope="module")
def fig3ab(tmp_path_factory):
    out = tmp_path_factory.mktemp("sbl-fig3ab")
    return out, EXPERIMENTS["sbl-fig3ab"].run(out, **QUIET)


def test_fig3ab_outputs(fig3ab):
    out, payload = fig3ab
    for name in ("results.json", "results.md", "accuracy_vs_d.png"):
        assert (out / name).is_file()
    data = json.loads((out / "results.json").read_text())
    assert {(r["method"], r["d"]) for r in data["rows"]} == {(m, d) for m in QUICK.methods for d in QUICK.d_values}
    for r in data["rows"]:
        assert 0.0 <= r["strict"] <= r["loose"] <= 1.0  # exact support in the top d => all in the top n
    md = (out / "results.md").read_text()
    assert "Strict accuracy" in md and "Loose accuracy" in md and "Paper" in md
    assert "softmax support loss" in md  # the training loss (NetSpec.loss) is reported
    # every trained net was saved and reloads to the same scores
    for method in ("gf-lstm", "maxsparsenet", "lista", "iht-net"):
        assert (out / "models" / method / "config.json").is_file()


def test_fig3ab_sbl_row_is_sbl(fig3ab):
    """The SBL row is SBL's strict accuracy on the regenerated test set (same seeds)."""
    _, payload = fig3ab
    d = QUICK.d_values[0]
    prob = CorrelatedSparseProblem(n=QUICK.n, m=QUICK.m, d=d, noise_std=QUICK.noise_std, seed=0)
    y, x = prob.sample(QUICK.n_trials, torch.Generator().manual_seed(1000 + d))
    res = sbl(y, prob.Phi, QUICK.sbl_lam, update="mackay", max_iter=2000, tol=1e-6)
    row = next(r for r in payload["rows"] if r["method"] == "sbl" and r["d"] == d)
    assert row["strict"] == pytest.approx(float(strict_accuracy(res.gamma, x)))
    assert row["strict"] > 0.5  # d/n = 0.2 is easy for SBL


def test_fig3ab_screened_row_is_sbl_on_the_nets_top_n(fig3ab):
    """The 'gf-lstm+sbl' row is screened SBL on the saved GF-LSTM's top-2n atoms, on the regenerated test set."""
    out, payload = fig3ab
    d = QUICK.d_values[0]
    prob = CorrelatedSparseProblem(n=QUICK.n, m=QUICK.m, d=d, noise_std=QUICK.noise_std, seed=0)
    y, x = prob.sample(QUICK.n_trials, torch.Generator().manual_seed(1000 + d))
    net = load_model(out / "models" / "gf-lstm")
    with torch.no_grad():
        net_scores = net(y.float()).double()
    res = screened_sbl(y, prob.Phi, net_scores, 2 * QUICK.n, QUICK.sbl_lam, max_iter=2000, tol=1e-6)
    row = next(r for r in payload["rows"] if r["method"] == "gf-lstm+sbl" and r["d"] == d)
    assert row["strict"] == pytest.approx(float(strict_accuracy(res.gamma, x)))
    assert set(payload["minus_sbl_strict"]) == {"gf-lstm", "gf-lstm+sbl"}


def test_fig3ab_screening_needs_its_net(tmp_path):
    with pytest.raises(ValueError, match="list it in methods"):
        reproduce_fig3ab(tmp_path, methods=("sbl", "gf-lstm+sbl"), **QUIET)


def test_saved_net_reloads(fig3ab):
    out, _ = fig3ab
    net = load_model(out / "models" / "gf-lstm")
    y = torch.randn(3, QUICK.n)
    assert net(y).shape == (3, QUICK.m)


@pytest.mark.parametrize("name, files", [
    ("sbl-fig3c", ("results.json", "results.md", "ablation.png")),
    ("sbl-fig3d", ("results.json", "results.md", "chamfer_vs_snr.png")),
    ("sbl-timing", ("results.json", "results.md", "timing.png")),
])
def test_other_reproductions(tmp_path, name, files):
    payload = EXPERIMENTS[name].run(tmp_path, **QUIET)
    for f in files:
        assert (tmp_path / f).is_file(), f
    assert payload["rows"]
    if name == "sbl-fig3d":
        for r in payload["rows"]:
            assert r["chamfer_sbl"] >= 0 and r["chamfer_gf_lstm"] >= 0 and r["chamfer_gf_lstm_sbl"] >= 0
        assert payload["rows"][-1]["chamfer_sbl"] < 5.0  # at 30 dB SBL locates the sources on a 6-degree grid
    if name == "sbl-timing":
        assert all(r["ratio_sbl_over_net"] > 0 for r in payload["rows"])
    if name == "sbl-fig3c":
        assert {r["method"] for r in payload["rows"]} == {"sbl", "gf-lstm", "lstm", "gf-gru-large"}


def test_photometric_reproduction(tmp_path):
    """Table 1 on the rendered scene: every method's error is the angular error of its normals on the regenerated
    scene; SBL beats plain least squares; nets and SBL are timed side by side."""
    from unrolled.experiments.sbl_photometric import QUICK as PQ
    from unrolled.sbl.photometric import (angular_error, light_directions, normals_from_corruption,
                                          nullspace_dictionary, render_sphere)

    payload = EXPERIMENTS["sbl-photometric"].run(tmp_path, **QUIET)
    for f in ("results.json", "results.md", f"normals_r{PQ.r_values[0]}.png"):
        assert (tmp_path / f).is_file(), f
    (row,) = payload["rows"]
    r = row["r"]
    scene = render_sphere(light_directions(r, max_polar_deg=PQ.max_polar_deg, generator=torch.Generator().manual_seed(r)),
                          PQ.size, specular=PQ.specular, shininess=PQ.shininess, noise_std=PQ.noise_std,
                          generator=torch.Generator().manual_seed(500 + r))
    ls = angular_error(normals_from_corruption(scene.images, scene.lights), scene.normals).mean()
    assert row["error_ls"] == pytest.approx(float(ls))
    Phi = nullspace_dictionary(scene.lights)
    res = sbl((Phi @ scene.images).T, Phi, PQ.noise_std ** 2, update="mackay", max_iter=PQ.sbl_max_iter, tol=1e-6)
    assert row["error_sbl"] == pytest.approx(float(angular_error(
        normals_from_corruption(scene.images, scene.lights, res.x.T), scene.normals).mean()))
    assert row["error_sbl"] < row["error_ls"]
    assert row["speedup_gf-lstm"] > 0 and row["speedup_maxsparsenet"] > 0
    assert (tmp_path / f"r{r}" / "models" / "gf-lstm" / "config.json").is_file()
    md = (tmp_path / "results.md").read_text()
    assert "rendered sphere" in md and "Paper" in md
    with pytest.raises(ValueError, match="unknown methods"):
        EXPERIMENTS["sbl-photometric"].run(tmp_path, methods=("sbl", "omp"), **QUIET)


def test_bad_d_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="larger than n"):
        reproduce_fig3ab(tmp_path, d_values=(4, 21), **QUIET)


def test_train_d_sets_the_training_range(tmp_path):
    reproduce_fig3ab(tmp_path, methods=("sbl", "gf-lstm"), train_d=(7, 8), **QUIET)
    meta = json.loads((tmp_path / "models" / "gf-lstm" / "config.json").read_text())["metadata"]
    assert meta["problem"]["d"] == [7, 8]  # the net trained on d in [7, 8], not on the range of d_values (4, 8)
    assert "trained once on d in [7, 8]" in (tmp_path / "results.md").read_text()
    assert json.loads((tmp_path / "results.json").read_text())["config"]["train_d"] == [7, 8]


def test_train_d_weights_set_the_training_frequencies(tmp_path):
    reproduce_fig3ab(tmp_path, methods=("sbl", "gf-lstm"), train_d=(7, 8), train_d_weights=(1, 3), **QUIET)
    meta = json.loads((tmp_path / "models" / "gf-lstm" / "config.json").read_text())["metadata"]
    assert meta["problem"]["d"] == [7, 8] and meta["problem"]["d_weights"] == [1.0, 3.0]
    assert "trained once on d in [7, 8] (d drawn with relative weights 1, 3)" in (tmp_path / "results.md").read_text()


def test_bad_train_d_weights_are_rejected_before_training(tmp_path):
    with pytest.raises(ValueError, match="one weight per d"):
        reproduce_fig3ab(tmp_path, methods=("sbl", "gf-lstm"), train_d=(7, 8), train_d_weights=(1, 1, 1), **QUIET)
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize("train_d, match", [((9, 7), "d_min <= d_max"), ((1, 21), "<= n = 20"), ((3,), "a pair")])
def test_bad_train_d_is_rejected(tmp_path, train_d, match):
    with pytest.raises(ValueError, match=match):
        reproduce_fig3ab(tmp_path, methods=("sbl", "gf-lstm"), train_d=train_d, **QUIET)


def test_demo(tmp_path, capsys):
    """The demo scores the pretrained GF-LSTM beside SBL (EM and MacKay) on fresh problems; no training."""
    from unrolled.experiments.sbl_demo import run_sbl_demo

    payload = run_sbl_demo(tmp_path, progress=False, d_values=(4,), n_trials=100)
    assert [r["method"] for r in payload["rows"]] == ["gf-lstm", "sbl-em", "sbl-mackay"]
    out = capsys.readouterr().out
    assert "GF-LSTM" in out and "EM" in out and "MacKay" in out and payload["verdicts"][0] in out
    net, em, mackay = payload["rows"]
    assert net["strict"] > mackay["strict"]  # the card: 0.951 vs 0.877 at d = 4 (4000 problems)
    for name in ("results.json", "results.md", "strict_accuracy.png"):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "strict_accuracy.png").stat().st_size < 300_000


def test_baselines_are_the_foundation_solvers():
    """The l1 and IHT rows use the sparse-coding family's FISTA and IHT (same iterates)."""
    from unrolled.experiments.sbl_common import scores
    from unrolled.sparse_coding.solvers import fista, iht

    prob = CorrelatedSparseProblem(d=4, noise_std=1e-4, seed=0)
    y, _ = prob.sample(16, torch.Generator().manual_seed(3))
    s_l1, stats = scores("l1", y, prob.Phi, 4, l1_lam=1e-3)
    torch.testing.assert_close(s_l1, fista(y, prob.Phi, 1e-3, max_iter=3000, tol=1e-5).x.abs())
    s_iht, _ = scores("iht", y, prob.Phi, 4)
    ref = iht(y, prob.Phi, 4, max_iter=1000, tol=1e-6).x
    torch.testing.assert_close(s_iht, ref.abs())
    assert ((s_iht != 0).sum(-1) <= 4).all() and 0 < stats["mean_iter"] <= 3000


def _quick_problem(d: int, seed: int = 0) -> CorrelatedSparseProblem:
    """The float32 training problem of the quick fig3ab run (dictionary ``seed``), at one ``d``."""
    return CorrelatedSparseProblem(n=QUICK.n, m=QUICK.m, d=(d, d), noise_std=QUICK.noise_std, seed=seed,
                                   dtype=torch.float32)


def _warm_start_spec(out, **kw):
    from dataclasses import replace
    return replace(QUICK.net, init_from=str(out), steps=1, lr=1e-12, data_seed=99, **kw)


def test_warm_start_continues_from_the_saved_net(fig3ab, tmp_path):
    """``NetSpec.init_from``: a run starts from the earlier run's weights (and whitening), not from a fresh net."""
    from unrolled.experiments.sbl_common import train_net
    out, _ = fig3ab
    d = QUICK.d_values[0]
    prob = _quick_problem(d)
    saved = load_model(out / "models" / "gf-lstm")
    net, res = train_net("gf-lstm", prob, _warm_start_spec(out), tmp_path, d_max=d, seed=0, device="cpu",
                         progress=False, log=lambda *a: None)
    assert res.n_steps == 1
    before, after = saved.state_dict(), net.state_dict()
    assert before.keys() == after.keys()
    for k in before:  # one step at lr 1e-12 moves nothing measurably
        torch.testing.assert_close(after[k], before[k], rtol=0, atol=1e-8)
    meta = json.loads((tmp_path / "models" / "gf-lstm" / "config.json").read_text())["metadata"]
    assert meta["init_from"] == str(out) and meta["steps"] == 1
    from unrolled.experiments.sbl_common import warm_start_note
    assert str(out) in warm_start_note(_warm_start_spec(out))[0] and warm_start_note(QUICK.net) == []


def test_warm_start_may_change_the_time_steps(fig3ab, tmp_path):
    """A recurrent net shares its weights across time steps: it may continue with more of them, and the
    continued net with ``n_steps`` = the saved one's is the saved net's function exactly."""
    from unrolled.experiments.sbl_common import train_net
    out, _ = fig3ab
    d = QUICK.d_values[0]
    prob = _quick_problem(d)
    saved = load_model(out / "models" / "gf-lstm")
    logs = []
    net, _ = train_net("gf-lstm", prob, _warm_start_spec(out, n_steps=2 * saved.n_layers), tmp_path, d_max=d,
                       seed=0, device="cpu", progress=False, log=logs.append)
    assert net.n_layers == 2 * saved.n_layers
    assert any(f"time steps {saved.n_layers} -> {2 * saved.n_layers}" in line for line in logs)
    y, _ = prob.sample(32, torch.Generator().manual_seed(5))
    with torch.no_grad():
        longer = net(y)
        net.active_layers = saved.n_layers
        torch.testing.assert_close(net(y), saved(y), rtol=0, atol=1e-5)
    assert (longer - saved(y)).abs().max() > 1e-4  # the extra steps do change the scores


def test_warm_start_rejects_a_mismatch(fig3ab, tmp_path):
    from unrolled.experiments.sbl_common import train_net
    out, _ = fig3ab
    d = QUICK.d_values[0]
    kw = dict(d_max=d, seed=0, device="cpu", progress=False, log=lambda *a: None)
    other_phi = _quick_problem(d, seed=1)
    with pytest.raises(ValueError, match="another data model"):
        train_net("gf-lstm", other_phi, _warm_start_spec(out), tmp_path, **kw)
    prob = _quick_problem(d)
    with pytest.raises(ValueError, match="does not match"):
        train_net("gf-lstm", prob, _warm_start_spec(out, n_steps=2, hidden=QUICK.net.hidden - 8), tmp_path, **kw)
    with pytest.raises(ValueError, match="does not match"):  # a stacked LSTM is not a GF-LSTM
        train_net("lstm", prob, _warm_start_spec(out, init_method="gf-lstm"), tmp_path, **kw)
    with pytest.raises(FileNotFoundError, match="no saved net"):
        train_net("gf-gru", prob, _warm_start_spec(out), tmp_path, **kw)


def test_netspec_loss_selects_the_training_loss(tmp_path):
    """``NetSpec.loss``: the net is trained (and validated) on the named support loss; unknown names fail."""
    from dataclasses import replace

    from unrolled.experiments.sbl_common import NetSpec, train_net
    from unrolled.sbl.metrics import pairwise_support_loss, support_loss
    with pytest.raises(ValueError, match="NetSpec.loss"):
        NetSpec(loss="hinge")
    d = QUICK.d_values[0]
    prob = _quick_problem(d)
    spec = replace(QUICK.net, steps=10, val_every=10, loss="pairwise")
    net, res = train_net("gf-lstm", prob, spec, tmp_path, d_max=d, seed=0, device="cpu", progress=False,
                         log=lambda *a: None)
    y, x = prob.sample(spec.n_val, torch.Generator().manual_seed(101))  # train_net's validation set
    with torch.no_grad():
        out = net(y)
    assert res.best_val == pytest.approx(float(pairwise_support_loss(out, x)), rel=1e-5)
    assert abs(res.best_val - float(support_loss(out, x))) > 1e-3


def test_warm_start_widens_a_narrower_net(fig3ab, tmp_path):
    """``init_method`` + a wider method: the '-large' net starts from the saved small net, widened, so with
    ``widen_noise=0`` (and a vanishing learning rate) it scores exactly as the small one did."""
    from unrolled.experiments.sbl_common import train_net, warm_start_note
    out, _ = fig3ab
    d = QUICK.d_values[0]
    prob = _quick_problem(d)
    saved = load_model(out / "models" / "gf-lstm")
    logs = []
    spec = _warm_start_spec(out, init_method="gf-lstm", widen_noise=0.0)
    net, _ = train_net("gf-lstm-large", prob, spec, tmp_path, d_max=d, seed=0, device="cpu", progress=False,
                       log=logs.append)
    assert net.hidden == 2 * saved.hidden
    assert any(f"widened from {saved.hidden} to {2 * saved.hidden}" in line for line in logs)
    y, _ = prob.sample(32, torch.Generator().manual_seed(6))
    with torch.no_grad():
        torch.testing.assert_close(net(y), saved(y), rtol=0, atol=1e-4)
    assert "`gf-lstm` net, widened" in warm_start_note(spec)[0]
    from unrolled.experiments.sbl_common import NetSpec
    with pytest.raises(ValueError, match="needs init_from"):
        NetSpec(init_method="gf-lstm")
    with pytest.raises(ValueError, match="does not match"):  # narrowing is not offered
        train_net("gf-lstm", prob, _warm_start_spec(out, hidden=QUICK.net.hidden // 2), tmp_path, d_max=d, seed=0,
                  device="cpu", progress=False, log=lambda *a: None)


def test_warm_start_adds_model_feedback(fig3ab, tmp_path):
    """A '-mf' method started from a saved plain net gets the SBL E-step inputs with zero weights: it scores
    exactly as the saved net did; the reverse (dropping the feedback) is refused."""
    from unrolled.experiments.sbl_common import label, recurrent_spec, train_net
    out, _ = fig3ab
    d = QUICK.d_values[0]
    prob = _quick_problem(d)
    saved = load_model(out / "models" / "gf-lstm")
    logs = []
    net, _ = train_net("gf-lstm-mf", prob, _warm_start_spec(out, init_method="gf-lstm"), tmp_path, d_max=d,
                       seed=0, device="cpu", progress=False, log=logs.append)
    assert net.model_feedback and any("E-step model feedback added" in line for line in logs)
    torch.testing.assert_close(net.mf_Phi, prob.Phi)
    y, _ = prob.sample(32, torch.Generator().manual_seed(7))
    with torch.no_grad():
        torch.testing.assert_close(net(y), saved(y), rtol=0, atol=1e-5)
    assert load_model(tmp_path / "models" / "gf-lstm-mf").model_feedback
    with pytest.raises(ValueError, match="does not match"):
        train_net("gf-lstm", prob, _warm_start_spec(tmp_path, init_method="gf-lstm-mf"), tmp_path / "b", d_max=d,
                  seed=0, device="cpu", progress=False, log=lambda *a: None)
    assert recurrent_spec("gf-lstm-large-mf") == ("lstm", True, "large", True)
    assert recurrent_spec("gru") == ("gru", False, "small", False)
    assert label("gf-lstm-large-mf+sbl") == "GF-LSTM 4x + E-step feedback top-k + SBL"


def test_zero_steps_evaluates_the_saved_nets_as_they_are(fig3ab, tmp_path, monkeypatch):
    """``steps=0`` with ``init_from``: no training, the saved nets' scores on the run's test set, so the same
    rows as the run that saved them; scoring in chunks (here of 10 problems) changes no row either."""
    import unrolled.experiments.sbl_fig3 as fig3
    from unrolled.experiments.sbl_common import NetSpec
    out, payload = fig3ab
    monkeypatch.setattr(fig3, "EVAL_CHUNK", 10)
    methods = ("sbl", "gf-lstm", "gf-lstm+sbl")
    logs = []
    again = reproduce_fig3ab(tmp_path, quick=True, progress=False, log=logs.append, methods=methods, steps=0,
                             init_from=str(out))
    assert not (tmp_path / "models" / "gf-lstm").exists()  # evaluated, not saved again
    assert any("as saved (steps=0" in line for line in logs)
    assert again["training"]["gf-lstm"]["steps"] == 0
    assert "Evaluation only" in (tmp_path / "results.md").read_text()
    old = {(r["method"], r["d"]): r for r in payload["rows"]}
    for r in again["rows"]:
        ref = old[(r["method"], r["d"])]
        assert (r["strict"], r["loose"]) == (ref["strict"], ref["loose"])
        assert r["rel_error_ls"] == pytest.approx(ref["rel_error_ls"], rel=1e-9)
        if "mean_iter" in r:  # per-chunk solver statistics, weighted back to the whole test set
            assert r["mean_iter"] == pytest.approx(ref["mean_iter"], rel=1e-12)
            assert r["converged"] == pytest.approx(ref["converged"], rel=1e-12)
    for zero in ({"steps": 0}, {"steps_baselines": 0}):
        with pytest.raises(ValueError, match="needs init_from"):
            NetSpec(**zero)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        NetSpec(steps=-1, init_from=str(out))
