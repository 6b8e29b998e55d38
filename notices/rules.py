"""The reminder rules, as plain functions of their inputs (no database, no clock of their own).

Which kinds of reminder a violation is due on a given local date, quiet hours and
the next morning, the retry backoff, the mobile number's format and its mask,
and the words that stop a subscription.
"""
import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from notices.models import DUE_SOON, LATE_FEE_STARTS, NEW_VIOLATION


class InvalidMobile(ValueError):
    """Not a mainland China mobile number."""


_SEPARATORS = re.compile(r"[\s\-()（）·.]")
_MOBILE = re.compile(r"1[3-9]\d{9}")


def normalize_mobile(raw):
    """The 11 digits of a mainland China mobile number: spaces, dashes and a +86 / 0086 / 86 prefix dropped."""
    text = _SEPARATORS.sub("", (raw or "").strip()).translate(str.maketrans("０１２３４５６７８９＋", "0123456789+"))
    for prefix in ("+86", "0086", "86"):
        if text.startswith(prefix) and len(text) == len(prefix) + 11:
            text = text[len(prefix):]
            break
    if not _MOBILE.fullmatch(text):
        raise InvalidMobile(raw)
    return text


def mask_mobile(phone):
    """The number as staff see it: 138****1234."""
    return f"{phone[:3]}****{phone[-4:]}" if phone and len(phone) == 11 else "****"


# What a driver replies to stop (case and spaces do not matter).
STOP_WORDS = frozenset({"TD", "T", "N", "STOP", "UNSUBSCRIBE", "退订", "取消", "退订短信"})


def is_stop_reply(text):
    """Whether an inbound reply asks to stop (TD, 退订, STOP...)."""
    return re.sub(r"[\s。.!！]", "", (text or "")).upper() in STOP_WORDS


def late_fee_starts_on(due_date):
    """The first local date with a late fee: the day after the last day without one."""
    return due_date + timedelta(days=1)


def kinds_due(*, due_date, today, created_at, subscribed_at, tz, reminder_days=3):
    """The reminder kinds a violation is due on local date ``today`` (the caller checks it is unpaid).

    - NEW_VIOLATION: the violation was recorded after the number was confirmed, and its late fee has not started;
    - DUE_SOON: from ``reminder_days`` before the late fee starts until the day before it starts;
    - LATE_FEE_STARTS: on the day the late fee starts (and the next, in case a day's run was missed).
    A stale reminder is never sent: nothing about a due date already gone by.
    """
    starts = late_fee_starts_on(due_date)
    kinds = []
    if created_at >= subscribed_at and today < starts:
        kinds.append(NEW_VIOLATION)
    if starts - timedelta(days=reminder_days) <= today < starts:
        kinds.append(DUE_SOON)
    if starts <= today <= starts + timedelta(days=1):
        kinds.append(LATE_FEE_STARTS)
    return kinds


def parse_quiet_hours(text):
    """"22:00-08:00" -> (time(22), time(8)); an empty text means no quiet hours (None)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        start, end = (datetime.strptime(part.strip(), "%H:%M").time() for part in text.split("-"))
    except ValueError:
        raise ValueError(f"NOTICE_QUIET_HOURS must look like 22:00-08:00, got {text!r}") from None
    return start, end


def in_quiet_hours(now, quiet, tz):
    """Whether the aware instant ``now`` falls in the quiet hours (start, end) in zone ``tz``."""
    if quiet is None:
        return False
    start, end = quiet
    local = now.astimezone(ZoneInfo(tz)).time()
    if start <= end:
        return start <= local < end
    return local >= start or local < end  # across midnight


def quiet_hours_end(now, quiet, tz):
    """The next instant (aware, UTC-comparable) at which the quiet hours that contain ``now`` end."""
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    end = datetime.combine(local.date(), quiet[1], zone)
    if end <= local:
        end = datetime.combine(local.date() + timedelta(days=1), quiet[1], zone)
    return end


def next_day_start(today, quiet, tz):
    """When a number whose daily cap is spent may get messages again: the next local day, after its quiet hours."""
    zone = ZoneInfo(tz)
    return datetime.combine(today + timedelta(days=1), quiet[1] if quiet else time(0), zone)


def backoff(attempts, base_seconds, cap_seconds=6 * 3600):
    """How long to wait before try number ``attempts + 1``: base, 2 × base, 4 × base... at most ``cap_seconds``."""
    return timedelta(seconds=min(cap_seconds, base_seconds * 2 ** max(0, attempts - 1)))


def vin_tail(vin_last6):
    """The last 4 characters of the VIN code, which a message names so the driver can tell it is genuine."""
    return vin_last6[-4:]


def local_date(now, tz):
    """The business date of an aware instant."""
    return now.astimezone(ZoneInfo(tz)).date()

