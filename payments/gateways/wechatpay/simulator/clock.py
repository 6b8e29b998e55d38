"""The simulator's clock: real time moved by an offset an admin sets, and delays scaled by a time factor.

Tests move the clock to reach a bill's release hour or an order's expiry
without waiting, and shrink the notification retry schedule (minutes and
hours in production) with the time factor.
"""
import threading
from datetime import UTC, datetime, timedelta, timezone

# WeChat Pay's times are Beijing time, written with their offset (2018-06-08T10:34:56+08:00).
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")


class Clock:
    """Now, as the simulator sees it, and the wall-clock length of a simulated delay."""

    def __init__(self, time_factor=1.0):
        self.time_factor = time_factor
        self.offset = timedelta()
        self.lock = threading.Lock()

    def now(self):
        """The simulated time, in Beijing time."""
        return (datetime.now(UTC) + self.offset).astimezone(BEIJING)

    def set(self, moment):
        """Make ``moment`` (an aware datetime) now; the clock runs on from there."""
        with self.lock:
            self.offset = moment - datetime.now(UTC)

    def reset(self):
        """Back to real time."""
        with self.lock:
            self.offset = timedelta()

    def scaled(self, seconds):
        """How long a delay of ``seconds`` in WeChat Pay's schedule lasts here."""
        return seconds * self.time_factor


def rfc3339(moment):
    """A time as WeChat Pay writes it: 2018-06-08T10:34:56+08:00."""
    return moment.astimezone(BEIJING).isoformat(timespec="seconds")


def parse_rfc3339(text):
    """An aware datetime from WeChat Pay's time format, or None when it is not one (an offset is required)."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else None
