"""Option handling shared by the ``unrolled`` subcommands: the common options, help that shows defaults and an
experiment's ``--set`` keys, ``--device`` checking and ``--set KEY=VALUE`` parsing."""

from __future__ import annotations

import argparse
import ast

import torch


def _common(p: argparse.ArgumentParser, out_default: str) -> None:
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--out", default=out_default, help=f"output folder (default: {out_default})")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice, one per core); on a machine shared with other "
                        "runs give each run 1 (oversubscribed threads measured 10x slower here)")


class _DefaultsFormatter(argparse.HelpFormatter):
    """Help text that always shows an option's default (unless the text states it or there is none)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: {action.default})"


def settings_help(name: str) -> str:
    """The ``--set`` keys of experiment ``name``: one line each, ``key (type): default of the full run``."""
    from unrolled.experiments import EXPERIMENTS

    settings = EXPERIMENTS[name].settings()
    if not settings:
        return f"{name} declares no --set keys."
    width = max(len(k) for k in settings)
    lines = [f"--set keys of {name} (type: default of the full run; --quick starts from smaller values):"]
    lines += [f"  {k.ljust(width)}  ({t}) {v!r}" for k, (t, v) in settings.items()]
    return "\n".join(lines)


class _ReproduceHelp(argparse.Action):
    """``-h``: the subcommand's help, then the ``--set`` keys of the experiment named before it, if any."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.print_help()
        name = getattr(namespace, "name", None)
        if name:
            print("\n" + settings_help(name))
        parser.exit()


def _check_device(device: str) -> str:
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise SystemExit(f"error: bad --device {device!r}: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda asked for, but torch sees no CUDA device")
    return device


def parse_overrides(items: list[str] | None, flag: str = "--set") -> dict:
    """``['steps=100000', "methods=('sbl', 'gf-lstm')"]`` -> ``{'steps': 100000, 'methods': ('sbl', 'gf-lstm')}``.

    Values are Python literals (numbers, booleans, tuples, strings); anything that is not a literal is kept
    as a plain string.
    """
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise SystemExit(f"error: {flag} takes KEY=VALUE with KEY a setting name, got {item!r}")
        try:
            out[key] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            out[key] = value.strip()
    return out
