"""The ``unrolled`` command line.

Subcommands: ``list``, ``demo``, ``train``, ``evaluate``, ``benchmark``,
``reproduce``. Each takes ``--help``; the common options are ``--device``,
``--seed`` and ``--out``.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import os
import sys
from pathlib import Path

import torch

from unrolled.cli_options import (_check_device, _common, _DefaultsFormatter, _ReproduceHelp, parse_overrides,
                                  settings_help)

__all__ = ["build_parser", "main", "parse_overrides", "settings_help"]


def cmd_list(args) -> int:
    from unrolled.core.registry import BENCHMARKS, EXPERIMENTS, FAMILIES, MODELS, NETS, demo_parts, nets_of

    print("families:")
    for fam in FAMILIES.values():
        print(f"  {fam.name:<15} {fam.description}")
        if fam.solvers:
            print("    solvers:      " + ", ".join(fam.solvers))
        nets = nets_of(fam.name)
        if nets:
            print("    networks:     " + ", ".join(f"{k} ({v.cls.__name__})" for k, v in nets.items()))
        for line in fam.details:
            print(f"    {line}")
        exps = [e.name for e in EXPERIMENTS.values() if e.family == fam.name]
        if exps:
            print("    experiments:  " + ", ".join(exps))
    print("networks (`unrolled train --model NAME`): " + ", ".join(sorted(NETS)))
    print("registered models (loadable by `unrolled evaluate`): " + ", ".join(sorted(MODELS)))
    print("experiments (`unrolled reproduce NAME`):")
    width = max(len(name) for name in EXPERIMENTS)
    for e in EXPERIMENTS.values():
        print(f"  {e.name:<{width}} {e.description}")
    print("benchmarks (`unrolled benchmark NAME`):")
    for name, b in BENCHMARKS.items():
        print(f"  {name:<22} {b.description}")
    print("demo parts (`unrolled demo --part NAME`): " + ", ".join(p.name for p in demo_parts()))
    return 0


def cmd_demo(args) -> int:
    from unrolled.experiments.demo import run_demo

    parts = None if args.part == "all" else (args.part,)
    run_demo(args.out, seed=args.seed, device=_check_device(args.device), progress=not args.no_progress, parts=parts)
    return 0


def _accepts(fn, name: str) -> bool:
    params = inspect.signature(fn).parameters
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _problem_options(args) -> dict:
    """``--problem KEY=VALUE`` plus the shorthands ``--m --n --p --snr --dtype --small``."""
    opts = parse_overrides(args.problem, flag="--problem")
    for flag, key in (("m", "m"), ("n", "n"), ("p", "p"), ("snr", "snr_db"), ("dtype", "dtype")):
        value = getattr(args, flag, None)
        if value is not None:
            opts.setdefault(key, value)
    if getattr(args, "small", False):
        opts["small"] = True
    return opts


def _build_problem(spec, opts: dict, device: str):
    if device != "cpu" and _accepts(spec.problem, "device"):
        opts = {**opts, "device": device}
    try:
        return spec.problem(**opts)
    except TypeError as e:
        if "unexpected keyword argument" in str(e):
            raise SystemExit(f"error: the {spec.name} data model has no option among {sorted(opts)} ({e})") from None
        raise


def _layer_metrics(spec, outputs, targets) -> list[float]:
    return [float(spec.metric(o, targets)) for o in outputs]


def _baseline_curve(spec, baseline, problem, inputs, targets, n_iter: int, options: dict) -> list[float]:
    """``spec.metric`` of the baseline solver's iterates 1..n_iter (tol=0)."""
    curve: list[float] = []
    baseline(problem, inputs, n_iter, 0.0, lambda k, est: curve.append(float(spec.metric(est, targets))), options)
    return curve


