"""The other sections of a knowledge file: tips, the bot's own sentences, synonyms, out-of-scope questions.

`SectionReader` reads one file's top level, hands each section to its reader, and fills the sentences HR
did not write from the built-in ones (bot/messages.yaml), with one warning per language they lack.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

import yaml
from rapidfuzz import process

from bot.knowledge import ALL_MESSAGE_KEYS, MESSAGE_KEYS, OPTIONAL_PLACEHOLDERS, Tip
from bot.knowledge_settings import SettingsReader
from bot.languages import available
from bot.yaml_fields import Spot, language_name

TIP_FIELDS = {"id", "entry"}
TOP_LEVEL = {"entries", "tips", "messages", "synonyms", "out_of_scope", "settings"}


class SectionReader(SettingsReader):
    """Reads a whole file: its entries, settings, tips, messages, synonyms and out-of-scope questions."""

    def __init__(self) -> None:
        super().__init__()
        self.tips: dict[str, Tip] = {}
        self.tip_entry_nodes: list[tuple[str, str, Spot]] = []  # checked once every file is read
        self.messages: dict[str, dict[str, str]] = {}
        self.message_nodes: dict[str, yaml.Node] = {}
        self.synonyms: dict[str, tuple[str, ...]] = {}
        self.out_of_scope: dict[str, list[str]] = {}

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
                        Spot.of(item),
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
                    self.tip_entry_nodes.append((self.file, tip_id or "", Spot.of(fields["entry"][1])))
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
