"""The ``csmri`` part of ``unrolled demo`` and the ADMM-CSNet row of ``review-table2``."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from unrolled.experiments.report import markdown_table, save_figure, write_json
from unrolled.imaging.admm import admm_cs
from unrolled.imaging.admm_csnet import ADMMCSNet, nrmse_loss
from unrolled.imaging.csmri import CSMRIProblem, zero_filled
from unrolled.imaging.images import shepp_logan
from unrolled.imaging.metrics import psnr


def run_csmri_demo(out_dir, *, seed: int = 0, device: str = "cpu", progress: bool = False, steps: int = 25) -> dict:
    """Train a 10-stage ADMM-CSNet for a few seconds on phantoms (32 x 32, 20 % radial), reconstruct
    Shepp-Logan; print PSNR and time of zero-filling, ADMM-TV (to convergence), the untrained and trained net;
    write ``csmri.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    prob = CSMRIProblem(32, 0.2, mask="radial", noise_std=0.01, seed=seed, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed + 1)
    untrained = ADMMCSNet.from_algorithm(prob.mask, 10, 3e-3, 0.3, dtype="float32").to(device)
    net = ADMMCSNet.from_algorithm(prob.mask, 10, 3e-3, 0.3, dtype="float32").to(device)
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    start = time.perf_counter()
    for _ in range(steps):
        y, x = prob.sample(8, gen)
        opt.zero_grad()
        nrmse_loss(net(y.to(device)), x.to(device)).backward()
        opt.step()
    train_s = time.perf_counter() - start
    target = shepp_logan(32)
    y = prob.measure(target[None], torch.Generator().manual_seed(seed + 2))
    images, times = {}, {}
    for name, fn in (("zero-filling", lambda: zero_filled(y)),
                     ("ADMM-TV", lambda: admm_cs(y, prob.mask, 3e-3, 0.1, max_iter=500, tol=1e-4).x),
                     ("untrained net (= 10 ADMM iterations)", lambda: untrained(y.to(torch.complex64).to(device))),
                     ("ADMM-CSNet", lambda: net(y.to(torch.complex64).to(device)))):
        t0 = time.perf_counter()
        with torch.no_grad():
            images[name] = fn()[0].abs().double().cpu()
        times[name] = time.perf_counter() - t0
    scores = {k: float(psnr(v, target)) for k, v in images.items()}
    print(f"\nunrolled demo: compressive MRI of Shepp-Logan (32 x 32, {100 * prob.actual_ratio:.0f} % radial), "
          f"ADMM-CSNet trained {steps} steps ({train_s:.1f} s) on random phantoms")
    print(markdown_table(["method", "PSNR (dB)", "time (ms)"], [[k, scores[k], 1e3 * times[k]] for k in scores]))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 5, figsize=(12, 2.8))
    for ax, (title, im) in zip(axes, [("ground truth", target)] + list(images.items())):
        ax.imshow(np.clip(im.numpy(), 0, 1), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title if title == "ground truth" else f"{title}\n{scores[title]:.1f} dB", fontsize=7)
        ax.axis("off")
    save_figure(fig, out / "csmri.png")
    result = {"psnr_db": scores, "time_s": times, "train_s": train_s, "steps": steps}
    write_json(out / "csmri.json", result)
    return result


def measure_table2_row(out_dir, quick: bool = False, seed: int = 0, device: str = "cpu",
                       progress: bool = False) -> dict:
    """ADMM-CSNet's row of Table II: ``imaging-csmri`` at 20 % sampling only (same training and timing)."""
    from unrolled.experiments.imaging_csmri import reproduce_imaging_csmri

    payload = reproduce_imaging_csmri(out_dir, quick=quick, seed=seed, device=device, progress=progress,
                                      ratios=(0.2,))
    r = payload["results"][0]

    def column(name, method, params):
        s = r["scores"]
        mean = (s["phantoms"][method]["psnr"] + s["natural"][method]["psnr"]) / 2
        return {"name": name, "time_s": r["time_s"][method], "params": params, "metric": mean,
                "metric_name": "dB PSNR (mean of both test sets)"}

    return {"unrolled": column(f"ADMM-CSNet (K = {payload['settings']['layers']})", "ADMM-CSNet",
                               r["params"]["ADMM-CSNet"]),
            "iterative": column("ADMM-TV (to convergence)", "ADMM-TV", None),
            "generic": column("residual CNN", "CNN", r["params"]["CNN"])}
