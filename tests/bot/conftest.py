"""Fixtures for the store and the tip scheduler: a database (SQLite file, and real PostgreSQL) and a
clock the test moves by hand."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest

PG_SERVER = "postgresql://postgres@127.0.0.1:5432/test"
OSLO = ZoneInfo("Europe/Oslo")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: an SQLite file in tmp_path, or a fresh schema of PostgreSQL's `test` database
    (selected through the URL's libpq `options`, the way a deployment could), dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'policybot.db'}"
        return
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_SERVER)
    try:
        await admin.execute(f'CREATE SCHEMA "{schema}"')
        yield f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    finally:
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


class Clock:
    """The time, as far as the code under test knows; tests set and advance it in Oslo wall-clock time."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    @staticmethod
    def oslo(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
        """A wall-clock time in Oslo, as the aware UTC datetime the code receives."""
        return datetime(year, month, day, hour, minute, tzinfo=OSLO).astimezone(UTC)

    def at(self, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
        self.now = self.oslo(year, month, day, hour, minute)
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(Clock.oslo(2028, 5, 15, 8, 0))  # a Monday morning; 17 May 2028 is Constitution Day
