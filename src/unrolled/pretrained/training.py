"""How the pretrained models of the imaging, lowrank, nmf and segmentation families were trained.

Each function trains the one net of a reproduction with that reproduction's own training code and settings (its
data, initialisation, loss, optimiser, steps and seeds; a reduction, where there is one, is named in the model's
card) and writes it with :func:`unrolled.core.io.save_model` to ``out_dir``, with a ``training.json`` log (the
settings, the seconds, the tuned solver settings the card's baseline uses). Run one with::

    OMP_NUM_THREADS=1 python -m unrolled.pretrained.training NAME OUT_DIR

The shipped folder is ``OUT_DIR``'s ``model.safetensors`` and ``config.json`` (plus, where the card's baseline
needs them, the solver's own weights as safetensors) with the card written from :func:`unrolled.pretrained.evaluate`
on fresh test problems.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

__all__ = ["TRAINERS", "train_pretrained"]


def _log(out: Path, payload: dict) -> None:
    (out / "training.json").write_text(json.dumps(payload, indent=1, default=str))


def train_admm_csnet(out: Path, seed: int = 0) -> dict:
    """ADMM-CSNet at 20 % radial sampling: :func:`unrolled.experiments.imaging_csmri.run_ratio`'s net, ``FULL``."""
    from unrolled.core.io import save_model
    from unrolled.experiments import imaging_csmri as rep
    from unrolled.imaging.admm_csnet import ADMMCSNet
    from unrolled.imaging.csmri import CSMRIProblem
    from unrolled.imaging.images import EllipsePhantoms, MixtureSource, PatchSource

    cfg = {**rep.FULL, "checkpoints": False}
    ratio, size = 0.2, cfg["size"]
    t0 = time.perf_counter()
    sets = rep._sets(size, cfg["n_val"], cfg["n_test"], seed)
    torch.manual_seed(seed)
    train = CSMRIProblem(size, ratio, source=MixtureSource([EllipsePhantoms(size),
                                                            PatchSource("train", size, augment=True)]),
                         dtype=torch.float32, mask=cfg["mask"], noise_std=cfg["noise_std"], seed=seed)
    noise = torch.Generator().manual_seed(30_000 + seed)
    y_val = train.measure(sets["val"], noise)
    tv = rep._tune_tv(train, y_val, sets["val"], cfg)
    init = rep._tune_net_init(train, y_val, sets["val"], cfg)
    net = ADMMCSNet.from_algorithm(train.mask, cfg["layers"], init["lam"], init["rho"], transforms="dct3",
                                   dtype="float32")
    val32 = (y_val.to(torch.complex64), sets["val"].float())
    log = rep._train(net, train, val32, cfg, cfg["lr_net"], seed, False, None)
    save_model(net.eval(), out)
    payload = {"settings": cfg, "ratio": ratio, "seed": seed, "tv": tv, "net_init": init, "training": log,
               "actual_ratio": train.actual_ratio, "seconds": time.perf_counter() - t0}
    _log(out, payload)
    return payload


def train_dublid(out: Path, seed: int = 0) -> dict:
    """DUBLID (L = 10): :func:`unrolled.experiments.imaging_deblur.reproduce_deblur`'s net, ``DeblurConfig()``."""
    from dataclasses import asdict

    from unrolled.core.io import save_model
    from unrolled.experiments import imaging_deblur as rep
    from unrolled.imaging.dublid import DUBLID
    from unrolled.imaging.hqs import DEFAULTS

    cfg = rep.DeblurConfig()
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    kinds = tuple(cfg.kinds)
    train = rep._Mixture([rep._problem(cfg, kinds, s, cfg.train_source, seed) for s in cfg.noise_levels])
    val_mix = rep._Mixture([rep._problem(cfg, kinds, s, cfg.val_source, seed + 500) for s in cfg.noise_levels])
    val = val_mix.sample(cfg.n_val, torch.Generator().manual_seed(seed + 501))
    net = DUBLID.from_algorithm(cfg.n_layers, kernel_size=cfg.kernel_size, filter_size=cfg.filter_size,
                                lam_start=DEFAULTS["lam_start"], decay=cfg.init_decay, dtype="float32")
    # the reproduction builds an untrained twin first; its construction draws nothing, so the seeds match
    log = rep._train(net, cfg, train, val, cfg.lr_dublid, out / "checkpoints", "dublid", seed, False)
    save_model(net.eval(), out)
    payload = {"settings": asdict(cfg), "seed": seed, "training": log, "seconds": time.perf_counter() - t0}
    _log(out, payload)
    return payload


