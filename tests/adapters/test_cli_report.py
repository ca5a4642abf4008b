"""`policybot report`, run as HR runs it, against a database the bot has filled."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from bot.conversation import ReplyKind
from bot.report_formats import md
from bot.store import Store
from tests.adapters.cli_harness import policybot


async def filled_database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'policybot.db'}"
    store = await Store.open(url)
    try:
        for question in ("Can I post on TikTok about work?", "can i post on tiktok about work", "bananas?"):
            await store.record_question(question, "en", ReplyKind.FALLBACK, None, 0.05)
        await store.record_question("fb boss?", "en", ReplyKind.ANSWER, "friend-manager", 0.8)
        await store.record_feedback("friend-manager", helpful=False)
        await store.record_suggestion_pick("can i friend my boss on snapchat", "friend-manager", "en")
    finally:
        await store.close()
    return url


async def test_report_prints_markdown_with_grouped_questions(tiny_kb_dir: Path, tmp_path: Path) -> None:
    url = await filled_database(tmp_path)

    run = policybot("report", "--knowledge", str(tiny_kb_dir), env={"DATABASE_URL": url})

    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("# policybot insights: the start of the log to ")
    assert (
        '4 questions: 1 answered (25%), 3 not answered (0 got "did you mean" suggestions, 3 got' in run.stdout
    )
    assert "| 2 | Can I post on TikTok about work? |" in run.stdout
    assert '- "can i friend my boss on snapchat"' in run.stdout


async def test_report_writes_html_and_csv_files(tiny_kb_dir: Path, tmp_path: Path) -> None:
    url = await filled_database(tmp_path)
    env = {"DATABASE_URL": url, "POLICYBOT_KNOWLEDGE": str(tiny_kb_dir)}

    html = policybot("report", "--format", "html", "--out", str(tmp_path / "report.html"), env=env)
    table = policybot("report", "--format", "csv", "--out", str(tmp_path / "report.csv"), env=env)

    assert html.returncode == 0 and table.returncode == 0, html.stderr + table.stderr
    assert html.stdout == f"{tmp_path / 'report.html'}: 4 questions, 2 unanswered groups (html)\n"
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    rows = list(csv.DictReader(io.StringIO((tmp_path / "report.csv").read_text(encoding="utf-8"))))
    assert {"totals", "questions_per_week", "feedback", "unanswered", "candidate_example"} <= {
        r["section"] for r in rows
    }


async def test_report_since_today_keeps_today_and_a_future_day_is_refused(
    tiny_kb_dir: Path, tmp_path: Path
) -> None:
    url = await filled_database(tmp_path)
    today, later = date.today(), date.today() + timedelta(days=2)  # the test's zone is the CLI's: UTC

    kept = policybot("report", "--since", today.isoformat(), "--knowledge", str(tiny_kb_dir), env=env(url))
    future = policybot("report", "--since", later.isoformat(), "--knowledge", str(tiny_kb_dir), env=env(url))

    assert kept.returncode == 0 and "4 questions" in kept.stdout, kept.stderr
    assert future.returncode == 2 and future.stdout == ""
    assert future.stderr == f"policybot: --since {later} is after today ({today}): nothing to report\n"


def env(url: str) -> dict[str, str]:
    return {"DATABASE_URL": url, "POLICYBOT_TIMEZONE": "UTC"}


async def test_report_without_a_knowledge_folder_refuses_to_show_hr_s_entries_as_removed(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'policybot.db'}"
    store = await Store.open(url)
    await store.record_question("vacation days?", "en", ReplyKind.ANSWER, "vacation-days", 0.9)
    await store.close()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "Microsoft", "POLICYBOT_"))}
    script = Path(sys.executable).parent / "policybot"

    run = await asyncio.to_thread(  # in a folder without ./knowledge, as HR on a laptop
        subprocess.run,
        [str(script), "report"],
        capture_output=True,
        text=True,
        env={**clean, **env(url)},
        cwd=tmp_path,
        check=False,
    )

    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr == (
        "policybot: the questions logged were answered from entries the default guidelines do not have "
        "(vacation-days…): give your knowledge folder with --knowledge or POLICYBOT_KNOWLEDGE\n"
    )


async def test_report_says_which_knowledge_base_its_titles_come_from(
    tiny_kb_dir: Path, tmp_path: Path
) -> None:
    url = await filled_database(tmp_path)

    run = policybot("report", "--knowledge", str(tiny_kb_dir), env=env(url))

    assert f"Titles and paste targets: {md(str(tiny_kb_dir))}, version " in run.stdout


def test_report_explains_a_bad_date_or_format(tiny_kb_dir: Path) -> None:
    bad_date = policybot("report", "--since", "last tuesday", "--knowledge", str(tiny_kb_dir))
    bad_format = policybot("report", "--format", "pdf", "--knowledge", str(tiny_kb_dir))

    assert (
        bad_date.returncode == 2 and "'last tuesday' is not a date; write it as YYYY-MM-DD" in bad_date.stderr
    )
    assert bad_format.returncode == 2 and "invalid choice: 'pdf'" in bad_format.stderr


async def test_report_says_when_the_file_cannot_be_written(tiny_kb_dir: Path, tmp_path: Path) -> None:
    url = await filled_database(tmp_path)
    out = tmp_path / "missing-folder" / "report.md"

    run = policybot("report", "--out", str(out), "--knowledge", str(tiny_kb_dir), env={"DATABASE_URL": url})

    assert run.returncode == 2
    assert f"policybot: cannot write the report to {out}" in run.stderr
    assert "Traceback" not in run.stderr
