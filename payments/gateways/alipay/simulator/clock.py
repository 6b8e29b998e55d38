"""The simulator's clock: Beijing time (Alipay's timestamps carry no zone), movable by tests and kept in the store.

Trade expiry, bill availability and the 30-second bill links read this clock, so a test
can jump to 10:00 the next day instead of waiting. Notification retries run on real
time scaled by the time factor, since they measure waiting, not dates.
"""
from datetime import datetime, timedelta, timezone

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
FORMAT = "%Y-%m-%d %H:%M:%S"
OFFSET_KEY = "clock_offset_seconds"


def parse(text):
    """A Beijing-time ``yyyy-MM-dd HH:mm:ss`` as an aware datetime (ValueError when malformed)."""
    return datetime.strptime(text, FORMAT).replace(tzinfo=BEIJING)


def format_time(moment):
    """``yyyy-MM-dd HH:mm:ss`` in Beijing time, as Alipay writes timestamps."""
    return moment.astimezone(BEIJING).strftime(FORMAT)


class Clock:
    """Real time plus an offset that the admin API sets; the offset survives restarts."""

    def __init__(self, store):
        self._store = store

    def now(self):
        """The simulated current time, in Beijing."""
        offset = float(self._store.meta(OFFSET_KEY, "0"))
        return datetime.now(BEIJING) + timedelta(seconds=offset)

    def set(self, moment):
        """From now on the clock reads ``moment`` and runs on from it."""
        offset = (moment - datetime.now(BEIJING)).total_seconds()
        self._store.set_meta(OFFSET_KEY, repr(offset))

    def advance(self, seconds):
        """Move the clock ``seconds`` ahead."""
        self._store.set_meta(OFFSET_KEY, repr(float(self._store.meta(OFFSET_KEY, "0")) + seconds))

    def reset(self):
        """Back to real time."""
        self._store.set_meta(OFFSET_KEY, "0")
