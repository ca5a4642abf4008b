"""Alembic migrations: the only way the database schema changes (see bot/store.py `migrate`)."""