def train_corona(out: Path, seed: int = 0) -> dict:
    """CORONA (10 layers): :func:`unrolled.experiments.corona.reproduce_corona`'s net, ``FULL``."""
    from unrolled.core.io import save_model
    from unrolled.experiments import corona as rep
    from unrolled.experiments.corona_common import train_net, tune_penalties
    from unrolled.lowrank.data import UltrasoundMovieProblem
    from unrolled.lowrank.nets import CORONA

    s = dict(rep.FULL)
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    problem = UltrasoundMovieProblem(height=s["height"], width=s["width"], frames=s["frames"], dtype="float32",
                                     seed=seed)
    gen = lambda k: torch.Generator().manual_seed(1000 * seed + k)  # noqa: E731
    train = problem.sample(s["n_train"], gen(1))
    val = problem.sample(s["n_val"], gen(2))
    lams, grid = tune_penalties(problem, val[0], val[1], max_iter=s["fista_max_iter"])
    net = CORONA.from_algorithm(s["layers"], lams["lam1"], lams["lam2"], kernel_size=s["kernel_size"],
                                dtype="float32")
    log = train_net(net, tuple(train), tuple(val), steps=s["corona_steps"], lr=s["corona_lr"],
                    batch_size=s["batch_size"], seed=seed, device="cpu", progress=False)
    save_model(net.eval(), out)
    payload = {"settings": s, "seed": seed, "problem": problem.config(), "penalties": lams, "penalty_grid": grid,
               "training": log, "seconds": time.perf_counter() - t0}
    _log(out, payload)
    return payload


def train_deepnmf(out: Path, seed: int = 0, n_layers: int = 10) -> dict:
    """Deep NMF (K = 10): :func:`unrolled.experiments.deepnmf.reproduce_deepnmf`'s K = 10 net, ``FULL``; the
    learned bases (the sparse-NMF baseline's dictionary) go to ``bases.safetensors``."""
    from safetensors.torch import save_file

    from unrolled.core.io import save_model
    from unrolled.experiments import deepnmf as rep
    from unrolled.nmf.metrics import spectral_snr_db
    from unrolled.nmf.nets import DeepNMF
    from unrolled.nmf.solvers import learn_bases, separate

    s = dict(rep.FULL)
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    probs = {split: rep._problem(split, seed, s) for split in ("train", "val")}
    waves = {split: probs[split].sample_waveforms(s[f"n_{split}"], torch.Generator().manual_seed(seed + 1 + i))
             for i, split in enumerate(("train", "val"))}
    train, val = rep._spectrograms(probs["train"], waves["train"]), rep._spectrograms(probs["val"], waves["val"])
    speech_specs, noise_specs = probs["train"].source_spectrograms(n_noise=s["n_noise_clips"], seed=seed)
    Ws = learn_bases(speech_specs, s["n_speech"], beta=s["beta"], mu=s["basis_mu"], max_iter=s["basis_iter"],
                     seed=seed + 1).float()
    Wn = learn_bases(noise_specs, s["n_noise"], beta=s["beta"], mu=s["basis_mu"], max_iter=s["basis_iter"],
                     seed=seed + 2).float()
    mu_scores = {mu: float(spectral_snr_db(separate(val[0], Ws, Wn, beta=s["beta"], mu=mu, max_iter=s["nmf_max_iter"],
                                                    tol=s["nmf_tol"]).x, val[1]).mean())
                 for mu in s["mu_grid"]}
    mu = max(mu_scores, key=mu_scores.get)
    net = DeepNMF.from_algorithm(Ws, Wn, n_layers, beta=s["beta"], mu=mu, dtype="float32")
    log = rep._train(net, f"deepnmf-K{n_layers}", train, val, s["steps"], s["lr"], s, seed, False)
    save_model(net.eval(), out)
    save_file({"speech": Ws.contiguous(), "noise": Wn.contiguous()}, str(out / "bases.safetensors"))
    payload = {"settings": {k: v for k, v in s.items() if k != "checkpoint_dir"}, "seed": seed, "n_layers": n_layers,
               "mu": mu, "mu_validation_snr_db": {str(k): v for k, v in mu_scores.items()}, "training": log,
               "problem": probs["train"].config(), "seconds": time.perf_counter() - t0}
    _log(out, payload)
    return payload


