"""The one error family of policybot. Everything the core raises on purpose is a PolicybotError."""

from __future__ import annotations

from dataclasses import dataclass


class PolicybotError(Exception):
    """Base of every error policybot raises on purpose; `main` turns it into a message and exit code."""


@dataclass(frozen=True, slots=True)  # a large knowledge base may have tens of thousands of warnings
class Problem:
    """One thing wrong in a knowledge-base file, located precisely enough for HR to fix it."""

    file: str
    line: int | None
    column: int | None
    entry_id: str | None
    message: str
    fix: str
    severity: str = "error"  # "error" or "warning"

    def __reduce__(
        self,
    ) -> tuple[type[Problem], tuple[str, int | None, int | None, str | None, str, str, str]]:
        """Pickled as its fields in order: an index snapshot (bot/index_cache.py) may keep tens of
        thousands of warnings, written and read back three and two times faster than a dataclass's state."""
        fields = (self.file, self.line, self.column, self.entry_id, self.message, self.fix, self.severity)
        return (Problem, fields)

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        entry = f" [{self.entry_id}]" if self.entry_id else ""
        return f"{where}: {self.severity}{entry}: {self.message} — {self.fix}"


class KnowledgeError(PolicybotError):
    """The knowledge base could not be loaded; `problems` lists every error found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        super().__init__(f"{len(errors)} problem(s) in the knowledge base:\n" + "\n".join(map(str, errors)))


class ConfigError(PolicybotError):
    """The environment configuration is missing or inconsistent."""


class StoreError(PolicybotError):
    """The database could not be reached or migrated."""


class DeliveryError(PolicybotError):
    """A message could not be delivered to a chat platform.

    `retryable` tells the tip scheduler whether trying again later may succeed (429, 5xx, timeouts) or
    the platform refused for good (channel archived, bot removed); `retry_after` is the platform's hint
    in seconds, when it gave one. Raise it only when the message was certainly NOT delivered.
    """

    def __init__(self, message: str, *, retryable: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
