"""The documentation: README.md and docs/*.md render with working links, and every command they show runs.

Every relative link and `#anchor` must resolve (anchors as GitHub makes them from headings). Every command
line of a `sh` code block, and every `$ ` line of a `console` block, is either run here — in doc order,
in a temporary folder holding a copy of `knowledge/` and `deploy/`, with an SQLite database of its own
and no Slack or Teams credentials, through the installed `policybot` — or listed in `RUN_ELSEWHERE` with
the file that runs it (checked to still contain it) and why it is not run here. Commands too slow for the
suite are run in the smaller form `QUICKER` gives. A command in the docs that is in neither fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import write_kb

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent

# Commands the docs show that this test does not run: (file that runs it, text proving it does, why).
RUN_ELSEWHERE: dict[str, tuple[str, str, str]] = {
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && .venv/bin/python -m pytest": (
        ".ci/run",
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && .venv/bin/python -m pytest",
        "the Quick start's test command is what CI runs, verbatim; this test is part of it",
    ),
    "python3 -m venv .venv": (".ci/run", "python3 -m venv .venv", "CI makes the same venv"),
    ".venv/bin/pip install -q .": (
        ".ci/run",
        ".venv/bin/pip install -q -e '.[dev]'",
        "CI installs the same project (editable, with the dev extra); a second install takes ~40 s",
    ),
    ".venv/bin/python -m pytest -q tests/bot/test_matching.py": (
        ".ci/run",
        ".venv/bin/python -m pytest",
        "a part of the suite CI runs (and this test is in)",
    ),
    '.venv/bin/python -m pytest -q -m "not postgres" tests/bot/test_report.py': (
        ".ci/run",
        ".venv/bin/python -m pytest",
        "a part of the suite CI runs (and this test is in)",
    ),
    "docker build -t policybot .": (
        "tests/test_deploy.py",
        "def test_the_dockerfile_passes_hadolint",
        "no Docker engine in CI: the Dockerfile is linted and its commands and health check are run",
    ),
    "docker run --rm -e DATABASE_URL=postgresql://policybot:secret@db.internal/policybot policybot policybot "
    "db upgrade": (
        "tests/test_deploy.py",
        "def test_the_compose_commands_run_a_migration_and_two_healthy_replicas_on_one_postgresql",
        "no Docker engine in CI: `policybot db upgrade` is run against PostgreSQL there",
    ),
    'docker run -d --name policybot -p 3000:3000 --env-file policybot.env -v "$PWD/knowledge:/knowledge:ro" '
    "-e POLICYBOT_KNOWLEDGE=/knowledge policybot": (
        "tests/test_deploy.py",
        "def test_the_compose_commands_run_a_migration_and_two_healthy_replicas_on_one_postgresql",
        "no Docker engine in CI: the image's command (`policybot serve`) and health check are run there",
    ),
    "docker compose -f deploy/compose.yaml up -d --build": (
        "tests/test_deploy.py",
        "def test_the_compose_commands_run_a_migration_and_two_healthy_replicas_on_one_postgresql",
        "no Docker engine in CI: the compose file's commands are run there against PostgreSQL",
    ),
}

# Commands run in a smaller form, with the reason.
QUICKER: dict[str, tuple[str, str]] = {
    "python bench/eval_matching.py --loo": (
        "python bench/eval_matching.py --loo --knowledge {tiny_kb}",
        "leave-one-out over the 1 454 shipped examples takes minutes: the same code on a small folder",
    ),
    "python bench/bench_matching.py": (
        "python bench/bench_matching.py --sizes 100 --queries 20 --naive-queries 3",
        "the full benchmark takes minutes: the same code at one small size",
    ),
    "python bench/bench_slack.py": (
        "python bench/bench_slack.py --quick",
        "the full benchmark takes minutes: the same code with a few events",
    ),
    "python bench/eval_outside.py": (
        "python bench/eval_outside.py --examples 5 --no-baseline",
        "three sizes and the baseline take a minute: the same code at one size",
    ),
    "python bench/eval_outside.py --examples 10 --ceiling": (
        "python bench/eval_outside.py --examples 5 --no-baseline --ceiling",
        "the baseline takes half a minute: the same code at the smallest size, ours alone",
    ),
    "python bench/bench_startup.py": (
        "python bench/bench_startup.py --entries 100 --runs 1",
        "10 000 extra entries take a minute to start: the same code with 100",
    ),
    "python bench/bench_kill9.py": (
        "python bench/bench_kill9.py --quick",
        "five kills take a minute: the same code with one, at a lighter load",
    ),
    "python bench/bench_cli.py": (
        "python bench/bench_cli.py --entries 100 --runs 1",
        "loading 10 000 extra entries takes half a minute: the same code with 100",
    ),
    "python bench/bench_teams_auth.py": (
        "python bench/bench_teams_auth.py --replies 5",
        "the same code with a few replies",
    ),
}

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)\s*$")


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int
    lang: str
    text: str


def blocks(doc: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file."""
    found: list[Block] = []
    opened: tuple[int, str, str, str] | None = None  # line, fence, lang, indent
    lines: list[str] = []
    for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), start=1):
        fence = _FENCE.match(line)
        if opened is None and fence:
            opened, lines = (number, fence.group(2), fence.group(3).lower(), fence.group(1)), []
        elif opened is not None and fence and fence.group(2).startswith(opened[1]) and not fence.group(3):
            found.append(Block(doc, opened[0], opened[2], "\n".join(lines)))
            opened = None
        elif opened is not None:
            lines.append(line[len(opened[3]) :] if line.startswith(opened[3]) else line)
    assert opened is None, f"{doc.name}:{opened and opened[0]}: a code block is never closed"
    return found


