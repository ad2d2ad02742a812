"""The examples under examples/ run and do what they say."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_unroll_your_own_algorithm(capsys):
    main = runpy.run_path(str(EXAMPLES / "unroll_your_own.py"))["main"]
    got = main(steps=200)
    assert got["untrained"] == pytest.approx(got["solver_k"], abs=1e-9)  # untrained net == K iterations
    assert got["trained"] < got["untrained"] - 0.5  # training helps at equal depth
    out = capsys.readouterr().out
    assert "converged" in out and "trained net" in out
