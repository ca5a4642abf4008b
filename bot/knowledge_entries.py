"""The entries of a knowledge base: each one read field by field, with HR's message for every mistake.

`EntryReader` adds to `bot.yaml_fields.FieldReader` what an entry is made of (title, example questions,
answer, tags, links, related entries, source, owner, review date), notes each example question so that
one listed twice or under two entries is a warning, and keeps which languages the entries are written in.
"""

from __future__ import annotations

import re

import yaml

from bot.knowledge import Entry, Link
from bot.yaml_fields import FieldReader, Spot, language_name

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


class EntryReader(FieldReader):
    """Reads `entries:` into `Entry`s; an id used twice is a problem (and where it came from)."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[str, Entry] = {}
        self.used: dict[str, int] = {}  # language -> entries written in it, in order of appearance
        self.duplicates: list[tuple[str, str, int, int, int]] = []  # id, file, id line, entry lines
        self.related_nodes: list[tuple[str, str, Spot]] = []  # checked once every file is read
        self.question_places: dict[str, tuple[str, str, int]] = {}

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
                            Spot.of(qnode),
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
                self.related_nodes.append((self.file, owner or "", Spot.of(rnode)))
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
