"""HR's insights report as Markdown, CSV and HTML, rendered from a real store (SQLite file, and
PostgreSQL) filled the way the bot fills it (tests/bot/conftest.py)."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import date
from xml.etree import ElementTree

from bot.knowledge import KnowledgeBase
from bot.report_formats import render
from bot.store import Store
from tests.bot.conftest import FALLBACK, Clock, ask, fill, report_of


async def test_nothing_in_any_format_identifies_who_asked(
    store: Store, kb: KnowledgeBase, clock: Clock
) -> None:
    await fill(store, clock)
    report = await report_of(store, kb, clock)

    for fmt in ("md", "csv", "html"):
        text = render(report, fmt)
        for secret in ("U0SECRET01", "kari.nordmann", "example.com", "ola", "912 34 567"):
            assert secret not in text, (fmt, secret)
        assert "can [someone] post photos of me? ask [email]" in text.replace("\\[", "[").replace("\\]", "]")


async def test_markdown_has_every_section(store: Store, kb: KnowledgeBase, clock: Clock) -> None:
    await fill(store, clock)

    text = render(await report_of(store, kb, clock), "md")

    assert text.startswith("# policybot insights: the start of the log to 2028-05-17\n")
    assert (
        '15 questions: 6 answered (40%), 9 not answered (2 got "did you mean" suggestions, '
        '7 got "I don\'t know").' in text
    )
    assert "| *not answered* | 1 | 3 | 5 | 9 |" in text  # the same 9 as the sentence above
    assert "| **all questions** | 2 | 6 | 7 | 15 |" in text
    assert "| Adding your manager on social media (`friend-manager`) | 1 | 3 | 0 | 4 |" in text
    assert "| Adding your manager on social media (`friend-manager`) | 1 | 3 | 25% |" in text
    assert "| 3 | can i post on tiktok about work |" in text
    assert '```yaml\n        - "can i friend my boss on snapchat"\n```' in text


async def test_csv_is_one_tidy_table(store: Store, kb: KnowledgeBase, clock: Clock) -> None:
    await fill(store, clock)
    await ask(store, '=HYPERLINK("http://evil.example","click")', FALLBACK)

    rows = list(csv.DictReader(io.StringIO(render(await report_of(store, kb, clock), "csv"))))

    assert set(rows[0]) == {"section", "week", "entry_id", "title", "question", "lang", "metric", "value"}
    per_topic = {
        (r["week"], r["entry_id"]): int(r["value"]) for r in rows if r["section"] == "questions_per_topic"
    }
    assert per_topic[("2028-05-08", "friend-manager")] == 3
    asked = [r for r in rows if r["section"] == "unanswered" and r["metric"] == "asked"]
    assert (asked[0]["question"], asked[0]["value"], asked[0]["entry_id"]) == (
        "can i post on tiktok about work",
        "3",
        "workplace-photos",
    )
    ratio = next(r for r in rows if r["section"] == "feedback" and r["metric"] == "helpful_ratio")
    assert (ratio["entry_id"], ratio["value"]) == ("friend-manager", "0.250")
    assert any(r["section"] == "candidate_example" and r["value"] == "2" for r in rows)
    assert not any(r["question"].startswith("=") for r in rows)  # a spreadsheet shows it, never runs it
    assert '\'=HYPERLINK("http://evil.example","click")' in {r["question"] for r in rows}


async def test_html_is_one_self_contained_page_with_charts_and_escaped_text(
    store: Store, kb: KnowledgeBase, clock: Clock
) -> None:
    await fill(store, clock)
    await ask(store, "<script>alert('x')</script> & <b>bold</b>", FALLBACK)

    page = render(await report_of(store, kb, clock), "html")

    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    charts = re.findall(r"<svg.*?</svg>", page, re.DOTALL)
    assert len(charts) == 2  # the weekly trend and the per-topic bars
    trend = ElementTree.fromstring(charts[0])  # well-formed, so browsers draw it
    assert len(trend.findall("{http://www.w3.org/2000/svg}polyline")) == 3  # all, answered, not answered
    assert "<script" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing to fetch
    assert "https://" not in page


async def test_an_empty_log_still_makes_a_report(store: Store, kb: KnowledgeBase, clock: Clock) -> None:
    report = await report_of(store, kb, clock)

    assert report.total == 0 and report.weeks == (date(2028, 5, 15),)
    for fmt in ("md", "csv", "html"):
        assert render(report, fmt)
    assert "Every question got an answer." in render(report, "md")


async def test_the_html_topic_table_has_the_not_answered_and_total_rows_of_the_markdown(
    store: Store, kb: KnowledgeBase, clock: Clock
) -> None:
    await fill(store, clock)

    page = render(await report_of(store, kb, clock), "html")

    rows = [
        [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row)]
        for row in re.findall(r"<tr>.*?</tr>", page)
    ]
    assert ["not answered", "1", "3", "5", "9"] in rows  # the same 9 as the sentence above the table
    assert ["all questions", "2", "6", "7", "15"] in rows
    assert '9 not answered (2 got "did you mean" suggestions, 7 got "I don' in html.unescape(page)


async def test_every_format_lists_the_answers_due_for_review(
    store: Store, kb: KnowledgeBase, clock: Clock
) -> None:
    report = await report_of(store, kb, clock)  # 2028-05-17: friend-manager was reviewed 2026-11-01

    assert [s.entry_id for s in report.stale] == ["friend-manager"]
    text = render(report, "md")
    assert "## Answers due for review" in text
    assert "| Adding your manager on social media (`friend-manager`) | 2026-11-01 | " in text
    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    assert {(r["section"], r["entry_id"], r["value"]) for r in rows if r["section"] == "review"} == {
        ("review", "friend-manager", "2026-11-01")
    }
    assert "<td>Adding your manager on social media <code>friend-manager</code></td><td>2026-11-01</td>" in (
        render(report, "html")
    )
