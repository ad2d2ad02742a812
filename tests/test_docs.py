"""Checks of the documentation sources, without a Sphinx build (fast: parsing and imports only).

* every public name of every package (its ``__all__``; the public names of its namespace where it has none)
  is listed in the API reference (``docs/api.rst``), and every name listed there exists;
* every family has a math page, linked from the math index, which the site's index links;
* every family has a gallery example (``examples/plot_<family>_*.py``) that parses, has a titled docstring
  and is linked from the family's math page;
* equation references follow one style: ``(N)``, ``eq. (N)``, ``eqs. (N)-(M)``; every ``:eq:`` role names a
  ``:label:`` that exists, and every math page says whose equation numbers it uses.
"""

from __future__ import annotations

import ast
import importlib
import re
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MATH = DOCS / "math"
EXAMPLES = ROOT / "examples"
SRC = ROOT / "src" / "unrolled"

#: Subpackages that are not a family of algorithms (no math page or gallery example of their own).
NOT_FAMILIES = {"core", "pretrained", "experiments", "data"}
#: Packages whose public names the API reference lists (the families plus the core and the pretrained models).
API_PACKAGES_EXTRA = ("core", "pretrained")
#: Math pages that are not a family's.
EXTRA_MATH_PAGES = ("framework", "ekf")


def families() -> list[str]:
    """The family subpackages: every package directory of ``src/unrolled`` except :data:`NOT_FAMILIES`."""
    return sorted(p.parent.name for p in SRC.glob("*/__init__.py") if p.parent.name not in NOT_FAMILIES)


def public_names(package: str) -> list[str]:
    """``__all__`` of ``unrolled.<package>``, or the non-module names of its namespace without a leading ``_``."""
    module = importlib.import_module(f"unrolled.{package}")
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)]
    return list(names)


def toctree_entries(text: str) -> set[str]:
    """The entries of every ``.. toctree::`` of an rST text (its indented, non-option lines)."""
    entries, inside = set(), False
    for line in text.splitlines():
        if line.strip().startswith(".. toctree::"):
            inside = True
            continue
        if inside:
            if line and not line[0].isspace():
                inside = False
            elif line.strip() and not line.strip().startswith(":"):
                entries.add(line.strip())
    return entries


def listed_api_names(text: str) -> set[str]:
    """The ``unrolled.<package>.<name>`` entries of ``docs/api.rst``: its autosummary tables (classes and
    functions) and its "Constants:" bullets (``* ``unrolled.<package>.<NAME>`` (defined in ...)``)."""
    tables = re.findall(r"^   (unrolled\.\w+\.\w+)\s*$", text, flags=re.M)
    constants = re.findall(r"^\* ``(unrolled\.\w+\.\w+)``", text, flags=re.M)
    return set(tables) | set(constants)


# ---------------------------------------------------------------------------------------------- API reference
def test_the_families_are_found():
    found = families()
    assert {"sparse_coding", "graph", "separation", "sbl", "classification", "imaging", "lowrank", "nmf",
            "segmentation"} <= set(found), found


@pytest.mark.parametrize("package", [*API_PACKAGES_EXTRA, *families()])
def test_every_public_name_is_in_the_api_reference(package):
    listed = listed_api_names((DOCS / "api.rst").read_text())
    names = public_names(package)
    assert names, f"unrolled.{package} exports nothing"
    missing = [n for n in names if f"unrolled.{package}.{n}" not in listed]
    assert not missing, f"docs/api.rst does not list unrolled.{package}.{{{', '.join(missing)}}}"


def test_every_name_in_the_api_reference_exists():
    stale = []
    for entry in sorted(listed_api_names((DOCS / "api.rst").read_text())):
        _, package, name = entry.split(".")
        if name not in public_names(package):
            stale.append(entry)
    assert not stale, f"docs/api.rst lists names their package does not export: {stale}"


def test_constants_are_listed_as_constants():
    """An autosummary row of a tuple or dict shows its *type's* docstring (``dict(**kwargs)...``, a docutils
    warning, so a failed ``-W`` build): constants go in the "Constants:" bullets, classes and functions in tables."""
    text = (DOCS / "api.rst").read_text()
    wrong = []
    for entry in re.findall(r"^   (unrolled\.\w+\.\w+)\s*$", text, flags=re.M):
        _, package, name = entry.split(".")
        obj = getattr(importlib.import_module(f"unrolled.{package}"), name, None)
        if obj is not None and not callable(obj):
            wrong.append(entry)
    assert not wrong, f"constants in autosummary tables of docs/api.rst: {wrong}"


def test_the_api_reference_documents_the_whole_package_recursively():
    text = (DOCS / "api.rst").read_text()
    assert re.search(r"\.\. autosummary::\n   :toctree: api\n   :recursive:\n\n   unrolled\n", text), \
        "docs/api.rst lost its recursive autosummary of the package"


# ---------------------------------------------------------------------------------------------- math pages
def test_the_site_index_links_the_math_cli_gallery_and_api_pages():
    entries = toctree_entries((DOCS / "index.rst").read_text())
    assert {"math/index", "cli", "api", "auto_examples/index"} <= entries, entries


