"""The console adapter: `policybot ask`, `chat`, `match` and `kb check`, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.adapters.cli_harness import ROOT, policybot


def test_ask_prints_the_answer_as_a_user_would_see_it(tiny_kb_dir: Path) -> None:
    run = policybot("ask", "Can I add my boss on fb?", "--knowledge", str(tiny_kb_dir))

    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("Adding your manager on social media\n=====")
    assert "Yes, you may" in run.stdout
    assert "EN footer_source Guidelines 2.1" in run.stdout


def test_ask_json_has_the_match_fields_and_the_answer(tiny_kb_dir: Path) -> None:
    run = policybot(
        "ask", "må jeg godta venneforespørsel fra sjefen?", "--json", "--knowledge", str(tiny_kb_dir)
    )

    record = json.loads(run.stdout)
    assert record["answer_id"] == "friend-manager" and record["lang"] == "nb"
    assert 0 < record["confidence"] <= 1 and record["suggestions"] == []
    assert record["answer"].startswith("Ja, det kan du")
    assert record["question"] == "må jeg godta venneforespørsel fra sjefen?"


def test_ask_reads_the_folder_from_the_environment(tiny_kb_dir: Path) -> None:
    run = policybot("ask", "selfie at the office?", env={"POLICYBOT_KNOWLEDGE": str(tiny_kb_dir)})

    assert "Photos and video at work" in run.stdout


def test_ask_works_without_credentials_and_never_loads_a_platform_sdk(tiny_kb_dir: Path) -> None:
    probe = (
        "import sys; from adapters.cli import main;"
        "code = main(['ask', 'fb boss?', '--knowledge', sys.argv[1]]);"
        "sdks = ('slack_bolt', 'slack_sdk', 'botbuilder', 'aiohttp');"
        "print('LOADED', [m for m in sys.modules if m.split('.')[0] in sdks]); sys.exit(code)"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe, str(tiny_kb_dir)], capture_output=True, text=True, cwd=ROOT, check=False
    )

    assert run.returncode == 0, run.stderr
    assert "LOADED []" in run.stdout


def test_match_writes_one_json_object_per_question_read(tiny_kb_dir: Path) -> None:
    run = policybot(
        "match",
        "--json",
        "--knowledge",
        str(tiny_kb_dir),
        stdin="boss on fb?\n\nhow do I reset my password\nmy boss in photos\n",
    )

    records = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["answer_id"] for r in records] == ["friend-manager", None, None]
    assert records[1]["suggestions"] == []
    assert set(records[2]["suggestions"]) == {"friend-manager", "workplace-photos"}
    assert set(records[0]) == {"question", "answer_id", "confidence", "suggestions", "lang", "command"}
    assert records[0]["command"] is None


def test_chat_lets_the_user_pick_a_suggestion_by_number(tiny_kb_dir: Path) -> None:
    run = policybot("chat", "--knowledge", str(tiny_kb_dir), stdin="my boss in photos\n2\nquit\n")

    assert run.returncode == 0
    assert (
        "EN did_you_mean\n  1. Adding your manager on social media\n  2. Photos and video at work\n"
        in run.stdout
    )
    assert "Check that no customer" in run.stdout  # the answer of suggestion 2
    assert "Yes, you may" not in run.stdout  # not that of suggestion 1


def test_chat_takes_a_digit_that_is_not_a_number_as_a_question(tiny_kb_dir: Path) -> None:
    # "²".isdigit() is True, but int("²") raises: a superscript two must not end the chat.
    run = policybot("chat", "--knowledge", str(tiny_kb_dir), stdin="my boss in photos\n²\nquit\n")

    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert "Check that no customer" not in run.stdout and "Yes, you may" not in run.stdout  # nothing picked


def test_kb_check_passes_a_good_folder_and_prints_a_summary(tiny_kb_dir: Path) -> None:
    run = policybot("kb", "check", str(tiny_kb_dir))

    assert run.returncode == 0, run.stderr
    assert "2 entries, 12 example questions, 2 tips" in run.stdout
    assert "0 error(s)" in run.stdout


def test_kb_check_lists_every_problem_with_its_place_and_exits_1(tiny_kb_dir: Path) -> None:
    entries = tiny_kb_dir / "entries.yaml"
    entries.write_text(
        entries.read_text()
        .replace("related: [workplace-photos]", "related: [nope]")
        .replace("    owner: HR", "\towner: HR")
    )
    (tiny_kb_dir / "more.yaml").write_text("tips:\n  - id: x\n    tekst: a misspelt field\n")

    run = policybot("kb", "check", str(tiny_kb_dir))

    assert run.returncode == 1
    assert f"{entries}:21:1: error: the line is indented with a tab" in run.stderr
    assert "more.yaml:3:5: error [x]: unknown field 'tekst' in a tip" in run.stderr
    assert "the bot would keep serving its previous knowledge base" in run.stdout


def test_kb_check_warns_about_an_example_that_routes_elsewhere_but_does_not_block(tiny_kb_dir: Path) -> None:
    entries = tiny_kb_dir / "entries.yaml"
    entries.write_text(
        entries.read_text().replace(
            "        - is filming at work allowed",
            "        - Should I accept a friend request from my boss on Facebook?",
        )
    )

    run = policybot("kb", "check", str(tiny_kb_dir))

    assert run.returncode == 0  # the running bot loads it too: one rule for both
    assert (
        "warning [friend-manager]: 2 of 12 examples of 'friend-manager' and 'workplace-photos' are "
        "confusable — the bot will offer both (and answer 2 of them with the other entry)"
    ) in run.stderr
    assert "'Should I accept a friend request from my boss on Facebook?'" in run.stderr
    assert (
        "How sure the bot is, fitted on this knowledge base: asked its own 12 example questions" in run.stdout
    )


def test_the_shipped_knowledge_base_passes_kb_check() -> None:
    run = policybot("kb", "check", "knowledge")

    assert run.returncode == 0, run.stderr
    assert "20 entries" in run.stdout


@pytest.mark.parametrize("args", [["ask"], ["frobnicate"], ["kb"]])
def test_wrong_usage_gets_argparse_help_and_exit_2(args: list[str]) -> None:
    run = policybot(*args)

    assert run.returncode == 2 and "usage: policybot" in run.stderr


def test_a_broken_knowledge_folder_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("entries: [\n")

    run = policybot("ask", "hello?", "--knowledge", str(tmp_path))

    assert run.returncode == 1
    assert "Traceback" not in run.stderr and "bad.yaml:2:1" in run.stderr


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1] if text.strip() else ""


@pytest.mark.parametrize(("args", "env"), [(["serve"], {"PORT": "abc"}), (["serve", "--port", "99999"], {})])
def test_a_port_that_is_not_a_number_is_one_clear_line_and_a_failure(
    args: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    run = policybot(*args, env={**env, "DATABASE_URL": f"sqlite:///{tmp_path}/p.db"})

    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert "is not a port number: give a whole number from 1 to 65535" in last_line(run.stderr)


def test_a_port_already_in_use_is_one_clear_line_and_a_failure(tiny_kb_dir: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = policybot(
            "serve",
            "--port",
            str(port),
            env={"DATABASE_URL": f"sqlite:///{tmp_path}/p.db", "POLICYBOT_KNOWLEDGE": str(tiny_kb_dir)},
        )

    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert last_line(run.stderr).startswith(f"policybot: cannot listen on port {port}: ")


def test_output_closed_early_by_head_is_one_clear_line_not_a_traceback(tiny_kb_dir: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "Microsoft", "POLICYBOT_"))}
    reader, writer = os.pipe()
    os.close(reader)  # like `| head -3` that has already exited: every write fails with EPIPE
    try:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "adapters.cli",
                "ask",
                "Can I add my boss on fb?",
                "--knowledge",
                str(tiny_kb_dir),
            ],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            env=clean,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
    finally:
        os.close(writer)

    assert run.returncode != 0
    assert run.stderr.strip() == "policybot: the output was closed before everything was written"


def test_kb_check_of_a_file_checks_the_folder_it_is_in(tiny_kb_dir: Path) -> None:
    run = policybot("kb", "check", str(tiny_kb_dir / "messages.yaml"))

    assert run.returncode == 0, run.stderr
    assert f"messages.yaml is a file: checking its folder, {tiny_kb_dir}" in run.stderr
    assert "2 entries" in run.stdout


def test_kb_check_of_a_path_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    run = policybot("kb", "check", str(tmp_path / "knowledg"))

    assert run.returncode == 2
    assert run.stderr.strip() == (
        f"policybot: {tmp_path / 'knowledg'} does not exist: give the knowledge folder, "
        "e.g. policybot kb check knowledge"
    )


def test_version_is_the_package_s_and_the_licence_file_says_what_pyproject_says() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    run = policybot("--version")

    assert run.returncode == 0
    assert run.stdout.strip() == f"policybot {project['version']}"
    assert project["license"] == {"text": "MIT"}
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License\n")


def test_match_reports_a_command_as_a_command_not_as_a_question(tiny_kb_dir: Path) -> None:
    run = policybot("match", "--json", "--knowledge", str(tiny_kb_dir), stdin="help\nhjelp\ntips\n")

    records = [json.loads(line) for line in run.stdout.splitlines()]
    assert [(r["command"], r["lang"], r["answer_id"]) for r in records] == [
        ("help", "en", None),
        ("help", "nb", None),
        ("tip", "nb", None),
    ]


def test_chat_record_fills_the_database_so_hr_can_try_the_report(tiny_kb_dir: Path, tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}
    typed = (
        "Can I add my boss on fb?\n-\nmy boss in photos\n2\nmay I share kari@example.com's salary?\nquit\n"
    )

    chat = policybot("chat", "--record", "--knowledge", str(tiny_kb_dir), stdin=typed, env=env)
    report = policybot("report", "--knowledge", str(tiny_kb_dir), env=env)

    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.startswith(f"(recording to sqlite:///{tmp_path / 'demo.db'} for `policybot")
    assert "EN feedback_thanks_unhelpful" in chat.stdout
    assert report.returncode == 0, report.stderr
    assert "3 questions: 1 answered (33%), 2 not answered (2 got" in report.stdout
    assert "| Adding your manager on social media (`friend-manager`) | 0 | 1 | 0% |" in report.stdout
    assert '- "my boss in photos"' in report.stdout  # the picked suggestion: a candidate example
    assert "may I share \\[email\\]'s salary?" in report.stdout and "kari" not in report.stdout


def test_chat_without_record_writes_no_database(tiny_kb_dir: Path, tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}

    run = policybot("chat", "--knowledge", str(tiny_kb_dir), stdin="Can I add my boss on fb?\n+\n", env=env)

    assert run.returncode == 0 and "EN feedback_thanks\n" in run.stdout
    assert not (tmp_path / "demo.db").exists()


def command_paths() -> list[list[str]]:
    """Every command and subcommand of `policybot`, read from the parser itself."""
    import argparse

    from adapters.cli import build_parser

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> list[list[str]]:
        found = [path]
        for action in parser._actions:  # argparse keeps its subparsers only here
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    found += walk(child, [*path, name])
        return found

    return walk(build_parser(), [])


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "policybot")
def test_every_command_has_help(path: list[str]) -> None:
    run = policybot(*path, "--help")

    assert run.returncode == 0 and run.stderr == ""
    assert run.stdout.startswith(f"usage: {' '.join(['policybot', *path])}")


def test_the_command_list_is_what_the_docs_describe() -> None:
    assert sorted(" ".join(p) for p in command_paths() if p) == [
        "ask", "chat", "db", "db upgrade", "kb", "kb check", "match", "report", "serve",
        "teams-package", "tips", "tips post", "tips preview",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (
            ["db", "upgrade"],
            {"DATABASE_URL": "mysql://bot@db/policy"},
            "policybot: DATABASE_URL uses 'mysql'; use ",
        ),
        (
            ["teams-package", "--app-id", "my-bot", "--website", "https://x.example"],
            {},
            "policybot: --app-id 'my-bot'",
        ),
        (["serve"], {"POLICYBOT_TIP_DAYS": "mon,funday"}, "policybot: POLICYBOT_TIP_DAYS has unknown days"),
    ],
    ids=["unsupported-database", "bad-app-id", "bad-setting"],
)
def test_an_error_is_one_line_on_stderr_and_exit_2(args: list[str], env: dict[str, str], line: str) -> None:
    run = policybot(*args, env=env)

    assert run.returncode == 2 and run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1 and run.stderr.startswith(line)


def test_teams_package_without_the_website_names_it(tmp_path: Path) -> None:
    run = policybot("teams-package", "--app-id", "00000000-0000-4000-8000-000000000000")

    assert run.returncode == 2
    assert last_line(run.stderr) == (
        "policybot teams-package: error: the following arguments are required: --website"
    )
