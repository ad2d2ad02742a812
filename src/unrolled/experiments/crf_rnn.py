"""``unrolled reproduce crf-rnn``: CRF-RNN (mean-field unrolled, review eqs. (19)-(20), Fig. 12) on simulated shapes.

Methods, all scored on the same held-out images: a small unary FCN alone; FCN + dense-CRF mean field (10
iterations) with widths and weights tuned by grid search on validation images; FCN + CRF-RNN (K = 5 and 10 tied
mean-field layers, learned w^m and compatibility) trained end to end from the FCN and the tuned CRF; and a deeper
plain CNN (more parameters, no CRF) trained from scratch for as many epochs as the FCN + CRF-RNN pipeline. Time
per image is measured side by side in the same run, and the fast filtering (separable spatial, down-sampled
bilateral) is measured against the exact one.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from unrolled.experiments.crf_report import write_outputs
from unrolled.segmentation.data import ShapesSegmentationProblem
from unrolled.segmentation.filtering import Filtering, kernel_cache, messages, relative_error
from unrolled.segmentation.metrics import scores
from unrolled.segmentation.nets import CRFRNN
from unrolled.segmentation.training import crf_labels, predict, train_segmentation, tune_crf
from unrolled.segmentation.unary import PlainCNN, UnaryCRF, UnaryFCN


@dataclass(frozen=True)
class Settings:
    """Sizes and training budgets of the reproduction."""

    size: int = 32
    n_classes: int = 4
    noise_std: float = 0.2
    n_train: int = 400
    n_val: int = 64
    n_test: int = 160
    unary_epochs: int = 20
    crf_epochs: int = 6
    batch_size: int = 16
    lr_unary: float = 1e-2
    lr_finetune: float = 1e-3
    lr_crf: float = 2e-2
    lr_cnn: float = 3e-3
    cnn_width: int = 32
    layers: tuple[int, ...] = (5, 10)
    mf_iterations: int = 10
    stride: int = 2
    grid: dict = field(default_factory=lambda: {
        "spatial": [1.0, 2.0], "bilateral_spatial": [2.0, 4.0], "bilateral_colour": [0.3, 0.6],
        "w_spatial": [0.05, 0.2, 0.5], "w_bilateral": [0.02, 0.1, 0.3]})
    n_figure: int = 4


QUICK = Settings(size=20, n_train=32, n_val=12, n_test=16, unary_epochs=20, crf_epochs=1, cnn_width=12, batch_size=8,
                 grid={"spatial": [1.0], "bilateral_spatial": [2.0], "bilateral_colour": [0.4],
                       "w_spatial": [0.1, 0.3], "w_bilateral": [0.05]}, n_figure=2)


def _settings(quick: bool, overrides: dict) -> Settings:
    base = QUICK if quick else Settings()
    unknown = set(overrides) - set(asdict(base))
    if unknown:
        raise TypeError(f"reproduce_crf_rnn() got an unexpected keyword argument {sorted(unknown)[0]!r}; the settings "
                        f"are {sorted(asdict(base))}")
    return replace(base, **overrides)


def _checkpointed(model: torch.nn.Module, path: Path, key: str, train) -> dict:
    """Train ``model`` with ``train()`` unless ``path`` holds its weights for the same ``key``; returns the log."""
    meta = path.with_suffix(".json")
    if path.is_file() and meta.is_file() and json.loads(meta.read_text()).get("key") == key:
        model.load_state_dict(torch.load(path, weights_only=True))
        return json.loads(meta.read_text())["log"]
    t0 = time.perf_counter()
    res = train()
    log = {"losses": res.losses, "n_steps": res.n_steps, "seconds": time.perf_counter() - t0}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    meta.write_text(json.dumps({"key": key, "log": log}))
    return log


def _per_image_seconds(fn, images: torch.Tensor, batch_size: int = 16) -> float:
    with torch.no_grad():
        fn(images[:2])  # warm-up
        t0 = time.perf_counter()
        for s in range(0, images.shape[0], batch_size):
            fn(images[s:s + batch_size])
    return (time.perf_counter() - t0) / images.shape[0]


def _filtering_errors(unary_net, images: torch.Tensor, kernels, stride: int) -> dict:
    """Relative error of the fast messages against the exact ones at Q = softmax(unary), per kernel."""
    with torch.no_grad():
        Q = torch.softmax(unary_net(images), dim=1).double()
        img = images.double()
        w = torch.tensor(kernels, dtype=torch.float64)
        exact = Filtering("exact")
        out = {}
        for s in sorted({1, 2, stride, 3}):
            fast = Filtering("fast", s)
            sp_f, bi_f = messages(Q, img, w, fast, kernel_cache(img, w, fast))
            sp_e, bi_e = messages(Q, img, w, exact, kernel_cache(img, w, exact))
            out[f"stride {s}"] = {"spatial": relative_error(sp_f, sp_e), "bilateral": relative_error(bi_f, bi_e)}
    return out


def reproduce_crf_rnn(out_dir, quick: bool = False, seed: int = 0, device: str = "cpu", progress: bool = False,
                      **settings) -> dict:
    """Run the reproduction and write results.json, results.md and figures into ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Output folder (trained weights go to ``out_dir/checkpoints`` and are reused by a rerun with the same
        settings).
    quick : bool
        Tiny sizes and budgets (seconds).
    seed : int
        Seeds the data (train/validation/test draws) and the initialisations.
    device : str
        Torch device.
    **settings
        Overrides of :class:`Settings` fields.
    """
    cfg = _settings(quick, settings)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    key = json.dumps({"settings": asdict(cfg), "seed": seed, "device": device}, sort_keys=True, default=list)
    ckpt = out / "checkpoints"
    prob = ShapesSegmentationProblem(cfg.size, cfg.size, cfg.n_classes, noise_std=cfg.noise_std,
                                     dtype=torch.float32, seed=seed)
    draws = [prob.sample_images(n, torch.Generator().manual_seed(1000 * seed + i))
             for i, n in enumerate((cfg.n_train, cfg.n_val, cfg.n_test))]
    (Xtr, ytr), (Xva, yva), (Xte, yte) = [(x.to(device), y.to(device)) for x, y in draws]
    L = cfg.n_classes
    logs, results = {}, {}

    torch.manual_seed(seed)
    unary = UnaryFCN(n_classes=L).to(device)
    logs["unary"] = _checkpointed(unary, ckpt / "unary.pt", key, lambda: train_segmentation(
        unary, Xtr, ytr, epochs=cfg.unary_epochs, batch_size=cfg.batch_size, lr=cfg.lr_unary, seed=seed,
        progress=progress))
    with torch.no_grad():
        U_va, U_te = unary(Xva), unary(Xte)
    preds = {"unary FCN": U_te.argmax(1)}

    best, grid_rows = tune_crf(U_va, Xva, yva, cfg.grid, n_iter=cfg.mf_iterations, stride=cfg.stride,
                               progress=progress)
    kernels, weights = best["kernels"], best["weights"]
    preds["FCN + mean-field CRF (tuned)"] = crf_labels(U_te, Xte, kernels=kernels, weights=weights,
                                                       n_iter=cfg.mf_iterations, stride=cfg.stride)
    exact_pred = crf_labels(U_te, Xte, kernels=kernels, weights=weights, n_iter=cfg.mf_iterations,
                            filtering="exact")

    models = {"unary FCN": unary}
    for K in cfg.layers:
        name = f"FCN + CRF-RNN K={K} (end to end)"
        crf = CRFRNN.from_algorithm(L, K, kernels=kernels, weights=weights, tied=True, filtering="fast",
                                    stride=cfg.stride, dtype="float32").to(device)
        model = UnaryCRF(copy.deepcopy(unary), crf)
        groups = [{"params": model.unary.parameters(), "lr": cfg.lr_finetune},
                  {"params": model.crf.parameters(), "lr": cfg.lr_crf}]
        logs[f"crf_rnn_{K}"] = _checkpointed(model, ckpt / f"crf_rnn_{K}.pt", key, lambda m=model, g=groups:
                                             train_segmentation(m, Xtr, ytr, epochs=cfg.crf_epochs,
                                                                batch_size=cfg.batch_size, parameters=g,
                                                                seed=seed, progress=progress))
        preds[name] = predict(model, Xte)
        models[name] = model

    torch.manual_seed(seed)
    cnn = PlainCNN(n_classes=L, width=cfg.cnn_width).to(device)
    logs["cnn"] = _checkpointed(cnn, ckpt / "cnn.pt", key, lambda: train_segmentation(
        cnn, Xtr, ytr, epochs=cfg.unary_epochs + cfg.crf_epochs, batch_size=cfg.batch_size, lr=cfg.lr_cnn,
        seed=seed, progress=progress))
    preds["deeper plain CNN"] = predict(cnn, Xte)
    models["deeper plain CNN"] = cnn

    def mf(images, filtering):
        crf_labels(unary(images), images, kernels=kernels, weights=weights, n_iter=cfg.mf_iterations,
                   filtering=filtering, stride=cfg.stride)

    timings = {"unary FCN": _per_image_seconds(unary, Xte),
               "FCN + mean-field CRF (tuned)": _per_image_seconds(lambda x: mf(x, "fast"), Xte),
               "FCN + mean-field CRF, exact filtering": _per_image_seconds(lambda x: mf(x, "exact"), Xte)}
    for name, model in models.items():
        if name != "unary FCN":
            timings[name] = _per_image_seconds(model, Xte)
    n_params = {"unary FCN": unary.n_parameters(), "FCN + mean-field CRF (tuned)": unary.n_parameters(),
                "deeper plain CNN": cnn.n_parameters()}
    for name, model in models.items():
        if "CRF-RNN" in name:
            n_params[name] = sum(p.numel() for p in model.parameters())
    for name, pred in preds.items():
        results[name] = {**scores(pred, yte, L), "ms_per_image": 1e3 * timings[name], "n_parameters": n_params[name]}
    trained_crf = {name: {"weights": [float(v) for v in m.crf.weights[0].detach()],
                          "compatibility": m.crf.compatibility[0].detach().tolist()}
                   for name, m in models.items() if "CRF-RNN" in name}
    payload = {
        "experiment": "crf-rnn", "quick": quick, "seed": seed, "device": device, "settings": asdict(cfg),
        "threads": torch.get_num_threads(), "results": results,
        "tuned_crf": {"kernels": list(kernels), "weights": list(weights), "validation_mean_iou": best["mean_iou"],
                      "grid_size": len(grid_rows)},
        "exact_filtering": {**scores(exact_pred, yte, L),
                            "ms_per_image": 1e3 * timings["FCN + mean-field CRF, exact filtering"],
                            "label_agreement_with_fast": float((exact_pred == preds["FCN + mean-field CRF (tuned)"])
                                                               .double().mean())},
        "filtering_relative_error": _filtering_errors(unary, Xte[:8], kernels, cfg.stride),
        "trained_crf": trained_crf, "training": logs,
    }
    write_outputs(out, payload, Xte[:cfg.n_figure].cpu(), yte[:cfg.n_figure].cpu(),
                  {k: v[:cfg.n_figure].cpu() for k, v in preds.items()})
    return payload
