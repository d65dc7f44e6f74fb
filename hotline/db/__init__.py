"""The data store: PostgreSQL through asyncpg (the only source of truth)."""

from hotline.db.pool import Database, open_database, resolve_database_url

__all__ = ["Database", "open_database", "resolve_database_url"]
