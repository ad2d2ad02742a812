"""Tables, figures and audio of ``unrolled reproduce deepnmf`` (see :mod:`unrolled.experiments.deepnmf`)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from unrolled.experiments.report import markdown_table, save_figure, write_json

REVIEW = ("Deep NMF was evaluated on speech enhancement in reverberated noisy mixtures (WSJ) and 'was shown to "
          "outperform both a conventional deep neural network [30] and the iterative sparse NMF method [55]' "
          "(review, Sec. III, box Deep NMF)")


def _mean(values) -> float:
    return float(np.mean(values))


def summarise(results: dict, training: dict) -> dict:
    """Per method: mean SDR / SI-SDR improvements, STOI, median time per utterance (ms), parameters."""
    out = {}
    for name, r in results.items():
        out[name] = {"sdr_improvement_db": _mean(r["sdr_improvement_db"]),
                     "si_sdr_improvement_db": _mean(r["si_sdr_improvement_db"]),
                     "sdr_db": _mean(r["sdr_db"]), "stoi": _mean(r["stoi"]),
                     "stoi_improvement": _mean(r["stoi_improvement"]),
                     "spectral_snr_db": _mean(r["spectral_snr_db"]),
                     "ms_per_utterance": 1e3 * float(np.median(r["seconds_per_utterance"])),
                     "parameters": training.get(name, {}).get("parameters")}
        if "iterations" in r:
            out[name]["mean_iterations"] = _mean(r["iterations"])
    return out


def _claims(summary: dict) -> list[dict]:
    deep = {n: v for n, v in summary.items() if n.startswith("deep NMF")}
    best = max(deep, key=lambda n: deep[n]["sdr_improvement_db"])
    conv = next(n for n in summary if n.startswith("sparse NMF, converged"))
    rows = []
    for other in (conv, "BLSTM mask"):
        for metric in ("sdr_improvement_db", "si_sdr_improvement_db", "stoi"):
            a, b = summary[best][metric], summary[other][metric]
            rows.append({"claim": f"{best} > {other} ({metric})", "ours": f"{a:.3f} vs {b:.3f}", "holds": a > b})
    return rows


def _figures(out_dir: Path, results: dict, summary: dict, training: dict, test: dict, prob, n_speech: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from unrolled.nmf.data import magnitude

    deep = [n for n in results if n.startswith("deep NMF")]
    shown = {"noisy input": results["noisy input"]["_estimate"][0],
             "reverberant speech (target)": magnitude(test["speech"][:1], prob.n_fft, prob.hop)[0]}
    conv = next(n for n in results if n.startswith("sparse NMF, converged"))
    shown[conv] = results[conv]["_estimate"][0]
    shown[deep[-1]] = results[deep[-1]]["_estimate"][0]
    shown["BLSTM mask"] = results["BLSTM mask"]["_estimate"][0]
    fig, axes = plt.subplots(len(shown), 1, figsize=(7, 1.45 * len(shown)), sharex=True)
    top = float(torch.log10(shown["noisy input"].double().max() + 1e-12)) * 20
    extent = (0, test["noisy"].shape[-1] / prob.fs, 0, prob.fs / 2000)
    for ax, (title, S) in zip(axes, shown.items()):
        ax.imshow(20 * torch.log10(S.double() + 1e-6).numpy(), origin="lower", aspect="auto", extent=extent,
                  vmin=top - 70, vmax=top, cmap="magma")
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("kHz")
    axes[-1].set_xlabel("time (s)")
    save_figure(fig, out_dir / "spectrograms.png")

    fig, ax = plt.subplots(figsize=(5.5, 4))
    Ks = [int(n.split("=")[1]) for n in deep]
    ax.plot(Ks, [summary[n]["sdr_improvement_db"] for n in deep], "o-", label="deep NMF (trained)")
    for name, style in ((conv, "--"), ("BLSTM mask", ":")):
        ax.axhline(summary[name]["sdr_improvement_db"], ls=style, color="k" if style == "--" else "C3", label=name)
    ax.set_xlabel("layers K")
    ax.set_ylabel("SDR improvement (dB)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, out_dir / "sdr_vs_layers.png")

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, t in training.items():
        ax.plot([c["step"] for c in t["curve"]], [c["val_snr_db"] for c in t["curve"]], marker=".", label=name)
    ax.set_xlabel("training step")
    ax.set_ylabel("validation spectral SNR (dB)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, out_dir / "training.png")


def _audio(out_dir: Path, results: dict, test: dict, fs: int) -> list[str]:
    import soundfile as sf

    folder = out_dir / "audio"
    folder.mkdir(exist_ok=True)
    deep = [n for n in results if n.startswith("deep NMF")][-1]
    conv = next(n for n in results if n.startswith("sparse NMF, converged"))
    clips = {"noisy": test["noisy"][0], "clean_reverberant": test["speech"][0], "sparse_nmf": results[conv]["_wave"][0],
             "deep_nmf": results[deep]["_wave"][0], "blstm": results["BLSTM mask"]["_wave"][0]}
    peak = max(float(c.abs().max()) for c in clips.values())
    names = []
    for key, x in clips.items():
        sf.write(folder / f"example_{key}.wav", (0.9 * x / peak).numpy(), fs, subtype="PCM_16")
        names.append(f"audio/example_{key}.wav")
    return names


def write_report(out_dir: Path, payload: dict, results: dict, test: dict, prob, n_speech: int, t_start: float) -> dict:
    """Write results.json / results.md / PNGs / WAVs; return the summary dict."""
    summary = summarise(results, payload["training"])
    claims = _claims(summary)
    _figures(out_dir, results, summary, payload["training"], test, prob, n_speech)
    audio = _audio(out_dir, results, test, prob.fs)
    payload = dict(payload, summary=summary, claims=claims, audio=audio, review=REVIEW,
                   per_utterance={n: {k: v for k, v in r.items() if not k.startswith("_")} for n, r in results.items()},
                   total_seconds=time.perf_counter() - t_start)
    write_json(out_dir / "results.json", payload)
    s = payload["settings"]
    rows = [[name, v["sdr_improvement_db"], v["si_sdr_improvement_db"], f"{v['stoi']:.3f}",
             f"{v['stoi_improvement']:+.3f}", v["spectral_snr_db"], f"{v['ms_per_utterance']:.1f}",
             v["parameters"] if v["parameters"] is not None else "—"] for name, v in summary.items()]
    conv = next(n for n in summary if n.startswith("sparse NMF, converged"))
    md = [f"# Deep NMF speech enhancement ({'quick' if payload['quick'] else 'full'} run)", "",
          f"Review: {REVIEW}.", "",
          f"Test set: {s['n_test']} mixtures of {s['duration']} s at 8 kHz (test voices, sentences and rooms), SNR "
          f"uniform in [-5, 5] dB, noise coloured / babble / machine; {s['n_train']} training and {s['n_val']} "
          f"validation mixtures. STFT {s['n_fft']} points, hop {s['hop']}. Bases: {s['n_speech']} speech + "
          f"{s['n_noise']} noise, beta = {s['beta']}, l1 weight mu = {payload['mu_selected']} (chosen on validation "
          f"from {list(s['mu_grid'])}). Improvements are over the noisy input, against the reverberant speech.", "",
          markdown_table(["method", "SDRi (dB)", "SI-SDRi (dB)", "STOI", "ΔSTOI", "spectral SNR (dB)",
                          "ms / utterance", "parameters"], rows), "",
          f"Sparse NMF to convergence took {summary[conv].get('mean_iterations', float('nan')):.0f} iterations on "
          f"average. Times: median over the test utterances, one at a time, float32, "
          f"{payload['threads']} thread(s), same run; STFT/iSTFT excluded.", "",
          "## The review's statement against ours", "",
          markdown_table(["claim", "ours", "holds"], [[c["claim"], c["ours"], "yes" if c["holds"] else "no"]
                                                      for c in claims]), "",
          "Training (validation spectral SNR, dB, of the kept weights): " + ", ".join(
              f"{n}: {t['best_val_snr_db']:.2f} after {t['steps']} steps ({t['train_seconds']:.0f} s)"
              for n, t in payload["training"].items()) + ".", "",
          "Figures: `spectrograms.png` (first test mixture), `sdr_vs_layers.png`, `training.png`; audio: "
          + ", ".join(f"`{a}`" for a in audio) + ".", ""]
    (out_dir / "results.md").write_text("\n".join(md))
    return {"summary": summary, "claims": claims, "mu_selected": payload["mu_selected"],
            "total_seconds": payload["total_seconds"]}
