"""Tickets (工单): intake, the lifecycle state machine, dispatch legs, merge, views.

The domain lives here; ``hotline/web/routes/tickets.py`` is a thin adapter.
"""
