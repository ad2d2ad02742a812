"""results.md and the figures of ``unrolled reproduce ekf-training`` (:mod:`unrolled.experiments.ekf_training`)."""

from __future__ import annotations

from pathlib import Path

from unrolled.experiments.report import markdown_table, save_figure

LABELS = {"ekf": "EKF", "sgd": "SGD", "adam": "Adam"}


def _best(runs: list[dict], opt: str) -> dict:
    return min((r for r in runs if r["optimizer"] == opt), key=lambda r: (r["diverged"], r["train_loss"][-1]))


def _epochs(value, budget: int) -> str:
    return f"> {budget} (not reached)" if value is None else str(value)


def _seconds(value) -> str:
    return "—" if value is None else f"{value:.2f}"


def _ratio(row: dict, opt: str, kind: str, budgets: dict) -> str:
    """BP / EKF ratio, or the bound it is known to satisfy when one side did not reach the target."""
    value = row[f"{opt}_over_ekf_{kind}"]
    if value is not None:
        bound = "≥ " if kind == "epochs" and row["ekf_epochs"] == 1 else ""  # EKF may need less than one epoch
        return f"{bound}{value:.3g}"
    bp, ekf = row[f"{opt}_{kind}"], row[f"ekf_{kind}"]
    if kind == "epochs":
        if bp is None and ekf is not None:
            return f"> {budgets[opt] / ekf:.3g}"
        if ekf is None and bp is not None:
            return f"< {bp / budgets['ekf']:.3g}"
    return "—"


def _size(ratio: float) -> str:
    if ratio >= 100:
        return "≥ 2 orders"
    if ratio >= 10:
        return "1 order"
    return "< 1 order" if ratio > 1 else "no gain"


def _verdict(row: dict, budgets: dict) -> str:
    """The review's "orders of magnitude fewer epochs" checked against SGD (plain BP, as in [67]) and Adam."""
    if row["ekf_epochs"] is None:
        return f"does not hold: EKF did not reach it in {budgets['ekf']} epochs"
    parts, sizes = [], []
    for opt in ("sgd", "adam"):
        r = row[f"{opt}_over_ekf_epochs"]
        if r is None:  # BP did not reach it: the ratio is at least budget / EKF epochs
            r = budgets[opt] / row["ekf_epochs"]
            parts.append(f"vs {LABELS[opt]} > x{r:.3g}")
        else:
            parts.append(f"vs {LABELS[opt]} x{r:.3g} ({_size(r)})")
        sizes.append(r)
    if row["ekf_epochs"] == 1 and min(sizes) <= 1:
        return "not resolved: reached within the first epoch"
    verdict = "holds" if min(sizes) >= 100 else ("holds against SGD only" if sizes[0] >= 100 else "does not hold")
    return f"{verdict}: " + ", ".join(parts)


