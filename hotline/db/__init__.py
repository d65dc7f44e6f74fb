"""The data store: PostgreSQL through asyncpg (the only source of truth)."""

from hotline.db.errors import is_unavailable
from hotline.db.locks import LockKey, run_on_one_node
from hotline.db.pool import Database, open_database, resolve_database_url
from hotline.db.tx import transaction

__all__ = ["Database", "LockKey", "is_unavailable", "open_database", "resolve_database_url", "run_on_one_node",
           "transaction"]
