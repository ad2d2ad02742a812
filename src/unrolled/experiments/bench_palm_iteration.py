r"""Per-iteration cost of :func:`~unrolled.separation.solvers.palm` against the bare matrix products it must do.

One PALM iteration (Eq. 6 of the LPALM paper, both updates explicit) on ``B`` mixtures
``X`` ``(B, m, t)`` with ``A`` ``(B, m, n)``, ``S`` ``(B, n, t)`` written with the residual
:math:`AS - X` needs four batched ``m n t`` products: :math:`AS` and :math:`A^\top(AS - X)` for
the S-step, :math:`AS` again (new ``S``) and :math:`(AS - X)S^\top` for the A-step. Its step sizes need :math:`\|A^\top A\|_2` and
:math:`\|SS^\top\|_2` as well (two Gram products and two small ``n x n`` symmetric eigenvalue
problems). The benchmark times, in one process, ``K`` iterations of

* ``palm`` (``tol = 0``: exactly ``K`` iterations, no early stop), in its default form (the gradients
  from the ``n x n`` Gram matrices, :math:`A^\top(AS - X) = (A^\top A)S - A^\top X` and
  :math:`(AS - X)S^\top = A(SS^\top) - XS^\top`, when ``n < 2m``) and with ``gram=False`` (the residual
  form the LPALM nets unroll),
* the four bare products of the residual form alone (``torch.bmm``-class ``@``, same shapes and dtype),
* the products of the Gram form alone (:math:`A^\top A`, :math:`A^\top X`, :math:`(A^\top A)S`,
  :math:`SS^\top`, :math:`XS^\top`, :math:`A(SS^\top)`: two of ``m n t`` flops and three of ``n^2 t``),
* the four products plus the two Grams and ``eigvalsh`` (everything arithmetic PALM does, with
  the soft threshold and the column projection),

and reports seconds per iteration and the ratio ``bare time / palm time`` (1 would mean PALM
costs nothing beyond its products; below 1 is its overhead). Accuracy match: the bare loop with
thresholding and projection is PALM itself, so its final ``A``, ``S`` must equal ``palm``'s;
the table states the max difference.

Examples
--------
::

    unrolled benchmark palm-per-iteration            # B = 64 mixtures, t = 500, K = 100 iterations (~1 min)
    unrolled benchmark palm-per-iteration --quick    # B = 16, K = 50
"""

from __future__ import annotations

import time

import torch

from unrolled.experiments.bench_cli import machine_info, ratio_row, sync, write_benchmark
from unrolled.experiments.report import markdown_table as report_table
from unrolled.separation.data import gennorm_sources, mix, mixing_matrices
from unrolled.separation.iteration import a_step, lipschitz_a, lipschitz_s, s_step
from unrolled.separation.solvers import palm, pinv_init


def _bare_products(X, A, S, K: int) -> None:
    """The four products of K iterations, nothing else (S, A kept fixed so no data-dependent shortcut)."""
    At = A.transpose(-2, -1)
    for _ in range(K):
        R = A @ S - X
        _ = At @ R
        R = A @ S - X
        _ = R @ S.transpose(-2, -1)


def _gram_products(X, A, S, K: int) -> None:
    """The products of K iterations of the Gram form (S, A kept fixed), the two Grams included."""
    At, St = A.transpose(-2, -1), S.transpose(-2, -1)
    for _ in range(K):
        AtA = At @ A
        _ = AtA @ S - At @ X
        SSt = S @ St
        _ = A @ SSt - X @ St


def _manual_palm(X, A, S, lam: float, K: int):
    """PALM written out with the same arithmetic (products, Grams, eigvalsh, threshold, projection)."""
    for _ in range(K):
        S = s_step(X, A, S, lam, lipschitz_s(A))
        A = a_step(X, A, S, lipschitz_a(S))
    return A, S


