"""Shared fixtures: small knowledge bases written to tmp_path, the way HR would write them."""

from __future__ import annotations

import asyncio
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.knowledge import MESSAGE_KEYS

# Fakes of the chat platforms' HTTP APIs (`slack_api`, `bot_connector`), and the end-to-end harness that
# starts policybot against them (`start_bot`), as fixtures for every test.
pytest_plugins = [
    "tests.fakes.slack_api",
    "tests.fakes.bot_connector",
    "tests.fakes.identity",
    "tests.adapters.slack_harness",
    "tests.adapters.teams_auth_harness",
]

ENTRIES = """\
entries:
  - id: friend-manager
    title:
      en: Adding your manager on social media
      nb: Legge til lederen din i sosiale medier
    questions:
      en:
        - Can I add my manager on Facebook?
        - Should I accept a friend request from my boss?
        - is it ok to follow my boss on instagram
      nb:
        - Kan jeg legge til sjefen min på Facebook?
        - Må jeg godta venneforespørsel fra lederen min?
        - er det greit å følge sjefen på insta
    answer:
      en: Yes, you may — but you never have to. Decline politely if you prefer.
      nb: Ja, det kan du — men du må aldri. Du kan gjerne takke nei.
    tags: [facebook, manager]
    related: [workplace-photos]
    source: {en: "Guidelines 2.1", nb: "Retningslinjer 2.1"}
    owner: HR
    reviewed: 2026-11-01
  - id: workplace-photos
    title:
      en: Photos and video at work
      nb: Bilder og video på jobben
    questions:
      en:
        - Can I post photos from work?
        - may I take a selfie at the office and share it
        - is filming at work allowed
      nb:
        - Kan jeg legge ut bilder fra jobben?
        - Får jeg ta selfie på kontoret?
        - er det lov å filme på jobb
    answer:
      en: Check that no customer, colleague or screen is in the picture without their consent.
      nb: Sjekk at ingen kunder, kolleger eller skjermer er med uten samtykke.
    links:
      - title: {en: Photo rules, nb: Fotoregler}
        url: https://intranet.example.com/photos
tips:
  - id: photo-check
    entry: workplace-photos
    en: Before you post a photo from work, check the background.
    nb: Før du legger ut et bilde fra jobben, sjekk bakgrunnen.
  - id: decline-ok
    entry: friend-manager
    en: You never have to accept a friend request from your manager.
    nb: Du må aldri godta en venneforespørsel fra lederen din.
synonyms:
  facebook: [fb, face]
  instagram: [insta, ig]
  manager: [boss, leader, sjef, leder]
  photo: [picture, pic, bilde, foto]
"""


def messages_yaml() -> str:
    """Every sentence the bot says, in both languages, with the placeholders each one needs."""
    lines = ["messages:"]
    for key, placeholders in MESSAGE_KEYS.items():
        fields = " ".join("{" + p + "}" for p in placeholders)
        lines.append(f"  {key}:")
        lines.append(f'    en: "EN {key} {fields}"'.rstrip())
        lines.append(f'    nb: "NB {key} {fields}"'.rstrip())
    return "\n".join(lines) + "\n"


def write_kb(directory: Path, entries: str = ENTRIES, messages: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "entries.yaml").write_text(textwrap.dedent(entries), encoding="utf-8")
    (directory / "messages.yaml").write_text(messages or messages_yaml(), encoding="utf-8")
    return directory


@pytest.fixture
def tiny_kb_dir(tmp_path: Path) -> Path:
    """A two-entry bilingual knowledge base with tips, synonyms and every bot sentence."""
    return write_kb(tmp_path / "knowledge")


async def wait_until_serving(
    http: aiohttp.ClientSession,
    port: int,
    seconds: float = 30,
    process: asyncio.subprocess.Process | None = None,
) -> dict[str, Any]:
    """Wait until the `policybot serve` on `port` answers /healthz (up to 30 s: the machine may be loaded;
    at once if its `process` has exited); what /healthz said."""
    async with asyncio.timeout(seconds):
        while True:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    assert response.status == 200
                    health: dict[str, Any] = await response.json()
                    return health
            except aiohttp.ClientConnectionError:
                if process is not None and process.returncode is not None:
                    pytest.fail(f"policybot serve exited ({process.returncode}) before it answered")
                await asyncio.sleep(0.05)


@pytest.fixture(autouse=True, scope="session")
def cache_folder_of_the_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The index snapshots of `ask`, `chat` and `kb check` (and of every `policybot` the tests start, which
    inherit the environment) go to a folder of this run, never to the user's ~/.cache."""
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    yield
    if before is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = before
