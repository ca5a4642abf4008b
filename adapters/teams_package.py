"""The Teams app package: manifest.json and the two icons, zipped, ready to upload to Teams.

Written by `policybot teams-package` (adapters/cli.py) from the template adapters/teams_manifest.json and
the icons in adapters/assets/. Needs no botbuilder: the package is only a file.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

from bot.errors import ConfigError

ASSETS = Path(__file__).parent / "assets"
MANIFEST_TEMPLATE = Path(__file__).parent / "teams_manifest.json"
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MAX_VALID_DOMAINS = 16  # the app manifest schema's limit on validDomains
SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")  # the manifest's version rule


def package_version() -> str:
    """policybot's own version, the app's default version in Teams."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("policybot")
    except PackageNotFoundError:  # a source tree that was never installed
        return "1.0.0"


def write_teams_package(
    app_id: str,
    out: Path | None = None,
    *,
    domains: tuple[str, ...] = (),
    website: str | None = None,
    privacy_url: str | None = None,
    terms_url: str | None = None,
    version: str | None = None,
) -> Path:
    """Write the Teams app package (manifest.json, color.png, outline.png, zipped) ready to upload.

    Teams shows the developer's website, privacy statement and terms of use to every employee who
    installs the app: they must be the organisation's own, so there is no placeholder to fall back on.
    `version` is the app's version in Teams (default: policybot's); Teams wants a higher one for each
    updated package of the same app id.
    """
    if not GUID.match(app_id):
        raise ConfigError(f"--app-id {app_id!r} is not a Microsoft app id (a GUID such as 00000000-0000-...)")
    # Caught here rather than at upload: the manifest schema wants a URL scheme and at most 16
    # validDomains, and Teams documents the developer URLs as https://.
    for option, url in (("--website", website), ("--privacy-url", privacy_url), ("--terms-url", terms_url)):
        if url and not url.lower().startswith("https://"):
            raise ConfigError(f"{option} {url!r} is not an https:// URL, which Teams requires")
    if not website:
        raise ConfigError(
            "--website is required: your organisation's page about the bot (https://…), which Teams shows "
            "to employees; --privacy-url and --terms-url default to it"
        )
    version = version or package_version()
    if not SEMVER.match(version):
        raise ConfigError(f"--app-version {version!r} is not a version Teams accepts: write it as 1.2.3")
    if len(domains) > MAX_VALID_DOMAINS:
        raise ConfigError(f"{len(domains)} --domain values: a Teams app allows at most {MAX_VALID_DOMAINS}")
    manifest: dict[str, Any] = json.loads(MANIFEST_TEMPLATE.read_text(encoding="utf-8"))
    manifest["id"] = app_id
    for bot in manifest["bots"]:
        bot["botId"] = app_id
    manifest["version"] = version
    developer = manifest["developer"]
    developer["websiteUrl"] = website
    developer["privacyUrl"] = privacy_url or website
    developer["termsOfUseUrl"] = terms_url or website
    manifest["validDomains"] = list(domains)
    out = out or Path("policybot-teams.zip")
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as package:
        package.writestr("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False))
        package.write(ASSETS / "color.png", "color.png")
        package.write(ASSETS / "outline.png", "outline.png")
    return out


__all__ = ["write_teams_package"]
