"""Log records on stderr, one header line per record: time, level, logger, message."""

from __future__ import annotations

import logging
import sys
import time

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class UTCFormatter(logging.Formatter):
    """Formats times as ISO 8601 in UTC with milliseconds, e.g. 2025-01-31T12:00:00.123Z."""

    converter = time.gmtime
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"


def configure_logging(level: str) -> None:
    """Send the records of the runtime and of the user's code to stderr at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(UTCFormatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
