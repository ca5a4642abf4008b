"""The Slack app manifest admins paste into api.slack.com (adapters/slack-manifest.yaml): within the
limits of Slack's app manifest reference (https://docs.slack.dev/reference/app-manifest), so that
"Create New App → From a manifest" takes it as it is, and asking for exactly the scopes and events the
bot uses.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]

# Sections a version-1 manifest (no `_metadata.major_version`, as ours) may have.
SECTIONS = {"_metadata", "display_information", "features", "oauth_config", "settings"}
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?$")
BOT_NAME = re.compile(r"^[a-z0-9._-]+$")  # the bot user's display name: lowercase, digits, . _ -


def shipped_manifest() -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load(
        (REPO / "adapters" / "slack-manifest.yaml").read_text(encoding="utf-8")
    )
    return manifest


def manifest_problems(manifest: dict[str, Any]) -> list[str]:  # noqa: C901, PLR0912 — one check per manifest rule
    """What Slack's manifest reference says it would reject in this manifest ([] when none)."""
    problems = [f"unknown section {key!r}" for key in manifest if key not in SECTIONS]

    def text(where: str, value: object, *, low: int = 0, high: int) -> None:
        if not isinstance(value, str) or not low <= len(value) <= high:
            size = len(value) if isinstance(value, str) else type(value).__name__
            problems.append(f"{where}: {low}–{high} characters, got {size}")

    def flag(where: str, value: object) -> None:
        if not isinstance(value, bool):
            problems.append(f"{where}: true or false, got {value!r}")

    display = manifest.get("display_information") or {}
    text("display_information.name", display.get("name"), low=1, high=35)
    if "description" in display:
        text("display_information.description", display["description"], high=140)
    if "long_description" in display:
        text("display_information.long_description", display["long_description"], low=175, high=4000)
    if "background_color" in display and not HEX_COLOUR.match(str(display["background_color"])):
        problems.append(
            f"display_information.background_color: #rgb or #rrggbb, got {display['background_color']!r}"
        )

    features = manifest.get("features") or {}
    bot_user = features.get("bot_user") or {}
    text("features.bot_user.display_name", bot_user.get("display_name"), low=1, high=80)
    if not BOT_NAME.match(str(bot_user.get("display_name", ""))):
        problems.append("features.bot_user.display_name: only a-z, 0-9, '.', '_' and '-'")
    if "always_online" in bot_user:
        flag("features.bot_user.always_online", bot_user["always_online"])
    for home_flag, value in (features.get("app_home") or {}).items():
        flag(f"features.app_home.{home_flag}", value)
    for number, command in enumerate(features.get("slash_commands") or []):
        where = f"features.slash_commands[{number}]"
        name = command.get("command")
        if not isinstance(name, str) or not name.startswith("/") or len(name) > 32:
            problems.append(f"{where}.command: '/' and at most 31 more characters, got {name!r}")
        text(f"{where}.description", command.get("description"), low=1, high=2000)
        if "usage_hint" in command:
            text(f"{where}.usage_hint", command["usage_hint"], high=1000)
        if "should_escape" in command:
            flag(f"{where}.should_escape", command["should_escape"])

    scopes = (manifest.get("oauth_config") or {}).get("scopes") or {}
    if not all(isinstance(scope, str) for scope in scopes.get("bot", [])):
        problems.append("oauth_config.scopes.bot: a list of scope names")

    settings = manifest.get("settings") or {}
    interactivity = settings.get("interactivity")
    if interactivity is not None:
        flag("settings.interactivity.is_enabled", interactivity.get("is_enabled"))
    for setting in ("org_deploy_enabled", "socket_mode_enabled", "token_rotation_enabled"):
        if setting in settings:
            flag(f"settings.{setting}", settings[setting])
    return problems


def test_the_shipped_manifest_is_within_slacks_limits() -> None:
    assert manifest_problems(shipped_manifest()) == []


def test_the_check_catches_what_slack_would_reject() -> None:
    manifest = shipped_manifest()
    manifest["oauth"] = manifest.pop("oauth_config")  # a misspelt section
    display = manifest["display_information"]
    display["description"] = "x" * 141
    display["long_description"] = "Answers questions about the guidelines."  # under 175 characters
    display["background_color"] = "1d3c5a"  # no leading #
    manifest["features"]["bot_user"]["display_name"] = "Policy Bot"
    manifest["features"]["bot_user"]["always_online"] = "yes"
    manifest["features"]["slash_commands"][0]["command"] = "policy"
    manifest["settings"]["interactivity"].pop("is_enabled")

    assert manifest_problems(manifest) == [
        "unknown section 'oauth'",
        "display_information.description: 0–140 characters, got 141",
        "display_information.long_description: 175–4000 characters, got 39",
        "display_information.background_color: #rgb or #rrggbb, got '1d3c5a'",
        "features.bot_user.display_name: only a-z, 0-9, '.', '_' and '-'",
        "features.bot_user.always_online: true or false, got 'yes'",
        "features.slash_commands[0].command: '/' and at most 31 more characters, got 'policy'",
        "settings.interactivity.is_enabled: true or false, got None",
    ]


def test_the_manifest_asks_for_exactly_what_the_bot_listens_to_and_calls() -> None:
    manifest = yaml.safe_load((REPO / "adapters" / "slack-manifest.yaml").read_text(encoding="utf-8"))
    settings = manifest["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == {
        "app_home_opened",
        "app_mention",
        "message.groups",  # HR's replies in "Ask HR" threads (private HR channel)
        "message.im",
    }
    assert settings["interactivity"]["is_enabled"] is True
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/policy"]
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "app_mentions:read", "chat:write", "commands", "groups:history", "im:history", "users:read",
    }  # fmt: skip
    urls = {settings["event_subscriptions"]["request_url"], settings["interactivity"]["request_url"]}
    urls.add(manifest["features"]["slash_commands"][0]["url"])
    assert {url.rsplit("/", 2)[-2:] == ["slack", "events"] for url in urls} == {True}