@pytest.mark.parametrize("page", [*families(), *EXTRA_MATH_PAGES])
def test_every_family_has_a_math_page_linked_from_the_math_index(page):
    assert (MATH / f"{page}.rst").is_file(), f"docs/math/{page}.rst is missing"
    assert page in toctree_entries((MATH / "index.rst").read_text()), f"docs/math/index.rst does not link {page}"


def test_every_math_page_is_linked():
    linked = toctree_entries((MATH / "index.rst").read_text())
    pages = {p.stem for p in MATH.glob("*.rst")} - {"index"}
    assert pages <= linked, f"math pages not in the math index: {sorted(pages - linked)}"


@pytest.mark.parametrize("family", families())
def test_every_math_page_links_its_api(family):
    text = (MATH / f"{family}.rst").read_text()
    refs = re.findall(rf":(?:func|class|meth|mod|obj):`~?unrolled\.{family}\.[\w.]+`", text)
    assert len(refs) >= 3, f"docs/math/{family}.rst links {len(refs)} API names of unrolled.{family}"


# ---------------------------------------------------------------------------------------------- gallery
def example_files(family: str) -> list[Path]:
    return sorted(EXAMPLES.glob(f"plot_{family}_*.py"))


@pytest.mark.parametrize("family", families())
def test_every_family_has_a_valid_gallery_example(family):
    files = example_files(family)
    assert files, f"no examples/plot_{family}_*.py"
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))  # a SyntaxError fails the test
        doc = ast.get_docstring(tree, clean=False)
        assert doc, f"{path.name} has no module docstring (the gallery's title and text)"
        lines = doc.strip("\n").splitlines()
        assert len(lines) >= 2 and set(lines[1]) == {"="} and len(lines[1]) >= len(lines[0]), \
            f"{path.name}: the docstring must open with a title underlined by '=' (at least as long)"
        text = (MATH / f"{family}.rst").read_text()
        assert f":ref:`sphx_glr_auto_examples_{path.stem}.py`" in text, \
            f"docs/math/{family}.rst does not link its example {path.name}"


def test_every_gallery_link_names_an_example_that_exists():
    for page in MATH.glob("*.rst"):
        for stem in re.findall(r"sphx_glr_auto_examples_(\w+)\.py", page.read_text()):
            assert (EXAMPLES / f"{stem}.py").is_file(), f"{page.name} links a missing example {stem}.py"


# ---------------------------------------------------------------------------------------------- equation refs
#: Forms that are not the style: "Eq. 6", "eq 6", "Eqs. 6-8", "equation 6", "Equation (6)", "Eq. (6)".
BAD_EQUATION_REFERENCE = re.compile(r"\b(?:[Ee]qs?\.?\s*\d|[Ee]quations?\s*\(?\d|Eqs?\.\s*\()")


def reference_texts() -> dict[str, str]:
    """The math pages and the gallery examples' docstrings and comments (where equations are cited)."""
    texts = {f"docs/math/{p.name}": p.read_text() for p in MATH.glob("*.rst")}
    texts |= {f"examples/{p.name}": p.read_text() for p in EXAMPLES.glob("*.py")}
    return texts


def test_bad_reference_pattern_catches_the_other_styles():
    for bad in ("PALM (Eq. 6)", "eq 6", "Eqs. 6-8", "see equation 6", "Equation (6)", "Eq. (6)"):
        assert BAD_EQUATION_REFERENCE.search(bad), bad
    for good in ("PALM (6)", "eq. (6)", "eqs. (19)-(20)", "(17)-(18)", "Sec. 3.1", "the box's [30]"):
        assert not BAD_EQUATION_REFERENCE.search(good), good


def test_equation_references_have_one_style():
    bad = [f"{name}: {m.group(0)!r}" for name, text in reference_texts().items()
           for m in BAD_EQUATION_REFERENCE.finditer(text)]
    assert not bad, "equation references must read (N), eq. (N) or eqs. (N)-(M): " + "; ".join(bad)


def test_eq_roles_name_existing_labels():
    texts = {p: p.read_text() for p in DOCS.rglob("*.rst") if "_build" not in p.parts and "api" not in p.parts}
    labels = {m for t in texts.values() for m in re.findall(r":label:\s*(\S+)", t)}
    dangling = [f"{p.name}: {m}" for p, t in texts.items() for m in re.findall(r":eq:`([^`]+)`", t) if m not in labels]
    assert not dangling, f":eq: roles without a matching :label: {dangling}"


@pytest.mark.parametrize("page", [*families(), *EXTRA_MATH_PAGES])
def test_every_math_page_cites_numbered_equations_and_says_whose(page):
    text = (MATH / f"{page}.rst").read_text()
    head = " ".join(text.split("\n\n")[1].split())  # the paragraph under the title
    assert re.match(r"(Paper|Papers|Review)\b", head), f"docs/math/{page}.rst must open by naming its paper"
    assert re.search(r"equation numbers are|eqs?\. \(\d+\)", head), \
        f"docs/math/{page}.rst must say whose equation numbers it uses"
    assert re.search(r"\(\d{1,2}'?\)", text), f"docs/math/{page}.rst cites no numbered equation"