def cmd_train(args) -> int:
    from unrolled.core.io import save_model
    from unrolled.core.registry import NETS
    from unrolled.core.stages import end_to_end, layerwise
    from unrolled.core.train import Trainer

    device = _check_device(args.device)
    spec = NETS[args.model]
    options = {**spec.options, **parse_overrides(args.option, flag="--option")}
    if args.lam is not None:
        options["lam"] = args.lam
    opts = {"seed": args.seed, **_problem_options(args)}
    if "dtype" not in opts and _accepts(spec.problem, "dtype"):
        opts["dtype"] = "float32"  # the papers train in float32
    problem = _build_problem(spec, opts, device)
    val = problem.sample(args.n_val, torch.Generator().manual_seed(args.seed + 1))
    n_layers = args.layers if args.layers is not None else spec.default_layers
    net = spec.from_algorithm(problem, n_layers, args.tied, options).to(device)
    first = val[0] if isinstance(val[0], torch.Tensor) else val[0][0]
    if first.is_floating_point() and net.dtype != first.dtype:
        net = net.to(first.dtype)
    if args.schedule == "layerwise":
        stages = layerwise(n_layers, args.lr, args.steps)
    else:
        stages = end_to_end(args.lr, args.steps)
    out = Path(args.out)
    fingerprint = {"net": spec.name, "problem": spec.problem_config(problem), "options": options,
                   "layers": n_layers, "tied": bool(args.tied), "n_val": args.n_val}
    trainer = Trainer(net, spec.loss, problem.sample, val, stages=stages, batch_size=args.batch_size,
                      val_every=args.val_every, checkpoint_dir=out / "checkpoints", seed=args.seed + 3,
                      device=device, progress=not args.no_progress, fingerprint=fingerprint,
                      on_mismatch="restart" if args.fresh else "error", optimizer=args.optimizer,
                      optimizer_options=parse_overrides(args.optimizer_option, "--optimizer-option"))
    res = trainer.fit()
    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
        return 0  # under torchrun only rank 0 writes the model
    meta = {"net": spec.name, "problem": spec.problem_config(problem), "options": options,
            "lam_init": options.get("lam"),
            "train": {"steps": res.n_steps, "best_val": res.best_val, "schedule": args.schedule}}
    save_model(net, out / "model", metadata=meta)
    (out / "history.json").write_text(json.dumps({"history": res.history, "stages": res.stages}, indent=1))
    with torch.no_grad():
        layers = _layer_metrics(spec, net(val[0], return_layers=True), val[1])
    print(f"trained {spec.name} ({res.n_steps} steps, {res.seconds:.1f} s); validation {spec.metric_name} per layer:")
    print("  " + "  ".join(f"{v:.3g}" for v in layers))
    print(f"model saved to {out / 'model'}")
    return 0


def _evaluate_pretrained(args, device) -> int:
    """``unrolled evaluate pretrained:NAME``: the card's metrics re-measured on fresh problems, beside the card."""
    from unrolled.pretrained import card, evaluate, model_card, model_dir

    name = args.model_dir
    print(model_card(name))
    result = evaluate(name, n_test=args.n_test, device=device)
    n_test = args.n_test or card(name)["evaluation"]["n_test"]
    print(f"\nre-measured on {n_test} fresh problems per setting (tolerance of the test in brackets):")
    for key, tol in result["tolerance"].items():
        print(f"  {key}: {result['metrics'][key]:.4f} (card {result['card'][key]}, +- {tol:.4f})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pretrained_evaluation.json").write_text(json.dumps({"pretrained": name, **result}, indent=1))
    print(f"written to {out / 'pretrained_evaluation.json'}")
    args.model_dir = str(model_dir(name))
    return 0


def cmd_evaluate(args) -> int:
    from unrolled.core.io import load_model, read_config
    from unrolled.core.registry import NETS, net_for_class
    from unrolled.experiments.report import markdown_table

    device = _check_device(args.device)
    if args.model_dir.startswith("pretrained:"):
        rc = _evaluate_pretrained(args, device)
        payload = read_config(args.model_dir)
        meta = payload.get("metadata") or {}
        if not (meta.get("net") or net_for_class(payload.get("class", ""))) or not meta.get("problem"):
            return rc
    if args.n_test is None:
        args.n_test = 1000
    payload = read_config(args.model_dir)
    meta = payload.get("metadata") or {}
    spec = NETS.get(meta["net"]) if meta.get("net") else net_for_class(payload.get("class", ""))
    if spec is None:
        raise SystemExit(f"error: {args.model_dir} holds a {payload.get('class')}, which has no registered net "
                         "spec (no algorithm to compare it with); load it with unrolled.core.io.load_model or "
                         "rerun its `unrolled reproduce` experiment")
    net = load_model(args.model_dir, device=device)
    prob_cfg = dict(meta.get("problem") or {})
    if not prob_cfg:
        raise SystemExit(f"error: {args.model_dir} has no data-model metadata; cannot build a test set")
    prob_cfg.update(parse_overrides(args.problem, flag="--problem"))
    if args.snr is not None:
        prob_cfg["snr_db"] = args.snr
    problem = _build_problem(spec, prob_cfg, device)
    options = dict(meta.get("options") or {**spec.options, **({"lam": meta["lam_init"]} if "lam_init" in meta else {})})
    inputs, targets = problem.sample(args.n_test, torch.Generator().manual_seed(args.seed + 2))
    net.eval()
    with torch.no_grad():
        curves = {payload["class"]: _layer_metrics(spec, net(inputs, return_layers=True), targets)}
    baselines = spec.baselines or {"solver": spec.solver}
    for label, baseline in baselines.items():
        curves[label] = _baseline_curve(spec, baseline, problem, inputs, targets, net.n_layers, options)
    rows = [[k + 1] + [c[k] for c in curves.values()] for k in range(net.n_layers)]
    print(f"{spec.metric_name} per layer / iteration on {args.n_test} fresh test samples "
          f"({spec.name}; data model {prob_cfg}):")
    print(markdown_table(["layer"] + list(curves), rows))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps({"model_dir": str(args.model_dir), "net": spec.name,
                                                     "metric": spec.metric_name, "curves": curves}, indent=1))
    return 0