def write_report(out: Path, payload: dict) -> None:
    """Write results.md, loss_vs_epoch.png and loss_vs_time.png from the payload of the experiment."""
    cfg = payload["settings"]
    budgets = {"ekf": cfg["epochs_ekf"], "sgd": cfg["epochs_bp"], "adam": cfg["epochs_bp"]}
    lines = [
        "# EKF training vs back-propagation (`unrolled reproduce ekf-training`)",
        "",
        f"Review, box \"Neural Network Training Using Extended Kalman Filter\": *\"{payload['review_statement']}\"*; "
        "Sec. IV-B: \"EKF converges much more rapidly than standard back-propagation\".",
        "",
        f"One process, {payload['torch_threads']} torch thread(s), device `{payload['device']}`, "
        f"{payload['dtype']}, seed {payload['seed']}{', **quick** settings' if payload['quick'] else ''}. "
        f"Batch size {cfg['batch_size']} for every method; EKF {cfg['epochs_ekf']} epochs, SGD and Adam "
        f"{cfg['epochs_bp']} epochs each at the best learning rate of {list(cfg['sgd_lrs'])} (SGD) and "
        f"{list(cfg['adam_lrs'])} (Adam), chosen by final training loss; EKF one setting per task (in the runs table), "
        "picked from short trial runs on subsets before this run. Seconds: training wall-clock and CPU time, "
        "including the Trainer's per-epoch validation, excluding our training-set evaluation. Targets: the "
        "training loss Adam reaches after 10% and 100% of its epochs, and the one EKF reaches in its epochs; an "
        "epoch count is the first epoch-end at or below it (EKF's resolution is one epoch, so a ratio against EKF "
        "epoch 1 is a lower bound: '≥').",
        "",
        "## Tasks",
        "",
    ]
    lines += [f"- **{name}**: {t['description']}" for name, t in payload["tasks"].items()]
    lines += ["", "## Epochs to reach the target training loss", ""]
    header = ["task", "target", "loss", "EKF epochs", "SGD epochs", "Adam epochs", "SGD/EKF", "Adam/EKF",
              "the review: \"orders of magnitude lower number of epochs\" [67]"]
    body = [[r["task"], r["target"], f"{r['target_loss']:.4g}",
             *(_epochs(r[f"{o}_epochs"], budgets[o]) for o in ("ekf", "sgd", "adam")),
             *(_ratio(r, o, "epochs", budgets) for o in ("sgd", "adam")), _verdict(r, budgets)]
            for r in payload["targets"]]
    lines += [markdown_table(header, body), "", "## Seconds to reach the target training loss", "",
              "CPU: the process's CPU time (robust to other load on the machine); wall: wall-clock.", ""]
    header = ["task", "target", "EKF CPU s", "SGD CPU s", "Adam CPU s", "SGD/EKF CPU", "Adam/EKF CPU",
              "EKF wall s", "SGD wall s", "Adam wall s", "SGD/EKF wall", "Adam/EKF wall"]
    body = [[r["task"], r["target"], *(_seconds(r[f"{o}_cpu_seconds"]) for o in ("ekf", "sgd", "adam")),
             *(_ratio(r, o, "cpu_seconds", budgets) for o in ("sgd", "adam")),
             *(_seconds(r[f"{o}_seconds"]) for o in ("ekf", "sgd", "adam")),
             *(_ratio(r, o, "seconds", budgets) for o in ("sgd", "adam"))]
            for r in payload["targets"]]
    lines += [markdown_table(header, body), "", "## Every run (final epoch)", ""]
    header = ["task", "optimizer", "lr", "options", "epochs", "final train loss", "test loss", "test metric",
              "CPU s / epoch", "wall s / epoch", "diverged"]
    body = []
    for task, runs in payload["runs"].items():
        for r in runs:
            n = r["epoch"][-1]
            body.append([task, LABELS[r["optimizer"]], f"{r['lr']:g}", ", ".join(f"{k}={v}" for k, v in
                                                                              r["options"].items()) or "—",
                         n, f"{r['train_loss'][-1]:.4g}", f"{r['test_loss'][-1]:.4g}", f"{r['metric'][-1]:.4g}",
                         f"{r['cpu_seconds'][-1] / max(n, 1):.3g}", f"{r['seconds'][-1] / max(n, 1):.3g}",
                         "yes" if r["diverged"] else "no"])
    lines += [markdown_table(header, body), "",
              "Test metric: " + ", ".join(f"{k}: {t['metric']}" for k, t in payload["tasks"].items()) + ".", "",
              "Figures: `loss_vs_epoch.png`, `loss_vs_time.png` (best run of each optimiser, training loss).", ""]
    (out / "results.md").write_text("\n".join(lines))
    _figure(out / "loss_vs_epoch.png", payload, "epoch", "epoch")
    _figure(out / "loss_vs_time.png", payload, "seconds", "training wall-clock (s), from the end of epoch 1")


def _figure(path: Path, payload: dict, x: str, xlabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(payload["runs"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 4.0), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for opt in ("ekf", "sgd", "adam"):
            r = _best(payload["runs"][task], opt)
            first = 0 if x == "epoch" else 1  # epoch 0 sits at 0 s, off a log axis
            ax.plot(r[x][first:], r["train_loss"][first:], marker="o" if opt == "ekf" else None, markersize=3,
                    label=f"{LABELS[opt]} (lr {r['lr']:g})")
        ax.set_yscale("log")
        ax.set_xscale("log" if x == "seconds" else "linear")
        ax.set_title(task)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("training loss")
        ax.grid(True, alpha=0.3, which="both")
        ax.legend(fontsize=8)
    save_figure(fig, path)
