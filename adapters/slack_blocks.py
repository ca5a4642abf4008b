"""How a Slack message looks: the core's `Reply` as Block Kit, and text made safe to post.

The core writes markdown; Slack reads mrkdwn. `to_mrkdwn` converts, escapes `&`, `<` and `>`, and
neutralises mentions, so that text a user wrote can never ping `@channel`, a user group or a person when
the bot repeats it. `render` builds the blocks of an answer, suggestions or topics and their buttons;
`home_view` the App Home tab. Everything here is pure (no Slack client): adapters/slack_web.py sends it.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from bot.conversation import Conversation, Reply, ReplyKind

# Block Kit limits (https://docs.slack.dev/reference/block-kit): we stay inside them by construction.
SECTION_TEXT_MAX = 3000
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
BUTTONS_PER_BLOCK = 25
BLOCKS_PER_MESSAGE = 50
FALLBACK_TEXT_MAX = 3000
TOPIC_BUTTONS_MAX = 4 * BUTTONS_PER_BLOCK  # more topics than this are listed as text instead
ZWJ = "\u2060"  # word joiner: "@\u2060channel" reads as @channel and pings nobody

# ---------------------------------------------------------------------------------------------- text

_SPECIAL_MENTION = re.compile(r"<!([^>|]+)(?:\|([^>]*))?>")  # <!channel>, <!here|here>, <!subteam^S1|@hr>
_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]*))?>")
_BARE_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)


def neutralise(text: str) -> str:
    """Make every broadcast, user-group and user mention inert, keeping it readable."""

    def special(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("subteam^"):
            name = label or "group"
        elif target.startswith("date^"):
            return label or ""
        else:
            name = label or target
        return "@" + ZWJ + name.lstrip("@")

    def user(match: re.Match[str]) -> str:
        return "@" + ZWJ + (match.group(2) or match.group(1)).lstrip("@")

    text = _SPECIAL_MENTION.sub(special, text)
    text = _USER_MENTION.sub(user, text)
    return _BARE_BROADCAST.sub(lambda m: "@" + ZWJ + m.group(1), text)


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_MD_LINK = re.compile(r"\[([^\]\n]+)\]\(((?:https?|mailto):[^)\s]+)\)")
_MD_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_MD_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$", re.MULTILINE)
_MD_BULLET = re.compile(r"^(\s*)[-+]\s+", re.MULTILINE)
_QUOTE = re.compile(r"^&gt; ", re.MULTILINE)


@functools.lru_cache(maxsize=4096)
def to_mrkdwn(markdown: str) -> str:
    """The core's markdown -> Slack mrkdwn: escaped (quotes kept), links `<url|title>`, `**x**` -> `*x*`.

    The knowledge base already writes Slack-style `*bold*` and `_italics_`; those pass through. Cached:
    the same answers, titles and labels are rendered again and again, and this is pure.
    """
    text = _QUOTE.sub("> ", neutralise(escape(markdown)))
    links: list[str] = []

    def link(match: re.Match[str]) -> str:
        links.append(f"<{match.group(2)}|{match.group(1)}>")
        return f"\x00{len(links) - 1}\x00"

    text = _MD_LINK.sub(link, text)
    text = _MD_HEADING.sub(lambda m: f"**{m.group(1)}**", text)
    text = _MD_BULLET.sub(lambda m: m.group(1) + "• ", text)
    text = _MD_BOLD.sub(lambda m: f"*{m.group(1) or m.group(2)}*", text)
    return re.sub("\x00(\\d+)\x00", lambda m: links[int(m.group(1))], text)


def chunks(text: str, size: int = SECTION_TEXT_MAX) -> list[str]:
    """Split at paragraph, then line, then word boundaries so that no section exceeds Slack's limit."""
    parts: list[str] = []
    while len(text) > size:
        cut = max(text.rfind("\n\n", 0, size), text.rfind("\n", 0, size), text.rfind(" ", 0, size))
        cut = cut if cut > size // 2 else size
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        parts.append(text)
    return parts


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


# ------------------------------------------------------------------------------------------ rendering

