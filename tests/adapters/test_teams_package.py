"""The Teams app package that `policybot teams-package` writes: its manifest.json validated against
Microsoft's published app manifest schema (vendored in payloads/teams_manifest_schema/, see the NOTICE
there), and the icon rules Teams checks at upload, read straight from the PNG bytes (no Pillow here).
"""

from __future__ import annotations

import importlib.metadata
import json
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator, Draft6Validator, validators

from adapters import teams_package
from adapters.cli import main
from bot.errors import ConfigError

SCHEMAS = Path(__file__).parent / "payloads" / "teams_manifest_schema"
APP_ID = "00000000-0000-4000-8000-000000000123"
WEBSITE = "https://intranet.example.com/policybot"

# Microsoft's schemas declare draft-04, which has no `const`, so a plain Draft4Validator would let any
# manifestVersion through; Microsoft's own tooling (Ajv) applies `const` anyway, and so does this one.
ManifestValidator = validators.extend(Draft4Validator, {"const": Draft6Validator.VALIDATORS["const"]})


def schema_problems(manifest: dict[str, Any]) -> list[str]:
    """Every way the manifest breaks the schema of the manifestVersion it declares ([] when valid)."""
    path = SCHEMAS / f"MicrosoftTeams.v{manifest['manifestVersion']}.schema.json"
    assert path.exists(), (
        f"vendor the v{manifest['manifestVersion']} manifest schema as {path} (see NOTICE.md)"
    )
    schema = json.loads(path.read_text(encoding="utf-8"))
    ManifestValidator.check_schema(schema)
    errors = ManifestValidator(schema).iter_errors(manifest)
    return sorted(f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors)


def read_package(out: Path) -> tuple[dict[str, Any], bytes, bytes]:
    with zipfile.ZipFile(out) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
        return (
            json.loads(package.read("manifest.json")),
            package.read("color.png"),
            package.read("outline.png"),
        )


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def png_pixels(data: bytes) -> set[tuple[int, ...]]:
    """The distinct RGBA pixels of an 8-bit RGBA, non-interlaced PNG (the form of our icons)."""
    width, height = png_size(data)
    depth, colour_type, _, _, interlace = data[24:29]
    assert (depth, colour_type, interlace) == (8, 6, 0), "save the icon as 8-bit RGBA, not interlaced"
    idat, pos = b"", 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        if data[pos + 4 : pos + 8] == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw, stride, pixels = zlib.decompress(idat), width * 4, set()
    previous = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):  # undo the row filter (PNG spec, section 9)
            left, up = line[x - 4] if x >= 4 else 0, previous[x]
            up_left = previous[x - 4] if x >= 4 else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                nearest = min((abs(p - left), 0, left), (abs(p - up), 1, up), (abs(p - up_left), 2, up_left))
                line[x] = (line[x] + nearest[2]) & 0xFF
        pixels.update(tuple(line[x : x + 4]) for x in range(0, stride, 4))
        previous = line
    return pixels


def test_teams_package_holds_the_manifest_and_both_icons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "policybot.zip"
    assert (
        main(
            [
                "teams-package",
                "--app-id",
                APP_ID,
                "--out",
                str(out),
                "--domain",
                "bot.example.com",
                "--website",
                WEBSITE,
            ]
        )
        == 0
    )
    assert str(out) in capsys.readouterr().out

    manifest, color, outline = read_package(out)
    assert png_size(color) == (192, 192)
    assert png_size(outline) == (32, 32)
    assert manifest["$schema"].endswith(f"/v{manifest['manifestVersion']}/MicrosoftTeams.schema.json")
    assert manifest["id"] == APP_ID
    [bot] = manifest["bots"]
    assert bot["botId"] == APP_ID
    assert sorted(bot["scopes"]) == ["groupChat", "personal", "team"]
    assert [c["title"] for c in bot["commandLists"][0]["commands"]] == ["help", "tip", "topics"]
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}
    assert manifest["validDomains"] == ["bot.example.com"]
    assert all(
        manifest["developer"][k].startswith("https://") for k in ("websiteUrl", "privacyUrl", "termsOfUseUrl")
    )
    assert len(manifest["name"]["short"]) <= 30 and len(manifest["description"]["short"]) <= 80


