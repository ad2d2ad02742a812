"""``unrolled reproduce ekf-training``: EKF training vs back-propagation (SGD, Adam), epochs and wall-clock.

The review (box "Neural Network Training Using Extended Kalman Filter", Sec.
IV-B) states that "in [67] it was shown that training an MLP using EKF
requires orders of magnitude lower number of epochs than standard
back-propagation" and that "EKF converges much more rapidly". This experiment
measures it for

* an MLP (one tanh hidden layer, MSE on one-hot targets as in the box) on
  scikit-learn's breast-cancer and digits data (standardised, 70/30 split);
* a small untied LISTA of :mod:`unrolled.sparse_coding` (initialised from ISTA,
  NMSE loss) on the family's Bernoulli-Gaussian data model,

each trained by the one :class:`~unrolled.core.train.Trainer` with
``optimizer='ekf'``, ``'sgd'`` and ``'adam'`` (each of SGD and Adam at the best
learning rate of a small grid, chosen by final training loss), on the same
data, batches and initial weights, one after the other in one process. The
EKF runs one setting per task (:attr:`Settings.ekf`: ``lr = 1/R``, ``P0``,
``Q``, decoupling), picked from trial runs of 3-5 epochs on subsets before the
recorded run; SGD and Adam get a learning-rate grid.

Targets: the training losses Adam reaches after 10% and after 100% of its
epoch budget, and the one EKF reaches at the end of its (smaller) budget. For
each we report the first epoch (and the training seconds, evaluation excluded:
wall-clock and the process's CPU time, which a busy shared machine does not
inflate) at which each method's training loss is at or below it, and the
ratios BP epochs / EKF epochs and BP seconds / EKF seconds.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from unrolled.core.ekf import output_jacobian
from unrolled.core.metrics import nmse
from unrolled.core.train import Trainer, TrainingDivergedError
from unrolled.experiments.ekf_training_report import write_report
from unrolled.experiments.report import write_json

REVIEW = ("in [67] it was shown that training an MLP using EKF requires orders of magnitude lower number of epochs "
          "than standard back-propagation")


@dataclass(frozen=True)
class Settings:
    """What one run trains (``**settings`` of :func:`reproduce_ekf_training` override these fields)."""

    tasks: tuple[str, ...] = ("breast-cancer", "digits", "lista")
    epochs_bp: int = 200  # SGD and Adam
    epochs_ekf: int = 10
    batch_size: int = 10
    sgd_lrs: tuple[float, ...] = (0.01, 0.03, 0.1)
    adam_lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
    ekf: dict = field(default_factory=lambda: {
        "breast-cancer": {"lr": 1.0, "P0": 10.0, "Q": 1e-4, "decoupling": "global"},
        "digits": {"lr": 10.0, "P0": 1.0, "Q": 1e-3, "decoupling": "global"},
        "lista": {"lr": 0.1, "P0": 1.0, "Q": 1e-4, "decoupling": "parameter"},
    })
    hidden: dict = field(default_factory=lambda: {"breast-cancer": 10, "digits": 16})
    digits_train: int | None = None  # a subset of the training split (None: all of it)
    lista: dict = field(default_factory=lambda: {"m": 10, "n": 20, "n_layers": 4, "p": 0.2, "lam": 0.1,
                                                 "n_train": 500, "n_test": 1000})


FULL = Settings()
QUICK = Settings(epochs_bp=10, epochs_ekf=2, sgd_lrs=(0.1,), adam_lrs=(1e-2,), digits_train=100,
                 hidden={"breast-cancer": 10, "digits": 8},
                 lista={"m": 8, "n": 16, "n_layers": 2, "p": 0.2, "lam": 0.1, "n_train": 100, "n_test": 100})


@dataclass
class Task:
    name: str
    model: nn.Module  # initial weights (each method trains a copy)
    loss: object
    train: tuple[Tensor, Tensor]
    test: tuple[Tensor, Tensor]
    metric_name: str
    metric: object  # metric(prediction, target) -> float
    description: str


def _squared_error(pred: Tensor, target: Tensor) -> Tensor:
    """Mean over samples of the summed squared error (the MSE of the box, up to the factor m)."""
    return (pred - target).pow(2).sum(dim=-1).mean()


def _accuracy(pred: Tensor, target: Tensor) -> float:
    if pred.shape[-1] == 1:
        return float(((pred[:, 0] > 0.5) == (target[:, 0] > 0.5)).double().mean())
    return float((pred.argmax(-1) == target.argmax(-1)).double().mean())


def _nmse_db(pred: Tensor, target: Tensor) -> float:
    return 10.0 * math.log10(float(nmse(pred, target)))


def _sklearn_task(name: str, settings: Settings, seed: int, device) -> Task:
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = (load_breast_cancer if name == "breast-cancer" else load_digits)(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=seed, stratify=y)
    if name == "digits" and settings.digits_train is not None:
        Xtr, ytr = Xtr[: settings.digits_train], ytr[: settings.digits_train]
    scaler = StandardScaler().fit(Xtr)
    n_out = 1 if name == "breast-cancer" else 10

    def targets(labels) -> Tensor:
        t = torch.as_tensor(labels)
        return t[:, None].double() if n_out == 1 else nn.functional.one_hot(t, n_out).double()

    def inputs(data) -> Tensor:
        return torch.as_tensor(scaler.transform(data), dtype=torch.float64)

    torch.manual_seed(seed)
    h = settings.hidden[name]
    model = nn.Sequential(nn.Linear(X.shape[1], h), nn.Tanh(), nn.Linear(h, n_out)).double()
    train = (inputs(Xtr).to(device), targets(ytr).to(device))
    test = (inputs(Xte).to(device), targets(yte).to(device))
    n_w = sum(p.numel() for p in model.parameters())
    return Task(name, model.to(device), _squared_error, train, test, "test accuracy", _accuracy,
                f"MLP {X.shape[1]}-{h}-{n_out} (tanh, {n_w} weights), {len(Xtr)} train / {len(Xte)} test samples")


def _lista_task(settings: Settings, seed: int, device) -> Task:
    from unrolled.sparse_coding.data import SparseCodingProblem
    from unrolled.sparse_coding.nets import LISTA

    c = settings.lista
    prob = SparseCodingProblem(m=c["m"], n=c["n"], p=c["p"], snr_db=None, seed=seed, dtype=torch.float64)
    train = prob.sample(c["n_train"], torch.Generator().manual_seed(seed + 1))
    test = prob.sample(c["n_test"], torch.Generator().manual_seed(seed + 2))
    net = LISTA.from_algorithm(prob.A, c["lam"], c["n_layers"])
    n_w = sum(p.numel() for p in net.parameters())
    return Task("lista", net.to(device), nmse, tuple(t.to(device) for t in train), tuple(t.to(device) for t in test),
                "test NMSE (dB)", _nmse_db,
                f"LISTA (untied, {c['n_layers']} layers, m={c['m']}, n={c['n']}, p={c['p']}, {n_w} weights, "
                f"from ISTA with lam={c['lam']}), {c['n_train']} train / {c['n_test']} test samples, NMSE loss")


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def train_curve(task: Task, optimizer: str, lr: float, options: dict, epochs: int, batch_size: int, seed: int,
                device, progress: bool) -> dict:
    """Train a copy of ``task.model``; per epoch: training loss (full set), test loss, metric, training seconds.

    Epoch 0 is the initial model. Seconds are the Trainer's wall-clock with its
    per-epoch validation (the held-out set) included and this function's own
    evaluation of the training set excluded.
    """
    model = copy.deepcopy(task.model)
    n_train = task.train[0].shape[0]
    steps = n_train // batch_size
    curve = {"epoch": [], "train_loss": [], "test_loss": [], "metric": [], "seconds": [], "cpu_seconds": []}
    clock = {"start": 0.0, "excluded": 0.0, "cpu_start": 0.0, "cpu_excluded": 0.0}

    @torch.no_grad()
    def evaluate(elapsed: float, cpu: float) -> None:
        was = model.training
        model.eval()
        curve["epoch"].append(len(curve["epoch"]))
        curve["train_loss"].append(float(task.loss(model(task.train[0]), task.train[1])))
        pred = model(task.test[0])
        curve["test_loss"].append(float(task.loss(pred, task.test[1])))
        curve["metric"].append(task.metric(pred, task.test[1]))
        curve["seconds"].append(elapsed)
        curve["cpu_seconds"].append(cpu)
        model.train(was)

    def callback(trainer, record) -> None:
        _sync(device)
        t, c = time.perf_counter(), time.process_time()
        evaluate(t - clock["start"] - clock["excluded"], c - clock["cpu_start"] - clock["cpu_excluded"])
        clock["excluded"] += time.perf_counter() - t
        clock["cpu_excluded"] += time.process_time() - c

    evaluate(0.0, 0.0)
    trainer = Trainer(model, task.loss, task.train, task.test, lr=lr, max_steps=steps * epochs,
                      batch_size=batch_size, val_every=steps, seed=seed, device=device, progress=progress,
                      divergence_factor=1e6, optimizer=optimizer, optimizer_options=options, callbacks=[callback])
    clock["start"], clock["cpu_start"] = time.perf_counter(), time.process_time()
    try:
        trainer.fit()
        diverged = False
    except TrainingDivergedError:  # a diverging configuration is a result (reported), not a crash
        diverged = True
    return {"optimizer": optimizer, "lr": lr, "options": dict(options), "diverged": diverged, **curve}


def first_reach(curve: dict, target: float) -> tuple[int | None, float | None, float | None]:
    """The first epoch whose training loss is ``<= target``, and the training wall-clock and CPU seconds by then."""
    for epoch, loss, sec, cpu in zip(curve["epoch"], curve["train_loss"], curve["seconds"], curve["cpu_seconds"]):
        if loss <= target:
            return epoch, sec, cpu
    return None, None, None


def _best(runs: list[dict]) -> dict:
    """The run with the lowest final training loss (diverged runs last)."""
    return min(runs, key=lambda r: (r["diverged"], r["train_loss"][-1]))


def _warm_up(device) -> None:
    """The first batched backward imports torch's symbolic-shape machinery (seconds): keep it out of the timings."""
    lin = nn.Linear(2, 2).to(device)
    output_jacobian(lin(torch.ones(1, 2, device=device)).reshape(-1), list(lin.parameters()))


