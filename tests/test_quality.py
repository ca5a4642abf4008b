"""The project's own checks run as part of the suite: formatting, lint (with the core's import
boundary) and strict typing of the core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, check=False
    )


def test_code_is_formatted() -> None:
    result = run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_lint_passes_including_the_core_import_boundary() -> None:
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_core_may_not_import_platform_code(tmp_path: Path) -> None:
    """The boundary rule really bites: a bot/ module importing slack_bolt is rejected."""
    probe = ROOT / "bot" / "_boundary_probe.py"
    probe.write_text("import slack_bolt  # noqa: F401\nfrom adapters import cli  # noqa: F401\n")
    try:
        result = run("ruff", "check", "--no-cache", str(probe))
    finally:
        probe.unlink()
    assert result.returncode == 1
    assert result.stdout.count("TID251") == 2, result.stdout


def test_the_core_type_checks_strictly() -> None:
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
