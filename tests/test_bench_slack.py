"""bench/bench_slack.py runs: a smoke test of the benchmark itself (--quick, a few seconds of load).

The figures are not asserted (a shared machine makes them noisy); that every server answered every event
and the table and targets were printed is.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_slack_bench_measures_all_four_servers_on_both_loads_in_quick_mode() -> None:
    done = subprocess.run(
        [sys.executable, "bench/bench_slack.py", "--quick", "--events", "60", "--seconds", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "light = 10 events/s for 1 s (10 events), peak = 60 events with 50 in flight" in out
    for server in ("bare aiohttp handler", "hello-world bolt bot", "floor", "policybot serve"):
        [row] = [line for line in out.splitlines() if line.startswith(server)]
        assert len(row.split()) >= 15, row  # every column has a figure
    assert "hello-world bolt bot    " in out and " 1.00x" in out  # the baseline's own ratios
    for target in (
        "CPU per answer at 10 events/s",
        "answers/s at 50 concurrent",
        "p50 at 10 events/s",
        "idle RSS",
    ):
        assert target in out