def train_crf_rnn(out: Path, seed: int = 0, n_layers: int = 5) -> dict:
    """FCN + CRF-RNN (K = 5, end to end): :func:`unrolled.experiments.crf_rnn.reproduce_crf_rnn`'s K = 5 net with
    ``Settings()``; the unary FCN before fine-tuning (the tuned-CRF baseline's unary) goes to
    ``baseline_unary.safetensors``."""
    import copy
    from dataclasses import asdict

    from safetensors.torch import save_file

    from unrolled.core.io import save_model
    from unrolled.experiments import crf_rnn as rep
    from unrolled.pretrained.nets import FCNCRFRNN
    from unrolled.segmentation.data import ShapesSegmentationProblem
    from unrolled.segmentation.nets import CRFRNN
    from unrolled.segmentation.training import train_segmentation, tune_crf
    from unrolled.segmentation.unary import UnaryFCN

    cfg = rep.Settings()
    t0 = time.perf_counter()
    prob = ShapesSegmentationProblem(cfg.size, cfg.size, cfg.n_classes, noise_std=cfg.noise_std,
                                     dtype=torch.float32, seed=seed)
    (Xtr, ytr), (Xva, yva) = [prob.sample_images(n, torch.Generator().manual_seed(1000 * seed + i))
                              for i, n in enumerate((cfg.n_train, cfg.n_val))]
    L = cfg.n_classes
    torch.manual_seed(seed)
    unary = UnaryFCN(n_classes=L)
    res = train_segmentation(unary, Xtr, ytr, epochs=cfg.unary_epochs, batch_size=cfg.batch_size, lr=cfg.lr_unary,
                             seed=seed)
    logs = {"unary": {"losses": res.losses, "n_steps": res.n_steps}}
    with torch.no_grad():
        U_va = unary(Xva)
    best, grid_rows = tune_crf(U_va, Xva, yva, cfg.grid, n_iter=cfg.mf_iterations, stride=cfg.stride)
    kernels, weights = best["kernels"], best["weights"]
    crf = CRFRNN.from_algorithm(L, n_layers, kernels=kernels, weights=weights, tied=True, filtering="fast",
                                stride=cfg.stride, dtype="float32")
    model = FCNCRFRNN(unary.config(), crf.config())
    model.unary.load_state_dict(copy.deepcopy(unary).state_dict())
    model.crf.load_state_dict(crf.state_dict())
    groups = [{"params": model.unary.parameters(), "lr": cfg.lr_finetune},
              {"params": model.crf.parameters(), "lr": cfg.lr_crf}]
    res = train_segmentation(model, Xtr, ytr, epochs=cfg.crf_epochs, batch_size=cfg.batch_size, parameters=groups,
                             seed=seed)
    logs[f"crf_rnn_{n_layers}"] = {"losses": res.losses, "n_steps": res.n_steps}
    save_model(model.eval(), out)
    save_file({k: v.detach().contiguous() for k, v in unary.state_dict().items()},
              str(out / "baseline_unary.safetensors"))
    payload = {"settings": asdict(cfg), "seed": seed, "n_layers": n_layers,
               "tuned_crf": {"kernels": list(kernels), "weights": list(weights),
                             "validation_mean_iou": best["mean_iou"]},
               "unary_config": unary.config(), "training": logs, "seconds": time.perf_counter() - t0}
    _log(out, payload)
    return payload


TRAINERS = {"admm-csnet-mri20": train_admm_csnet, "dublid-deblur": train_dublid, "corona-ultrasound": train_corona,
            "deepnmf-speech": train_deepnmf, "crf-rnn-shapes": train_crf_rnn}


def train_pretrained(name: str, out_dir, seed: int = 0) -> dict:
    """Train the pretrained model ``name`` (a key of :data:`TRAINERS`) into ``out_dir``."""
    if name not in TRAINERS:
        raise ValueError(f"name must be one of {sorted(TRAINERS)}, got {name!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return TRAINERS[name](out, seed=seed)


if __name__ == "__main__":  # pragma: no cover - the command line of the module docstring
    if len(sys.argv) != 3:
        raise SystemExit(f"usage: python -m unrolled.pretrained.training NAME OUT_DIR (NAME: {sorted(TRAINERS)})")
    torch.set_num_threads(1)
    print(json.dumps(train_pretrained(sys.argv[1], sys.argv[2]), default=str)[:2000])
