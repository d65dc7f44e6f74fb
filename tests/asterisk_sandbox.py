"""The sandbox lives in the package (``hotline.telephony.sandbox``): tests, benchmarks
and ``hotline serve --demo`` share it."""

from hotline.telephony.sandbox import (  # noqa: F401
    BUNDLE,
    AsteriskInstall,
    AsteriskMissing,
    AsteriskSandbox,
    find_asterisk,
    free_port,
    host_timezone,
)
