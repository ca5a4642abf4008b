"""HR's insights report as a file: Markdown, CSV, or one self-contained HTML page with inline SVG charts.

`render(report, fmt)` picks the format; the report itself (what it holds and how it is gathered from the
store) is `bot.report`. Question text is already masked there; here it is only made inert: escaped for
Markdown and HTML, and kept from running as a spreadsheet formula in CSV.

CSV is one tidy ("long") table, one value per row:
`section,week,entry_id,title,question,lang,metric,value`, with sections `totals`, `questions_per_week`,
`questions_per_topic`, `feedback`, `unanswered` (metrics `asked`, `fallback`, `suggestions`,
`closest_score`), `review` (metric `reviewed`, an entry due for review) and `candidate_example`
(metric `picked`).
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Sequence
from datetime import date

from bot.report import Report, pct

FORMATS = ("md", "csv", "html")


def render(report: Report, fmt: str) -> str:
    if fmt == "md":
        return render_markdown(report)
    if fmt == "csv":
        return render_csv(report)
    if fmt == "html":
        return render_html(report)
    raise ValueError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")


def _totals(report: Report) -> str:
    """The one sentence of totals every format starts with; "not answered" is what the tables count."""
    o = report.outcomes
    return (
        f"{report.total} questions: {o['answer']} answered ({pct(o['answer'], report.total)}), "
        f'{report.not_answered} not answered ({o["suggestions"]} got "did you mean" suggestions, '
        f'{o["fallback"]} got "I don\'t know").'
    )


def _period(report: Report) -> str:
    start = report.since.isoformat() if report.since else "the start of the log"
    return f"{start} to {report.generated.date().isoformat()}"


# -- Markdown -------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~])")


def md(text: str) -> str:
    """User text made inert in Markdown (no links, emphasis, HTML or table breaks)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def render_markdown(report: Report) -> str:
    out: list[str] = [f"# policybot insights: {_period(report)}", ""]
    out.append(md(_totals(report)))
    if report.knowledge:
        out.append(f"Titles and paste targets: {md(report.knowledge)}.")
    if report.retention_days:
        out.append(
            f"Questions are kept {report.retention_days} days, so the log starts no earlier than that."
        )
    for section in (_md_topics, _md_ratings, _md_gaps, _md_stale, _md_candidates):
        out += section(report)
    return "\n".join(out) + "\n"


def _md_topics(report: Report) -> list[str]:
    out = ["", "## Questions per topic, per week", ""]
    if not (report.topics or report.total):
        return [*out, "No questions in this period."]
    weeks = [f"{w:%d %b}" for w in report.weeks]
    out.append("| Topic | " + " | ".join(weeks) + " | Total |")
    out.append("|---|" + "---:|" * (len(weeks) + 1))
    rows = [(f"{md(t.title)} (`{t.entry_id}`)", t.weekly) for t in report.topics]
    rows.append(("*not answered*", report.weekly_unanswered))
    rows.append(("**all questions**", report.weekly_total))
    for label, weekly in rows:
        out.append(f"| {label} | " + " | ".join(map(str, weekly)) + f" | {sum(weekly)} |")
    return out


def _md_ratings(report: Report) -> list[str]:
    out = ["", "## Helpful / unhelpful per answer (least helpful first)", ""]
    if not report.ratings:
        return [*out, "No votes in this period."]
    out += ["| Answer | 👍 | 👎 | Helpful |", "|---|---:|---:|---:|"]
    out += [
        f"| {md(r.title)} (`{r.entry_id}`) | {r.helpful} | {r.unhelpful} | {r.ratio:.0%} |"
        for r in report.ratings
    ]
    return out


def _md_gaps(report: Report) -> list[str]:
    out = ["", "## Unanswered and low-confidence questions (most asked first)", ""]
    if not report.gaps:
        return [*out, "Every question got an answer."]
    out += ["| Asked | Question | Also asked as | Closest entry |", "|---:|---|---|---|"]
    for gap in report.gaps:
        closest = f"`{gap.closest}` ({md(gap.closest_title or '')}, {gap.score:.2f})" if gap.closest else "–"
        variants = "; ".join(md(v) for v in gap.variants) or ""
        out.append(f"| {gap.count} | {md(gap.question)} | {variants} | {closest} |")
    return out


