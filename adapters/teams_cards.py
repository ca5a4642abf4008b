"""How a Teams message looks: the core's `Reply` as one Adaptive Card (plain dicts, no SDK objects).

Buttons are `Action.Submit` whose `data` names the action under the "policybot" key (adapters/teams.py
says why not `Action.Execute`, and reads the data back when a button is pressed). adapters/teams.py
wraps a card in a botbuilder Activity and sends it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.conversation import Choice, Reply, ReplyKind

CARD_VERSION = "1.4"  # rendered by Teams on desktop, web and mobile
MAX_DATA_QUESTION = 1000  # characters of the question carried in an "Ask HR" / suggestion button
# Teams shows at most 6 actions of an action set (its host config's `actions.maxActions`, in
# https://github.com/microsoft/AdaptiveCards/blob/main/samples/HostConfig/microsoft-teams-light.json);
# the rest are dropped, so longer lists of buttons are split into several ActionSets.
MAX_ACTIONS = 6


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _submit(title: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Action.Submit", "title": title, "data": {"policybot": data.pop("action"), **data}}


def _card(body: list[dict[str, Any]], actions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
        "body": body,
        "msteams": {"width": "Full"},
    }
    if actions:
        card["actions"] = actions
    return card


def _action_sets(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`actions` as ActionSets of at most MAX_ACTIONS each, so that Teams shows every one."""
    return [
        {"type": "ActionSet", "actions": actions[start : start + MAX_ACTIONS]}
        for start in range(0, len(actions), MAX_ACTIONS)
    ]


def _pick_buttons(choices: tuple[Choice, ...], lang: str, question: str) -> list[dict[str, Any]]:
    return _action_sets(
        [
            _submit(
                choice.title,
                {"action": "pick", "entry": choice.entry_id, "lang": lang, "question": question},
            )
            for choice in choices
        ]
    )


def _content(reply: Reply, related_label: str, question: str) -> list[dict[str, Any]]:
    """A card's links, suggestions, related entries and footer."""
    body: list[dict[str, Any]] = []
    if reply.links:
        body.extend(
            _action_sets(
                [
                    {"type": "Action.OpenUrl", "title": link.title_in(reply.lang), "url": link.url}
                    for link in reply.links
                ]
            )
        )
    if reply.choices:
        body.extend(_pick_buttons(reply.choices, reply.lang, question))
    if reply.related:
        body.append(_text(related_label, weight="Bolder", spacing="Medium"))
        body.extend(_pick_buttons(reply.related, reply.lang, ""))
    if reply.footer:
        body.append(_text(reply.footer, size="Small", isSubtle=True, spacing="Medium"))

    return body


def render_card(
    reply: Reply,
    *,
    hr_enabled: bool,
    say: Callable[[str, str], str] | None = None,
    thanks: str | None = None,
) -> dict[str, Any]:
    """One Adaptive Card for a reply: title, answer, links, footer, suggestions, 👍/👎 and Ask HR.

    Button wording comes from `reply.labels`, else from `say` (the core's sentences). With `thanks`
    the feedback buttons are replaced by that sentence (the card after someone voted).
    """

    def label(key: str) -> str:
        return reply.labels.get(key) or (say(key, reply.lang) if say else "") or key

    question = reply.question[:MAX_DATA_QUESTION]
    body: list[dict[str, Any]] = []
    if reply.title:
        body.append(_text(reply.title, weight="Bolder", size="Medium"))
    body.append(_text(reply.text))
    body.extend(_content(reply, label("related"), question))

    actions: list[dict[str, Any]] = []
    if thanks:
        body.append(_text(thanks, spacing="Medium", weight="Bolder"))
    elif reply.kind is ReplyKind.ANSWER and reply.entry_id:
        body.append(_text(label("feedback_prompt"), spacing="Medium"))
        for helpful, key in ((True, "feedback_yes"), (False, "feedback_no")):
            data = {"action": "feedback", "entry": reply.entry_id, "helpful": helpful, "lang": reply.lang}
            actions.append(_submit(label(key), data))
    if (
        hr_enabled
        and question
        and reply.kind in (ReplyKind.ANSWER, ReplyKind.SUGGESTIONS, ReplyKind.FALLBACK)
    ):
        actions.append(
            _submit(label("ask_hr"), {"action": "ask_hr", "lang": reply.lang, "question": question})
        )
    return _card(body, actions)