@pytest.mark.parametrize(
    "options",
    [
        [],
        ["--domain", "bot.example.com"],
        [
            *("--domain", "bot.example.com", "--domain", "*.example.org", "--app-version", "2.0.1"),
            *(
                "--privacy-url",
                "https://hr.example.com/privacy",
                "--terms-url",
                "https://hr.example.com/terms",
            ),
        ],
    ],
    ids=["defaults", "one-domain", "every-option"],
)
def test_teams_package_manifest_is_valid_against_microsofts_schema(
    tmp_path: Path, options: list[str]
) -> None:
    out = tmp_path / "policybot.zip"
    assert main(["teams-package", "--app-id", APP_ID, "--out", str(out), "--website", WEBSITE, *options]) == 0
    manifest, _, _ = read_package(out)
    assert schema_problems(manifest) == []


def test_the_schema_check_catches_what_teams_would_reject(tmp_path: Path) -> None:
    manifest, _, _ = read_package(
        teams_package.write_teams_package(APP_ID, tmp_path / "policybot.zip", website=WEBSITE)
    )
    manifest["bots"][0]["scopes"] = ["personal", "groupchat"]  # v1.17 spells it groupChat
    manifest["developer"]["privacyUrl"] = "example.com/privacy"
    del manifest["accentColor"]
    assert schema_problems(manifest) == [
        "(top): 'accentColor' is a required property",
        "bots/0/scopes/1: 'groupchat' is not one of ['team', 'personal', 'groupChat']",
        "developer/privacyUrl: 'example.com/privacy' does not match '^[Hh][Tt][Tt][Pp][Ss]?://'",
    ]
    # `const` is applied although the schema is draft-04: a manifest may not claim another version.
    errors = ManifestValidator(
        json.loads((SCHEMAS / "MicrosoftTeams.v1.17.schema.json").read_text(encoding="utf-8"))
    ).iter_errors(dict(manifest, manifestVersion="1.16"))
    assert any(list(e.absolute_path) == ["manifestVersion"] for e in errors)


def test_icons_follow_the_teams_rules(tmp_path: Path) -> None:
    """Color: 192x192. Outline: 32x32, white on a transparent background, nothing else."""
    _, color, outline = read_package(
        teams_package.write_teams_package(APP_ID, tmp_path / "policybot.zip", website=WEBSITE)
    )
    assert png_size(color) == (192, 192)
    assert png_size(outline) == (32, 32)
    outline_pixels = png_pixels(outline)
    assert all(alpha == 0 or (r, g, b) == (255, 255, 255) for r, g, b, alpha in outline_pixels)
    assert any(alpha == 0 for *_, alpha in outline_pixels), "the outline icon needs a transparent background"
    assert any(alpha > 0 for *_, alpha in outline_pixels), "the outline icon is empty"
    assert len(png_pixels(color)) > 1


def test_teams_package_refuses_an_app_id_that_is_not_a_guid(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a Microsoft app id"):
        teams_package.write_teams_package("my-bot", tmp_path / "x.zip", website=WEBSITE)
    assert not (tmp_path / "x.zip").exists()


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"website": "example.com"}, "--website 'example.com' is not an https:// URL"),
        ({"privacy_url": "http://example.com/privacy"}, "--privacy-url .* is not an https:// URL"),
        ({"domains": tuple(f"d{i}.example.com" for i in range(17))}, "17 --domain values: .* at most 16"),
    ],
)
def test_teams_package_refuses_options_teams_would_reject(
    tmp_path: Path, options: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        teams_package.write_teams_package(APP_ID, tmp_path / "x.zip", **{"website": WEBSITE, **options})
    assert not (tmp_path / "x.zip").exists()


def test_teams_package_uses_the_organisation_s_urls_and_policybot_s_version(tmp_path: Path) -> None:
    out = teams_package.write_teams_package(
        APP_ID, tmp_path / "p.zip", website=WEBSITE, privacy_url="https://hr.example.com/privacy"
    )

    manifest, _, _ = read_package(out)
    assert manifest["developer"]["websiteUrl"] == WEBSITE
    assert manifest["developer"]["privacyUrl"] == "https://hr.example.com/privacy"
    assert manifest["developer"]["termsOfUseUrl"] == WEBSITE
    assert "github.com" not in json.dumps(manifest)  # no placeholder address shown to employees
    assert manifest["version"] == importlib.metadata.version("policybot")
    again = teams_package.write_teams_package(APP_ID, tmp_path / "q.zip", website=WEBSITE, version="1.4.2")
    assert read_package(again)[0]["version"] == "1.4.2"


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({}, "--website is required: your organisation's page about the bot"),
        ({"website": WEBSITE, "version": "v2"}, "--app-version 'v2' is not a version Teams accepts"),
    ],
)
def test_teams_package_refuses_without_a_website_or_with_a_bad_version(
    tmp_path: Path, options: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        teams_package.write_teams_package(APP_ID, tmp_path / "x.zip", **options)
    assert not (tmp_path / "x.zip").exists()
