"""Tables, the review's statements beside ours, and figures of ``imaging-csmri`` (see :mod:`.imaging_csmri`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from unrolled.experiments.report import markdown_table, save_figure, write_json

METHODS = ("zero-filling", "ADMM-TV", "ADMM-CSNet", "CNN")
TESTS = {"phantoms": "held-out phantoms (Shepp-Logan + random)", "natural": "test-image patches (camera, coins)"}
PAPER = {
    "data": "ADMM-CSNet reaches the iterative method's accuracy with about 10 % less sampled data",
    "speed": "about 40x faster than the iterative method",
    "cnn": "about 3 dB PSNR above a state-of-the-art generic deep network at 20 % sampling",
}


def _ratio_to_match(ratios, tv_psnr, target: float) -> tuple[float | None, str]:
    """Smallest sampling ratio at which the (linearly interpolated) ADMM-TV curve reaches ``target`` dB, and how
    it was found: ``'interpolated'``, ``'below'`` (TV is already there at the lowest ratio: the value is an upper
    bound) or ``'above'`` (TV never gets there in the measured range: ``None``)."""
    for i in range(len(ratios)):
        if tv_psnr[i] >= target:
            if i == 0:
                return ratios[0], "below"
            r0, r1, p0, p1 = ratios[i - 1], ratios[i], tv_psnr[i - 1], tv_psnr[i]
            return r0 + (target - p0) * (r1 - r0) / (p1 - p0), "interpolated"
    return None, "above"


def _statements(results: list[dict]) -> dict:
    ratios = [r["ratio"] for r in results]
    at20 = min(results, key=lambda r: abs(r["ratio"] - 0.2))
    out = {"speedup_vs_tv": at20["time_s"]["ADMM-TV"] / at20["time_s"]["ADMM-CSNet"], "at_ratio": at20["ratio"]}
    for test in TESTS:
        tv = [r["scores"][test]["ADMM-TV"]["psnr"] for r in results]
        saving = {}
        for r in results:
            net = r["scores"][test]["ADMM-CSNet"]["psnr"]
            needed, how = _ratio_to_match(ratios, tv, net)
            saving[str(r["ratio"])] = {"saving": None if needed is None else needed - r["ratio"], "how": how}
        s = at20["scores"][test]
        out[test] = {"data_saving": saving, "net_minus_cnn_db": s["ADMM-CSNet"]["psnr"] - s["CNN"]["psnr"],
                     "net_minus_tv_db": s["ADMM-CSNet"]["psnr"] - s["ADMM-TV"]["psnr"]}
    return out


def _fmt_saving(entry: dict, ratio: float) -> str:
    value, how = entry["saving"], entry["how"]
    if how == "above":
        return "more than the measured range (TV never reaches the net's PSNR)"
    if how == "below":
        return f"<= {100 * value:+.1f} points (TV is as good already at the lowest ratio)"
    return f"{100 * value:+.1f} points (TV needs {100 * (ratio + value):.1f} %)"


def _figures(out: Path, results: list[dict]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ratios = [100 * r["ratio"] for r in results]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (test, title) in zip(axes, TESTS.items()):
        for m in METHODS:
            ax.plot(ratios, [r["scores"][test][m]["psnr"] for r in results], marker="o", label=m)
        ax.set(title=title, xlabel="sampling ratio (%)", ylabel="PSNR (dB)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, out / "psnr_vs_sampling.png")
    at20 = min(results, key=lambda r: abs(r["ratio"] - 0.2))
    cols = ("target",) + METHODS
    fig, axes = plt.subplots(len(TESTS), len(cols), figsize=(2.3 * len(cols), 2.5 * len(TESTS)), squeeze=False)
    for i, test in enumerate(TESTS):
        for j, c in enumerate(cols):
            image = at20["examples"][test][c]
            axes[i, j].imshow(np.clip(image.numpy(), 0, 1), cmap="gray", vmin=0, vmax=1)
            label = "ground truth" if c == "target" else f"{c}\n{at20['scores'][test][c]['psnr']:.1f} dB (mean)"
            axes[i, j].set_title(label, fontsize=8)
            axes[i, j].axis("off")
    fig.suptitle(f"{100 * at20['ratio']:.0f} % sampling", fontsize=10)
    save_figure(fig, out / "examples.png")
    return ["psnr_vs_sampling.png", "examples.png"]


def write_report(out: Path, results: list[dict], cfg: dict, *, quick: bool, seed: int) -> dict:
    """Write results.json, results.md and the figures; return the JSON payload."""
    figures = _figures(out, results)
    statements = _statements(results)
    for r in results:
        r.pop("examples")
    threads = torch.get_num_threads()
    rows = []
    for r in results:
        for test in TESTS:
            rows.append([f"{100 * r['ratio']:.0f} % ({100 * r['actual_ratio']:.1f})", test]
                        + [f"{r['scores'][test][m]['psnr']:.2f} / {r['scores'][test][m]['ssim']:.3f}" for m in METHODS])
    timing = [[f"{100 * r['ratio']:.0f} %"] + [f"{r['time_s'][m] * 1e3:.2f}" for m in METHODS]
              + [r["params"]["ADMM-CSNet"], r["params"]["CNN"], f"{r['tv']['lam']:g} / {r['tv']['rho']:g}",
                 f"{r['net_init']['lam']:g} / {r['net_init']['rho']:g}",
                 f"{r['training']['admm-csnet']['seconds']:.0f} / {r['training']['cnn']['seconds']:.0f}"]
              for r in results]
    claims = [["data", PAPER["data"],
               "; ".join(f"{t}: " + ", ".join(f"{100 * float(k):.0f} %: {_fmt_saving(v, float(k))}"
                                              for k, v in statements[t]["data_saving"].items()) for t in TESTS)],
              ["speed", PAPER["speed"], f"{statements['speedup_vs_tv']:.1f}x faster than ADMM-TV run to convergence "
                                        f"(at {100 * statements['at_ratio']:.0f} %, {threads} thread(s))"],
              ["vs generic net", PAPER["cnn"], "; ".join(f"{t}: {statements[t]['net_minus_cnn_db']:+.2f} dB"
                                                        for t in TESTS)]]
    md = [f"# imaging-csmri: compressive MRI, ADMM-CSNet vs ADMM-TV vs CNN{' (quick run)' if quick else ''}\n",
          f"{cfg['size']} x {cfg['size']} images, {cfg['mask']} masks, complex noise std {cfg['noise_std']} per "
          f"k-space sample; K = {cfg['layers']} stages; both nets trained {cfg['steps']} steps of batch "
          f"{cfg['batch_size']} on the same online data (phantoms + training-image patches); {cfg['n_test']} test "
          f"images per set; seed {seed}; torch threads: {threads}.\n",
          "## PSNR (dB) / SSIM (magnitude image, data range 1)\n",
          markdown_table(["ratio (actual %)", "test set"] + list(METHODS), rows), "",
          "## Inference time per image (ms, measured side by side), parameters, tuned settings\n",
          markdown_table(["ratio"] + [f"{m} (ms)" for m in METHODS]
                         + ["ADMM-CSNet params", "CNN params", "TV lam / rho", "net init lam / rho",
                            "train s (net / CNN)"], timing), "",
          "## The review's statements beside ours\n",
          markdown_table(["claim", "review (box ADMM-CSNet)", "ours"], claims), "",
          "Data saving: the sampling ratio at which ADMM-TV (interpolated between measured ratios) reaches "
          "ADMM-CSNet's PSNR, minus the net's ratio.\n"]
    (out / "results.md").write_text("\n".join(md))
    payload = {"quick": quick, "seed": seed, "threads": threads, "settings": {k: (list(v) if isinstance(v, tuple)
                                                                                  else v) for k, v in cfg.items()},
               "results": results, "statements": statements, "paper": PAPER, "figures": figures}
    write_json(out / "results.json", payload)
    return payload
