"""Running the installed console script as a user would: a process with no Slack or Teams credentials."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def policybot(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script with no Slack or Teams credentials at all."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "Microsoft", "POLICYBOT_"))}
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        cwd=ROOT,
        timeout=60,
        check=False,
    )
