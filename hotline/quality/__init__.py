"""Data-quality reports per source per day (completeness, validity, timeliness,
duplicates and replays, sequence gaps, state-machine violations, cross-check with
our own transfer records), scheduled daily and on demand, as JSON and CSV."""
