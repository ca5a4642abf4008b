"""The conversations the bot is installed in (Teams conversation references), for tips and notes to HR."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select

from bot.database import conversation_references, dialect_insert
from bot.store_base import StoreBase


@dataclass(frozen=True)
class StoredReference:
    """Where the bot can post unprompted: a Teams conversation reference (as Bot Framework JSON)."""

    platform: str
    conversation_id: str
    reference: dict[str, Any]
    lang: str

    @property
    def personal(self) -> bool:
        """A one-to-one chat: its id points at one person, so tips name it only hashed (see
        `bot.tips.Target.label`).

        As adapters/teams.py decides (a missing `conversationType` is a personal chat, as Bot Framework
        leaves it out there), and whatever the type, an id in the personal-chat form `a:...`. In doubt,
        personal: a channel named by hash is harmless, a person named in a log is not.
        """
        conversation = self.reference.get("conversation")
        if not isinstance(conversation, dict):
            return True
        kind = conversation.get("conversationType")
        return kind in (None, "", "personal") or self.conversation_id.startswith("a:")


class InstallStore(StoreBase):
    async def save_reference(
        self, platform: str, conversation_id: str, reference: dict[str, Any], lang: str
    ) -> None:
        now = self._clock()

        def op(conn: Connection) -> None:
            stmt = dialect_insert(conn, conversation_references).values(
                platform=platform,
                conversation_id=conversation_id,
                reference=reference,
                lang=lang,
                updated_at=now,
            )
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["platform", "conversation_id"],
                    set_={
                        "reference": stmt.excluded.reference,
                        "lang": stmt.excluded.lang,
                        "updated_at": now,
                    },
                )
            )

        await self._run("saving a conversation reference", op)

    async def remove_reference(self, platform: str, conversation_id: str) -> None:
        def op(conn: Connection) -> None:
            conn.execute(
                delete(conversation_references).where(
                    conversation_references.c.platform == platform,
                    conversation_references.c.conversation_id == conversation_id,
                )
            )

        await self._run("removing a conversation reference", op)

    async def references(self, platform: str) -> list[StoredReference]:
        def op(conn: Connection) -> list[StoredReference]:
            rows = conn.execute(
                select(conversation_references)
                .where(conversation_references.c.platform == platform)
                .order_by(conversation_references.c.conversation_id)
            )
            return [StoredReference(r.platform, r.conversation_id, dict(r.reference), r.lang) for r in rows]

        result: list[StoredReference] = await self._run("reading conversation references", op)
        return result
