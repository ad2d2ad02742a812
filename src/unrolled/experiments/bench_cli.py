"""The command-line shell shared by the side-by-side benchmark scripts (``python -m ...`` and ``unrolled benchmark``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable


def bench_main(parse_args: Callable, measure: Callable, table: Callable, argv: list[str] | None = None) -> dict:
    """Parse ``argv``, run ``measure(args)``, print ``table(results)``, write ``--out`` JSON when given."""
    args = parse_args(argv)
    results = measure(args)
    print(table(results))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2)
    return results


def bench_run(main: Callable, json_name: str, out_dir="unrolled-bench", quick: bool = False, seed: int = 0,
              device: str = "cpu") -> dict:
    """``unrolled benchmark`` entry: ``main`` with ``--seed/--device/--out`` (``quick``: 100 problems)."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    argv = ["--seed", str(seed), "--device", device, "--out", str(Path(out_dir) / json_name)]
    if quick:
        argv += ["--n-problems", "100"]
    return main(argv)
