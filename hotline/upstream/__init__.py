"""Upstream push to the provincial platform through a transactional outbox.

The outbox is the change log (migration 0042): its rows are written by triggers in
the same transaction as the change itself, so a change is pushed if and only if it
committed. :class:`hotline.upstream.worker.UpstreamWorker` sends them in order with
retries, exponential backoff and idempotency keys, and moves a record that keeps
being refused to the dead-letter table after ``max_attempts``.
"""
