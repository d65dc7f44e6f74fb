-- Capture ticket changes for the feed and the upstream outbox. 0042 already attaches
-- the triggers when `tickets` (0020) exists; this repeats it (idempotently) for
-- databases that applied 0042 before 0020 was written.
SELECT feed_attach('tickets', 'ticket');