def _md_stale(report: Report) -> list[str]:
    out = ["", "## Answers due for review", ""]
    if not report.stale:
        return [*out, "Every answer with a `reviewed` date was reviewed within the last 12 months."]
    out.append("Last reviewed more than 12 months ago; employees still get them. Review each answer and "
               "update its `reviewed` date.")  # fmt: skip
    out += ["", "| Answer | Last reviewed | Where |", "|---|---|---|"]
    out += [
        f"| {md(s.title)} (`{s.entry_id}`) | {s.reviewed.isoformat()} | {md(s.file)}:{s.line} |"
        for s in report.stale
    ]
    return out


def _md_candidates(report: Report) -> list[str]:
    out = ["", "## Candidate example questions", ""]
    if not report.candidates:
        return [*out, 'No "did you mean" picks with new wording in this period.']
    out.append(
        'People typed these, then picked the entry from "did you mean". To teach the bot, paste the '
        "lines after the line named (the entry's last example in that language)."
    )
    for c in report.candidates:
        out += ["", f"### `{c.entry_id}`: {md(c.title)} ({c.lang}), after {c.file}:{c.after_line}", ""]
        out += ["```yaml", c.yaml(), "```"]
    return out


def _html_gaps(report: Report) -> list[str]:
    out: list[str] = []
    out.append("<h2>Unanswered and low-confidence questions</h2>")
    if report.gaps:
        out.append(
            '<p class="muted">Near-identical questions are one line; most asked first. "Closest entry" is '
            "where the bot looked: extend it, or write a new entry.</p>"
        )
        out.append(
            '<table><tr><th class="n">Asked</th><th>Question</th><th>Also asked as</th>'
            "<th>Closest entry</th></tr>"
        )
        for gap in report.gaps:
            closest = (
                f"{_e(gap.closest_title)} <code>{_e(gap.closest)}</code> ({gap.score:.2f})"
                if gap.closest
                else "–"
            )
            variants = "<br>".join(_e(v) for v in gap.variants)
            out.append(
                f'<tr><td class="n">{gap.count}</td><td>{_e(gap.question)}</td><td>{variants}</td>'
                f"<td>{closest}</td></tr>"
            )
        out.append("</table>")
    else:
        out.append("<p>Every question got an answer.</p>")
    return out


def _html_stale(report: Report) -> list[str]:
    out: list[str] = []
    out.append("<h2>Answers due for review</h2>")
    if report.stale:
        out.append(
            '<p class="muted">Last reviewed more than 12 months ago; employees still get them. Review each '
            "answer and update its <code>reviewed</code> date.</p>"
        )
        out.append("<table><tr><th>Answer</th><th>Last reviewed</th><th>Where</th></tr>")
        out.extend(
            f"<tr><td>{_e(s.title)} <code>{_e(s.entry_id)}</code></td><td>{s.reviewed.isoformat()}</td>"
            f"<td><code>{_e(s.file)}:{s.line}</code></td></tr>"
            for s in report.stale
        )
        out.append("</table>")
    else:
        out.append(
            "<p>Every answer with a <code>reviewed</code> date was reviewed within the last 12 months.</p>"
        )
    return out


# -- CSV ------------------------------------------------------------------------------------------------


def _cell(value: object) -> object:
    """A text cell a spreadsheet will not run as a formula (CSV injection): `=…` becomes `'=…`."""
    return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


class _SafeWriter:
    def __init__(self, buffer: io.StringIO) -> None:
        self._writer = csv.writer(buffer, lineterminator="\n")

    def writerow(self, row: Sequence[object]) -> None:
        self._writer.writerow([_cell(value) for value in row])