# Action ids name what a button does; its value carries what it is about (entry id, language, and for
# "Ask HR" the question) — never who pressed it: Slack tells us that in the payload when it matters.
FEEDBACK_YES = "feedback_yes"
FEEDBACK_NO = "feedback_no"
ASK_HR = "ask_hr"
PICK = re.compile(r"^pick_\d+$")  # a "did you mean" suggestion: replaces the prompt with the answer
RELATED = re.compile(r"^related_\d+$")  # a related entry or topic: answers in a new message


# One encoder for every button value: json.dumps with non-default options builds a new one per call.
_COMPACT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _value(**fields: str) -> str:
    return _COMPACT_JSON.encode(fields)


def _value_with_question(question: str, **fields: str) -> str:
    """A button value carrying the question, cut (marked with …) to fit Slack's 2000 characters.

    Measured encoded: JSON escaping can double a question's length (every `"` and `\\`), so the longest
    prefix that fits is found by binary search on its length (the encoded length only grows with it).
    """
    value = _value(**fields, q=question)
    if len(value) <= BUTTON_VALUE_MAX:
        return value
    fits, too_long = 0, len(question)  # prefix lengths: question[:fits] + "…" fits, [:too_long] does not
    while too_long - fits > 1:
        middle = (fits + too_long) // 2
        if len(_value(**fields, q=question[:middle] + "…")) <= BUTTON_VALUE_MAX:
            fits = middle
        else:
            too_long = middle
    return _value(**fields, q=question[:fits] + "…")


def ask_hr_value(question: str, lang: str, entry_id: str | None) -> str:
    """The "Ask HR" button value: language, entry and the question, fitted to Slack's limit."""
    return _value_with_question(question, l=lang, e=entry_id or "")


def _button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": _clip(text, BUTTON_TEXT_MAX), "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    return button


def section(mrkdwn: str, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}
    if block_id:
        block["block_id"] = block_id
    return block


def _context(mrkdwn: str, block_id: str) -> dict[str, Any]:
    return {"type": "context", "block_id": block_id, "elements": [{"type": "mrkdwn", "text": mrkdwn}]}


_MRKDWN_BOLD = re.compile(r"\*[^*\n]+\*")


def heading(title: str) -> str:
    """A title in bold, unless HR's wording already bolds it (the tip's title is `💡 *Tip of the day*`):
    bold inside bold shows as stray asterisks in Slack."""
    text = to_mrkdwn(title)
    return text if _MRKDWN_BOLD.search(text) else f"*{text}*"


def _with_emoji(label: str, emoji: str) -> str:
    return label if label.startswith(emoji) else f"{emoji} {label}"


@dataclass(frozen=True)
class Rendered:
    """A Slack message: `text` is the notification/fallback text, `blocks` the Block Kit layout."""

    text: str
    blocks: list[dict[str, Any]]


def _choice_blocks(reply: Reply) -> list[dict[str, Any]]:
    """The suggestions as buttons, or the topics: as buttons, or listed as text when there are too many."""
    blocks: list[dict[str, Any]] = []
    if reply.kind is ReplyKind.SUGGESTIONS and reply.choices:
        buttons = [
            _button(
                choice.title,
                f"pick_{i}",
                _value_with_question(reply.question, e=choice.entry_id, l=reply.lang),
            )
            for i, choice in enumerate(reply.choices[:BUTTONS_PER_BLOCK])
        ]
        blocks.append({"type": "actions", "block_id": "suggestions", "elements": buttons})
    elif reply.kind is ReplyKind.TOPICS and len(reply.choices) > TOPIC_BUTTONS_MAX:
        listing = "\n".join(f"• {to_mrkdwn(choice.title)}" for choice in reply.choices)
        blocks.extend(section(chunk) for chunk in chunks(listing))
    elif reply.kind is ReplyKind.TOPICS and reply.choices:
        for start in range(0, len(reply.choices), BUTTONS_PER_BLOCK):
            batch = reply.choices[start : start + BUTTONS_PER_BLOCK]
            buttons = [
                _button(choice.title, f"related_{start + i}", _value(e=choice.entry_id, l=reply.lang))
                for i, choice in enumerate(batch)
            ]
            blocks.append({"type": "actions", "block_id": f"topics_{start}", "elements": buttons})
    return blocks