def commands(block: Block) -> list[str]:
    """The command lines of a `sh` block (continuations joined, comments left out) or a `console` block."""
    if block.lang == "console":
        return [line[2:].strip() for line in block.text.splitlines() if line.startswith("$ ")]
    if block.lang != "sh":
        return []
    joined = re.sub(r"\\\n\s*", " ", block.text)
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def doc_commands() -> list[tuple[str, str]]:
    """(where, command) for every command in the docs, in reading order."""
    return [
        (f"{b.doc.relative_to(ROOT)}:{b.line}", command)
        for doc in DOCS
        for b in blocks(doc)
        for command in commands(b)
    ]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    fenced = {line for b in blocks(doc) for line in b.text.splitlines()}
    seen: dict[str, int] = {}
    for line in doc.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^#{1,6}\s+(.+?)\s*#*$", line)
        if match and line not in fenced:
            base = slug(match.group(1))
            seen[base if base not in seen else f"{base}-{seen[base]}"] = 0
            seen[base] = seen.get(base, 0) + 1
    return set(seen)


def broken_links(doc: Path) -> list[str]:
    text = doc.read_text(encoding="utf-8")
    for block in blocks(doc):
        text = text.replace(block.text, "")
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    problems = []
    for target in re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", text):
        if re.match(r"^(https?|mailto):", target):
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            problems.append(f"{doc.name}: {target}: {path} does not exist")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            problems.append(f"{doc.name}: {target}: no heading makes #{anchor}")
    return problems


# ------------------------------------------------------------------------------------------- the checks


def test_the_docs_exist_for_every_audience_and_the_readme_stays_short() -> None:
    assert [d.name for d in DOCS[1:]] == ["deploy.md", "development.md", "hr.md", "slack.md", "teams.md"]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 60
    for doc in DOCS[1:]:
        assert f"](docs/{doc.name})" in readme, f"the README links {doc.name}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_relative_link_and_anchor_resolves(doc: Path) -> None:
    assert broken_links(doc) == []


def test_the_link_check_finds_a_missing_file_and_a_missing_anchor(tmp_path: Path) -> None:
    doc = tmp_path / "a.md"
    doc.write_text(
        "# Title: `one` two\n\n[ok](#title-one-two) [gone](b.md) [nowhere](#three)\n", encoding="utf-8"
    )

    assert broken_links(doc) == ["a.md: b.md: b.md does not exist", "a.md: #three: no heading makes #three"]


