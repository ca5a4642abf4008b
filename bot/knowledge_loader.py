"""Reading the knowledge base from YAML: find the folder, then load, merge and validate its files.

Every file in the folder is read with PyYAML's *safe* loader (see `bot.yaml_files`) and merged. Loading
never stops at the first mistake: it collects every problem with file, line and column, the entry it
belongs to and how to fix it, so HR can repair an edit in one go.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import re
import string
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from pathlib import Path

import yaml
from rapidfuzz import process

from bot.calibration import ANSWER_WHEN_SURE
from bot.errors import KnowledgeError, Problem
from bot.knowledge import (
    ALL_MESSAGE_KEYS,
    MESSAGE_KEYS,
    OPTIONAL_PLACEHOLDERS,
    Entry,
    KnowledgeBase,
    Link,
    Tip,
)
from bot.languages import LANGUAGE_NAMES, available
from bot.yaml_files import MAX_FILES, knowledge_files, off_the_loop, read_yaml

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")

ENTRY_FIELDS = {
    "id",
    "title",
    "questions",
    "answer",
    "tags",
    "links",
    "related",
    "source",
    "owner",
    "reviewed",
}
TIP_FIELDS = {"id", "entry"}
TOP_LEVEL = {"entries", "tips", "messages", "synonyms", "out_of_scope", "settings"}
SETTINGS = {"languages", "answer_when_sure"}
ANSWER_WHEN_SURE_RANGE = (50, 99)


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def _codes() -> str:
    return ", ".join(sorted(available()))


def default_knowledge_dir() -> Path:
    """The default guidelines, installed with the package (the repository's `knowledge/` folder)."""
    spec = importlib.util.find_spec("policybot_knowledge")
    # A namespace package (no __init__.py, so HR's folder holds only YAML): take its real folder.
    locations = [Path(p) for p in (spec.submodule_search_locations or []) if Path(p).is_dir()] if spec else []
    if not locations:
        raise KnowledgeError(
            [
                Problem(
                    "policybot_knowledge",
                    None,
                    None,
                    None,
                    "the default guidelines are not installed",
                    "reinstall policybot, or set POLICYBOT_KNOWLEDGE to a knowledge folder",
                )
            ]
        )
    return locations[0]


def resolve_knowledge_dir(configured: Path | None, cwd: Path | None = None) -> Path:
    """`POLICYBOT_KNOWLEDGE`, else `./knowledge` when it exists, else the installed defaults."""
    if configured is not None:
        return configured
    local = (cwd or Path.cwd()) / "knowledge"
    if local.is_dir() and any(local.glob("*.yaml")):
        return local
    return default_knowledge_dir()


async def load_knowledge(directory: Path) -> KnowledgeBase:
    """Load and validate every `*.yaml` file in `directory`; raise KnowledgeError listing all problems."""
    return await off_the_loop(lambda: _load(directory), "policybot-knowledge-load")


# ------------------------------------------------------------------------------------------ validation


class _Reader:
    """Turns YAML nodes into the model, collecting problems with their exact location."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.file = ""
        self.entries: dict[str, Entry] = {}
        self.tips: dict[str, Tip] = {}
        self.messages: dict[str, dict[str, str]] = {}
        self.message_nodes: dict[str, yaml.Node] = {}
        self.synonyms: dict[str, tuple[str, ...]] = {}
        self.out_of_scope: dict[str, list[str]] = {}
        # (file, node, owner, what, languages written, what the bot does without the others)
        self.translations: list[tuple[str, yaml.Node, str | None, str, frozenset[str], str]] = []
        self.used: dict[str, int] = {}  # language -> entries written in it, in order of appearance
        self.declared: tuple[str, ...] = ()
        self.answer_when_sure: float | None = None
        self.duplicates: list[tuple[str, str, int, int, int]] = []  # id, file, id line, entry lines
        self.related_nodes: list[tuple[str, str, yaml.Node]] = []
        self.tip_entry_nodes: list[tuple[str, str, yaml.Node]] = []
        self.question_places: dict[str, tuple[str, str, int]] = {}

    def add(
        self, node: yaml.Node | None, entry_id: str | None, message: str, fix: str, severity: str = "error"
    ) -> None:
        line = node.start_mark.line + 1 if node is not None else None
        column = node.start_mark.column + 1 if node is not None else None
        self.problems.append(Problem(self.file, line, column, entry_id, message, fix, severity))

    # -- scalar helpers

    def text(self, node: yaml.Node, owner: str | None, what: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            kind = _kind(node)
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
                node, owner, f"{what} should be a list but is {_kind(node)}", "put each item on a '- ' line"
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
                f"{what} should be a set of 'key: value' lines but is {_kind(node)}",
                "indent the fields under it as 'name: value'",
            )
            return {}
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
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
            self.translations.append((self.file, node, owner, what, frozenset(fields), fallback))
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

    # -- sections

    def read_file(self, root: yaml.Node) -> None:
        for key, (key_node, value_node) in self.mapping(root, None, "the file").items():
            if key == "entries":
                self.read_entries(value_node)
            elif key == "tips":
                self.read_tips(value_node)
            elif key == "messages":
                self.read_messages(value_node)
            elif key == "synonyms":
                self.read_synonyms(value_node)
            elif key == "out_of_scope":
                self.read_out_of_scope(value_node)
            elif key == "settings":
                self.read_settings(value_node)
            else:
                guess = process.extractOne(key, sorted(TOP_LEVEL), score_cutoff=60)
                hint = (
                    f"did you mean '{guess[0]}'?" if guess else f"use one of: {', '.join(sorted(TOP_LEVEL))}"
                )
                self.add(key_node, None, f"unknown section '{key}'", hint)

    def read_entries(self, node: yaml.Node) -> None:
        if not isinstance(node, yaml.SequenceNode):
            self.add(node, None, "'entries' should be a list", "start each entry with '- id: …'")
            return
        for item in node.value:
            self.read_entry(item)

    def read_entry(self, node: yaml.Node) -> None:  # noqa: C901, PLR0912, PLR0915 — one branch per field of an entry, each with HR's message
        if isinstance(node, yaml.MappingNode) and not node.value:  # `- {}`: the schema's rule too
            self.add(node, None, "the entry is empty", "write its fields under '- id: …', or remove the line")
            return
        fields = self.mapping(node, None, "an entry")
        if not fields:
            return
        entry_id = self.read_id(fields, node, "entry")
        owner = entry_id or None
        self.unknown_fields(fields, ENTRY_FIELDS, owner, "an entry")
        title = self.localized(fields["title"][1], owner, "title") if "title" in fields else {}
        if "title" in fields and not title and isinstance(fields["title"][1], yaml.MappingNode):
            self.add(fields["title"][1], owner, "the title is empty", "add a line 'en: …' under it")
        # A text missing in one of the knowledge base's languages is served in the main language (a
        # warning, so HR can publish before the translation is done).
        answer: dict[str, str] = {}
        if "answer" in fields:
            answer_node = fields["answer"][1]
            answer = self.localized(answer_node, owner, "answer", fallback="answers in {main}")
            if not answer and isinstance(answer_node, yaml.MappingNode) and not answer_node.value:
                self.add(answer_node, owner, "the answer is empty", "add a line 'en: …' under it")
        for name in ("title", "answer"):
            if name not in fields:
                self.add(
                    node, owner, f"the entry has no {name}", f"add '{name}:' with a line 'en: …' under it"
                )
        questions: dict[str, tuple[str, ...]] = {}
        question_lines: dict[str, int] = {}
        if "questions" not in fields:
            self.add(node, owner, "the entry has no example questions", "add 'questions:' with an 'en:' list")
        else:
            qnode = fields["questions"][1]
            qfields = self.mapping(qnode, owner, "questions")
            for lang, (key_node, list_node) in qfields.items():
                if not self.language_key(lang, key_node, owner, "questions"):
                    continue
                items = self.text_list(list_node, owner, f"questions ({lang})")
                for text, item_node in items:
                    self.note_question(text, entry_id, item_node)
                    question_lines[text] = item_node.start_mark.line + 1
                if items:
                    questions[lang] = tuple(text for text, _ in items)
                    self.used[lang] = self.used.get(lang, 0) + 1
                elif isinstance(list_node, yaml.SequenceNode):
                    self.add(
                        list_node,
                        owner,
                        f"no example questions in {language_name(lang)}",
                        f"add at least one question under '{lang}:', or remove the line",
                    )
            if isinstance(qnode, yaml.MappingNode):
                if not qfields:
                    self.add(qnode, owner, "the entry has no example questions", "add an 'en:' list under it")
                else:
                    self.translations.append(
                        (
                            self.file,
                            qnode,
                            owner,
                            "example questions",
                            frozenset(questions),
                            "finds this entry less often for questions in it",
                        )
                    )
        tags = [t for t, _ in self.text_list(fields["tags"][1], owner, "tags")] if "tags" in fields else []
        related: list[str] = []
        if "related" in fields:
            for rid, rnode in self.text_list(fields["related"][1], owner, "related"):
                related.append(rid)
                self.related_nodes.append((self.file, owner or "", rnode))
        links = self.read_links(fields["links"][1], owner) if "links" in fields else []
        source = (
            self.localized(fields["source"][1], owner, "source", both=False) if "source" in fields else {}
        )
        entry_owner = self.text(fields["owner"][1], owner, "owner") if "owner" in fields else None
        reviewed = self.read_date(fields["reviewed"][1], owner) if "reviewed" in fields else None
        if entry_id is None:
            return
        if entry_id in self.entries:
            first = self.entries[entry_id]
            id_line = fields["id"][1].start_mark.line + 1
            self.add(
                fields["id"][1],
                entry_id,
                f"duplicate id '{entry_id}' (first used at {first.file}:{first.line})",
                "give this entry a different id; ids must be unique across all files",
            )
            self.duplicates.append(
                (entry_id, self.file, id_line, node.start_mark.line + 1, node.end_mark.line + 1)
            )
            return
        self.entries[entry_id] = Entry(
            id=entry_id,
            title=title,
            questions=questions,
            answer=answer,
            tags=tuple(tags),
            links=tuple(links),
            related=tuple(related),
            source=source,
            owner=entry_owner,
            reviewed=reviewed,
            file=self.file,
            line=node.start_mark.line + 1,
            question_lines=question_lines,
        )

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

    def note_question(self, text: str, entry_id: str | None, node: yaml.Node) -> None:
        key = " ".join(text.lower().split())
        place = self.question_places.get(key)
        line = node.start_mark.line + 1
        if place is None:
            self.question_places[key] = (entry_id or "", self.file, line)
        elif place[0] != (entry_id or ""):
            self.add(
                node,
                entry_id,
                f"the question '{text}' is also an example of '{place[0]}' ({place[1]}:{place[2]})",
                "keep it in the one entry that answers it",
                severity="warning",
            )
        else:
            self.add(
                node,
                entry_id,
                f"the question '{text}' is listed twice",
                "remove one copy",
                severity="warning",
            )

    def read_links(self, node: yaml.Node, owner: str | None) -> list[Link]:
        if not isinstance(node, yaml.SequenceNode):
            self.add(node, owner, "links should be a list", "write each link as '- url: …' with a title")
            return []
        links = []
        for item in node.value:
            fields = self.mapping(item, owner, "a link")
            self.unknown_fields(fields, {"url", "title"}, owner, "a link")
            if "url" not in fields:
                self.add(item, owner, "the link has no url", "add 'url: https://…'")
                continue
            url = self.text(fields["url"][1], owner, "url")
            if url is None:
                continue
            if not re.match(r"^(https?://|mailto:)\S+$", url):
                self.add(
                    fields["url"][1],
                    owner,
                    f"'{url}' is not a web or mail address",
                    "write it as https://… or mailto:…",
                )
                continue
            title = (
                self.localized(fields["title"][1], owner, "link title", both=False)
                if "title" in fields
                else {}
            )
            links.append(Link(url=url, title=title or {"*": url}))
        return links

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

    def read_tips(self, node: yaml.Node) -> None:  # noqa: C901 — one branch per field of a tip, each with HR's message
        if not isinstance(node, yaml.SequenceNode):
            self.add(node, None, "'tips' should be a list", "start each tip with '- id: …'")
            return
        for item in node.value:
            if isinstance(item, yaml.MappingNode) and not item.value:  # `- {}`: the schema's rule too
                self.add(
                    item, None, "the tip is empty", "write its fields under '- id: …', or remove the line"
                )
                continue
            fields = self.mapping(item, None, "a tip")
            if not fields:
                continue
            tip_id = self.read_id(fields, item, "tip")
            languages = {k: v for k, v in fields.items() if k not in TIP_FIELDS and k in available()}
            others = {k: v for k, v in fields.items() if k not in languages}
            self.unknown_fields(others, TIP_FIELDS | {"en", "nb"}, tip_id, "a tip")
            text: dict[str, str] = {}
            for lang, (_, value_node) in languages.items():
                value = self.text(value_node, tip_id, f"the tip ({lang})")
                if value is not None:
                    text[lang] = value
            if not languages:
                self.add(item, tip_id, "the tip has no text", "add a line 'en: …' with the tip")
            else:
                self.translations.append(
                    (
                        self.file,
                        item,
                        tip_id,
                        "the tip",
                        frozenset(languages),
                        "posts it in {main}",
                    )
                )
            entry = None
            if "entry" in fields:
                entry = self.text(fields["entry"][1], tip_id, "entry")
                if entry is not None:
                    self.tip_entry_nodes.append((self.file, tip_id or "", fields["entry"][1]))
            if tip_id is None:
                continue
            if tip_id in self.tips:
                first = self.tips[tip_id]
                self.add(
                    fields["id"][1],
                    tip_id,
                    f"duplicate tip id '{tip_id}' (first used at {first.file}:{first.line})",
                    "give this tip a different id",
                )
                continue
            self.tips[tip_id] = Tip(tip_id, text, entry, self.file, item.start_mark.line + 1)

    def read_messages(self, node: yaml.Node) -> None:
        for key, (key_node, value_node) in self.mapping(node, None, "messages").items():
            if key not in ALL_MESSAGE_KEYS:
                guess = process.extractOne(key, sorted(ALL_MESSAGE_KEYS), score_cutoff=60)
                hint = f"did you mean '{guess[0]}'?" if guess else "remove it; the bot never says it"
                self.add(key_node, None, f"unknown message '{key}'", hint)
                continue
            if key in self.messages:
                self.add(key_node, None, f"message '{key}' is defined twice", "keep one of them")
                continue
            texts = self.localized(
                value_node,
                None,
                f"message '{key}'",
                fallback="says its built-in sentence, or the one in {main}",
            )
            allowed = set(ALL_MESSAGE_KEYS[key]) | set(OPTIONAL_PLACEHOLDERS.get(key, ()))
            for lang, text in texts.items():
                try:
                    used = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
                except ValueError as exc:
                    self.add(
                        value_node,
                        None,
                        f"message '{key}' ({lang}) has a broken {{placeholder}}: {exc}",
                        "write placeholders as {name}; write a literal brace as {{ or }}",
                    )
                    continue
                for name in sorted(used - allowed):
                    self.add(
                        value_node,
                        None,
                        f"message '{key}' ({lang}) uses unknown placeholder {{{name}}}",
                        f"allowed here: {', '.join('{' + a + '}' for a in sorted(allowed)) or 'none'}",
                    )
                for name in ALL_MESSAGE_KEYS[key]:
                    if name not in used:
                        self.add(
                            value_node,
                            None,
                            f"message '{key}' ({lang}) must contain {{{name}}}",
                            f"put {{{name}}} where the bot should insert it",
                        )
            self.messages[key] = texts
            self.message_nodes[key] = key_node

    def read_synonyms(self, node: yaml.Node) -> None:
        for key, (key_node, value_node) in self.mapping(node, None, "synonyms").items():
            words = [w.lower() for w, _ in self.text_list(value_node, None, f"synonyms of '{key}'")]
            if key.lower() in self.synonyms:
                self.add(key_node, None, f"synonyms for '{key}' are defined twice", "merge the two lists")
            self.synonyms[key.lower()] = tuple(words)

    def read_out_of_scope(self, node: yaml.Node) -> None:
        """Questions the bot must not answer (other HR matters, IT, how to use an app...)."""
        for lang, (key_node, list_node) in self.mapping(node, None, "out_of_scope").items():
            if not self.language_key(lang, key_node, None, "out_of_scope"):
                continue
            for text, item_node in self.text_list(list_node, None, f"out_of_scope ({lang})"):
                self.note_question(text, "(out of scope)", item_node)
                self.out_of_scope.setdefault(lang, []).append(text)

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

    # -- checks across files

    def cross_check(self, unreadable: bool) -> None:
        """Checks that span files; skipped where an unreadable file would only cause follow-on noise."""
        if unreadable:
            return
        referenced = {str(n.value).strip() for _, _, n in (*self.related_nodes, *self.tip_entry_nodes)}
        for file, owner, node in self.related_nodes:
            self.file = file
            rid = str(node.value).strip()
            if rid not in self.entries:
                self.add(node, owner, f"related id '{rid}' does not exist", self._cause(rid, referenced))
            elif rid == owner:
                self.add(node, owner, "an entry cannot be related to itself", "remove this line")
        for file, owner, node in self.tip_entry_nodes:
            self.file = file
            rid = str(node.value).strip()
            if rid not in self.entries:
                self.add(
                    node,
                    owner,
                    f"the tip refers to entry '{rid}', which does not exist",
                    self._cause(rid, referenced),
                )
        if not self.entries:
            self.file = "(all files)"
            self.add(
                None, None, "the knowledge base has no entries", "add at least one entry under 'entries:'"
            )
        self._blame_duplicates()
        self._check_translations()

    def _cause(self, wrong: str, referenced: set[str]) -> str:
        """Why a referenced id is missing: an entry nobody refers to with a close id was most likely
        renamed (point at it); otherwise the reference itself has a typo."""
        orphans = [i for i in self.entries if i not in referenced]
        guess = process.extractOne(wrong, orphans, score_cutoff=60)
        if guess is not None:
            entry = self.entries[str(guess[0])]
            return (
                f"caused by line {entry.line} of {Path(entry.file).name}: that entry is now called "
                f"'{entry.id}'; if you renamed '{wrong}', write the new id here too (or rename it back)"
            )
        return _closest_id(wrong, self.entries)

    def _blame_duplicates(self) -> None:
        """Problems inside an entry whose id is a duplicate follow from that id: say so."""
        for entry_id, file, id_line, first, last in self.duplicates:
            for number, problem in enumerate(self.problems):
                inside = problem.file == file and problem.line is not None and first <= problem.line <= last
                if inside and problem.entry_id == entry_id and problem.line != id_line:
                    self.problems[number] = replace(
                        problem,
                        fix=f"caused by line {id_line}: the duplicate id '{entry_id}'; fix that first",
                    )

    def languages(self) -> tuple[str, ...]:
        """The declared languages, else those the entries' examples use (most used first)."""
        if self.declared:
            return self.declared
        used = sorted(self.used, key=lambda lang: -self.used[lang])  # stable: ties in order of use
        return tuple(used) or ("en",)

    def _check_translations(self) -> None:
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

    def fill_messages(self, builtin: Mapping[str, Mapping[str, str]]) -> None:
        """The bot's own sentences HR did not write come from the built-in ones (English, Norwegian);
        a language of the knowledge base they are not written in is one warning, not a refusal (the
        admins' sentences, which a folder for an older policybot lacks, are not counted)."""
        for key in ALL_MESSAGE_KEYS:
            texts = dict(builtin.get(key, {}))
            texts.update(self.messages.get(key, {}))
            self.messages[key] = texts
        languages = self.languages()
        for lang in languages:
            missing = [k for k in MESSAGE_KEYS if lang not in self.messages[k]]
            if missing:
                self.file = "(all files)"
                fallback = next((x for x in (languages[0], "en") if x != lang), "en")
                shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
                self.add(
                    None,
                    None,
                    f"{len(missing)} of the bot's own sentences are not written in {language_name(lang)} "
                    f"({shown})",
                    f"add '{lang}:' lines under 'messages:'; until then the bot says them in "
                    f"{language_name(fallback)}",
                    severity="warning",
                )


def _closest_id(wrong: str, known: Mapping[str, object]) -> str:
    guess = process.extractOne(wrong, list(known), score_cutoff=60)
    return f"did you mean '{guess[0]}'?" if guess else "use the id of an existing entry"


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a group of fields"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == "tag:yaml.org,2002:null":
        return "empty"
    return f"'{node.value}'"


def _load(directory: Path) -> KnowledgeBase:
    reader = _Reader()
    if not directory.is_dir():
        reader.file = str(directory)
        reader.add(None, None, "the knowledge folder does not exist", "point POLICYBOT_KNOWLEDGE at a folder")
        raise KnowledgeError(reader.problems)
    files = knowledge_files(directory)
    if len(files) > MAX_FILES:
        reader.file = str(directory)
        reader.add(None, None, f"{len(files)} YAML files (at most {MAX_FILES})", "merge some files")
        raise KnowledgeError(reader.problems)
    digest = hashlib.sha256()
    unreadable = False  # a file that could not be parsed at all
    for path in files:
        reader.file = str(path)
        read = read_yaml(path, reader.problems)
        if read.raw is not None:
            digest.update(path.name.encode() + b"\0" + read.raw + b"\0")
        if read.node is not None:
            reader.read_file(read.node)
        unreadable = unreadable or read.unreadable
    if not files:
        reader.file = str(directory)
        reader.add(None, None, "no .yaml files in the knowledge folder", "add the knowledge base files")
    reader.cross_check(unreadable)
    reader.fill_messages(builtin_messages())
    errors = [p for p in reader.problems if p.severity == "error"]
    if errors:
        raise KnowledgeError(reader.problems)
    return KnowledgeBase(
        entries=dict(reader.entries),
        tips=tuple(reader.tips.values()),
        messages=reader.messages,
        synonyms=reader.synonyms,
        out_of_scope={lang: tuple(texts) for lang, texts in reader.out_of_scope.items() if texts},
        version=digest.hexdigest()[:12],
        source_dir=str(directory),
        warnings=tuple(reader.problems),
        languages=reader.languages(),
        answer_when_sure=reader.answer_when_sure or ANSWER_WHEN_SURE,
    )


@functools.cache
def builtin_messages() -> Mapping[str, Mapping[str, str]]:
    """The bot's built-in sentences (bot/messages.yaml: English and Norwegian, naming no topic), for
    those HR's folder leaves out."""
    path = Path(__file__).with_name("messages.yaml")
    reader = _Reader()
    reader.file = str(path)
    read = read_yaml(path, reader.problems)
    if read.node is not None:
        reader.read_file(read.node)
    return {key: dict(texts) for key, texts in reader.messages.items()}
