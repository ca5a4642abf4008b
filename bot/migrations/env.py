"""Alembic environment for policybot.

`bot.database.migrate` runs Alembic on a connection it already holds (inside its lock), passed in
`config.attributes["connection"]`. For developers writing a new migration, `alembic -c
bot/migrations/alembic.ini revision --autogenerate -m "…"` connects to DATABASE_URL instead.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import Connection

from bot.database import Database, metadata


def run(connection: Connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things in place; batch mode copies the table instead.
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_from_environment() -> None:
    database = Database(os.environ.get("DATABASE_URL", "sqlite:///policybot.db"))
    try:
        await database.run(run)
    finally:
        await database.close()


if context.is_offline_mode():
    raise SystemExit("policybot migrations run online only: use `policybot db upgrade`")

shared = context.config.attributes.get("connection")
if shared is not None:
    run(shared)
else:
    asyncio.run(run_from_environment())