def cmd_benchmark(args) -> int:
    from unrolled.experiments.benchmarks import BENCHMARKS

    if args.name == "all":
        return _benchmark_all(args)
    if args.only or args.skip:
        raise SystemExit("error: --only and --skip apply to `unrolled benchmark all` only")
    if args.name not in BENCHMARKS:
        raise SystemExit(f"error: unknown benchmark {args.name!r}; choose from all, {', '.join(sorted(BENCHMARKS))}")
    extra = {"model_dir": args.model_dir} if args.model_dir else {}
    if extra and args.name != "lista-cpss-vs-fista":
        raise SystemExit("error: --model-dir applies to the lista-cpss-vs-fista benchmark only")
    BENCHMARKS[args.name].run(out_dir=args.out, quick=args.quick, seed=args.seed, device=_check_device(args.device),
                              **extra)
    return 0


def _benchmark_all(args) -> int:
    """Every benchmark with ``in_all`` (or those of ``--only``, less ``--skip``), then one table of their ratio
    rows with each benchmark's wall time (``all.json``, ``all.md`` in OUT)."""
    from unrolled.experiments.benchmarks import run_all

    if args.model_dir:
        raise SystemExit("error: --model-dir applies to the lista-cpss-vs-fista benchmark only")
    run_all(args.out, only=args.only, skip=args.skip or (), quick=args.quick, seed=args.seed,
            device=_check_device(args.device))
    out = Path(args.out)
    print(f"written: {out / 'all.json'}, {out / 'all.md'}")
    return 0


