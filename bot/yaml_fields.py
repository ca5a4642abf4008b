"""Reading YAML nodes into values, with the line and column of every problem.

`FieldReader` is the base of the knowledge reader (`bot.knowledge_references.KnowledgeReader`): it turns
one node into text, a list, a set of fields, a text per language, an id or a date. Where a node is not
what HR meant to write, it records a `Problem` at the node's line and column, with the entry it belongs
to and how to fix it, and goes on: loading never stops at the first mistake.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import yaml
from rapidfuzz import process

from bot.errors import Problem
from bot.languages import LANGUAGE_NAMES, available

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def _codes() -> str:
    return ", ".join(sorted(available()))


@dataclass(frozen=True, slots=True)
class Spot:
    """Where a node was and the text it held: what a check made once every file is read needs of it.
    Kept instead of the node, so that a file's node tree is freed as soon as the file is read (at
    10 000 entries, kept nodes tripled the memory a load peaks at, and the process kept it)."""

    value: str
    line: int  # 0-based, as a YAML mark's
    column: int

    @classmethod
    def of(cls, node: yaml.Node) -> Spot:
        value = str(node.value) if isinstance(node, yaml.ScalarNode) else ""
        return cls(value, node.start_mark.line, node.start_mark.column)


class FieldReader:
    """Turns YAML nodes into values, collecting problems with their exact location."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.file = ""  # the file being read: where `add` says a problem is
        # (file, where, owner, what, languages written, what the bot does without the others)
        self.translations: list[tuple[str, Spot, str | None, str, frozenset[str], str]] = []

    def add(
        self,
        node: yaml.Node | Spot | None,
        entry_id: str | None,
        message: str,
        fix: str,
        severity: str = "error",
    ) -> None:
        line = column = None
        if isinstance(node, Spot):
            line, column = node.line + 1, node.column + 1
        elif node is not None:
            line, column = node.start_mark.line + 1, node.start_mark.column + 1
        self.problems.append(Problem(self.file, line, column, entry_id, message, fix, severity))

    # -- scalar helpers

    def text(self, node: yaml.Node, owner: str | None, what: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            kind = node_kind(node)
            self.add(node, owner, f"{what} should be text but is {kind}", f"write {what} as a line of text")
            return None
        value = str(node.value).strip()
        if not value:
            self.add(node, owner, f"{what} is empty", f"write {what}, or remove the line")
            return None
        return value

    def text_list(self, node: yaml.Node, owner: str | None, what: str) -> list[tuple[str, yaml.Node]]:
        if not isinstance(node, yaml.SequenceNode):
            self.add(
                node,
                owner,
                f"{what} should be a list but is {node_kind(node)}",
                "put each item on a '- ' line",
            )
            return []
        out = []
        for item in node.value:
            value = self.text(item, owner, f"an item of {what}")
            if value is not None:
                out.append((value, item))
        return out

    def mapping(
        self, node: yaml.Node, owner: str | None, what: str
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            self.add(
                node,
                owner,
                f"{what} should be a set of 'key: value' lines but is {node_kind(node)}",
                "indent the fields under it as 'name: value'",
            )
            return {}
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = sys.intern(str(key_node.value))  # "en", "nb": one string, not one per entry's text
            if key in out:
                self.add(key_node, owner, f"'{key}' appears twice in {what}", "keep one of them")
            out[key] = (key_node, value_node)
        return out

    def localized(
        self,
        node: yaml.Node,
        owner: str | None,
        what: str,
        *,
        both: bool = True,
        fallback: str = "shows it in {main}",
    ) -> dict[str, str]:
        """A text per language; one plain string is accepted (for every language) where `both` is False.

        A language of the knowledge base left out is a warning, given once the languages are known
        (`cross_check`): the bot falls back to the main language, it never refuses the edit.
        """
        if isinstance(node, yaml.ScalarNode) and not both:
            value = self.text(node, owner, what)
            return {"*": value} if value else {}
        fields = self.mapping(node, owner, what)
        out: dict[str, str] = {}
        for lang, (key_node, value_node) in fields.items():
            if not self.language_key(lang, key_node, owner, what):
                continue
            value = self.text(value_node, owner, f"{what} ({lang})")
            if value is not None:
                out[lang] = value
        if isinstance(node, yaml.MappingNode) and fields:
            self.translations.append((self.file, Spot.of(node), owner, what, frozenset(fields), fallback))
        return out

    def language_key(self, lang: str, key_node: yaml.Node, owner: str | None, what: str) -> bool:
        if lang in available():
            return True
        self.add(
            key_node,
            owner,
            f"unknown language '{lang}' in {what}",
            f"use a two-letter language code: {_codes()}"
            + (" (Norwegian is 'nb')" if lang in ("no", "nn") else ""),
        )
        return False

    def unknown_fields(
        self,
        fields: Mapping[str, tuple[yaml.Node, yaml.Node]],
        allowed: set[str],
        owner: str | None,
        what: str,
    ) -> None:
        for key, (key_node, _) in fields.items():
            if key not in allowed:
                guess = process.extractOne(key, sorted(allowed), score_cutoff=60)
                hint = f"did you mean '{guess[0]}'?" if guess else f"allowed: {', '.join(sorted(allowed))}"
                self.add(key_node, owner, f"unknown field '{key}' in {what}", hint)

    def read_id(
        self, fields: Mapping[str, tuple[yaml.Node, yaml.Node]], node: yaml.Node, what: str
    ) -> str | None:
        if "id" not in fields:
            self.add(node, None, f"the {what} has no id", f"add 'id: some-{what}-name' (lowercase, dashes)")
            return None
        value = self.text(fields["id"][1], None, "id")
        if value is not None and not ID_PATTERN.match(value):
            self.add(
                fields["id"][1],
                value,
                f"id '{value}' has characters ids cannot have",
                "use lowercase letters, digits and dashes, e.g. 'friend-manager'",
            )
            return None
        return value

    def read_date(self, node: yaml.Node, owner: str | None) -> date | None:
        value = str(node.value) if isinstance(node, yaml.ScalarNode) else ""
        try:
            # Only YYYY-MM-DD, as the JSON Schema says (fromisoformat alone also takes 20261101, 2026-W44).
            if not DATE_PATTERN.match(value):
                raise ValueError(value)
            return date.fromisoformat(value)
        except ValueError:
            self.add(node, owner, f"'{value}' is not a date", "write it as YYYY-MM-DD, e.g. 2026-11-01")
            return None


def closest_id(wrong: str, known: Mapping[str, object]) -> str:
    guess = process.extractOne(wrong, list(known), score_cutoff=60)
    return f"did you mean '{guess[0]}'?" if guess else "use the id of an existing entry"


def node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a group of fields"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == "tag:yaml.org,2002:null":
        return "empty"
    return f"'{node.value}'"
