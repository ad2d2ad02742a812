"""Sphinx configuration of the unrolled documentation site.

Build (from the repository root; fails on any warning; runs every gallery example)::

    OMP_NUM_THREADS=1 python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # the source tree, whether or not the package is installed
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))  # local extensions (cli_help)
os.environ.setdefault("OMP_NUM_THREADS", "1")  # the gallery's timings are stated for one thread
os.environ.setdefault("MPLBACKEND", "agg")

import sphinx.ext.autosummary as _autosummary  # noqa: E402
from sphinx.domains.python import PythonDomain  # noqa: E402

import unrolled  # noqa: E402

project = "unrolled"
author = "the unrolled authors"
copyright = "the unrolled authors, MIT licence"
release = version = unrolled.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "cli_help",  # docs/_ext/cli_help.py: writes cli_generated.rst from unrolled.cli.build_parser()
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
# docs/results/ holds the reproductions' reports (Markdown, JSON, weights): linked to, never parsed.
exclude_patterns = ["_build", "results", "README.md", "_ext", "cli_generated.rst", "Thumbs.db", ".DS_Store",
                    "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip",
                    "auto_examples/*.md5", "auto_examples/*.json"]

# ---- API reference: autosummary over the whole package, recursively -------------------------------------------
autosummary_generate = True
autosummary_generate_overwrite = True
autosummary_imported_members = False  # each object is documented once, in the module that defines it
autodoc_default_options = {
    "members": True,
    "undoc-members": True,
    "show-inheritance": True,
    "member-order": "bysource",
    # a package's __init__ re-exports its modules' names: document them where they are defined
    "ignore-module-all": True,
}
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
autodoc_inherit_docstrings = False  # torch.nn.Module's docstrings are not numpydoc

napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_param = False  # parameter types as plain text: the python domain would cross-reference each word
napoleon_use_ivar = True
napoleon_preprocess_types = False

# ---- Markdown pages (docs/conventions.md) -------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

# ---- gallery: examples/ ------------------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    # plot_*.py (one per family) and the tutorial; every other file is listed but not run
    "filename_pattern": r"/(plot_.*|unroll_your_own)\.py$",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "capture_repr": (),
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "min_reported_time": 1,
}

# ---- HTML ---------------------------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"unrolled {release}"
html_static_path: list[str] = []


# A package's attribute can shadow its submodule of the same name (``unrolled.sparse_coding.lasso`` is both a
# module and, re-exported by the package, the function it defines); autosummary's import would then document the
# function in place of the module. For names inside the package, an existing module of that name wins.
_plain_import_by_name = _autosummary._import_by_name


def _import_by_name_modules_first(name: str, grouped_exception: bool = True):
    if name.startswith("unrolled."):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, AttributeError, ValueError):
            spec = None
        if spec is not None:
            return importlib.import_module(name), None, name
    return _plain_import_by_name(name, grouped_exception)


_autosummary._import_by_name = _import_by_name_modules_first


def _skip_member(app, what, name, obj, skip, options):
    """Skip scikit-learn's generated metadata-routing methods (``set_fit_request``...): not ours, not numpydoc."""
    if what == "class" and name.startswith("set_") and name.endswith("_request"):
        return True
    return None


# ---- cross-references to re-exported names -----------------------------------------------------------------------
def _real_name(target: str, modname: str | None = None) -> str | None:
    """Where the object named ``target`` (seen from module ``modname``) is defined: ``module.qualname``.

    ``unrolled.core.Iteration`` (a re-export) is ``unrolled.core.iteration.Iteration``; ``Table2Config`` seen from
    ``unrolled.experiments.slognet_sweeps`` (which imports it) is ``unrolled.experiments.slognet.Table2Config``.
    """
    if not target.startswith("unrolled."):
        if not (modname or "").startswith("unrolled"):
            return None
        target = f"{modname}.{target}"
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        break
    else:
        return None
    home, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not isinstance(home, str) or not isinstance(qualname, str):
        return None
    return f"{home}.{qualname}"


def _resolve_reexport(app, env, node, contnode):
    """Resolve a reference to a re-exported name (``unrolled.core.Iteration``) to the page that documents it."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    real = _real_name(target, node.get("py:module"))
    if real is None or real == target:
        return None
    domain = env.domains["py"]
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], real, node, contnode)


class _PythonDomain(PythonDomain):
    """The Python domain, with one rule for names that several documented objects end in.

    A type in a numpydoc field (``base : Table2Config``, ``coef_ : ndarray of shape (1, n_features)``) is looked
    up by suffix, so a short name can match several objects. The object the current module's namespace means
    wins; a word that only matches attributes (``n_features``, a size symbol in a shape) is left as text;
    anything else stays ambiguous (a warning).
    """

    def find_obj(self, env, modname, classname, name, type, searchmode=0):
        matches = super().find_obj(env, modname, classname, name, type, searchmode)
        if searchmode != 1 or len(matches) <= 1:
            return matches
        real = _real_name(name, modname)
        chosen = [m for m in matches if m[0] == real]
        if chosen:
            return chosen
        if all(m[1].objtype in ("attribute", "property") for m in matches):
            return []
        return matches


def setup(app):
    app.add_domain(_PythonDomain, override=True)
    app.connect("missing-reference", _resolve_reexport)
    app.connect("autodoc-skip-member", _skip_member)
