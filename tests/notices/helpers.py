"""Shared by the reminder tests: a subscribed number, times in the business zone, a scripted sender."""
import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from finepay.extensions import db
from notices.models import CODE, Message, Subscription
from notices.notifiers import Notifier, NotifierError, SendReceipt
from tests.factories import make_violation

PLATE, VIN, PHONE = "蒙B12345", "A12345", "13800138000"
TZ = ZoneInfo("Asia/Shanghai")


def local(day, hour, minute=0):
    """An aware instant at a local time of a business day."""
    return datetime.combine(day, time(hour, minute), TZ)


def today():
    """Today's business date."""
    return datetime.now(TZ).date()


def last_code(phone=PHONE):
    """The 6 digits of the latest code message to ``phone`` (the outbox keeps codes: it is their delivery)."""
    message = db.session.execute(select(Message).where(Message.phone == phone, Message.kind == CODE)
                                 .order_by(Message.id.desc())).scalars().first()
    return re.search(r"\d{6}", message.body).group(0)


def subscribe(client, phone=PHONE, plate=PLATE, vin=VIN, language="en"):
    """Subscribe through the pages (a violation of the vehicle must exist); returns the subscription."""
    response = client.post("/notices/subscribe", data={"plate": plate, "vin_last6": vin, "phone": phone,
                                                        "language": language})
    assert response.status_code == 200, response.text
    token = re.search(r'name="token" value="([^"]+)"', response.text).group(1)
    response = client.post("/notices/confirm", data={"token": token, "code": last_code(phone)})
    assert response.status_code == 200, response.text
    return db.session.execute(select(Subscription).where(Subscription.phone == phone, Subscription.plate == plate)
                              ).scalar_one()


def vehicle(**fields):
    """A violation that makes the vehicle known (decided long ago and paid: it is due nothing)."""
    return make_violation(status="paid", decision_date=today() - timedelta(days=90), **fields)


def reminders(**where):
    """The reminder messages (not codes), oldest first."""
    query = select(Message).where(Message.kind != CODE, *[getattr(Message, k) == v for k, v in where.items()])
    return db.session.execute(query.order_by(Message.id).execution_options(populate_existing=True)).scalars().all()


class ScriptedNotifier(Notifier):
    """A sender whose next answers a test scripts: "ok", "retry", "refuse", "unknown"; records what it sent."""

    name = "outbox"
    keeps_codes = True

    def __init__(self, config=None, script=()):
        super().__init__(config or {})
        self.script = list(script)
        self.sent = []  # keys, one per text taken
        self.lookups = 0

    def send(self, text):
        answer = self.script.pop(0) if self.script else "ok"
        if answer == "retry":
            raise NotifierError("busy", code="busy", retryable=True)
        if answer == "refuse":
            raise NotifierError("no such number", code="bad_number")
        self.sent.append(text.key)
        if answer == "unknown":
            raise NotifierError("timed out", code="timeout", outcome_unknown=True)
        return SendReceipt(f"scripted-{text.key}")

    def find_sent(self, text, since):
        self.lookups += 1
        return SendReceipt(f"scripted-{text.key}") if text.key in self.sent else None


def use_sender(app, notifier):
    """Put ``notifier`` in place of the app's sender."""
    app.extensions["finepay.notifiers"] = notifier
    return notifier
