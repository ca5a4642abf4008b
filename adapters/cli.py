"""`policybot`: the console adapter and the entry point of every command.

`ask`, `chat`, `match` and `kb check` need no credentials and never import a platform SDK; only
`serve` (and the commands that talk to Slack or Teams) load them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from adapters.cli_commands import (
    cmd_db_upgrade,
    cmd_report,
    cmd_tips_post,
    cmd_tips_preview,
    open_conversation,
)
from adapters.cli_kb_check import cmd_kb_check
from bot.config import Settings
from bot.conversation import Conversation, Message, Reply, ReplyKind
from bot.errors import ConfigError, KnowledgeError, PolicybotError
from bot.index_cache import Building
from bot.knowledge_loader import load_knowledge, resolve_knowledge_dir
from bot.yaml_files import off_the_loop

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ rendering


def render(reply: Reply) -> str:
    """A reply as plain text for the terminal."""
    lines: list[str] = []
    if reply.title:
        lines += [reply.title, "=" * len(reply.title)]
    lines.append(reply.text.strip())
    for number, choice in enumerate(reply.choices, start=1):
        lines.append(
            f"  {number}. {choice.title}" + (f"  [{choice.entry_id}]" if reply.kind != "suggestions" else "")
        )
    for link in reply.links:
        lines.append(f"→ {link.title_in(reply.lang)}: {link.url}")
    if reply.related:
        lines.append(
            f"{reply.labels.get('related', 'Related:')} " + ", ".join(c.title for c in reply.related)
        )
    if reply.footer:
        lines.append(reply.footer)
    return "\n".join(lines)


def match_record(conversation: Conversation, question: str, lang: str | None) -> dict[str, Any]:
    """The matcher's verdict as `match --json` writes it; a command ("help", "tips") is no question:
    it has no answer_id and names the command."""
    command = conversation.command(question, lang)
    if command is not None:
        kind, command_lang = command
        return {
            "question": question,
            "answer_id": None,
            "confidence": 1.0,
            "suggestions": [],
            "lang": command_lang,
            "command": str(kind),
        }
    result = conversation.match(question, lang)
    return {
        "question": question,
        "answer_id": result.answer_id,
        "confidence": round(result.confidence, 4),
        "suggestions": list(result.suggestions),
        "lang": result.lang,
        "command": None,
    }


# ------------------------------------------------------------------------------------------- commands


async def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    conversation = await open_conversation(settings, args.knowledge)
    question = " ".join(args.question)
    reply = await conversation.handle(Message(text=question, lang_hint=args.lang))
    if args.json:
        record = match_record(conversation, question, args.lang)
        record["lang"] = reply.lang
        record["answer"] = reply.text
        print(json.dumps(record, ensure_ascii=False))
    else:
        print(render(reply))
    return 0


async def cmd_match(args: argparse.Namespace, settings: Settings) -> int:
    conversation = await open_conversation(settings, args.knowledge)
    for line in sys.stdin:
        question = line.rstrip("\n")
        if question.strip():
            print(json.dumps(match_record(conversation, question, args.lang), ensure_ascii=False), flush=True)
    return 0


async def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    if not args.record:
        return await _chat(args, settings, await open_conversation(settings, args.knowledge))
    from bot.database import engine_url
    from bot.store import Store

    # What the bot in Slack or Teams records, and nothing more: the question (masked), its language,
    # outcome and entry, votes and picks; never who asked. `policybot report` then has something to show.
    store = await Store.open(settings.database_url, retention_days=settings.retention_days)
    try:
        kb = await load_knowledge(resolve_knowledge_dir(args.knowledge or settings.knowledge_dir))
        conversation = Conversation(
            kb, default_lang=settings.default_lang, recorder=store, hr_contact=settings.hr_contact
        )
        where = engine_url(settings.database_url)[0].render_as_string(hide_password=True)
        print(f"(recording to {where} for `policybot report`: what is asked, never who asks)")
        try:
            return await _chat(args, settings, conversation)
        finally:
            await conversation.drain()
    finally:
        await store.close()


async def _chat(args: argparse.Namespace, settings: Settings, conversation: Conversation) -> int:
    print(render(conversation.help(args.lang or settings.default_lang)))
    print("(pick a suggestion by its number; + or - rates the last answer; Ctrl-D or 'quit' to leave)\n")
    choices: list[str] = []
    asked = ""  # the question the choices were offered for
    answered: str | None = None  # the entry of the last answer, for + / -
    lang = args.lang or settings.default_lang
    while True:
        try:
            line = await asyncio.to_thread(input, "> ")
        except EOFError:
            print()
            return 0
        if line.strip().lower() in ("quit", "exit", "q", "avslutt"):
            return 0
        picked = line.strip()
        if picked in ("+", "-") and answered is not None:
            print(await conversation.feedback(answered, picked == "+", lang) + "\n")
            answered = None
            continue
        # isdecimal, not isdigit: "²" is a digit that int() refuses.
        if picked.isdecimal() and 0 < int(picked) <= len(choices):
            reply = await conversation.answer_entry(choices[int(picked) - 1], lang, question=asked)
        else:
            reply = await conversation.handle(Message(text=line, lang_hint=args.lang))
        lang = reply.lang
        choices = (
            [c.entry_id for c in reply.choices]
            if reply.kind in (ReplyKind.SUGGESTIONS, ReplyKind.TOPICS)
            else []
        )
        asked = reply.question if reply.kind is ReplyKind.SUGGESTIONS else ""
        answered = reply.entry_id if reply.kind is ReplyKind.ANSWER else None
        print(render(reply) + "\n")


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    # A snapshot of the index that is not there yet is built by a process of its own, on another core
    # while this one imports the server, and the build's garbage never lives here (bot/index_cache.py).
    directory = resolve_knowledge_dir(settings.knowledge_dir)
    building = await off_the_loop(lambda: Building.start(directory, settings.cache_dir), "policybot-index")
    from adapters import server  # imports aiohttp and the platform SDKs: only for `serve`

    await server.serve(settings, port=args.port, slack_socket_mode=args.slack_socket_mode, building=building)
    return 0


async def cmd_teams_package(args: argparse.Namespace, settings: Settings) -> int:
    from adapters.teams_package import write_teams_package

    out = write_teams_package(
        args.app_id,
        args.out,
        domains=tuple(args.domain),
        website=args.website,
        privacy_url=args.privacy_url,
        terms_url=args.terms_url,
        version=args.app_version,
    )
    print(f"{out}: upload it in Teams (Apps → Manage your apps → Upload an app) or the Teams admin center.")
    return 0


def port_number(value: str, *, name: str = "--port") -> int:
    """A TCP port from the command line or `PORT`, with a message instead of a ValueError."""
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise ConfigError(f"{name}={value!r} is not a port number: give a whole number from 1 to 65535")
    return port


def _port_argument(value: str) -> int:
    try:
        return port_number(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def since_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; write it as YYYY-MM-DD") from None


# ----------------------------------------------------------------------------------------------- main


def package_version() -> str:
    """The installed policybot's version (pyproject.toml's, via the package metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("policybot")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


