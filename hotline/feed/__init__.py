"""The real-time feed of new and changed calls and tickets (``GET /api/v1/feed``).

Backed by the ``change_log`` table (filled by triggers in the same transaction as
each change, migration 0042) and woken by ``LISTEN/NOTIFY``, so every web node
serves the same ordered stream, and a subscriber that comes back with its last
cursor gets everything it missed, in order, with no gap and no duplicate.
"""