def reproduce_ekf_training(out_dir, quick: bool = False, seed: int = 0, device: str = "cpu", progress: bool = False,
                           **settings) -> dict:
    """Run the comparison and write results.json, results.md, loss_vs_epoch.png and loss_vs_time.png.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (created).
    quick : bool
        A few epochs on subsets (:data:`QUICK`), for tests; else :data:`FULL`.
    seed : int
        Seeds the split, the initial weights, the LISTA data and the batches.
    device : str
        Where the models train.
    progress : bool
        tqdm bars (runs and training steps).
    **settings
        Overrides of :class:`Settings` fields (e.g. ``epochs_ekf=10``).

    Returns
    -------
    dict
        The JSON payload (settings, per-task runs and the target table).
    """
    cfg = replace(QUICK if quick else FULL, **settings)  # an unknown name raises TypeError (as the CLI expects)
    bad = set(cfg.tasks) - {"breast-cancer", "digits", "lista"}
    if bad or not cfg.tasks:
        raise ValueError(f"tasks must be among 'breast-cancer', 'digits', 'lista', got {cfg.tasks!r}")
    for name in ("epochs_bp", "epochs_ekf", "batch_size"):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if not cfg.sgd_lrs or not cfg.adam_lrs:
        raise ValueError("sgd_lrs and adam_lrs must each hold at least one learning rate")
    missing = [t for t in cfg.tasks if t not in cfg.ekf or "lr" not in cfg.ekf[t]]
    if missing:
        raise ValueError(f"ekf must give the EKF options (with 'lr') of every task; missing: {missing}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _warm_up(device)
    tasks = [_lista_task(cfg, seed, device) if t == "lista" else _sklearn_task(t, cfg, seed, device)
             for t in cfg.tasks]
    plan = [(t, "ekf", cfg.ekf[t.name]["lr"], {k: v for k, v in cfg.ekf[t.name].items() if k != "lr"},
             cfg.epochs_ekf) for t in tasks]
    plan += [(t, "sgd", lr, {}, cfg.epochs_bp) for t in tasks for lr in cfg.sgd_lrs]
    plan += [(t, "adam", lr, {}, cfg.epochs_bp) for t in tasks for lr in cfg.adam_lrs]
    runs: dict[str, list[dict]] = {t.name: [] for t in tasks}
    for task, opt, lr, options, epochs in tqdm(plan, desc="ekf-training runs", disable=not progress):
        runs[task.name].append(train_curve(task, opt, lr, options, epochs, cfg.batch_size, seed, device, progress))
    rows = []
    for task in tasks:
        best = {opt: _best([r for r in runs[task.name] if r["optimizer"] == opt]) for opt in ("ekf", "sgd", "adam")}
        adam, ekf = best["adam"]["train_loss"], best["ekf"]["train_loss"]
        targets = [(f"Adam @ 10% ({max(1, cfg.epochs_bp // 10)} epochs)", min(adam[: max(1, cfg.epochs_bp // 10) + 1])),
                   (f"EKF @ 100% ({cfg.epochs_ekf} epochs)", min(ekf)),
                   (f"Adam @ 100% ({cfg.epochs_bp} epochs)", min(adam))]
        for label, target in sorted(targets, key=lambda t: -t[1]):
            row = {"task": task.name, "target": label, "target_loss": target}
            for opt, run in best.items():
                row[f"{opt}_epochs"], row[f"{opt}_seconds"], row[f"{opt}_cpu_seconds"] = first_reach(run, target)
            for opt in ("sgd", "adam"):
                for kind in ("epochs", "seconds", "cpu_seconds"):
                    row[f"{opt}_over_ekf_{kind}"] = _ratio(row[f"{opt}_{kind}"], row[f"ekf_{kind}"])
            rows.append(row)
    payload = {
        "experiment": "ekf-training",
        "review_statement": REVIEW,
        "quick": quick,
        "seed": seed,
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "dtype": "float64",
        "settings": asdict(cfg),
        "tasks": {t.name: {"description": t.description, "metric": t.metric_name} for t in tasks},
        "runs": runs,
        "targets": rows,
    }
    write_json(out / "results.json", payload)
    write_report(out, payload)
    return payload


def _ratio(a, b) -> float | None:
    if a is None or b is None:
        return None
    return float(a) / float(b) if b > 0 else None
