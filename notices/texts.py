"""What each message says, in the subscriber's language: no link ever, the plate and the VIN code's last 4 characters.

Real notices never carry a link (drivers are told so), so a text that has one is
a phishing text; naming the plate and the end of the VIN code, which only the
owner knows, shows this one is genuine. ``params`` are the same facts in the
order a provider's approved template takes them (docs/notices.md).
"""
from contextlib import contextmanager

from flask import current_app, has_request_context
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from finepay.formatting import day, format_money
from notices.models import DUE_SOON, LATE_FEE_STARTS, NEW_VIOLATION

LOCALES = ("zh_CN", "en")


@contextmanager
def in_locale(locale):
    """Format in ``locale`` (the subscriber's), whether or not a request is being served."""
    if has_request_context():
        with force_locale(locale):
            yield
    else:
        with current_app.test_request_context(), force_locale(locale):
            yield


def code_text(code, minutes, locale):
    """(body, params) of a one-time code message."""
    with in_locale(locale):
        body = _("FinePay: your confirmation code is %(code)s, valid for %(minutes)d minutes. "
                 "Never give it to anyone.", code=code, minutes=minutes)
    return body, (code, str(minutes))


def reminder_text(kind, *, plate, vin_tail, amount, on, locale):
    """(body, params) of a reminder: ``amount`` in minor units, ``on`` the date it names."""
    with in_locale(locale):
        money, date = format_money(amount), day(on)
        facts = {"plate": plate, "vin": vin_tail, "amount": money, "date": date}
        if kind == NEW_VIOLATION:
            body = _("New traffic violation for %(plate)s (VIN ending %(vin)s): fine %(amount)s. "
                     "Pay by %(date)s to avoid a late fee.", **facts)
        elif kind == DUE_SOON:
            body = _("%(plate)s (VIN ending %(vin)s): the fine of %(amount)s must be paid by %(date)s; "
                     "a late fee is added every day after that.", **facts)
        elif kind == LATE_FEE_STARTS:
            body = _("%(plate)s (VIN ending %(vin)s): from today, %(date)s, a late fee is added every day; "
                     "%(amount)s is owed today.", **facts)
        else:
            raise ValueError(f"not a reminder kind: {kind}")
        # Chinese sentences follow one another without a space; English ones with one.
        body += ("" if locale.startswith("zh") else " ") + _("A real notice never contains a link. Reply TD to stop.")
    major = f"{amount / 100:.2f}" if current_app.config["CURRENCY"] == "CNY" else str(amount)
    return body, (plate, vin_tail, major, on.isoformat())



# What staff see for a message's status and kind.
LABELS = {
    "queued": _l("queued"), "held": _l("held"), "sending": _l("sending"), "sent": _l("sent"),
    "retrying": _l("retrying"), "unknown": _l("outcome unknown"), "failed": _l("failed"), "canceled": _l("cancelled"),
    "code": _l("confirmation code"), "new_violation": _l("new violation"), "due_soon": _l("late fee in 3 days"),
    "late_fee_starts": _l("late fee starts"), "quiet_hours": _l("quiet hours"), "daily_cap": _l("daily limit"),
    "pending": _l("waiting for code"), "active": _l("active"), "stopped": _l("stopped"),
}
