"""Layering and registries: core imports no family; families register themselves through entry points."""

from __future__ import annotations

import subprocess
import sys

import pytest

from unrolled.core.registry import FAMILIES, NETS, Registry, family_modules

FAMILY_PACKAGES = ("sparse_coding", "graph", "separation", "sbl", "classification", "imaging", "lowrank", "nmf",
                   "segmentation")


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


def test_solve_in_chunks_equals_one_batch():
    """chunk_size changes memory, not results: same x, n_iter, converged; the merged history is the batch's."""
    import torch

    from unrolled.core.solve import solve
    from unrolled.sparse_coding.data import SparseCodingProblem, lipschitz_constant
    from unrolled.sparse_coding.iteration import ShrinkageIteration

    prob = SparseCodingProblem(m=15, n=30, p=0.2, seed=3)
    y, _ = prob.sample(23, torch.Generator().manual_seed(4))
    A = prob.A
    L = lipschitz_constant(A)
    data = {"y": y, "A": A, "At": A.T.contiguous()}
    params = {"W": None, "gamma": 1 / L, "theta": 0.1 / L}
    whole = solve(ShrinkageIteration(0.1), data, params, max_iter=400, tol=1e-5)
    parts = solve(ShrinkageIteration(0.1), data, params, max_iter=400, tol=1e-5, chunk_size=5)
    assert int(whole.n_iter.min()) < int(whole.n_iter.max())  # chunks stop at different iterations
    torch.testing.assert_close(parts.x, whole.x, rtol=0, atol=1e-13)
    assert torch.equal(parts.n_iter, whole.n_iter) and torch.equal(parts.converged, whole.converged)
    assert len(parts.history["criterion"]) == len(whole.history["criterion"])
    for key in ("criterion", "objective"):
        assert parts.history[key] == pytest.approx(whole.history[key], rel=1e-10, abs=1e-14)
    bare = solve(ShrinkageIteration(0.1), data, params, max_iter=30, tol=0.0, chunk_size=7)
    torch.testing.assert_close(bare.x, solve(ShrinkageIteration(0.1), data, params, max_iter=30, tol=0.0).x,
                               rtol=0, atol=1e-13)
    with pytest.raises(ValueError, match="callback"):
        solve(ShrinkageIteration(0.1), data, params, max_iter=3, tol=0.0, chunk_size=5, callback=lambda k, x: None)
