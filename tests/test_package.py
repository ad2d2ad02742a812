"""The package surface: every family reachable from `import unrolled`, `unrolled --version`, LICENSE, CHANGELOG."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import unrolled
from unrolled.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", unrolled.SUBPACKAGES)
def test_every_subpackage_is_an_attribute_of_unrolled(name):
    assert getattr(unrolled, name) is importlib.import_module(f"unrolled.{name}")
    assert name in dir(unrolled)


def test_every_registered_family_is_listed():
    from importlib.metadata import entry_points

    families = {ep.name for ep in entry_points(group="unrolled.families")}
    assert families <= set(unrolled.SUBPACKAGES)


def test_unknown_attribute_raises():
    with pytest.raises(AttributeError):
        unrolled.no_such_family  # noqa: B018


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"unrolled {unrolled.__version__}"


def test_license_and_changelog_exist():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert unrolled.__version__ in (ROOT / "CHANGELOG.md").read_text()