def cmd_reproduce(args) -> int:
    from unrolled.core.train import CHECKPOINT_FILE
    from unrolled.experiments import EXPERIMENTS

    if args.name not in EXPERIMENTS:
        raise SystemExit(f"error: unknown experiment {args.name!r}; choose from {sorted(EXPERIMENTS)}")
    overrides = parse_overrides(args.set)
    known = EXPERIMENTS[args.name].settings()
    unknown = sorted(set(overrides) - set(known)) if known else []
    if unknown:
        raise SystemExit(f"error: {args.name} has no setting {', '.join(unknown)}; valid --set keys: "
                         f"{', '.join(known)} (`unrolled reproduce {args.name} --help` shows types and defaults)")
    out = Path(args.out) / args.name
    if args.fresh and out.is_dir():
        for ckpt in sorted(out.rglob(CHECKPOINT_FILE)):  # start every training of the experiment over
            ckpt.unlink()
            print(f"removed {ckpt} (--fresh)")
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
    from unrolled import __version__

    parser.add_argument("--version", action="version", version=f"unrolled {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser = functools.partial(sub.add_parser, formatter_class=_DefaultsFormatter)  # type: ignore[method-assign]

    p = sub.add_parser("list", help="list families, models, experiments and benchmarks")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("demo", help="one part per family: a pretrained or briefly trained unrolled net beside its "
                                    "solver on fresh problems (about a minute on 2 CPU cores)")
    _common(p, "unrolled-demo")
    from unrolled.core.registry import NETS, demo_parts

    p.add_argument("--part", default="all", choices=["all"] + [d.name for d in demo_parts()],
                   help="run one part only (default: all, in this order)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("train", help="train any registered unrolled net from its algorithm and save it "
                                     "(safetensors + JSON)")
    _common(p, "unrolled-train")
    p.add_argument("--model", choices=sorted(NETS), default="lista-cp", help="registered net (see `unrolled list`)")
    p.add_argument("--problem", action="append", metavar="KEY=VALUE",
                   help="data-model option (repeatable), e.g. --problem snr_db=40; values are Python literals")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="algorithm setting of the initialisation (repeatable), e.g. --option lam=0.05")
    p.add_argument("--small", action="store_true", help="the data model's tiny sizes (a smoke run)")
    p.add_argument("--m", type=int, default=None, help="shorthand for --problem m=M")
    p.add_argument("--n", type=int, default=None, help="shorthand for --problem n=N")
    p.add_argument("--p", type=float, default=None, help="shorthand for --problem p=P")
    p.add_argument("--snr", type=float, default=None, help="shorthand for --problem snr_db=SNR")
    p.add_argument("--dtype", choices=["float32", "float64"], default=None,
                   help="shorthand for --problem dtype=... (default float32 where the data model has a dtype)")
    p.add_argument("--lam", type=float, default=None, help="shorthand for --option lam=LAM")
    p.add_argument("--layers", type=int, default=None, help="depth (default: the net's default)")
    p.add_argument("--tied", action="store_true", help="one set of parameters for all layers")
    p.add_argument("--lr", type=float, default=5e-4, help="learning rate (for ekf: the measurement noise R is divided by it)")
    p.add_argument("--optimizer", choices=["adam", "sgd", "ekf"], default="adam",
                   help="Adam, SGD, or the extended-Kalman-filter trainer of the review's box (unrolled.core.ekf)")
    p.add_argument("--optimizer-option", action="append", metavar="KEY=VALUE",
                   help="optimizer setting (repeatable), e.g. --optimizer-option decoupling='parameter'")
    p.add_argument("--schedule", choices=["layerwise", "end-to-end"], default="layerwise",
                   help="layer-wise stages (LISTA papers) or one end-to-end stage")
    p.add_argument("--steps", type=int, default=250, help="steps per stage")
    p.add_argument("--batch-size", type=int, default=64, help="problems per training step")
    p.add_argument("--val-every", type=int, default=25, help="steps between validations")
    p.add_argument("--n-val", type=int, default=1000, help="validation set size")
    p.add_argument("--fresh", action="store_true",
                   help="start over, discarding a checkpoint in OUT/checkpoints written with other settings "
                        "(without it, resuming such a checkpoint is an error that lists the differing settings)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="rebuild a saved model and measure its metric per layer against its "
                                        "solver(s) per iteration")
    _common(p, "unrolled-eval")
    p.add_argument("model_dir", help="folder with model.safetensors and config.json, or pretrained:NAME "
                                      "(one of unrolled.pretrained.list_pretrained())")
    p.add_argument("--n-test", type=int, default=None,
                   help="fresh test problems (default: the card's count for pretrained:NAME, else 1000)")
    p.add_argument("--snr", type=float, default=None, help="override the SNR of the saved data model")
    p.add_argument("--problem", action="append", metavar="KEY=VALUE", help="override a data-model option")
    p.set_defaults(func=cmd_evaluate)

    from unrolled.experiments.benchmarks import BENCHMARKS

    p = sub.add_parser("benchmark", help="side-by-side speed/accuracy benchmarks, printed as ratios")
    _common(p, "unrolled-bench")
    p.add_argument("name", help="benchmark name, or all (one table of every benchmark's ratios): "
                                + ", ".join(sorted(BENCHMARKS)))
    p.add_argument("--quick", action="store_true", help="reduced sizes")
    p.add_argument("--only", action="append", metavar="NAME", default=None,
                   help="with all: run only this benchmark (repeatable)")
    p.add_argument("--skip", action="append", metavar="NAME", default=None,
                   help="with all: leave this benchmark out (repeatable)")
    p.add_argument("--model-dir", default=None,
                   help="lista-cpss-vs-fista: the trained LISTA-CPSS folder (default: the one `reproduce lista` saved)")
    p.set_defaults(func=cmd_benchmark)

    from unrolled.experiments import EXPERIMENTS

    p = sub.add_parser("reproduce", help="reproduce a paper's table/figure (JSON + Markdown + PNG)", add_help=False,
                       )
    _common(p, "unrolled-results")
    p.add_argument("name", choices=sorted(EXPERIMENTS), metavar="NAME",
                   help="experiment: " + ", ".join(sorted(EXPERIMENTS)) + " (`unrolled reproduce NAME --help` "
                        "lists its --set keys)")
    p.add_argument("-h", "--help", action=_ReproduceHelp, help="show this help (with NAME: its --set keys) and exit")
    p.add_argument("--quick", action="store_true", help="reduced version (minutes, used by the tests)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override one setting of the experiment's config (repeatable), e.g. --set steps=100000 "
                        "--set \"methods=('sbl', 'gf-lstm')\"; values are Python literals")
    p.add_argument("--fresh", action="store_true",
                   help="delete the experiment's training checkpoints under OUT/NAME first (start every training "
                        "over instead of resuming)")
    p.set_defaults(func=cmd_reproduce)
    for action in sub._choices_actions:  # `unrolled CMD --help` opens with the line `unrolled --help` shows for it
        sub_parser = sub.choices[action.dest]
        if sub_parser.description is None:
            sub_parser.description = action.help
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        rc = _main(argv)
        sys.stdout.flush()  # a closed pipe shows up here when the output was buffered
        return rc
    except BrokenPipeError:
        # the reader of our output went away (``unrolled ... | head``): end quietly, as POSIX tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _set_numba_threads(threads: int) -> None:
    """``--threads`` bounds numba's parallel kernels (the Lasso solver) as well as torch."""
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    threads = getattr(args, "threads", None)
    if threads is not None:
        if threads < 1:
            print(f"error: --threads must be >= 1, got {threads}", file=sys.stderr)
            return 2
        torch.set_num_threads(threads)
        _set_numba_threads(threads)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
