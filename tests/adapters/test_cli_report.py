"""`policybot report`, run as HR runs it, against a database the bot has filled."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from pathlib import Path

from bot.conversation import ReplyKind
from bot.store import Store
from tests.adapters.test_cli import policybot


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
    assert "4 questions: 1 answered (25%), 0 offered suggestions, 3 not answered." in run.stdout
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


async def test_report_since_leaves_out_older_questions(tiny_kb_dir: Path, tmp_path: Path) -> None:
    url = await filled_database(tmp_path)
    tomorrow = (date.today() + timedelta(days=2)).isoformat()

    run = policybot("report", "--since", tomorrow, "--knowledge", str(tiny_kb_dir), env={"DATABASE_URL": url})

    assert run.returncode == 0, run.stderr
    assert "0 questions" in run.stdout and "Every question got an answer." in run.stdout


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
