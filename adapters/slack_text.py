"""Slack's text coming in: escaped mrkdwn -> the plain text the core matches on, and a user's locale ->
one of the bot's languages. (Text going out is adapters/slack_blocks.py's.)"""

from __future__ import annotations

import re

from adapters.slack_blocks import neutralise
from bot.privacy import CHANNEL, EMAIL, SOMEONE

_CHANNEL_LINK = re.compile(r"<#([CG][A-Z0-9]+)(?:\|([^>]*))?>")
_URL_LINK = re.compile(r"<((?:https?|mailto):[^>|]+)(?:\|([^>]*))?>")
_PERSON = re.compile(r"<@[UWB][A-Z0-9]*(?:\|[^>]*)?>")  # <@U123>, <@U123|per.olsen>
_MAIL_LINK = re.compile(r"<mailto:[^>]*>")  # <mailto:per@example.com|Per Olsen>


def incoming_text(text: str, bot_user_id: str | None = None) -> str:
    """Slack message text -> the plain text the core matches on: the bot's mention removed, and who and
    which channel a mention or link named replaced with bot/privacy.py's placeholders as the markup is
    resolved (once resolved, `<@U123|per>` would be only a name); a channel link keeps its name."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    text = _PERSON.sub(SOMEONE, text)
    text = _MAIL_LINK.sub(EMAIL, text)
    text = neutralise(text)
    text = _CHANNEL_LINK.sub(lambda m: "#" + m.group(2) if m.group(2) else CHANNEL, text)
    text = _URL_LINK.sub(lambda m: m.group(2) or m.group(1), text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(text.split()).strip(" ,:;")


def lang_of_locale(locale: str | None, default: str) -> str:
    """Slack user locale ("nb-NO", "en-US", …) -> one of our languages; Norwegian in any form is nb."""
    if not locale:
        return default
    prefix = locale.lower().split("-")[0].split("_")[0]
    if prefix in ("nb", "no", "nn"):
        return "nb"
    if prefix == "en":
        return "en"
    return default
