"""The deployment recipes: the Dockerfile (linted by hadolint and checked against our rules) and the
compose file, whose commands (the `policybot db upgrade` release step, several `policybot serve`
replicas on one PostgreSQL, the image's health check) are run here for real.

There is no Docker engine on CI, so the image itself is not built; everything the image and the compose
file run is, with the settings of deploy/policybot.env.example.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.bot.conftest import postgres_schema
from tests.conftest import wait_until_serving

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "deploy" / "compose.yaml"
BIN = Path(sys.executable).parent  # the venv's `policybot`, `python` and `hadolint`


def instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's (INSTRUCTION, arguments), continuation lines joined, comments left out."""
    joined = re.sub(
        r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    )
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), " ".join(rest.split())))
    return found


def final_stage(text: str) -> list[tuple[str, str]]:
    steps = instructions(text)
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def healthcheck_command() -> list[str]:
    [check] = [args for keyword, args in final_stage(DOCKERFILE.read_text()) if keyword == "HEALTHCHECK"]
    return json.loads(check[check.index("CMD") + 3 :].strip())


def test_the_dockerfile_passes_hadolint() -> None:
    run = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )

    assert run.returncode == 0, run.stdout + run.stderr


def test_the_dockerfile_breaks_none_of_our_rules() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    steps = final_stage(text)
    bases = [args.split()[0] for keyword, args in instructions(text) if keyword == "FROM"]

    assert bases and all(re.fullmatch(r"python:3\.11-slim(-\w+)?", base) for base in bases)  # official slim
    users = [args for keyword, args in steps if keyword == "USER"]
    assert users and users[-1] not in ("root", "0") and not users[-1].startswith("0:")  # runs as non-root
    assert healthcheck_command()[:2] == ["python", "-c"] and "/healthz" in healthcheck_command()[2]
    assert [args for keyword, args in steps if keyword == "CMD"][-1] == '["policybot", "serve"]'
    environment = " ".join(args for keyword, args in instructions(text) if keyword in ("ENV", "ARG"))
    assert not re.search(r"TOKEN|SECRET|PASSWORD", environment)  # secrets come at run time, never baked in
    # The user has no home: the index snapshots go to a folder made for them, the user's alone.
    [cache] = re.findall(r"POLICYBOT_CACHE_DIR=(\S+)", environment)
    made = " ".join(args for keyword, args in steps if keyword == "RUN")
    assert re.search(rf"mkdir -p [^&]*{cache}\b", made)
    assert re.search(rf"chown policybot [^&]*{cache}\b", made)
    assert re.search(rf"chmod 700 {cache}\b", made)


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def test_the_compose_file_migrates_once_before_several_replicas_on_postgresql() -> None:
    services = compose()["services"]

    assert services["db"]["image"].startswith("postgres:")
    assert services["migrate"]["command"] == ["policybot", "db", "upgrade"]
    assert services["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["bot"]["command"] == ["policybot", "serve"]
    assert services["bot"]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert services["bot"]["deploy"]["replicas"] >= 2
    for name in ("migrate", "bot"):
        assert services[name]["build"] == ".." and services[name]["environment"]["DATABASE_URL"].startswith(
            "postgresql://"
        )
    assert "443:443" in services["caddy"]["ports"]  # TLS ends at the proxy; policybot itself is plain HTTP


def env_file() -> dict[str, str]:
    """deploy/policybot.env.example as docker compose reads an env_file."""
    values = {}
    for line in (COMPOSE.parent / "policybot.env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with postgres_schema("deploy") as url:
        yield url


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.postgres
async def test_the_compose_commands_run_a_migration_and_two_healthy_replicas_on_one_postgresql(
    postgres_url: str, tmp_path: Path
) -> None:
    services = compose()["services"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "Microsoft", "POLICYBOT_"))}
    env = {
        **clean,
        **env_file(),
        "PATH": f"{BIN}{os.pathsep}{clean.get('PATH', '')}",
        "DATABASE_URL": postgres_url,  # compose's is postgresql://policybot:…@db:5432/policybot
        "POLICYBOT_KNOWLEDGE": str(ROOT / "knowledge"),  # compose mounts HR's folder there
    }

    migrate = await asyncio.create_subprocess_exec(
        *services["migrate"]["command"], env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(migrate.communicate(), 60)
    assert migrate.returncode == 0, err.decode()
    assert out.decode().strip().endswith("the database schema is up to date")

    ports = [free_port() for _ in range(services["bot"]["deploy"]["replicas"])]
    logs = [(tmp_path / f"replica{i}.log").open("wb") for i in range(len(ports))]
    replicas = [
        await asyncio.create_subprocess_exec(
            *services["bot"]["command"],
            env={**env, "PORT": str(port)},
            cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )
        for port, log in zip(ports, logs, strict=True)
    ]
    try:
        async with aiohttp.ClientSession() as http:
            for port in ports:
                await wait_until_serving(http, port)
        for port in ports:  # the image's HEALTHCHECK, as Docker runs it inside each container
            check = await asyncio.create_subprocess_exec(
                *healthcheck_command(), env={**env, "PORT": str(port)}
            )
            assert await asyncio.wait_for(check.wait(), 30) == 0, shlex.join(healthcheck_command())
    finally:
        for replica in replicas:
            if replica.returncode is None:
                replica.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(replica.wait(), 40) for replica in replicas]
        for log in logs:
            log.close()
    assert codes == [0] * len(replicas), [
        log.name for log in logs
    ]  # each stopped cleanly on the SIGTERM `docker compose down` sends


async def test_the_health_check_fails_when_nothing_answers() -> None:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PORT": str(free_port())}

    check = await asyncio.create_subprocess_exec(
        *healthcheck_command(), env=env, stderr=asyncio.subprocess.DEVNULL
    )

    assert await asyncio.wait_for(check.wait(), 30) != 0
