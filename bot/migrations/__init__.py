"""Alembic migrations: the only way the database schema changes (see bot/database.py `migrate`)."""