def render_csv(report: Report) -> str:  # noqa: C901 — one branch per section of the report, in file order
    buffer = io.StringIO()
    writer = _SafeWriter(buffer)
    writer.writerow(["section", "week", "entry_id", "title", "question", "lang", "metric", "value"])
    for kind, n in report.outcomes.items():
        writer.writerow(["totals", "", "", "", "", "", kind, n])
    for i, week in enumerate(report.weeks):
        for metric, series in (
            ("all", report.weekly_total),
            ("answered", report.weekly_answered),
            ("not_answered", report.weekly_unanswered),
        ):
            writer.writerow(["questions_per_week", week.isoformat(), "", "", "", "", metric, series[i]])
    for topic in report.topics:
        for week, n in zip(report.weeks, topic.weekly, strict=True):
            writer.writerow(
                ["questions_per_topic", week.isoformat(), topic.entry_id, topic.title, "", "", "questions", n]
            )
    for r in report.ratings:
        for metric, value in (
            ("helpful", r.helpful),
            ("unhelpful", r.unhelpful),
            ("helpful_ratio", f"{r.ratio:.3f}"),
        ):
            writer.writerow(["feedback", "", r.entry_id, r.title, "", "", metric, value])
    for gap in report.gaps:
        for metric, value in (
            ("asked", gap.count),
            ("fallback", gap.fallback),
            ("suggestions", gap.suggestions),
            ("closest_score", f"{gap.score:.3f}"),
        ):
            row = ["unanswered", "", gap.closest or "", gap.closest_title or "", gap.question, gap.lang]
            writer.writerow([*row, metric, value])
    for stale in report.stale:
        writer.writerow(
            ["review", "", stale.entry_id, stale.title, "", "", "reviewed", stale.reviewed.isoformat()]
        )
    for c in report.candidates:
        for question, n in c.questions:
            writer.writerow(["candidate_example", "", c.entry_id, c.title, question, c.lang, "picked", n])
    return buffer.getvalue()


# -- HTML -----------------------------------------------------------------------------------------------

_COLOURS = ("#1d3c5a", "#2a9d8f", "#e76f51", "#8d99ae", "#e9c46a", "#6a4c93")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _nice_max(value: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000):
        if value <= step * 4:
            return step * 4
    return value


