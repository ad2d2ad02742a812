#!/usr/bin/env python
"""Mutation check: do the tests catch plausible bugs in the numerical code?

Each entry of :data:`MUTATIONS` is a realistic bug (dropped transpose, swapped gates, off-by-one, wrong sign,
missing normalisation) written as an exact ``old`` snippet of a file under ``src/unrolled`` (it must occur
exactly once there), its ``new`` replacement, a one-line description and the pytest selection that should catch
it. For every mutation the script copies ``src/`` to a temporary folder, applies the mutation to the copy, runs
the selection against it (``PYTHONPATH`` pointing at the copy, ``-x -q``, one thread, a per-mutation timeout) and
records whether it was caught (a test failed or errored, or the run timed out) or survived. The real tree is
never written to.

Usage::

    OMP_NUM_THREADS=1 python scripts/mutation_check.py --out /tmp/mutation       # all, writes .json and .md
    OMP_NUM_THREADS=1 python scripts/mutation_check.py --only gru-reset-gate-dropped --only lstm-gates-swapped
    python scripts/mutation_check.py --baseline    # the selections must pass on the unmutated code first
    python scripts/mutation_check.py --list

``tests/test_mutation_set.py`` checks (without running anything) that every ``old`` snippet still occurs exactly
once, so the set does not rot silently when the code changes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "unrolled"


@dataclass(frozen=True)
class Mutation:
    id: str
    file: str  # relative to src/unrolled
    old: str
    new: str
    description: str
    tests: tuple[str, ...]  # pytest arguments (node ids, files, "-k" expressions)


def M(id, file, old, new, description, *tests) -> Mutation:
    return Mutation(id, file, old, new, description, tuple(tests))


T = "tests/"
MUTATIONS: list[Mutation] = [
    # ------------------------------------------------------------------ core
    M("prox-soft-threshold-no-clamp", "core/prox.py",
      "return torch.sign(x) * torch.relu(x.abs() - theta)",
      "return torch.sign(x) * (x.abs() - theta)",
      "soft threshold without the max(., 0): small entries change sign instead of vanishing",
      T + "core/test_prox.py"),
    M("solve-frozen-rows-recounted", "core/solve.py",
      "done = (crit < tol) & live",
      "done = crit < tol",
      "solve loop: problems already frozen are counted (and overwritten) again as newly converged",
      T + "sparse_coding/test_solvers.py", "-k", "frozen or history or kkt"),
    M("unrolled-net-layer-index-shift", "core/unrolled_net.py",
      "state = it.step(k, state, data, self.layer_values(k))\n            yield",
      "state = it.step(k, state, data, self.layer_values(max(k - 1, 0)))\n            yield",
      "UnrolledNet.iterate: layer k runs with the parameters of layer k-1",
      T + "sparse_coding/test_nets.py", "-k", "layer_parameters or untrained or active_layers"),
    M("trainer-patience-off-by-one", "core/train.py",
      "patience_out = stage.patience is not None and self.bad_validations >= stage.patience",
      "patience_out = stage.patience is not None and self.bad_validations > stage.patience",
      "early stopping one validation late (> instead of >=)",
      T + "core/test_train_reliability.py", "-k", "patience"),
    M("trainer-linear-schedule-reversed", "core/train.py",
      "return stage.lr * (1.0 - frac)",
      "return stage.lr * frac",
      "'linear' schedule ramps up from 0 instead of decaying to 0",
      T + "core/test_train_reliability.py", "-k", "schedule"),
    M("trainer-cosine-schedule-half-period", "core/train.py",
      "return stage.lr * 0.5 * (1.0 + math.cos(math.pi * frac))",
      "return stage.lr * 0.5 * (1.0 + math.cos(0.5 * math.pi * frac))",
      "'cosine' schedule over half a period (ends at lr/2, not 0)",
      T + "core/test_train_reliability.py", "-k", "schedule"),
    M("trainer-new-layer-stage-wrong-layer", "core/train.py",
      "return list(self.model.layer_parameters(stage.active_layers - 1))",
      "return list(self.model.layer_parameters(-1))",
      "a 'new layer' stage trains the net's last layer, not the newest active one",
      T + "core/test_train.py", "-k", "layerwise"),
    M("layerwise-last-layer-missing", "core/stages.py",
      "for k in range(first_layer, n_layers + 1):",
      "for k in range(first_layer, n_layers):",
      "layer-wise schedule stops one layer short",
      T + "core/test_train.py", "-k", "layerwise"),
    M("io-only-all-nan-refused", "core/io.py",
      "and not torch.isfinite(t).all()]",
      "and torch.isnan(t).all()]",
      "load_model refuses only all-NaN tensors (a single NaN or inf loads silently)",
      T + "core/test_io.py"),
    M("ekf-innovation-without-covariance", "core/ekf.py",
      "S = S + Hb @ G",
      "S = S + Hb @ Hb.T",
      "EKF innovation covariance R I + H^T H (P dropped): wrong Kalman gain",
      T + "core/test_ekf.py", "-k", "not cuda"),
    M("ekf-covariance-update-sign", "core/ekf.py",
      "P_new = P - G @ torch.cholesky_solve(G.T, L)",
      "P_new = P + G @ torch.cholesky_solve(G.T, L)",
      "EKF covariance update P + K H^T P instead of P - K H^T P",
      T + "core/test_ekf.py", "-k", "not cuda"),
    # ------------------------------------------------------------------ sparse coding
    M("fista-momentum-off-by-one", "sparse_coding/iteration.py",
      "return (_T[k - 1] - 1.0) / _T[k]",
      "return (_T[k] - 1.0) / _T[k]",
      "FISTA extrapolation (t_{k+1} - 1)/t_{k+1} instead of (t_k - 1)/t_{k+1}",
      T + "sparse_coding/test_solvers.py", "-k", "fista or sklearn or kkt"),
    M("lista-W2-transpose-dropped", "sparse_coding/iteration.py",
      'x @ params["W2"].T, params)}',
      'x @ params["W2"], params)}',
      "LISTA recurrent weight applied untransposed (invisible at the symmetric ISTA init)",
      T + "sparse_coding/test_mutation_lista_forward.py", T + "sparse_coding/test_nets.py"),
    M("alista-weight-no-gram-inverse", "sparse_coding/alista_weight.py",
      "g_inv_a = torch.linalg.solve(gram, A)",
      "g_inv_a = A",
      "ALISTA analytic weight without (A A^T)^{-1}: W = a_i / |a_i|^2",
      T + "sparse_coding/test_nets.py", "-k", "analytic or alista"),
    M("support-fractions-off-by-one", "sparse_coding/nets.py",
      "return [min((k + 1) * step, maximum) for k in range(n_layers)]",
      "return [min(k * step, maximum) for k in range(n_layers)]",
      "support-selection percentage p_k = (k-1) * step: the first layer selects nothing",
      T + "sparse_coding/test_nets.py", "-k", "support or cpss or alista"),
    M("support-selection-ignores-threshold", "core/prox.py",
      "return torch.where(mask & (x.abs() > theta), x, shrunk)",
      "return torch.where(mask, x, shrunk)",
      "support selection passes top-p entries through even below the threshold",
      T + "core/test_prox.py", "-k", "support_selection"),
    # ------------------------------------------------------------------ graph
    M("graph-admm-constraint-sign", "graph/iteration.py",
      "mu = _plus(_times(c1, mu), c2, g @ M - m)",
      "mu = _plus(_times(c1, mu), c2, g @ M + m)",
      "graph ADMM: multiplier of the constraint M^T g = m updated with the wrong sign of m",
      T + "graph/test_graph_solvers.py", "-k", "not cuda"),
    M("graph-Zt-transpose-dropped", "graph/operators.py",
      "return ((V.T @ W) * Yt).sum(dim=-1)",
      "return ((V @ W) * Yt).sum(dim=-1)",
      "graph operator Z^T applied with V instead of V^T",
      T + "graph/test_graph_solvers.py", "-k", "not cuda"),
    M("slognet-woodbury-rho-inverted", "graph/operators.py",
      "Mbar = G + torch.eye(M.shape[-1], dtype=z.dtype, device=z.device) / rho2",
      "Mbar = G + torch.eye(M.shape[-1], dtype=z.dtype, device=z.device) * rho2",
      "SLoG-Net filter solve (d > 1 Woodbury): rho2 I instead of I / rho2",
      T + "graph/test_graph_solvers.py", T + "graph/test_graph_nets.py", "-k",
      "filter or from_algorithm or batched"),
    # ------------------------------------------------------------------ separation
    M("palm-a-update-uses-old-s", "separation/iteration.py",
      'A = self.update_a(X, state["A"], S, params',
      'A = self.update_a(X, state["A"], state["S"], params',
      "PALM A-update with the previous S (Jacobi instead of Gauss-Seidel)",
      T + "separation/test_mutation_palm_iterates.py", T + "separation/test_solvers.py", "-k",
      "eq6 or fixed_point or lasso or least_squares or decreases"),
    M("palm-a-projection-dropped", "separation/iteration.py",
      "return project_columns_unit_ball(A - gamma * ((A @ S - X) @ S.transpose(-2, -1)))",
      "return A - gamma * ((A @ S - X) @ S.transpose(-2, -1))",
      "PALM / LPALM A-update without the projection onto the unit-ball columns",
      T + "separation/test_solvers.py", "-k", "fixed_point or least_squares or decreases"),
    M("lpalm-a-step-scale-dropped", "separation/iteration.py",
      'return a_gradient_step(X, A, S, params["gamma_a"] * scale)',
      'return a_gradient_step(X, A, S, params["gamma_a"])',
      "LPALM ignores a_step_scale (learned A-step not rescaled with the number of samples)",
      T + "separation/test_nets.py", "-k", "a_step_scale or from_algorithm"),
    M("lpalm-lista-W2-transposed", "separation/iteration.py",
      'params["W1"] @ X + params["W2"] @ S',
      'params["W1"] @ X + params["W2"].T @ S',
      "LPALM LISTA S-update with W2^T (invisible at the symmetric PALM init)",
      T + "separation/test_mutation_lpalm_recursions.py", T + "separation/test_nets.py"),
    # ------------------------------------------------------------------ sbl
    M("sbl-em-posterior-variance", "sbl/iteration.py",
      "(gamma - gamma.pow(2) * q).clamp_min(0.0)",
      "(gamma - gamma * q).clamp_min(0.0)",
      "SBL EM update with the posterior variance gamma - gamma q instead of gamma - gamma^2 q",
      T + "sbl/test_solvers.py", "-k", "em_fixed_point or sklearn or exact_support"),
    M("sbl-mackay-denominator", "sbl/iteration.py",
      "denom = gamma * q",
      "denom = q",
      "SBL MacKay update |mu|^2 / q instead of |mu|^2 / (gamma q)",
      T + "sbl/test_solvers.py", "-k", "sklearn or exact_support or mackay"),
    M("sbl-kernel-mackay-denominator", "sbl/sbl_kernel.py",
      "denom = g * q[l]",
      "denom = q[l]",
      "numba SBL kernel: MacKay update |mu|^2 / q instead of |mu|^2 / (gamma q)",
      T + "sbl/test_sbl_kernel.py"),
    M("sbl-kernel-em-posterior-variance", "sbl/sbl_kernel.py",
      "r = g - g * g * q[l]",
      "r = g - g * q[l]",
      "numba SBL kernel: EM posterior variance gamma - gamma q instead of gamma - gamma^2 q",
      T + "sbl/test_sbl_kernel.py"),
    M("sbl-kernel-forward-substitution-transposed", "sbl/sbl_kernel.py",
      "v[r] -= U[i, r] * vi",
      "v[r] -= U[r, i] * vi",
      "numba SBL kernel: U^{-T} y with the (unused, non-zero) lower triangle of the factor",
      T + "sbl/test_sbl_kernel.py"),
    M("sbl-kernel-history-tail-dropped", "sbl/sbl_kernel.py",
      "obj_tail[it] += cost",
      "obj_tail[it] += 0.0",
      "numba SBL kernel: stopped problems left out of the batch-mean objective of later iterations",
      T + "sbl/test_sbl_kernel.py"),
    M("gru-reset-gate-dropped", "sbl/recurrent.py",
      "cand = torch.tanh(self.cand_in(x) + r_g * rec)",
      "cand = torch.tanh(self.cand_in(x) + rec)",
      "GRU candidate without the reset gate",
      T + "sbl/test_recurrent_cells.py", T + "sbl/test_nets.py"),
    M("lstm-gates-swapped", "sbl/recurrent.py",
      "i_g, f_g, o_g = gates.chunk(3, dim=-1)",
      "f_g, i_g, o_g = gates.chunk(3, dim=-1)",
      "LSTM input and forget gates swapped",
      T + "sbl/test_recurrent_cells.py", T + "sbl/test_nets.py"),
    # ------------------------------------------------------------------ classification
    M("irls-weights-not-square-rooted", "classification/layers.py",
      "sqrt_lam = torch.exp(0.5 * (F_.logsigmoid(margin) + F_.logsigmoid(-margin)))",
      "sqrt_lam = torch.exp(F_.logsigmoid(margin) + F_.logsigmoid(-margin))",
      "IRLS weighted system with Lambda instead of Lambda^{1/2} (Newton system weighted twice)",
      T + "classification/test_solvers.py", "-k", "newton or liblinear"),
    M("deepirls-layer-index", "classification/nets.py",
      "return [p[k * self.i_max + i] for i in range(self.i_max)]",
      "return [p[k + i] for i in range(self.i_max)]",
      "DeepIRLSADMMNet reads inner layer i of outer layer k at index k + i instead of k * i_max + i",
      T + "classification/test_mutation_layer_ownership.py", T + "classification/test_nets.py", "-k", "not cuda"),
    M("irls-admm-dual-sign", "classification/layers.py",
      "return u + C - z",
      "return u + z - C",
      "IRLS-ADMM scaled dual update with the residual's sign flipped",
      T + "classification/test_solvers.py", "-k", "liblinear or kkt"),
    # ------------------------------------------------------------------ imaging
    M("admm-csnet-multiplier-sign", "imaging/admm.py",
      'return {"x": x, "z": z_new, "alpha": alpha + eta[:, None, None] * (Dx - z_new)}',
      'return {"x": x, "z": z_new, "alpha": alpha + eta[:, None, None] * (z_new - Dx)}',
      "ADMM-CSNet / ADMM-CS multiplier update with the residual's sign flipped",
      T + "imaging/test_admm_cs.py", "-k", "cvxpy or optimality"),
    M("fourier-adjoint-normalisation", "imaging/operators.py",
      'return torch.fft.ifft2(self._mask(y) * y, norm="ortho")',
      "return torch.fft.ifft2(self._mask(y) * y)",
      "SubsampledFourier adjoint with the 'backward' inverse FFT (1/N instead of 1/sqrt(N))",
      T + "imaging/test_operators.py", "-k", "adjoint"),
    M("finite-difference-adjoint-roll", "imaging/operators.py",
      "return torch.roll(gx, 1, dims=-1) - gx + torch.roll(gy, 1, dims=-2) - gy",
      "return torch.roll(gx, -1, dims=-1) - gx + torch.roll(gy, 1, dims=-2) - gy",
      "finite-difference adjoint rolls the x-gradient the wrong way",
      T + "imaging/test_operators.py", "-k", "adjoint"),
    M("dublid-kernel-not-normalised", "imaging/hqs.py",
      "return torch.where(ok, k / torch.where(ok, total, torch.ones_like(total)), previous)",
      "return torch.where(ok, k, previous)",
      "DUBLID / HQS kernel step without the unit-sum normalisation",
      T + "imaging/test_hqs.py", "-k", "kernel_step or recovers"),
    # ------------------------------------------------------------------ lowrank
    M("svt-hard-threshold", "lowrank/prox.py",
      "f = torch.relu(s - t)",
      "f = s * (s > t)",
      "SVT keeps the singular values above tau unshrunk (hard instead of soft thresholding)",
      T + "lowrank/test_prox.py", "-k", "not gradient"),
    M("l12-prox-columns", "lowrank/prox.py",
      "squares = abs2(X).sum(-1, keepdim=True)",
      "squares = abs2(X).sum(-2, keepdim=True)",
      "l1,2 prox shrinks by column norms instead of row norms",
      T + "lowrank/test_prox.py", "-k", "not gradient"),
    M("corona-complex-filter-conjugated", "lowrank/operators.py",
      "torch.stack([wr, -wi], dim=2), torch.stack([wi, wr], dim=2)",
      "torch.stack([wr, wi], dim=2), torch.stack([-wi, wr], dim=2)",
      "CORONA complex convolution applies the conjugate filters",
      T + "lowrank/test_mutation_mix_complex.py", T + "lowrank/test_nets.py", "-k", "complex or phase"),
    # ------------------------------------------------------------------ nmf
    M("nmf-mm-exponent-dropped", "nmf/iteration.py",
      "return H * (ratio if self.gamma == 1 else ratio ** self.gamma)",
      "return H * ratio",
      "NMF H-update without the MM exponent gamma(beta) (beta outside [1, 2])",
      T + "nmf/test_solvers.py", "-k", "sklearn or increases"),
    M("nmf-W-normalisation-no-rescale", "nmf/iteration.py",
      "return W, H * norms.transpose(-1, -2)",
      "return W, H",
      "NMF W normalisation without rescaling H (W H changes at every step)",
      T + "nmf/test_solvers.py", "-k", "sklearn or increases or low_rank"),
    # ------------------------------------------------------------------ segmentation
    M("meanfield-compatibility-sign", "segmentation/iteration.py",
      'return {"logits": data["unary"] - self.pairwise(Q, data, params)}',
      'return {"logits": data["unary"] + self.pairwise(Q, data, params)}',
      "mean-field update adds the compatibility-weighted messages instead of subtracting them",
      T + "segmentation/test_meanfield.py", "-k", "naive or free_energy"),
    M("meanfield-self-message", "segmentation/filtering.py",
      "return (summed - flat).reshape(B, L, H, W)",
      "return summed.reshape(B, L, H, W)",
      "mean-field messages include the pixel itself (k(f_i, f_i) Q_i not removed)",
      T + "segmentation/test_filtering.py", T + "segmentation/test_meanfield.py", "-k", "naive or exclude"),
]


def check_snippets(mutations: list[Mutation] = MUTATIONS, package: Path = PACKAGE) -> list[str]:
    """Problems with the set: ids not unique, files missing, ``old`` not occurring exactly once, no-op mutations."""
    problems = []
    seen = set()
    for m in mutations:
        if m.id in seen:
            problems.append(f"{m.id}: duplicate id")
        seen.add(m.id)
        path = package / m.file
        if not path.is_file():
            problems.append(f"{m.id}: {m.file} does not exist")
            continue
        count = path.read_text().count(m.old)
        if count != 1:
            problems.append(f"{m.id}: the old snippet occurs {count} times in {m.file} (must be exactly once)")
        if m.old == m.new:
            problems.append(f"{m.id}: new equals old")
        if not m.tests:
            problems.append(f"{m.id}: no test selection")
    return problems


_FAILED = re.compile(r"^(FAILED|ERROR) (\S+)")


def _run_pytest(src: Path, tests: tuple[str, ...], timeout: float) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"rc": None, "seconds": round(time.perf_counter() - t0, 1), "failing": None, "tail": "timeout"}
    failing = None
    for line in proc.stdout.splitlines():
        hit = _FAILED.match(line)
        if hit:
            failing = hit.group(2)
            break
    summary = [ln for ln in proc.stdout.splitlines() if ln.strip()][-1:] or [""]
    return {"rc": proc.returncode, "seconds": round(time.perf_counter() - t0, 1), "failing": failing,
            "tail": summary[0][-200:]}


def run_mutation(m: Mutation, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"mut-{m.id}-") as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        path = src / "unrolled" / m.file
        text = path.read_text()
        if text.count(m.old) != 1:
            return {"id": m.id, "status": "invalid", "failing": None, "seconds": 0.0,
                    "detail": f"old snippet occurs {text.count(m.old)} times"}
        path.write_text(text.replace(m.old, m.new))
        res = _run_pytest(src, m.tests, timeout)
    if res["rc"] is None:
        status = "caught (timeout)"
    elif res["rc"] == 0:
        status = "survived"
    elif res["rc"] in (1, 2, 3):  # test failures, collection/import errors, internal errors
        status = "caught"
    else:  # 4: usage error, 5: no tests collected
        status = f"invalid (pytest rc {res['rc']})"
    return {"id": m.id, "status": status, "failing": res["failing"], "seconds": res["seconds"],
            "detail": res["tail"]}


def baseline(mutations: list[Mutation], timeout: float) -> list[dict]:
    """Each selection on the unmutated code (it must pass, or a 'caught' would mean nothing)."""
    out = []
    for m in mutations:
        res = _run_pytest(SRC, m.tests, timeout)
        ok = res["rc"] == 0
        out.append({"id": m.id, "status": "passes" if ok else f"FAILS (rc {res['rc']})", "failing": res["failing"],
                    "seconds": res["seconds"], "detail": res["tail"]})
        print(f"{m.id:40s} {out[-1]['status']:12s} {res['seconds']:6.1f}s  {res['tail']}", flush=True)
    return out


def markdown(rows: list[dict], mutations: dict[str, Mutation], title: str) -> str:
    caught = sum(r["status"].startswith("caught") for r in rows)
    lines = [f"# {title}", "", f"caught {caught} / {len(rows)}", "",
             "| id | file | mutation | status | first failing test | s |", "|---|---|---|---|---|---|"]
    for r in rows:
        m = mutations[r["id"]]
        lines.append(f"| `{r['id']}` | `{m.file}` | {m.description.replace('|', '&#124;')} | {r['status']} | "
                     f"{'`' + r['failing'] + '`' if r['failing'] else ''} | {r['seconds']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", default=[], metavar="ID", help="run only this mutation (repeatable)")
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds per mutation (default 240)")
    ap.add_argument("--out", type=Path, help="write OUT.json and OUT.md")
    ap.add_argument("--baseline", action="store_true", help="run the selections on the unmutated code")
    ap.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = ap.parse_args(argv)

    by_id = {m.id: m for m in MUTATIONS}
    unknown = [i for i in args.only if i not in by_id]
    if unknown:
        ap.error(f"unknown mutation id(s): {unknown}")
    chosen = [by_id[i] for i in args.only] if args.only else MUTATIONS
    if args.list:
        for m in chosen:
            print(f"{m.id:40s} {m.file:32s} {m.description}")
        return 0
    problems = check_snippets(chosen)
    if problems:
        print("the mutation set does not match the code:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    if args.baseline:
        rows = baseline(chosen, args.timeout)
        bad = [r for r in rows if r["status"] != "passes"]
        print(f"\n{len(rows) - len(bad)} / {len(rows)} selections pass on the unmutated code "
              f"({time.perf_counter() - t0:.0f} s)")
        return 1 if bad else 0
    rows = []
    for m in chosen:
        r = run_mutation(m, args.timeout)
        rows.append(r)
        print(f"{m.id:40s} {r['status']:18s} {r['seconds']:6.1f}s  {r['failing'] or r['detail']}", flush=True)
    caught = sum(r["status"].startswith("caught") for r in rows)
    print(f"\ncaught {caught} / {len(rows)} ({time.perf_counter() - t0:.0f} s, OMP_NUM_THREADS=1)")
    survived = [r["id"] for r in rows if r["status"] == "survived"]
    if survived:
        print("survived: " + " ".join(survived))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"caught": caught, "total": len(rows), "rows": rows,
                   "mutations": [asdict(by_id[r["id"]]) for r in rows]}
        args.out.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(markdown(rows, by_id, "Mutation check"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
