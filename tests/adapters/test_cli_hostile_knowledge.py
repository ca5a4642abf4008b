"""Hostile files in the knowledge folder, against the real commands in a subprocess: `kb check` returns at
once naming the file, and `serve` keeps reloading later edits and still stops on SIGTERM.

Each process runs with its address space capped, so a loader that reads `/dev/zero` without bound fails
here with a MemoryError instead of taking the machine's memory.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp

from tests.conftest import write_kb

REPO = Path(__file__).resolve().parents[2]
MEMORY_CAP = 2 << 30  # bytes of address space: plenty for policybot, far less than reading /dev/zero


def capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def env_for(tmp_path: Path, knowledge: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "POLICYBOT_", "Microsoft"))}
    return keep | {
        "PYTHONPATH": str(REPO),
        "DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
        "POLICYBOT_KNOWLEDGE": str(knowledge),
        "POLICYBOT_RELOAD_DEBOUNCE_MS": "100",
    }


def kb_check(tmp_path: Path, knowledge: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", "kb", "check", str(knowledge)],
        env=env_for(tmp_path, knowledge), capture_output=True, text=True, timeout=30, check=False,
        preexec_fn=capped,
    )  # fmt: skip


def test_kb_check_names_a_named_pipe_and_returns(tmp_path: Path) -> None:
    knowledge = write_kb(tmp_path / "knowledge")
    os.mkfifo(knowledge / "x.yaml")

    result = kb_check(tmp_path, knowledge)  # hung forever before: opening a FIFO waits for a writer

    assert result.returncode == 1
    assert f"{knowledge / 'x.yaml'}: error: this is a named pipe (FIFO), not a regular file" in result.stderr


def test_kb_check_names_a_link_to_dev_zero_without_reading_it(tmp_path: Path) -> None:
    knowledge = write_kb(tmp_path / "knowledge")
    (knowledge / "x.yaml").symlink_to("/dev/zero")

    result = kb_check(tmp_path, knowledge)  # read 3 GiB in 6 s before, until memory ran out

    assert result.returncode == 1
    assert f"{knowledge / 'x.yaml'}: error: this is a device (through a symbolic link)" in result.stderr
    assert "MemoryError" not in result.stderr


async def test_serve_rejects_a_named_pipe_loads_the_next_edit_and_stops_on_sigterm(tmp_path: Path) -> None:
    knowledge = write_kb(tmp_path / "knowledge")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adapters.cli", "serve", "--port", str(port),
        env=env_for(tmp_path, knowledge), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        preexec_fn=capped,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http:

            async def knowledge_status() -> dict[str, object]:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    status: dict[str, object] = (await response.json())["knowledge"]
                    return status

            async def wait_for(condition: Callable[[dict[str, object]], bool]) -> dict[str, object]:
                async with asyncio.timeout(20):
                    while True:
                        try:
                            status = await knowledge_status()
                            if condition(status):
                                return status
                        except aiohttp.ClientConnectionError:
                            pass
                        await asyncio.sleep(0.1)

            first = await wait_for(lambda status: True)
            os.mkfifo(knowledge / "x.yaml")
            await wait_for(
                lambda status: status["rejected"] is not None
            )  # the reload finished: it did not hang
            (knowledge / "x.yaml").unlink()
            entries = knowledge / "entries.yaml"
            entries.write_text(entries.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
            after = await wait_for(lambda status: status["version"] != first["version"])
            assert after["rejected"] is None

            os.mkfifo(knowledge / "y.yaml")  # present when the deploy stops it
            await wait_for(lambda status: status["rejected"] is not None)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 15)
        assert process.returncode == 0, stderr.decode()
        assert "named pipe" in stderr.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
