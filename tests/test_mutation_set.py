"""The persistent mutation set of ``scripts/mutation_check.py`` still matches the code.

Each mutation is an exact snippet of a file under ``src/unrolled`` that must occur exactly once; when the code
changes under a snippet, this test fails and names it, so the set is updated instead of rotting silently (a
snippet that no longer occurs would make its mutation a no-op, reported as "invalid" by the script). The mutations
themselves are not run here (that is ``python scripts/mutation_check.py``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "mutation_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("mutation_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutation_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


MC = _load()


@pytest.mark.parametrize("mutation", MC.MUTATIONS, ids=[m.id for m in MC.MUTATIONS])
def test_old_snippet_occurs_exactly_once(mutation):
    path = ROOT / "src" / "unrolled" / mutation.file
    assert path.is_file(), f"{mutation.id}: {mutation.file} does not exist"
    count = path.read_text().count(mutation.old)
    assert count == 1, (f"{mutation.id}: the snippet {mutation.old!r} occurs {count} times in {mutation.file}; "
                        f"update the mutation in scripts/mutation_check.py")
    assert mutation.new != mutation.old


def test_set_is_well_formed():
    assert MC.check_snippets() == []
    assert len({m.id for m in MC.MUTATIONS}) == len(MC.MUTATIONS)
    for m in MC.MUTATIONS:
        files = [t for t in m.tests if t.startswith("tests/")]
        assert files, f"{m.id}: the selection names no test file"
        for t in files:
            assert (ROOT / t.split("::")[0]).is_file(), f"{m.id}: {t} does not exist"
    # every family (and core) is covered
    covered = {m.file.split("/")[0] for m in MC.MUTATIONS}
    families = {p.name for p in (ROOT / "src" / "unrolled").iterdir()
                if p.is_dir() and (p / "iteration.py").is_file()}
    assert families <= covered, f"families without a mutation: {sorted(families - covered)}"