def measure(*, n_problems: int = 64, t: int = 500, n_iter: int = 100, lam: float = 2e-3, seed: int = 0,
            device: str = "cpu", repeats: int = 3) -> dict:
    """Time the three loops; returns the rows and the ratio rows of ``benchmark all``.

    The full size was B = 150, K = 300 (3 repeats of 3 loops): 0.33 s per iteration of each loop there (one
    thread, load ~5), about 15 minutes in all; B = 64, K = 100 keeps it near a minute."""
    A_true = mixing_matrices(n_problems)
    S_true = gennorm_sources(n_problems, A_true.shape[-1], t, seed=seed + 1)
    data = mix(A_true, S_true, 30.0, seed=seed + 2).to(torch.float64, device)
    X = data.X
    B, m, tt = X.shape
    n = data.A.shape[-1]
    A0 = data.A + 0.1 * torch.randn(data.A.shape, generator=torch.Generator().manual_seed(seed + 3),
                                    dtype=torch.float64).to(device)
    S0 = pinv_init(X, A0)
    palm(X[:2], A0[:2], S0[:2], lam, max_iter=3, tol=0.0)  # warm-up
    times = {"palm": float("inf"), "palm_residual": float("inf"), "products": float("inf"),
             "gram_products": float("inf"), "arithmetic": float("inf")}
    with torch.no_grad():
        for _ in range(repeats):  # alternating repeats, the fastest of each kept (a shared machine is noisy)
            sync(device)
            t0 = time.perf_counter()
            res = palm(X, A0, S0, lam, max_iter=n_iter, tol=0.0)
            sync(device)
            times["palm"] = min(times["palm"], time.perf_counter() - t0)
            t0 = time.perf_counter()
            res_r = palm(X, A0, S0, lam, max_iter=n_iter, tol=0.0, gram=False)
            sync(device)
            times["palm_residual"] = min(times["palm_residual"], time.perf_counter() - t0)
            t0 = time.perf_counter()
            _gram_products(X, A0, S0, n_iter)
            sync(device)
            times["gram_products"] = min(times["gram_products"], time.perf_counter() - t0)
            t0 = time.perf_counter()
            _bare_products(X, A0, S0, n_iter)
            sync(device)
            times["products"] = min(times["products"], time.perf_counter() - t0)
            t0 = time.perf_counter()
            A_m, S_m = _manual_palm(X, A0, S0, lam, n_iter)
            sync(device)
            times["arithmetic"] = min(times["arithmetic"], time.perf_counter() - t0)
    diff = max(float((A_m - res.A).abs().max()), float((S_m - res.S).abs().max()))
    diff_r = max(float((res_r.A - res.A).abs().max()), float((res_r.S - res.S).abs().max()))
    case = f"PALM {B} mixtures m={m} n={n} t={tt}, {n_iter} iterations"
    ratios = [ratio_row(case, "palm", "4 bare products per iteration", times["palm"], times["products"],
                        "lower bound of the work (ratio < 1: PALM's overhead)"),
              ratio_row(case, "palm", "same arithmetic written out (products, Grams, eigvalsh, prox)", times["palm"],
                        times["arithmetic"], f"same iterates, max |diff| {diff:.1e}"),
              ratio_row(case, "palm", "palm(gram=False), the residual form", times["palm"], times["palm_residual"],
                        f"same iterates to rounding, max |diff| {diff_r:.1e}")]
    return {"config": {"n_problems": B, "m": m, "n": n, "t": tt, "n_iter": n_iter, "lam": lam, "seed": seed,
                       "device": device, "repeats": repeats},
            "seconds": times, "per_iteration_ms": {k: 1e3 * v / n_iter for k, v in times.items()},
            "max_abs_diff": diff, "max_abs_diff_residual": diff_r, "ratios": ratios, "machine": machine_info(device)}


def markdown_table(r: dict) -> str:
    """The timings as a Markdown table (:func:`unrolled.experiments.report.markdown_table`), with the settings."""
    c = r["config"]
    labels = {"palm": "palm (library, default: Gram form when n < 2m)", "palm_residual": "palm(gram=False)",
              "products": "4 bare products (residual form)", "gram_products": "bare products of the Gram form",
              "arithmetic": "residual-form products + Grams + eigvalsh + prox, written out"}
    head = (f"PALM on {c['n_problems']} mixtures, m={c['m']}, n={c['n']}, t={c['t']}, {c['n_iter']} iterations "
            f"(tol 0), float64, fastest of {c['repeats']} alternating repeats; {r['machine']['summary']}")
    body = [[labels.get(k, k), f"{s:.3f}", f"{r['per_iteration_ms'][k]:.3f}", f"{s / r['seconds']['palm']:.2f}"]
            for k, s in r["seconds"].items()]
    return (head + "\n\n" + report_table(["loop", "s", "ms / iteration", "time / palm time"], body)
            + f"\n\nwritten-out loop vs palm: max |diff| of A, S {r['max_abs_diff']:.1e}"
            + (f"; palm(gram=False) vs palm {r['max_abs_diff_residual']:.1e}" if "max_abs_diff_residual" in r else ""))


def run(out_dir="unrolled-bench", quick: bool = False, seed: int = 0, device: str = "cpu") -> dict:
    """Entry point of ``unrolled benchmark palm-per-iteration`` (``quick``: B = 16, K = 50)."""
    result = measure(n_problems=16, n_iter=50, seed=seed, device=device) if quick else measure(seed=seed, device=device)
    return write_benchmark(out_dir, "palm_per_iteration", result, markdown_table(result))