def test_commands_are_in_sh_blocks_so_this_test_sees_them() -> None:
    untagged = [
        f"{b.doc.name}:{b.line}"
        for d in DOCS
        for b in blocks(d)
        if b.lang in ("bash", "shell", "zsh")
        or (b.lang == "" and re.search(r"^\s*(policybot|\.venv|python)\b", b.text, re.M))
    ]
    assert untagged == [], "write commands in ```sh blocks (output in ```console)"


@pytest.mark.parametrize(
    "doc", [d for d in DOCS if any(commands(b) for b in blocks(d))], ids=lambda d: d.name
)
def test_every_command_in_the_docs_is_run_here_or_where_the_table_says(doc: Path, tmp_path: Path) -> None:
    """One document at a time, each in a folder of its own (so the suite's workers share them out)."""
    ran: list[str] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "Microsoft", "POLICYBOT_"))}
    env |= {
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'work' / 'policybot.db'}",
        "POLICYBOT_TIMEZONE": "UTC",
    }
    work = tmp_path / "work"
    shutil.copytree(ROOT / "knowledge", work / "knowledge")
    shutil.copytree(ROOT / "deploy", work / "deploy")
    tiny_kb = write_kb(tmp_path / "tiny")
    failures = []
    for where, command in doc_commands():
        if not where.startswith(f"{doc.relative_to(ROOT)}:"):
            continue
        parts = [command] if command in RUN_ELSEWHERE or command in QUICKER else command.split(" && ")
        for part in parts:
            if part in RUN_ELSEWHERE:
                file, proof, _why = RUN_ELSEWHERE[part]
                if proof not in (ROOT / file).read_text(encoding="utf-8"):
                    failures.append(f"{where}: {part!r}: {file} no longer contains {proof!r}")
                continue
            run_as = QUICKER[part][0].format(tiny_kb=tiny_kb) if part in QUICKER else part
            if not re.match(r"^(\.venv/bin/)?(policybot|printf|cp|python)\b", run_as):
                failures.append(f"{where}: {part!r} is neither run here nor listed in RUN_ELSEWHERE")
                continue
            cwd = ROOT if run_as.startswith("python bench/") else work
            run = subprocess.run(
                ["bash", "-o", "pipefail", "-c", run_as.removeprefix(".venv/bin/")],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=240,
                check=False,
            )
            ran.append(part)
            if run.returncode != 0:
                failures.append(f"{where}: {part!r} exited {run.returncode}: {run.stderr.strip()[-500:]}")
    assert failures == []
    assert ran or doc.name == "README.md"  # the document's own commands really ran (README's run in CI)


def test_the_command_check_fails_on_an_unknown_or_failing_command(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("```sh\nrm -rf build\npolicybot frobnicate\n```\n", encoding="utf-8")

    [block] = blocks(doc)
    found = commands(block)
    run = subprocess.run(
        ["bash", "-c", found[1]],
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        check=False,
    )

    assert found == ["rm -rf build", "policybot frobnicate"]
    assert found[0] not in RUN_ELSEWHERE and not re.match(
        r"^(\.venv/bin/)?(policybot|printf|cp|python)\b", found[0]
    )
    assert run.returncode == 2


def test_every_listed_command_is_still_in_the_docs() -> None:
    shown = {part for _, command in doc_commands() for part in [command, *command.split(" && ")]}
    assert sorted(set(RUN_ELSEWHERE) - shown) == [] and sorted(set(QUICKER) - shown) == []


def test_the_layout_table_names_every_module_of_the_core_and_the_adapters() -> None:
    """docs/development.md's layout table stays true: each module of bot/ and adapters/ is named in it
    (by name, or by a pattern like `bot/store_*.py`)."""
    table = (ROOT / "docs" / "development.md").read_text(encoding="utf-8")
    named = re.findall(r"`((?:bot|adapters)/[\w*]+\.py)`", table)
    modules = sorted(
        str(path.relative_to(ROOT))
        for folder in ("bot", "adapters")
        for path in (ROOT / folder).glob("*.py")
        if path.name != "__init__.py"
    )
    missing = [m for m in modules if not any(Path(m).match(pattern) for pattern in named)]
    assert missing == []
