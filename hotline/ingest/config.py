"""``[ingest]`` settings (config/hotline.toml), read once into a frozen object."""

from __future__ import annotations

from dataclasses import dataclass

from hotline.config import Settings, section_settings

#: Zhoushan's administrative divisions (GB/T 2260), the default region code table
DEFAULT_REGIONS = ("330900", "330902", "330903", "330921", "330922")


@dataclass(frozen=True, slots=True)
class IngestSettings:
    #: seconds a signed timestamp may differ from the server clock
    replay_window: int = 300
    #: largest request body accepted on the ingest routes, in bytes
    max_body_bytes: int = 8 * 1024 * 1024
    #: most records in one batch
    max_batch_records: int = 5000
    #: requests a source may send in a burst above its per-minute rate
    rate_burst: int = 20
    #: region codes accepted as valid in quality reports
    regions: tuple[str, ...] = DEFAULT_REGIONS
    #: Asterisk Master.csv to follow (empty: no follower)
    cdr_csv: str = ""
    #: Asterisk queue_log to follow (empty: none)
    queue_log: str = ""
    #: time zone of the timestamps Asterisk writes in Master.csv and cdr_pgsql's calldate:
    #: UTC, with ``usegmtime = yes`` in cdr.conf (docs/INGEST.md §3); empty: the node's zone
    cdr_timezone: str = "UTC"
    #: seconds a matched CDR start may differ from the AGI's start before the zone is
    #: reported as wrong (and the CDR's times are re-anchored on the AGI's)
    cdr_skew_tolerance: float = 90.0
    #: minutes after which a CDR leg no call claimed counts as unlinked in the quality report
    cdr_unlinked_minutes: int = 10
    #: seconds between polls of a followed file that did not grow
    follow_interval: float = 5.0
    #: the line a CDR-recorded call is put on when its tag names no known line
    cdr_default_line: str = "12345"
    #: minutes after ``hotline ingest rotate-key`` during which the previous key still signs
    key_overlap_minutes: int = 60


def ingest_settings(settings: Settings) -> IngestSettings:
    return section_settings(settings, "ingest", IngestSettings)
