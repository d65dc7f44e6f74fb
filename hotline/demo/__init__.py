"""Demo mode (``hotline serve --demo``, ``make run``): demo users for every role,
a day of calls and tickets, and a trickle of simulated calls. Never in production:
the service exists only when the node is started with ``--demo``."""