def trend_svg(weeks: Sequence[date], series: Sequence[tuple[str, Sequence[int]]]) -> str:
    """A line chart of weekly counts, one line per (label, counts); inline SVG, no script."""
    width, height, left, right, top, bottom = 760, 260, 44, 150, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_max(max((max(s, default=0) for _, s in series), default=0))
    n = len(weeks)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: int) -> float:
        return top + plot_h - plot_h * v / top_value

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Questions per week" class="chart">'
    ]
    for tick in range(5):
        v = top_value * tick // 4
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v}</text>'
        )
    every = max(1, n // 8)
    for i, week in enumerate(weeks):
        if i % every == 0 or i == n - 1:
            parts.append(
                f'<text x="{x(i):.1f}" y="{height - bottom + 18}" text-anchor="middle">{week:%d %b}</text>'
            )
    for k, (label, counts) in enumerate(series):
        colour = _COLOURS[k % len(_COLOURS)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(counts))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2.5" points="{points}"/>')
        parts.extend(
            f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"><title>{_e(label)}, week of '
            f"{weeks[i]:%d %b}: {v}</title></circle>"
            for i, v in enumerate(counts)
        )
        ly = top + 14 + 20 * k
        parts.append(
            f'<rect x="{left + plot_w + 14}" y="{ly - 9}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{left + plot_w + 32}" y="{ly + 1}">{_e(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(rows: Sequence[tuple[str, int]]) -> str:
    """A horizontal bar chart of (label, count); inline SVG."""
    bar, gap, label_w, width = 20, 6, 300, 760
    height = max(1, len(rows)) * (bar + gap) + gap
    most = max((n for _, n in rows), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Questions per topic" class="chart">'
    ]
    for i, (label, n) in enumerate(rows):
        top = gap + i * (bar + gap)
        w = (width - label_w - 60) * n / most
        short = label if len(label) <= 45 else label[:44] + "…"
        parts.append(
            f'<text x="{label_w - 8}" y="{top + 15}" text-anchor="end">{_e(short)}'
            f"<title>{_e(label)}</title></text>"
            f'<rect x="{label_w}" y="{top}" width="{w:.1f}" height="{bar}" fill="{_COLOURS[0]}"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{top + 15}">{n}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f23;margin:2rem auto;
max-width:1100px;padding:0 1rem}h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6rem 0;width:100%}th,td{border:1px solid #ddd;padding:.3rem .5rem;
vertical-align:top}th{background:#f3f5f7;text-align:left}td.n{text-align:right;white-space:nowrap}
.chart{width:100%;height:auto;font-size:12px;fill:#333}.muted{color:#666}
code{background:#f3f5f7;padding:0 .2rem}
pre{background:#f6f8fa;padding:.8rem;overflow-x:auto;border:1px solid #ddd}
""".strip()


def render_html(report: Report) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>policybot insights: {_e(_period(report))}</title><style>{_CSS}</style></head><body>",
        f"<h1>policybot insights: {_e(_period(report))}</h1>",
        f"<p>{_e(_totals(report))}</p>",
        f'<p class="muted">Titles and paste targets: {_e(report.knowledge)}.</p>' if report.knowledge else "",
        '<p class="muted">Nobody who asked can be identified here: the bot stores no identities, and '
        "mentions, user ids, e-mail addresses and phone numbers in questions are replaced with placeholders "
        "(plain names are not: they go when the question is deleted at the end of the retention period).</p>",
        "<h2>Questions per week</h2>",
        trend_svg(
            report.weeks,
            [
                ("All questions", report.weekly_total),
                ("Answered", report.weekly_answered),
                ("Not answered", report.weekly_unanswered),
            ],
        ),
        "<h2>Questions per topic</h2>",
    ]
    if report.topics or report.total:
        if report.topics:
            out.append(bars_svg([(t.title, t.total) for t in report.topics]))
        head = "".join(f'<th class="n">{w:%d %b}</th>' for w in report.weeks)
        out.append(f'<table><tr><th>Topic</th>{head}<th class="n">Total</th></tr>')
        rows = [(f"{_e(t.title)} <code>{_e(t.entry_id)}</code>", t.weekly) for t in report.topics]
        rows.append(("<em>not answered</em>", report.weekly_unanswered))
        rows.append(("<strong>all questions</strong>", report.weekly_total))
        for label, weekly in rows:
            cells = "".join(f'<td class="n">{n}</td>' for n in weekly)
            out.append(f'<tr><td>{label}</td>{cells}<td class="n">{sum(weekly)}</td></tr>')
        out.append("</table>")
    else:
        out.append("<p>No questions in this period.</p>")
    out.append("<h2>Helpful / unhelpful per answer</h2>")
    if report.ratings:
        out.append(
            '<table><tr><th>Answer</th><th class="n">👍</th><th class="n">👎</th>'
            '<th class="n">Helpful</th></tr>'
        )
        out.extend(
            f'<tr><td>{_e(r.title)} <code>{_e(r.entry_id)}</code></td><td class="n">{r.helpful}</td>'
            f'<td class="n">{r.unhelpful}</td><td class="n">{r.ratio:.0%}</td></tr>'
            for r in report.ratings
        )
        out.append("</table>")
    else:
        out.append("<p>No votes in this period.</p>")
    out += _html_gaps(report)
    out += _html_stale(report)
    out.append("<h2>Candidate example questions</h2>")
    if report.candidates:
        out.append(
            '<p class="muted">People typed these, then picked the entry from "did you mean". Paste the lines '
            "after the line named: they go under the entry's example questions in that language.</p>"
        )
        for c in report.candidates:
            out.append(
                f"<h3>{_e(c.title)} <code>{_e(c.entry_id)}</code> ({_e(c.lang)}): after "
                f"<code>{_e(c.file)}:{c.after_line}</code></h3><pre>{_e(c.yaml())}</pre>"
            )
    else:
        out.append('<p>No "did you mean" picks with new wording in this period.</p>')
    out.append("</body></html>")
    return "\n".join(out) + "\n"
