"""Keeping people out of what the bot remembers.

The store never holds who asked. Question text itself can still point at someone, so before a question
is stored (and again before the report shows it) Slack/Teams mentions and user ids, e-mail addresses,
ids (GUIDs) and phone numbers are replaced with placeholders. Plain names ("a photo of Kari") are not
recognised: the retention limit is what bounds those.

A platform's own markup is resolved by its adapter, and resolving it is where a mention becomes a plain
name (Teams' `<at>Per Olsen</at>`, Slack's `<@U123|per>`): so the adapters put the placeholders below in
for mentions, mail links and channel ids as they resolve the markup, before the core sees the text.
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_SLACK_MENTION = re.compile(r"<[@!][^>\s]*>")  # <@U123>, <@U123|ola>, <!subteam^S1|@hr>, <!channel>
_TEAMS_MENTION = re.compile(r"<at>.*?</at>", re.IGNORECASE)
# Slack U…/W… ids (always with a digit, unlike a shouted "WHATSAPP") and Teams 29:… ids
_USER_ID = re.compile(r"\b(?:[UWB](?=[A-Z]*\d)[A-Z0-9]{7,}|\d{2}:[\w-]{6,})\b")
_GUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_AT_NAME = re.compile(r"@\s?[\w.-]+")  # "@ola", and "@ ola": a Slack mention after the core cleaned it
_AT_PLACEHOLDER = re.compile(r"@\s?(\[(?:someone|email|id)\])")
_PHONE = re.compile(r"\+?\d[\d ()-]{6,}\d")
_BROADCAST = {"channel", "here", "everyone"}

SOMEONE = "[someone]"  # a person mentioned: a platform mention, a user id, "@name"
EMAIL = "[email]"
CHANNEL = "[channel]"  # a channel known only by its id


def mask(text: str) -> str:
    """The question with everything that could point at a person replaced by a placeholder."""
    text = _EMAIL.sub(EMAIL, text)
    text = _SLACK_MENTION.sub(SOMEONE, text)
    text = _TEAMS_MENTION.sub(SOMEONE, text)
    text = _GUID.sub("[id]", text)
    text = _USER_ID.sub(SOMEONE, text)

    def at_name(match: re.Match[str]) -> str:
        name = match.group(0).lstrip("@ ").lower()
        return match.group(0) if name in _BROADCAST else SOMEONE

    text = _AT_NAME.sub(at_name, text)
    text = _AT_PLACEHOLDER.sub(r"\1", text)  # "@U0123ABCD" became "@[someone]": one placeholder, no "@"
    return _PHONE.sub(lambda m: "[number]" if sum(c.isdigit() for c in m.group(0)) >= 8 else m.group(0), text)
