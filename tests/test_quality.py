"""The project's own checks run as part of the suite: formatting, lint (with the core's import
boundary and complexity limits), strict typing of the core and the adapters, and module length."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 420  # "~400": a module readable in one sitting


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, check=False
    )


def test_code_is_formatted() -> None:
    result = run("ruff", "format", "--check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_lint_passes_including_the_core_import_boundary() -> None:
    result = run("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_core_may_not_import_platform_code() -> None:
    """The boundary rule really bites: a bot/ module importing slack_bolt is rejected.

    The probe is given on stdin, named as a file in bot/, so that the suite writes nothing into the
    checkout (it must pass on a read-only one).
    """
    probe = "import slack_bolt  # noqa: F401\nfrom adapters import cli  # noqa: F401\n"
    command = ["ruff", "check", "--no-cache", "--stdin-filename", "bot/_boundary_probe.py", "-"]
    result = subprocess.run(
        [sys.executable, "-m", *command], input=probe, capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 1
    assert result.stdout.count("TID251") == 2, result.stdout


def test_the_core_and_the_adapters_type_check_strictly(tmp_path: Path) -> None:
    """mypy --strict over bot/ and adapters/ (pyproject.toml), its cache outside the checkout."""
    result = run("mypy", "--cache-dir", str(tmp_path / "mypy-cache"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_is_longer_than_one_sitting() -> None:
    """~400 lines at most per module of bot/ and adapters/."""
    too_long = {
        str(path.relative_to(ROOT)): n
        for folder in ("bot", "adapters")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}