class _Version(argparse.Action):
    """`--version`, looking the version up only when asked: the package metadata costs every other
    command tens of milliseconds at start-up."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(
            option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, help=help
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        print(f"policybot {package_version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 — one statement per option: the CLI reads as a list
    parser = argparse.ArgumentParser(
        prog="policybot",
        description="Answers employees' workplace-policy questions from an HR-owned knowledge base, "
        "in the terminal, in Slack and in Microsoft Teams.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    parser.add_argument("--version", action=_Version, help="show policybot's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    knowledge = argparse.ArgumentParser(add_help=False)
    knowledge.add_argument("--knowledge", type=Path, help="knowledge folder (default: $POLICYBOT_KNOWLEDGE)")
    lang = argparse.ArgumentParser(add_help=False)
    lang.add_argument(
        "--lang", choices=["en", "nb"], help="language hint (detected from the question otherwise)"
    )

    ask = sub.add_parser("ask", parents=[knowledge, lang], help="answer one question")
    ask.add_argument("question", nargs="+", help="the question, e.g. 'Can I add my manager on Facebook?'")
    ask.add_argument("--json", action="store_true", help="print the verdict and answer as JSON")
    ask.set_defaults(run=cmd_ask)

    chat = sub.add_parser("chat", parents=[knowledge, lang], help="talk to the bot in the terminal")
    chat.add_argument(
        "--record",
        action="store_true",
        help="record the questions, picks and votes in the database ($DATABASE_URL) as the bot in Slack "
        "or Teams does (never who asked), e.g. to try `policybot report`",
    )
    chat.set_defaults(run=cmd_chat)

    match = sub.add_parser(
        "match", parents=[knowledge, lang], help="JSON verdict per question read from stdin"
    )
    match.add_argument(
        "--json", action="store_true", default=True, help="(the only format; kept for clarity)"
    )
    match.set_defaults(run=cmd_match)

    kb = sub.add_parser("kb", help="knowledge-base tools")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True, metavar="KB_COMMAND")
    check = kb_sub.add_parser("check", help="validate and self-test a knowledge folder")
    check.add_argument("directory", nargs="?", type=Path, help="folder (default: the one the bot would use)")
    check.set_defaults(run=cmd_kb_check)

    serve = sub.add_parser("serve", help="run the Slack/Teams server")
    serve.add_argument("--port", type=_port_argument, default=None, help="port (default: $PORT, else 3000)")
    serve.add_argument("--slack-socket-mode", action="store_true", help="connect to Slack over Socket Mode")
    serve.set_defaults(run=cmd_serve)

    package = sub.add_parser("teams-package", help="write the Teams app package (manifest and icons, zipped)")
    package.add_argument("--app-id", required=True, help="the bot's Microsoft app id (MicrosoftAppId)")
    package.add_argument("--out", type=Path, help="zip file to write (default: policybot-teams.zip)")
    package.add_argument("--domain", action="append", default=[], help="a validDomains entry (repeatable)")
    package.add_argument(
        "--website", required=True, help="your organisation's page about the bot, shown in Teams (https)"
    )
    package.add_argument("--privacy-url", help="privacy statement URL (default: the website)")
    package.add_argument("--terms-url", help="terms of use URL (default: the website)")
    package.add_argument(
        "--app-version", help="the app's version in Teams, e.g. 1.0.1 (default: policybot's version)"
    )
    package.set_defaults(run=cmd_teams_package)

    db = sub.add_parser("db", help="database tools")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    upgrade = db_sub.add_parser("upgrade", help="apply database migrations (also done at start-up)")
    upgrade.set_defaults(run=cmd_db_upgrade)

    tips = sub.add_parser("tips", help="the daily tip")
    tips_sub = tips.add_subparsers(dest="tips_command", required=True, metavar="TIPS_COMMAND")
    preview = tips_sub.add_parser("preview", parents=[knowledge], help="show what each target will get")
    preview.add_argument("--days", type=int, default=7, help="how many days ahead (default 7)")
    preview.set_defaults(run=cmd_tips_preview)
    post = tips_sub.add_parser(
        "post", parents=[knowledge], help="post a tip now (recorded like scheduled ones)"
    )
    post.add_argument("--now", action="store_true", required=True, help="post at once")
    post.add_argument(
        "--target",
        action="append",
        default=[],
        help="only this target, e.g. C0123 or teams:19:abc (repeatable)",
    )
    post.set_defaults(run=cmd_tips_post)

    report = sub.add_parser(
        "report", parents=[knowledge], help="insights for HR: topics, feedback, unanswered questions"
    )
    report.add_argument("--since", type=since_date, help="only questions from this day on (YYYY-MM-DD)")
    report.add_argument("--format", choices=["md", "csv", "html"], default="md", help="default: md")
    report.add_argument("--out", type=Path, help="write to this file (default: standard output)")
    report.set_defaults(run=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:  # Alembic narrates every plugin and step at INFO; only its warnings matter here
        logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        settings = Settings.from_env()
        if getattr(args, "port", "absent") is None:
            args.port = port_number(os.environ.get("PORT") or "3000", name="PORT")
        command: Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]] = args.run
        return asyncio.run(command(args, settings))
    except KnowledgeError as exc:
        print(f"policybot: the knowledge base has errors:\n{exc}", file=sys.stderr)
        return 1
    except PolicybotError as exc:
        print(f"policybot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`policybot ask … | head -3`): nothing more can be written to it, and
        # Python would otherwise report the same failure again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print("policybot: the output was closed before everything was written", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
