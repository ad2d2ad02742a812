"""``unrolled reproduce imaging-deblur``: blind deblurring by HQS, DUBLID and a CNN (review, DUBLID box, Table II).

Held-out test patches (``camera``, ``coins``: images never used in training) blurred by held-out kernels (a
kernel stream of another seed) of two kinds (Gaussian, motion) at two noise levels. For each condition: the
shift-corrected PSNR and the kernel error of the blurred input (kernel = identity), of HQS (10)-(11) run to
convergence (:func:`~unrolled.imaging.hqs.hqs_blind_deblur`, continuation on lambda, the TV filters), of the
untrained DUBLID (= its L HQS iterations), of DUBLID (L = 10) trained end to end with the translation-invariant
loss, and of the CNN baseline trained on the same data with the same steps and batch size; the time per image
of every method, measured one image at a time in the same run; the parameter counts. The review's Table II
(DUBLID 1.47 s vs 1462.90 s for the TV-based method vs 10.29 s for DeblurGAN; 2.3e4 vs 1.2e7 parameters) is
printed beside our figures.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from unrolled.core.train import Trainer
from unrolled.experiments.report import markdown_table, save_figure, write_json
from unrolled.imaging.deblur import BlindDeblurProblem
from unrolled.imaging.deblur_cnn import DeblurCNN
from unrolled.imaging.deblur_metrics import deblur_loss, kernel_error, shift_corrected_psnr, shifted_mse
from unrolled.imaging.dublid import DUBLID
from unrolled.imaging.hqs import DEFAULTS, hqs_blind_deblur

PAPER = {"DUBLID": (1.47, 2.3e4), "TV-based iterative (Perrone et al.)": (1462.90, None),
         "DeblurGAN": (10.29, 1.2e7)}


@dataclass(frozen=True)
class DeblurConfig:
    size: int = 64
    kernel_size: int = 15
    n_layers: int = 10
    filter_size: int = 5
    noise_levels: tuple = (0.01, 0.02)
    kinds: tuple = ("gaussian", "motion")
    n_test: int = 8  # per (kind, noise)
    n_val: int = 16
    steps: int = 300  # training steps of DUBLID and of the CNN (same budget)
    batch_size: int = 4
    lr_dublid: float = 5e-3
    lr_cnn: float = 1e-3
    val_every: int = 25
    cnn_depth: int = 8
    cnn_width: int = 64
    hqs_max_iter: int = 300
    hqs_tol: float = 1e-4
    init_decay: float = 0.836  # DUBLID's layers start on the continuation 0.05 -> 0.01 over L = 10 layers
    train_source: str = "train"  # patches of the training images (quick: phantoms, which need no image loading)
    val_source: str = "val"


QUICK = DeblurConfig(size=32, kernel_size=7, n_layers=10, filter_size=3, n_test=1, n_val=4, steps=6, batch_size=2,
                     val_every=3, cnn_depth=4, cnn_width=16, hqs_max_iter=40, train_source="phantoms",
                     val_source="phantoms")


class _Mixture:
    """Training data: equal shares of every noise level (kernels of all kinds), drawn online."""

    def __init__(self, problems: list[BlindDeblurProblem]):
        self.problems = problems

    def sample(self, n: int, generator=None):
        parts = [p.sample(max(1, n // len(self.problems)) + (i < n % len(self.problems)), generator)
                 for i, p in enumerate(self.problems)]
        y = torch.cat([a for a, _ in parts])[:n]
        return y, (torch.cat([b[0] for _, b in parts])[:n], torch.cat([b[1] for _, b in parts])[:n])


def _problem(cfg: DeblurConfig, kinds, noise: float, source: str, seed: int) -> BlindDeblurProblem:
    return BlindDeblurProblem(cfg.size, kinds, kernel_size=cfg.kernel_size, noise_std=noise, source=source,
                              dtype="float32", seed=seed)


def _to(data, device):
    y, (x, k) = data
    return y.to(device), (x.to(device), k.to(device))


def _per_image(fn, y: torch.Tensor):
    """Run ``fn`` on one image at a time; returns the stacked (x, k) (k None for image-only methods) and s/image."""
    xs, ks, times = [], [], []
    for i in range(y.shape[0]):
        if y.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        x, k = fn(y[i:i + 1])
        if y.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        xs.append(x.detach())
        ks.append(None if k is None else k.detach())
    k = None if ks[0] is None else torch.cat(ks)
    return torch.cat(xs), k, sum(times) / len(times)


def _scores(x, k, target, kernel_size):
    x0, k0 = target
    m = kernel_size // 2
    psnr = shift_corrected_psnr(x.cpu().double(), x0.cpu().double(), m)
    kerr = None if k is None else kernel_error(k.cpu().double(), k0.cpu().double())
    return psnr, kerr


def _train(model, cfg, train, val, lr, out: Path, name: str, seed: int, progress: bool):
    loss = deblur_loss if isinstance(model, DUBLID) else (
        lambda pred, target: shifted_mse(pred, target[0], target[1].shape[-1] // 2).mean())
    t0 = time.perf_counter()
    result = Trainer(model, loss, train.sample, val, lr=lr, max_steps=cfg.steps, batch_size=cfg.batch_size,
                     val_every=cfg.val_every, grad_clip=1.0, seed=seed, progress=progress,
                     checkpoint_dir=out / f"checkpoint_{name}", on_mismatch="restart").fit()
    return {"train_seconds": time.perf_counter() - t0, "steps": result.n_steps, "batch_size": cfg.batch_size,
            "lr": lr, "best_val_loss": float(result.best_val),
            "val_history": [[int(r["global_step"]), float(r["val_loss"])] for r in result.history]}


def _figure(path: Path, examples: dict, kernel_size: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = list(examples)
    rows = len(examples[cols[0]])
    fig, axes = plt.subplots(rows, len(cols), figsize=(2.2 * len(cols), 2.3 * rows), squeeze=False)
    for j, label in enumerate(cols):
        for i, (img, ker, caption) in enumerate(examples[label]):
            ax = axes[i][j]
            ax.imshow(img.cpu().numpy(), cmap="gray", vmin=0, vmax=1)
            if ker is not None:
                inset = ax.inset_axes([0.68, 0.68, 0.3, 0.3])
                inset.imshow(ker.cpu().numpy(), cmap="magma")
                inset.set_xticks([]), inset.set_yticks([])
            ax.set_title(f"{label}\n{caption}" if i == 0 else caption, fontsize=7)
            ax.set_xticks([]), ax.set_yticks([])
    save_figure(fig, path)


def reproduce_deblur(out_dir, quick: bool = False, seed: int = 0, device: str = "cpu", progress: bool = False,
                     **settings) -> dict:
    """Run the reproduction (see the module docstring); ``settings`` override :class:`DeblurConfig` fields."""
    cfg = replace(QUICK if quick else DeblurConfig(), **settings)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(device)
    torch.manual_seed(seed)
    kinds = tuple(cfg.kinds)
    train = _Mixture([_problem(cfg, kinds, s, cfg.train_source, seed) for s in cfg.noise_levels])
    val_mix = _Mixture([_problem(cfg, kinds, s, cfg.val_source, seed + 500) for s in cfg.noise_levels])
    val = _to(val_mix.sample(cfg.n_val, torch.Generator().manual_seed(seed + 501)), dev)
    tests = {}
    for i, kind in enumerate(kinds):
        for j, noise in enumerate(cfg.noise_levels):
            prob = _problem(cfg, kind, noise, "test", seed + 1000 + 10 * i + j)  # held-out kernels and images
            tests[(kind, noise)] = _to(prob.sample(cfg.n_test, torch.Generator().manual_seed(seed + 2000 + 10 * i + j)),
                                       dev)

    untrained = DUBLID.from_algorithm(cfg.n_layers, kernel_size=cfg.kernel_size, filter_size=cfg.filter_size,
                                      lam_start=DEFAULTS["lam_start"], decay=cfg.init_decay, dtype="float32").to(dev)
    dublid = DUBLID.from_algorithm(cfg.n_layers, kernel_size=cfg.kernel_size, filter_size=cfg.filter_size,
                                   lam_start=DEFAULTS["lam_start"], decay=cfg.init_decay, dtype="float32").to(dev)
    cnn = DeblurCNN(cfg.cnn_depth, cfg.cnn_width, dtype="float32").to(dev)
    training = {"DUBLID": _train(dublid, cfg, train, val, cfg.lr_dublid, out, "dublid", seed, progress),
                "CNN": _train(cnn, cfg, train, val, cfg.lr_cnn, out, "cnn", seed, progress)}

    def delta(y):
        k = y.new_zeros(y.shape[0], cfg.kernel_size, cfg.kernel_size)
        k[:, cfg.kernel_size // 2, cfg.kernel_size // 2] = 1
        return k

    def hqs(y):
        r = hqs_blind_deblur(y.double(), kernel_size=cfg.kernel_size, max_iter=cfg.hqs_max_iter, tol=cfg.hqs_tol)
        hqs.iters.append(int(r.n_iter[0]))
        return r.image.float(), r.kernel.float()

    hqs.iters = []
    methods = {
        "blurred input": lambda y: (y, delta(y)),
        "HQS (TV, to convergence)": hqs,
        f"DUBLID untrained (= {cfg.n_layers} HQS iterations)": lambda y: untrained(y),
        f"DUBLID (L = {cfg.n_layers}, trained)": lambda y: dublid(y),
        "CNN": lambda y: (cnn(y), None),
    }
    from tqdm.auto import tqdm

    results, examples = {}, {name: [] for name in ["ground truth", *methods]}
    with torch.no_grad():
        for (kind, noise), (y, target) in tqdm(tests.items(), desc="imaging-deblur test conditions",
                                               disable=not progress):
            row = {}
            for name, fn in methods.items():
                x, k, t = _per_image(fn, y)
                psnr, kerr = _scores(x, k, target, cfg.kernel_size)
                row[name] = {"psnr": float(psnr.mean()), "kernel_error": None if kerr is None else float(kerr.mean()),
                             "time_s": t, "psnr_per_image": psnr.tolist()}
                if noise == cfg.noise_levels[0]:  # the figure: one example per kernel kind
                    examples[name].append((x[0], None if k is None else k[0], f"{float(psnr[0]):.1f} dB"))
            if noise == cfg.noise_levels[0]:
                examples["ground truth"].append((target[0][0], target[1][0], f"{kind}, noise {noise}"))
            results[f"{kind}, noise {noise}"] = row
    params = {"DUBLID": dublid.n_parameters(), "CNN": cnn.n_parameters(), "HQS": 0}
    names = list(methods)
    overall = {n: {"psnr": sum(r[n]["psnr"] for r in results.values()) / len(results),
                   "time_s": sum(r[n]["time_s"] for r in results.values()) / len(results)} for n in names}
    payload = {"config": asdict(cfg), "quick": quick, "seed": seed, "device": device,
               "threads": torch.get_num_threads(), "results": results, "overall": overall, "params": params,
               "training": training, "hqs_iterations": hqs.iters, "paper_table2": PAPER}
    write_json(out / "results.json", payload)
    _figure(out / "examples.png", examples, cfg.kernel_size)
    (out / "results.md").write_text(_markdown(cfg, payload, names))
    return payload


def _markdown(cfg: DeblurConfig, p: dict, names: list[str]) -> str:
    dub, hqs, cnn = names[3], names[1], names[4]
    lines = [f"# imaging-deblur: blind deblurring ({cfg.size} x {cfg.size} held-out patches, {cfg.kernel_size} x "
             f"{cfg.kernel_size} held-out kernels){' — quick run' if p['quick'] else ''}", "",
             f"Device {p['device']}, {p['threads']} thread(s); times are per image, each method run on one image at "
             "a time in this run. PSNR after the best integer shift (|t| <= kernel_size // 2); kernel error = "
             "relative L2 error at the best shift (the blurred input's kernel is the identity).", ""]
    for cond, row in p["results"].items():
        lines += [f"## {cond}", "", markdown_table(
            ["method", "PSNR (dB)", "kernel error", "time / image (s)"],
            [[n, row[n]["psnr"], row[n]["kernel_error"], f"{row[n]['time_s']:.3g}"] for n in names]), ""]
    o, par = p["overall"], p["params"]
    lines += ["## Table II of the review beside ours", "", markdown_table(
        ["column", "method (ours)", "time / image (s)", "params", "mean PSNR (dB)", "paper: method", "paper: time (s)",
         "paper: params"],
        [["unrolled", dub, f"{o[dub]['time_s']:.3g}", par["DUBLID"], o[dub]["psnr"], "DUBLID", "1.47", "2.3e4"],
         ["iterative", hqs, f"{o[hqs]['time_s']:.3g}", "—", o[hqs]["psnr"], "TV-based (Perrone et al.)", "1462.90",
          "—"],
         ["generic", cnn, f"{o[cnn]['time_s']:.3g}", par["CNN"], o[cnn]["psnr"], "DeblurGAN", "10.29", "1.2e7"]]),
        "", f"Speed-up of DUBLID over the iterative method: ours {o[hqs]['time_s'] / o[dub]['time_s']:.0f}x, paper "
        f"{1462.90 / 1.47:.0f}x. CNN / DUBLID time: ours {o[cnn]['time_s'] / o[dub]['time_s']:.2f}, paper "
        f"{10.29 / 1.47:.2f}. Parameters CNN / DUBLID: ours {par['CNN'] / par['DUBLID']:.0f}, paper "
        f"{1.2e7 / 2.3e4:.0f}.", "",
        f"Training (same data and budget for both nets): {cfg.steps} steps of batch {cfg.batch_size}, online "
        f"images of the source '{cfg.train_source}' (validation: '{cfg.val_source}'; test: patches of the test "
        f"images) blurred by kernels of the training stream, noise levels "
        f"{list(cfg.noise_levels)} in equal shares; DUBLID {p['training']['DUBLID']['train_seconds']:.0f} s, CNN "
        f"{p['training']['CNN']['train_seconds']:.0f} s. HQS iterations per image: "
        f"{min(p['hqs_iterations'])}..{max(p['hqs_iterations'])} (cap {cfg.hqs_max_iter}, tol {cfg.hqs_tol}).", "",
        "![examples](examples.png)", ""]
    return "\n".join(lines)


def measure_table2(out_dir, quick: bool = False, seed: int = 0, device: str = "cpu", progress: bool = False,
                   **settings) -> dict:
    """The DUBLID row of ``review-table2``: the three columns from one :func:`reproduce_deblur` run
    (``settings``: fields of :class:`DeblurConfig`)."""
    p = reproduce_deblur(out_dir, quick=quick, seed=seed, device=device, progress=progress, **settings)
    o, par = p["overall"], p["params"]
    names = list(o)
    cols = {"unrolled": names[3], "iterative": names[1], "generic": names[4]}
    return {col: {"name": name, "time_s": o[name]["time_s"],
                  "params": None if col == "iterative" else par["DUBLID" if col == "unrolled" else "CNN"],
                  "metric": o[name]["psnr"], "metric_name": "dB (shift-corrected PSNR)"} for col, name in cols.items()}


def run_deblur_demo(out_dir, seed: int = 0, device: str = "cpu", progress: bool = False) -> dict:
    """A few seconds: a held-out 48 x 48 patch (the most textured of 8) blurred by a 9 x 9 motion kernel; HQS vs
    the untrained DUBLID (10 layers on the continuation schedule)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prob = BlindDeblurProblem(48, "motion", kernel_size=9, noise_std=0.01, source="test", seed=seed + 1000)
    y, (x, k) = prob.sample(8, torch.Generator().manual_seed(seed))
    i = int((x.diff(dim=-1).abs().sum((-2, -1)) + x.diff(dim=-2).abs().sum((-2, -1))).argmax())  # most edges
    y, x, k = y[i:i + 1], x[i:i + 1], k[i:i + 1]
    t0 = time.perf_counter()
    r = hqs_blind_deblur(y, kernel_size=9, max_iter=150)
    t_hqs = time.perf_counter() - t0
    net = DUBLID.from_algorithm(10, kernel_size=9, lam_start=DEFAULTS["lam_start"], decay=0.836).to(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        xd, kd = net(y.to(device))
    t_net = time.perf_counter() - t0
    numbers = {"blurred PSNR (dB)": float(shift_corrected_psnr(y, x, 4)[0]),
               "HQS PSNR (dB)": float(shift_corrected_psnr(r.image, x, 4)[0]),
               "HQS kernel error": float(kernel_error(r.kernel, k)[0]), "HQS time (s)": t_hqs,
               "HQS iterations": int(r.n_iter[0]),
               "DUBLID-10 (untrained) PSNR (dB)": float(shift_corrected_psnr(xd.cpu(), x, 4)[0]),
               "DUBLID-10 (untrained) kernel error": float(kernel_error(kd.cpu(), k)[0]), "DUBLID time (s)": t_net}
    print("\nunrolled demo: blind deblurring of a held-out 48 x 48 patch (9 x 9 motion kernel, noise 0.01): HQS-TV vs "
          "DUBLID untrained (10 HQS layers on the continuation schedule)")
    print(markdown_table(["method", "PSNR (dB, shift-corrected)", "kernel error", "time (s)"], [
        ["blurred input", f"{numbers['blurred PSNR (dB)']:.2f}", "—", "—"],
        [f"HQS-TV ({numbers['HQS iterations']} iterations)", f"{numbers['HQS PSNR (dB)']:.2f}",
         f"{numbers['HQS kernel error']:.2f}", f"{t_hqs:.3f}"],
        ["DUBLID, 10 layers (untrained)", f"{numbers['DUBLID-10 (untrained) PSNR (dB)']:.2f}",
         f"{numbers['DUBLID-10 (untrained) kernel error']:.2f}", f"{t_net:.3f}"]]))
    print("(10 layers of the same iterations as HQS: what training adds is in `unrolled reproduce imaging-deblur`)")
    _figure(out / "deblur.png", {"ground truth": [(x[0], k[0], "")], "blurred": [(y[0], None, "")],
                                 "HQS": [(r.image[0], r.kernel[0], f"{numbers['HQS PSNR (dB)']:.1f} dB")],
                                 "DUBLID-10": [(xd[0].cpu(), kd[0].cpu(),
                                                f"{numbers['DUBLID-10 (untrained) PSNR (dB)']:.1f} dB")]}, 9)
    return numbers