def _feedback_blocks(reply: Reply, *, ask_hr: bool) -> list[dict[str, Any]]:
    """👍/👎 under an answer (with their prompt) and the "Ask HR" button, in one actions block."""
    labels = reply.labels
    blocks: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    if reply.kind is ReplyKind.ANSWER and reply.entry_id:
        value = _value(e=reply.entry_id, l=reply.lang)
        blocks.append(
            _context(to_mrkdwn(labels.get("feedback_prompt", "Was this helpful?")), "feedback_prompt")
        )
        actions.append(_button(_with_emoji(labels.get("feedback_yes", "Yes"), "👍"), FEEDBACK_YES, value))
        actions.append(_button(_with_emoji(labels.get("feedback_no", "No"), "👎"), FEEDBACK_NO, value))
    kinds_for_hr = (ReplyKind.ANSWER, ReplyKind.SUGGESTIONS, ReplyKind.FALLBACK)
    if ask_hr and reply.kind in kinds_for_hr and reply.question.strip():
        label = labels.get("ask_hr", "Ask HR")
        actions.append(_button(label, ASK_HR, ask_hr_value(reply.question, reply.lang, reply.entry_id)))
    if actions:
        blocks.append({"type": "actions", "block_id": "feedback", "elements": actions})

    return blocks


def render(reply: Reply, *, ask_hr: bool) -> Rendered:
    """Block Kit for a reply. `ask_hr` shows the "Ask HR" button (only when an HR channel is configured)."""
    labels = reply.labels
    body = to_mrkdwn(reply.text)
    if reply.title and reply.kind in (ReplyKind.ANSWER, ReplyKind.TIP):
        body = f"{heading(reply.title)}\n{body}"
    blocks = [section(chunk) for chunk in chunks(body)]

    if reply.links:
        links = "  ·  ".join(f"<{link.url}|{escape(link.title_in(reply.lang))}>" for link in reply.links)
        blocks.append(section("🔗 " + links, "links"))
    if reply.footer:
        blocks.append(_context(to_mrkdwn(reply.footer), "footer"))

    blocks.extend(_choice_blocks(reply))

    if reply.related and reply.kind in (ReplyKind.ANSWER, ReplyKind.TIP):
        blocks.append(_context(to_mrkdwn(labels.get("related", "Related")), "related_label"))
        buttons = [
            _button(choice.title, f"related_{i}", _value(e=choice.entry_id, l=reply.lang))
            for i, choice in enumerate(reply.related[:BUTTONS_PER_BLOCK])
        ]
        blocks.append({"type": "actions", "block_id": "related", "elements": buttons})

    blocks.extend(_feedback_blocks(reply, ask_hr=ask_hr))

    fallback = _clip(body, FALLBACK_TEXT_MAX)
    return Rendered(text=fallback, blocks=blocks[:BLOCKS_PER_MESSAGE])


def markdown_message(markdown: str) -> Rendered:
    """A plain message (admin answers, notes to HR) from the core's markdown."""
    text = to_mrkdwn(markdown)
    blocks = [section(chunk) for chunk in chunks(text)][:BLOCKS_PER_MESSAGE]
    return Rendered(text=_clip(text, FALLBACK_TEXT_MAX), blocks=blocks)


def thanked(blocks: list[dict[str, Any]], thanks: str) -> list[dict[str, Any]]:
    """The answer's blocks with the feedback prompt and buttons replaced by the thank-you line."""
    kept = [b for b in blocks if b.get("block_id") not in ("feedback_prompt", "feedback")]
    return [*kept, _context(to_mrkdwn(thanks), "feedback_thanks")]


def home_view(conversation: Conversation, lang: str) -> dict[str, Any]:
    """The App Home tab: what the bot does and how to ask (the help text), and the topics it knows."""
    help_reply = conversation.help(lang)
    topics = conversation.topics(lang)
    blocks: list[dict[str, Any]] = [section(chunk) for chunk in chunks(to_mrkdwn(help_reply.text))]
    blocks.append({"type": "divider"})
    blocks.extend(section(chunk) for chunk in chunks(to_mrkdwn(topics.text)))
    if topics.choices:
        listing = "\n".join(f"• {to_mrkdwn(choice.title)}" for choice in topics.choices)
        blocks.extend(section(chunk) for chunk in chunks(listing))
    return {"type": "home", "blocks": blocks[:100]}
