"""Layering and registries: core imports no family; families register themselves through entry points."""

from __future__ import annotations

import subprocess
import sys

import pytest

from unrolled.core.registry import FAMILIES, NETS, Registry, family_modules

FAMILY_PACKAGES = ("sparse_coding", "graph", "separation", "sbl", "classification")


def test_core_imports_no_family():
    code = ("import sys, unrolled.core, unrolled.core.train, unrolled.core.io, unrolled.core.solve, "
            "unrolled.core.testing\n"
            f"bad = [m for m in sys.modules if m.split('.')[:2] in [['unrolled', f] for f in {FAMILY_PACKAGES!r}]"
            " or m.startswith('unrolled.experiments')]\n"
            "assert not bad, bad")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_every_family_registers_through_its_entry_point():
    assert set(FAMILIES) == set(FAMILY_PACKAGES)
    assert {m.split(".")[1] for m in family_modules()} == set(FAMILY_PACKAGES)
    for name, fam in FAMILIES.items():
        assert fam.module == f"unrolled.{name}"
    assert {spec.family for spec in NETS.values()} <= set(FAMILIES)


def test_registry_refuses_a_second_object_under_one_name_and_lists_known_names():
    reg: Registry[object] = Registry("thing")
    a = object()
    assert reg.register("a", a) is a
    reg.register("a", a)  # the same object again is fine (re-import)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", object())
    with pytest.raises(KeyError, match=r"known: \['a'\]"):
        reg["b"]


def test_solve_refuses_track_false_with_a_tolerance():
    import torch

    from unrolled.core.solve import solve
    from unrolled.sparse_coding.iteration import ShrinkageIteration

    A = torch.eye(3, dtype=torch.float64)
    data = {"y": torch.ones(2, 3, dtype=torch.float64), "A": A, "At": A}
    with pytest.raises(ValueError, match="track=False needs tol=0"):
        solve(ShrinkageIteration(0.1), data, {"W": None, "gamma": 1.0, "theta": 0.1}, max_iter=3, tol=1e-3,
              track=False)
