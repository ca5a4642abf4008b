"""The settings and languages of a knowledge folder.

`settings:` declares the languages (the first is the main one) and how sure the bot must be to answer;
with no declaration the languages are those the entries use, most used first. A text left out in one of
them is a warning (the bot falls back to the main language), never a refusal.
"""

from __future__ import annotations

import yaml

from bot.knowledge_entries import EntryReader
from bot.yaml_fields import language_name

SETTINGS = {"languages", "answer_when_sure"}
ANSWER_WHEN_SURE_RANGE = (50, 99)


class SettingsReader(EntryReader):
    """Reads `settings:` and decides the knowledge base's languages."""

    def __init__(self) -> None:
        super().__init__()
        self.declared: tuple[str, ...] = ()
        self.answer_when_sure: float | None = None

    def read_settings(self, node: yaml.Node) -> None:
        """`settings:` — the languages of the knowledge base (the first is the main one) and how sure
        the bot must be to answer outright."""
        fields = self.mapping(node, None, "settings")
        self.unknown_fields(fields, SETTINGS, None, "settings")
        if "languages" in fields:
            codes: list[str] = []
            for code, item in self.text_list(fields["languages"][1], None, "languages"):
                if self.language_key(code, item, None, "settings") and code not in codes:
                    codes.append(code)
            if self.declared and codes:
                self.add(fields["languages"][0], None, "the languages are set twice", "keep one 'languages:'")
            self.declared = self.declared or tuple(codes)
        if "answer_when_sure" in fields:
            value_node = fields["answer_when_sure"][1]
            value = (
                str(value_node.value).strip().rstrip("%") if isinstance(value_node, yaml.ScalarNode) else ""
            )
            low, high = ANSWER_WHEN_SURE_RANGE
            if not value.isdecimal() or not low <= int(value) <= high:
                self.add(
                    value_node,
                    None,
                    f"answer_when_sure should be a whole number from {low} to {high}, not '{value}'",
                    "write e.g. 'answer_when_sure: 80' (lower answers more, higher asks more)",
                )
            else:
                self.answer_when_sure = float(value)

    def languages(self) -> tuple[str, ...]:
        """The declared languages, else those the entries' examples use (most used first)."""
        if self.declared:
            return self.declared
        used = sorted(self.used, key=lambda lang: -self.used[lang])  # stable: ties in order of use
        return tuple(used) or ("en",)

    def check_translations(self) -> None:
        languages = self.languages()
        main = language_name(languages[0])
        for file, node, owner, what, written, fallback in self.translations:
            self.file = file
            for lang in languages:
                if lang not in written:
                    does = fallback.format(main=main)
                    self.add(
                        node,
                        owner,
                        f"{what} is missing in {language_name(lang)}",
                        f"add a line '{lang}: …' under it; until then the bot {does}",
                        severity="warning",
                    )
            if self.declared:
                for lang in sorted(written - set(languages)):
                    self.add(
                        node,
                        owner,
                        f"{what} is written in {language_name(lang)}, which the settings do not list",
                        f"add '{lang}' to 'languages' in the settings, or remove the line",
                        severity="warning",
                    )
