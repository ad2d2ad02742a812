"""The ``unrolled`` command line.

Subcommands: ``list``, ``demo``, ``train``, ``evaluate``, ``benchmark``,
``reproduce``. Each takes ``--help``; the common options are ``--device``,
``--seed`` and ``--out``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch


def _common(p: argparse.ArgumentParser, out_default: str) -> None:
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--out", default=out_default, help=f"output folder (default: {out_default})")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _check_device(device: str) -> str:
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise SystemExit(f"error: bad --device {device!r}: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda asked for, but torch sees no CUDA device")
    return device


def cmd_list(args) -> int:
    from unrolled.core.io import FAMILY_MODULES, registered_models
    from unrolled.experiments import EXPERIMENTS
    from unrolled.experiments.benchmarks import BENCHMARKS
    from unrolled.graph import ENSEMBLES, SLoGNet
    from unrolled.sbl import SUMMARY as SBL_SUMMARY
    from unrolled.sparse_coding import NETWORKS
    from unrolled.sparse_coding.solvers import fista, iht, ista

    print("families:")
    print("  sparse_coding   Lasso / sparse coding: y = A x + w")
    print("    solvers:      " + ", ".join(f.__name__ for f in (ista, fista, iht)))
    print("    networks:     " + ", ".join(f"{k} ({v.__name__})" for k, v in NETWORKS.items()))
    print("  graph           blind deconvolution of graph diffusion (source localization): Y = H X, H a graph filter")
    print("    graphs:       " + ", ".join(ENSEMBLES))
    print("    solvers:      admm")
    print(f"    networks:     {SLoGNet.__name__}")
    print("    experiments:  " + ", ".join(k for k in EXPERIMENTS if k.startswith("slognet")))
    print("  separation      sparse semi-blind source separation: X = A S + N, A of unit-norm spectra")
    print("    solvers:      palm")
    print("    networks:     LPALM (S: LISTA-CP, ISTA-LLT or LISTA; A: learned ISTA-LL step or PALM's explicit gradient step)")
    print("    experiments:  " + ", ".join(k for k in EXPERIMENTS if k.startswith("lpalm")))
    for line in SBL_SUMMARY:
        print(line)
    print("  classification  l1 logistic regression with feature selection: P(y=1|x) = sigmoid(beta^T x)")
    print("    solvers:      irls_admm (fixed or Bayesian-reweighted l1 weights)")
    print("    networks:     DeepIRLSADMMNet; scikit-learn estimators IRLSADMMClassifier, DeepIRLSADMMClassifier")
    print("    experiments:  " + ", ".join(k for k in EXPERIMENTS if k.startswith("irls")))
    for module in FAMILY_MODULES:  # importing a family registers its models
        importlib.import_module(module)
    print("registered models (loadable by `unrolled evaluate`): " + ", ".join(sorted(registered_models())))
    print("experiments (`unrolled reproduce NAME`):")
    width = max(len(name) for name in EXPERIMENTS)
    for e in EXPERIMENTS.values():
        print(f"  {e.name:<{width}} {e.description}")
    print("benchmarks (`unrolled benchmark NAME`):")
    for name, b in BENCHMARKS.items():
        print(f"  {name:<22} {b.description}")
    return 0


def cmd_demo(args) -> int:
    from unrolled.experiments.demo import run_demo

    parts = None if args.part == "all" else (args.part,)
    run_demo(args.out, seed=args.seed, device=_check_device(args.device), progress=not args.no_progress, parts=parts)
    return 0


def cmd_train(args) -> int:
    from unrolled.experiments.lista import ListaConfig, train_network
    from unrolled.core.io import save_model
    from unrolled.experiments.lista import net_per_layer
    from unrolled.sparse_coding.data import SparseCodingProblem

    device = _check_device(args.device)
    cfg = replace(ListaConfig(), m=args.m, n=args.n, p=args.p, n_layers=args.layers, lam=args.lam, lr=args.lr,
                  schedule=args.schedule, steps_per_stage=args.steps, batch_size=args.batch_size,
                  val_every=args.val_every, dtype=args.dtype)
    problem = SparseCodingProblem(m=cfg.m, n=cfg.n, p=cfg.p, snr_db=args.snr, seed=args.seed,
                                  dtype=getattr(torch, cfg.dtype), device=device)
    val = problem.sample(cfg.n_val, torch.Generator().manual_seed(args.seed + 1))
    out = Path(args.out)
    net, res = train_network(args.model, problem, val, cfg, out, seed=args.seed + 3, device=device,
                             progress=not args.no_progress)
    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
        return 0  # under torchrun only rank 0 writes the model
    meta = {"problem": problem.config(), "lam_init": cfg.lam, "train": {"steps": res.n_steps, "best_val": res.best_val,
                                                                         "schedule": cfg.schedule}}
    save_model(net, out / "model", metadata=meta)
    (out / "history.json").write_text(json.dumps({"history": res.history, "stages": res.stages}, indent=1))
    layers = net_per_layer(net, *val)
    print(f"trained {args.model} ({res.n_steps} steps, {res.seconds:.1f} s); validation NMSE per layer (dB):")
    print("  " + "  ".join(f"{v:.2f}" for v in layers))
    print(f"model saved to {out / 'model'}")
    return 0


def cmd_evaluate(args) -> int:
    from unrolled.core.io import load_model, read_config
    from unrolled.experiments.lista import net_per_layer, solver_per_layer
    from unrolled.experiments.report import markdown_table
    from unrolled.sparse_coding.data import SparseCodingProblem
    from unrolled.sparse_coding.nets import SparseCodingNet

    device = _check_device(args.device)
    payload = read_config(args.model_dir)
    net = load_model(args.model_dir, device=device)
    if not isinstance(net, SparseCodingNet):
        raise SystemExit(f"error: `unrolled evaluate` compares sparse-coding nets (LISTA family) with ISTA/FISTA; "
                         f"{args.model_dir} holds a {type(net).__name__}. Load it with "
                         "unrolled.core.io.load_model, or rerun its `unrolled reproduce` experiment.")
    prob_cfg = dict(payload["metadata"].get("problem") or {})
    if not prob_cfg:
        raise SystemExit(f"error: {args.model_dir} has no data-model metadata; cannot build a test set")
    prob_cfg["dtype"] = getattr(torch, prob_cfg["dtype"])
    if args.snr is not None:
        prob_cfg["snr_db"] = args.snr
    problem = SparseCodingProblem(**prob_cfg, device=device)
    y, x = problem.sample(args.n_test, torch.Generator().manual_seed(args.seed + 2))
    lam = payload["metadata"].get("lam_init", 0.1)
    curves = {payload["class"]: net_per_layer(net, y, x)}
    for name in ("ista", "fista"):
        curves[name.upper()] = solver_per_layer(name, y, problem.A, lam, net.n_layers, x)
    rows = [[k] + [c[k] for c in curves.values()] for k in range(net.n_layers)]
    rows = [[r[0] + 1] + r[1:] for r in rows]
    print(f"NMSE (dB) on {args.n_test} fresh test samples (snr_db={problem.snr_db}):")
    print(markdown_table(["layer"] + list(curves), rows))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps({"model_dir": str(args.model_dir), "curves": curves}, indent=1))
    return 0


def cmd_benchmark(args) -> int:
    from unrolled.experiments.benchmarks import BENCHMARKS

    if args.name not in BENCHMARKS:
        raise SystemExit(f"error: unknown benchmark {args.name!r}; choose from {sorted(BENCHMARKS)}")
    extra = {"model_dir": args.model_dir} if args.model_dir else {}
    if extra and args.name != "lista-cpss-vs-fista":
        raise SystemExit("error: --model-dir applies to the lista-cpss-vs-fista benchmark only")
    BENCHMARKS[args.name].run(out_dir=args.out, quick=args.quick, seed=args.seed, device=_check_device(args.device),
                              **extra)
    return 0


def parse_overrides(items: list[str] | None) -> dict:
    """``['steps=100000', "methods=('sbl', 'gf-lstm')"]`` -> ``{'steps': 100000, 'methods': ('sbl', 'gf-lstm')}``.

    Values are Python literals (numbers, booleans, tuples, strings); anything that is not a literal is kept
    as a plain string.
    """
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise SystemExit(f"error: --set takes KEY=VALUE with KEY a setting name, got {item!r}")
        try:
            out[key] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key] = value.strip()
    return out


def cmd_reproduce(args) -> int:
    from unrolled.experiments import EXPERIMENTS

    if args.name not in EXPERIMENTS:
        raise SystemExit(f"error: unknown experiment {args.name!r}; choose from {sorted(EXPERIMENTS)}")
    overrides = parse_overrides(args.set)
    out = Path(args.out) / args.name
    try:
        EXPERIMENTS[args.name].run(out, quick=args.quick, seed=args.seed, device=_check_device(args.device),
                                   progress=not args.no_progress, **overrides)
    except TypeError as e:  # an unknown setting name reaches the experiment's config dataclass
        if overrides and "unexpected keyword argument" in str(e):
            raise SystemExit(f"error: {args.name} has no setting among {sorted(overrides)} ({e}); the settings "
                             f"are the fields of the experiment's config dataclass") from None
        raise
    print(f"results written to {out}/ (results.json, results.md, PNG figures)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unrolled", description="Algorithm unrolling: solvers and the networks unrolled from them.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list families, models, experiments and benchmarks")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("demo", help="one quick unrolled net per family, trained and compared with its solver "
                                    "(a few minutes on 2 CPU cores)")
    _common(p, "unrolled-demo")
    p.add_argument("--part", default="all", choices=["all", "lista", "slognet", "lpalm", "sbl", "irls"],
                   help="run one part only (default: all, in this order)")
    p.set_defaults(func=cmd_demo)

    from unrolled.sparse_coding import NETWORKS

    p = sub.add_parser("train", help="train a sparse-coding network and save it (safetensors + JSON)")
    _common(p, "unrolled-train")
    p.add_argument("--model", choices=sorted(NETWORKS), default="lista-cp")
    p.add_argument("--m", type=int, default=250)
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--p", type=float, default=0.1, help="probability of a non-zero entry")
    p.add_argument("--snr", type=float, default=None, help="SNR in dB (default: noiseless)")
    p.add_argument("--layers", type=int, default=16)
    p.add_argument("--lam", type=float, default=0.1, help="lambda of the ISTA initialisation")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--schedule", choices=["layerwise", "end-to-end"], default="layerwise")
    p.add_argument("--steps", type=int, default=250, help="steps per stage")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--val-every", type=int, default=25)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="rebuild a saved model and measure NMSE per layer against ISTA/FISTA")
    _common(p, "unrolled-eval")
    p.add_argument("model_dir", help="folder with model.safetensors and config.json")
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--snr", type=float, default=None, help="override the SNR of the saved data model")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("benchmark", help="side-by-side speed/accuracy benchmarks, printed as ratios")
    _common(p, "unrolled-bench")
    p.add_argument("name", help="benchmark name (see `unrolled list`)")
    p.add_argument("--quick", action="store_true", help="reduced sizes")
    p.add_argument("--model-dir", default=None,
                   help="lista-cpss-vs-fista: the trained LISTA-CPSS folder (default: the one `reproduce lista` saved)")
    p.set_defaults(func=cmd_benchmark)

    from unrolled.experiments import EXPERIMENTS

    p = sub.add_parser("reproduce", help="reproduce a paper's table/figure (JSON + Markdown + PNG)")
    _common(p, "unrolled-results")
    p.add_argument("name", choices=sorted(EXPERIMENTS))
    p.add_argument("--quick", action="store_true", help="reduced version (minutes, used by the tests)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override one setting of the experiment's config (repeatable), e.g. --set steps=100000 "
                        "--set \"methods=('sbl', 'gf-lstm')\"; values are Python literals")
    p.set_defaults(func=cmd_reproduce)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
