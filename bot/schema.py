"""The JSON Schema of the knowledge-base files (knowledge/knowledge.schema.json), read as the loader reads.

Editors use the schema for completion and inline errors (each YAML file starts with
`# yaml-language-server: $schema=./knowledge.schema.json`); `policybot kb check` applies the same schema,
so what the editor underlines and what the bot refuses agree. The schema sees each file the way the loader
does: every scalar is text (`no`, `42` and `2026-11-01` are the strings HR typed; only an empty value is
null), so YAML 1.1's booleans and dates never cause a disagreement. What a schema cannot express (ids
unique across files, references that exist, every message defined somewhere, duplicate keys) only the
loader checks.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, ValidationError

from bot.errors import Problem
from bot.gc_pause import gc_paused
from bot.knowledge_loader import default_knowledge_dir
from bot.yaml_files import NotReadable, compose_raw, knowledge_files, off_the_loop, read_raw, read_regular

SCHEMA_FILE = "knowledge.schema.json"
SCHEMA_REFERENCE = f"$schema=./{SCHEMA_FILE}"
NULL_TAG = "tag:yaml.org,2002:null"
DEFS = "#/$defs/"
_DEFAULT_FIX = "see the field's description in knowledge.schema.json (editors with YAML support show it)"


def schema_path() -> Path:
    """The schema shipped with this version of policybot (it matches this version's loader)."""
    return default_knowledge_dir() / SCHEMA_FILE


@functools.cache
def validator() -> Draft202012Validator:
    """The shipped schema's validator (that the schema itself is valid Draft 2020-12 is a test's to
    check, not every `kb check`'s: checking it takes longer than validating the shipped files)."""
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    schema = _inline(schema, schema.get("$defs", {}), ())
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _inline(node: Any, defs: dict[str, Any], within: tuple[str, ...]) -> Any:
    """The schema with each `{"$ref": "#/$defs/name"}` replaced by the definition it names (kept beside
    any other keywords of its object, under `allOf`): the same rules and findings, but jsonschema no
    longer resolves a reference for every value it checks, which made validating 2-3x slower. A
    definition that refers to itself, directly or not, keeps its reference."""
    if isinstance(node, list):
        return [_inline(item, defs, within) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    name = ref.removeprefix(DEFS) if isinstance(ref, str) and ref.startswith(DEFS) else None
    if name is None or name not in defs or name in within:
        return {key: _inline(value, defs, within) for key, value in node.items()}
    target = _inline(defs[name], defs, (*within, name))
    rest = {key: _inline(value, defs, within) for key, value in node.items() if key != "$ref"}
    return {"allOf": [target], **rest} if rest else target


def plain(node: yaml.Node) -> Any:
    """A node tree as JSON data, the way the loader reads it: every scalar is text, empty is None."""
    if isinstance(node, yaml.MappingNode):
        return {str(key.value): plain(value) for key, value in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [plain(item) for item in node.value]
    return None if node.tag == NULL_TAG else str(node.value)


def validate(node: yaml.Node | None, file: str) -> list[Problem]:
    """Every place where one file's node tree breaks the schema, with its line."""
    data = plain(node) if node is not None else None
    problems = [_problem(error, node, data, file) for error in validator().iter_errors(data)]
    unique = list(dict.fromkeys(problems))  # a date can fail its pattern and its format: say it once
    return sorted(unique, key=lambda p: (p.line or 0, p.column or 0, p.message))


async def schema_problems(directory: Path) -> list[Problem]:
    """The schema's findings for every file the loader would read in `directory`."""
    return await off_the_loop(lambda: _check_folder(directory), "policybot-schema-check")


def _check_folder(directory: Path) -> list[Problem]:
    if not directory.is_dir():
        return []
    problems: list[Problem] = []
    files = knowledge_files(directory)
    raws = [read_raw(path) for path in files]  # all the I/O, before the collector is paused
    with gc_paused():
        for path, raw in zip(files, raws, strict=True):
            node = compose_raw(path, raw)  # a file the loader cannot parse is reported by the loader
            if node is not None:
                problems += validate(node, str(path))
    return problems + _editor_copy(directory)


def _editor_copy(directory: Path) -> list[Problem]:
    """Editors resolve `$schema=./knowledge.schema.json` next to the YAML: warn when that copy is
    missing or differs from the schema of this version of policybot."""
    shipped = schema_path()
    if directory.resolve() == shipped.parent.resolve():
        return []
    referencing = [p for p in knowledge_files(directory) if SCHEMA_REFERENCE in _head(p)]
    if not referencing:
        return []
    copy = directory / SCHEMA_FILE
    try:
        differs = read_regular(copy) != shipped.read_bytes()
    except NotReadable:
        message = f"the files refer to ./{SCHEMA_FILE}, which is not in the folder"
    else:
        if not differs:
            return []
        message = f"{SCHEMA_FILE} in the folder differs from the one of this policybot version"
    return [
        Problem(
            str(copy),
            None,
            None,
            None,
            message + " (editors check against it)",
            f"copy {shipped} into the folder",
            severity="warning",
        )
    ]


def _head(path: Path) -> str:
    """The file's first line; "" for what the loader reports instead (a folder, a FIFO, a file just
    removed). Read the way the loader reads (bot.yaml_files.read_regular): it can neither block nor bloat."""
    try:
        return read_regular(path).decode("utf-8", errors="replace").partition("\n")[0]
    except NotReadable:
        return ""


def _problem(error: ValidationError, root: yaml.Node | None, data: Any, file: str) -> Problem:
    path = list(error.absolute_path)
    node = _locate(root, path, error)
    where = _dotted(path)
    instance = error.instance
    description = error.schema.get("description") if isinstance(error.schema, dict) else None
    fix = description or _DEFAULT_FIX
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        unexpected = sorted(set(instance) - set(allowed))
        message = f"unknown field '{unexpected[0]}' in {where}" if unexpected else error.message
        fix = f"allowed here: {', '.join(allowed)}"
    elif error.validator == "required" and isinstance(instance, dict):
        missing = [name for name in error.validator_value if name not in instance]
        message = f"{where}: '{missing[0]}' is missing" if missing else error.message
        fix = f"add '{missing[0]}:' ({description})" if missing and description else fix
    elif instance is None:
        message = f"{where} is empty"
    elif error.validator in ("pattern", "format", "anyOf"):
        shown = f"'{instance}'" if isinstance(instance, str) and len(instance) <= 80 else "the value"
        message = f"{where}: {shown} is not in the right form"
    else:
        message = f"{where}: {error.message}"
    return Problem(
        file,
        node.start_mark.line + 1 if node is not None else None,
        node.start_mark.column + 1 if node is not None else None,
        _owner(data, path),
        f"schema: {message}",
        fix,
    )


def _locate(root: yaml.Node | None, path: Iterable[Any], error: ValidationError) -> yaml.Node | None:
    """The node at a JSON path; for an unknown field, its key, so the line is the misspelt one."""
    node = root
    for step in path:
        if isinstance(node, yaml.MappingNode):
            matches = [value for key, value in node.value if str(key.value) == str(step)]
            if not matches:
                break
            node = matches[-1]  # like a dict, the last of duplicated keys wins
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
        else:
            break
    if error.validator == "additionalProperties" and isinstance(node, yaml.MappingNode):
        known = set(error.schema.get("properties", {}))
        keys: list[yaml.Node] = [key for key, _ in node.value]
        for key in keys:
            if str(key.value) not in known:
                return key
    return node


def _dotted(path: list[Any]) -> str:
    if not path:
        return "the file"
    text = ""
    for step in path:
        text += f"[{step + 1}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


def _owner(data: Any, path: list[Any]) -> str | None:
    """The id of the entry or tip a path is in, when it has a usable one."""
    if len(path) >= 2 and path[0] in ("entries", "tips") and isinstance(path[1], int):
        try:
            item = data[path[0]][path[1]]
        except (KeyError, IndexError, TypeError):
            return None
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            return item["id"].strip() or None
    return None
